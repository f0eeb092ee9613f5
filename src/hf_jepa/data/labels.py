"""Label columns of a dataset: check one exists and holds class labels, and map its values to class ids.

    labels = inspect_label_column("builtin:moving_digits", "direction")   # LabelInfo, or LabelColumnError
    train_ids = labels.fit(train_values, split="train")                  # (M,) long
    test_ids = labels.encode(test_values, split="test")

Shared by the probes (`hf_jepa.probing`) and the online probe of pretraining (`hf_jepa.pretraining`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import Tensor

__all__ = ["LabelColumnError", "LabelInfo", "inspect_label_column", "split_features"]


class LabelColumnError(ValueError):
    """A label column that is missing or holds values a classifier cannot use; the message names column and value."""


def split_features(name_or_path: str, split: str) -> Any:
    """`datasets.Features` of one split (streamed: nothing is decoded), or None when the builder cannot tell."""
    import datasets

    from ._stream import resolve_source

    return datasets.load_dataset(resolve_source(name_or_path), split=split, streaming=True).features


@dataclass
class LabelInfo:
    """How a label column maps to class ids.

    Attributes:
        column: the label column.
        names: class names, index = class id (ClassLabel names, sorted strings, or str(id) for integer columns).
        kind: 'class_label' (datasets.ClassLabel), 'int' (plain integers) or 'str' (strings).
    """

    column: str
    names: list[str] = field(default_factory=list)
    kind: str = "int"

    @property
    def num_labels(self) -> int:
        """Number of classes."""
        return len(self.names)

    @property
    def id2label(self) -> dict[int, str]:
        """Class id -> name, as transformers configs store it."""
        return dict(enumerate(self.names))

    def fit(self, values: Sequence[Any], *, split: str, num_labels: int | None = None) -> Tensor:
        """Set the classes from the training values (integer / string columns) and encode them: (M,) long."""
        if self.kind == "int":
            ints = self._ints(values, split)
            if num_labels is None:
                num_labels = int(ints.max()) + 1 if ints.numel() else 0
            self.names = [str(i) for i in range(num_labels)]
        elif self.kind == "str":
            self.names = sorted({str(v) for v in values})
        return self.encode(values, split=split)

    def encode(self, values: Sequence[Any], *, split: str) -> Tensor:
        """Raw column values -> (M,) long class ids; a clear LabelColumnError for values out of range / unknown."""
        if self.kind == "str":
            index = {name: i for i, name in enumerate(self.names)}
            unknown = [v for v in values if str(v) not in index]
            if unknown:
                raise LabelColumnError(f"label column {self.column!r} has value {unknown[0]!r} in split {split!r}, "
                                       f"expected one of the training classes {self.names[:20]}")
            return torch.tensor([index[str(v)] for v in values], dtype=torch.long)
        ints = self._ints(values, split)
        bad = ints[(ints < 0) | (ints >= self.num_labels)]
        if bad.numel():
            raise LabelColumnError(f"label column {self.column!r} has value {int(bad[0])} in split {split!r}, "
                                   f"expected class ids in [0, {self.num_labels})")
        return ints

    def _ints(self, values: Sequence[Any], split: str) -> Tensor:
        for v in values:
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)):
                raise LabelColumnError(f"label column {self.column!r} has value {v!r} ({type(v).__name__}) in split "
                                       f"{split!r}, expected integer class ids or strings")
        return torch.tensor([int(v) for v in values], dtype=torch.long)


def inspect_label_column(name_or_path: str, label_column: str, split: str = "train") -> LabelInfo:
    """Check that `label_column` exists and holds class labels; `LabelColumnError` names the column otherwise."""
    import datasets

    features = split_features(name_or_path, split)
    if features is None:
        return LabelInfo(label_column, kind="int")
    if label_column not in features:
        raise LabelColumnError(f"label column {label_column!r} is not in {name_or_path} split {split!r}; "
                               f"expected one of {list(features)}")
    feature = features[label_column]
    if isinstance(feature, datasets.ClassLabel):
        return LabelInfo(label_column, names=list(feature.names), kind="class_label")
    dtype = getattr(feature, "dtype", None)
    if dtype in ("string", "large_string"):
        return LabelInfo(label_column, kind="str")
    if dtype is not None and (dtype.startswith("int") or dtype.startswith("uint")):
        return LabelInfo(label_column, kind="int")
    raise LabelColumnError(f"label column {label_column!r} of {name_or_path} has type {feature!r}, expected a "
                           "ClassLabel, integer or string column")

"""Config validation helpers: every error names the field, the value and what was expected."""

from __future__ import annotations

import dataclasses
import difflib
import inspect
import logging
import math
from collections.abc import Sequence
from functools import cache
from typing import Any

from transformers import PreTrainedConfig

logger = logging.getLogger(__name__)


def check_positive(**fields: Any) -> None:
    """Raise ValueError for the first field that is not a positive integer."""
    for name, value in fields.items():
        if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
            raise ValueError(f"{name}={value!r}: expected a positive integer")


def check_divisible(name: str, value: int, by_name: str, by: int) -> None:
    """Raise ValueError unless `value % by == 0`."""
    if value % by != 0:
        raise ValueError(f"{name}={value}: expected a multiple of {by_name}={by}")


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _is_sequence(value: Any) -> bool:
    return isinstance(value, Sequence) and not isinstance(value, (str, bytes))


def check_range(name: str, value: float, low: float, high: float, *, include_low: bool = True) -> None:
    """Raise ValueError unless `value` is a number with `low <= value <= high` (`low < value` without
    `include_low`)."""
    if not _is_number(value) or not ((low <= value if include_low else low < value) and value <= high):
        raise ValueError(f"{name}={value!r}: expected a number in {'[' if include_low else '('}{low}, {high}]")


def check_numbers(name: str, value: Any, length: int, *, positive: bool = False) -> tuple[float, ...]:
    """Raise ValueError unless `value` is a sequence of `length` finite numbers (each > 0 with `positive`);
    return them as a tuple of floats."""
    ok = _is_sequence(value) and len(value) == length
    ok = ok and all(_is_number(v) and math.isfinite(v) and (v > 0 or not positive) for v in value)
    if not ok:
        raise ValueError(f"{name}={value!r}: expected {length} finite numbers{' > 0' if positive else ''}")
    return tuple(float(v) for v in value)


def check_ordered_pair(name: str, value: Any, low: float, high: float | None = None) -> tuple[float, float]:
    """Raise ValueError unless `value` is a (min, max) pair of finite numbers with `low < min <= max <= high`
    (no upper bound when `high` is None); return it as a tuple of floats."""
    bound = f"{low} < min <= max" + (f" <= {high}" if high is not None else "")
    ok = _is_sequence(value) and len(value) == 2
    ok = ok and all(_is_number(v) and math.isfinite(v) for v in value)
    if not ok or not (low < value[0] <= value[1] and (high is None or value[1] <= high)):
        raise ValueError(f"{name}={value!r}: expected a (min, max) pair of numbers with {bound}")
    return float(value[0]), float(value[1])


def check_name(**fields: Any) -> None:
    """Raise ValueError for the first field that is not a non-empty string (a column or feature name)."""
    for name, value in fields.items():
        if not isinstance(value, str) or not value:
            raise ValueError(f"{name}={value!r}: expected a non-empty string")


def check_positive_float(**fields: Any) -> None:
    """Raise ValueError for the first field that is not a number > 0."""
    for name, value in fields.items():
        if not _is_number(value) or not value > 0:
            raise ValueError(f"{name}={value!r}: expected a number > 0")


def check_bool(**fields: Any) -> None:
    """Raise ValueError for the first field that is not a bool (a JSON "false" string would read as True)."""
    for name, value in fields.items():
        if not isinstance(value, bool):
            raise ValueError(f"{name}={value!r}: expected true or false")


def check_number_list(**fields: Any) -> None:
    """Raise ValueError for the first field that is neither None nor a list of numbers."""
    for name, value in fields.items():
        if value is not None and (not isinstance(value, (list, tuple)) or not all(_is_number(v) for v in value)):
            raise ValueError(f"{name}={value!r}: expected a list of numbers")


@cache
def _base_config_fields() -> frozenset[str]:
    """Keys every `PreTrainedConfig` accepts: its dataclass fields and properties, plus what transformers writes to
    or reads from config.json beside them (model_type, auto_map, _name_or_path, the from_pretrained kwargs)."""
    names = {f.name for f in dataclasses.fields(PreTrainedConfig)}
    names |= {n for n, v in inspect.getmembers(PreTrainedConfig) if isinstance(v, property)}
    return frozenset(names | {"model_type", "auto_map", "_name_or_path", "_commit_hash", "attn_implementation",
                              "experts_implementation"})


def config_fields(config_class: type) -> list[str]:
    """The fields `config_class.__init__` takes by name: its own parameters and those of every config base class
    whose `__init__` it reaches through `**kwargs` (up to `PreTrainedConfig`)."""
    names: list[str] = []
    for klass in config_class.__mro__:
        if klass is PreTrainedConfig or not issubclass(klass, PreTrainedConfig):
            break
        if "__init__" in vars(klass):
            params = inspect.signature(klass.__init__).parameters
            names += [n for n, p in params.items() if n != "self" and p.kind is not p.VAR_KEYWORD and n not in names]
    return names


def warn_unknown_fields(config_class: type, kwargs: dict[str, Any]) -> None:
    """Log a WARNING naming the config.json keys that neither `config_class` nor `PreTrainedConfig` knows (kept as
    attributes, as transformers does, but nothing reads them: a typo such as `hiden_size` would otherwise pass
    silently)."""
    unknown = sorted(k for k in kwargs if k not in _base_config_fields())
    if not unknown:
        return
    own = config_fields(config_class)
    hints = [f"{m[0]!r} for {k!r}" for k in unknown if (m := difflib.get_close_matches(k, own, n=1, cutoff=0.75))]
    logger.warning("%s: unknown config field(s) %s are kept as attributes but not used by the model%s",
                   config_class.__name__, unknown, f" (did you mean {', '.join(hints)}?)" if hints else "")


def check_choice(name: str, value: Any, choices: tuple[Any, ...]) -> None:
    """Raise ValueError unless `value in choices`."""
    if value not in choices:
        raise ValueError(f"{name}={value!r}: expected one of {list(choices)}")


def probe_fields(*, hidden_size: int, num_attention_heads: int, probe_type: str, probe_num_queries: int,
                 probe_num_self_attention_layers: int, probe_num_attention_heads: int | None,
                 probe_intermediate_size: int | None, probe_layer_norm_eps: float, freeze_encoder: bool
                 ) -> dict[str, Any]:
    """Validate the classification-probe fields of an encoder config and resolve their defaults (heads: the
    encoder's; MLP width: 4 * hidden_size). Returns the fields to store, resolved."""
    check_choice("probe_type", probe_type, ("attentive", "linear"))
    check_bool(freeze_encoder=freeze_encoder)
    check_positive_float(probe_layer_norm_eps=probe_layer_norm_eps)
    probe_num_attention_heads = probe_num_attention_heads or num_attention_heads
    probe_intermediate_size = probe_intermediate_size or 4 * hidden_size
    check_positive(probe_num_queries=probe_num_queries, probe_num_attention_heads=probe_num_attention_heads,
                   probe_intermediate_size=probe_intermediate_size)
    if not isinstance(probe_num_self_attention_layers, int) or probe_num_self_attention_layers < 0:
        raise ValueError(f"probe_num_self_attention_layers={probe_num_self_attention_layers!r}: expected an "
                         "integer >= 0")
    check_divisible("hidden_size", hidden_size, "probe_num_attention_heads", probe_num_attention_heads)
    return {"probe_type": probe_type, "probe_num_queries": probe_num_queries,
            "probe_num_self_attention_layers": probe_num_self_attention_layers,
            "probe_num_attention_heads": probe_num_attention_heads, "probe_intermediate_size": probe_intermediate_size,
            "probe_layer_norm_eps": probe_layer_norm_eps, "freeze_encoder": freeze_encoder}

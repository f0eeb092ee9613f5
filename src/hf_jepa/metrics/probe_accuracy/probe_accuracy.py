"""Top-k accuracy of class scores: the fraction of samples whose true class is among the k highest scores."""

import datasets
import evaluate
import numpy as np

_DESCRIPTION = """Top-k accuracy of a classifier's scores (logits or probabilities), for k in `top_k` (each capped at
the number of classes). Ties are broken towards the lower class index, as `torch.topk` does."""

_INPUTS = """
Args:
    predictions: list of M score lists, each of length C (logits or probabilities).
    references: list of M true class ids in [0, C).
    top_k: the k to report (default (1, 5)).
Returns:
    {"top1": float, "top5": float, ...}: accuracies in [0, 1] (nan for no samples).
Example:
    >>> metric = evaluate.load("path/to/probe_accuracy")
    >>> metric.compute(predictions=[[0.1, 0.9], [0.8, 0.2]], references=[1, 1], top_k=(1,))
    {'top1': 0.5}
"""


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _INPUTS)
class ProbeAccuracy(evaluate.Metric):
    def _info(self) -> evaluate.MetricInfo:
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation="",
            inputs_description=_INPUTS,
            features=datasets.Features(
                {"predictions": datasets.Sequence(datasets.Value("float32")), "references": datasets.Value("int64")}
            ),
        )

    def _compute(self, predictions, references, top_k=(1, 5)):
        scores = np.asarray(predictions, dtype=np.float32)  # (M, C)
        labels = np.asarray(references, dtype=np.int64)  # (M,)
        if scores.ndim != 2 and len(labels):
            raise ValueError(f"predictions: expected M lists of C scores, got shape {scores.shape}")
        out = {}
        for k in top_k:
            if len(labels) == 0:
                out[f"top{k}"] = float("nan")
                continue
            kk = min(int(k), scores.shape[1])
            top = np.argsort(-scores, axis=1, kind="stable")[:, :kk]  # (M, kk): highest first, ties to lower index
            out[f"top{k}"] = float((top == labels[:, None]).any(axis=1).mean())
        return out

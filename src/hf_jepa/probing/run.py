"""The probing job end to end: labels, frozen encoder, features (once), probe training, evaluation, outputs.

``scripts/probe.py`` parses ``ProbeArguments`` and calls ``run_probe``. Outputs in ``output_dir``, the JSON results
first (top1, top5, chance (uniform and the test split's most frequent class), counts, settings), then:
``classifier/`` (not for ``pixels``): a ``save_pretrained`` folder with processor config, a copy of the results JSON
(``results.json``) and a model card whose metadata holds the accuracies, the probe and what the encoder's card
recorded about its pretraining; ``confusion_matrix.png``; ``result-<time>.json`` written by ``evaluate.save`` (the
accuracies with evaluate's run metadata); ``probe_training/metrics.jsonl``; with ``--baselines random pixels`` the
same probe on a random init of the model's architecture and on raw pixels, same splits and settings
(``baselines/<name>/``, their top-1 under ``baselines`` in the results JSON). An output that fails after the results
JSON is written is named in ``hf_jepa.metrics.OutputsIncomplete``; the others are still written.
"""

from __future__ import annotations

import functools
import json
import logging
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

import torch

from hf_jepa.data.labels import inspect_label_column
from hf_jepa.metrics import result_file_name, save_results, write_after_results
from hf_jepa.probing.classifier import build_classifier, plot_confusion_matrix, probe_model_card
from hf_jepa.probing.encoder import FrozenEncoder, detect_modality, load_frozen_encoder
from hf_jepa.probing.features import extract_split
from hf_jepa.probing.probe import PROBE_TRAINING_DEFAULTS, evaluate_probe, probe_for_encoder, train_probe

__all__ = ["BASELINES", "RESULTS_FILENAME", "ProbeArguments", "run_probe"]

RESULTS_FILENAME = "results.json"  # the copy of the results JSON in the classifier folder
BASELINES = ("random", "pixels")  # --baselines: random init of --model's architecture; raw pixels

logger = logging.getLogger(__name__)


@dataclass
class ProbeArguments:
    """The probing job's settings (``scripts/probe.py``'s flags)."""

    model: str = field(metadata={"help": "folder | hub id | random:<preset> | pixels"})
    dataset_name: str = field(default="builtin:moving_digits",
                              metadata={"help": "hub id | local folder | builtin:<name>"})
    label_column: str = "label"
    probe: Literal["attentive", "linear"] = "attentive"
    probe_layers: int = field(default=0, metadata={"help": "self-attention layers before the cross-attention"})
    modality: Literal["auto", "video", "image"] = "auto"
    train_split: str = "train"
    eval_split: str = "test"
    output_dir: str = "runs/probe"
    json: str = field(default="results.json", metadata={"help": "results file (relative to --output_dir)"})
    epochs: int | None = field(default=None, metadata={"help": "default: 20 attentive, 100 linear"})
    lr: float | None = field(default=None,
                             metadata={"help": "peak learning rate; default: 1e-3 attentive, 5e-2 linear"})
    weight_decay: float = 0.01
    batch_size: int = field(default=64, metadata={"help": "probe training batch size"})
    feature_batch_size: int = field(default=32, metadata={"help": "encoder batch size"})
    frame_step: int = 2
    pixel_size: int | None = field(default=None, metadata={"help": "pixels baseline: frame side (8 video, 16 image)"})
    num_labels: int | None = field(default=None, metadata={"help": "integer columns: classes (default: max + 1)"})
    max_train_samples: int | None = None
    max_eval_samples: int | None = None
    num_workers: int = 0
    cache_features: str | None = field(default=None,
                                       metadata={"help": "folder to cache frozen features in (reused next run)"})
    feature_dtype: Literal["float32", "float16", "bfloat16"] = "float32"
    seed: int = 0
    no_save_model: bool = field(default=False, metadata={"help": "skip the classifier folder"})
    baselines: list[str] = field(default_factory=list, metadata={
        "help": "also probe on the same split, with the same settings: random (a random init of --model's "
                "architecture) and / or pixels; their top-1 goes into the results JSON under `baselines`"})

    def __post_init__(self) -> None:
        for name, value in PROBE_TRAINING_DEFAULTS[self.probe].items():
            if getattr(self, name) is None:
                setattr(self, name, value)
        for name in ("epochs", "batch_size", "feature_batch_size", "frame_step"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name}={getattr(self, name)}: expected >= 1")
        if not self.lr > 0:
            raise ValueError(f"lr={self.lr}: expected > 0")
        unknown = [b for b in self.baselines if b not in BASELINES]
        if unknown or len(set(self.baselines)) != len(self.baselines):
            raise ValueError(f"baselines={self.baselines!r}: expected distinct names from {list(BASELINES)}")
        if "random" in self.baselines and (self.model == "pixels" or self.model.startswith("random:")):
            raise ValueError(f"baselines={self.baselines!r}: expected a trained --model for `random`, got "
                             f"model={self.model!r}")


def run_probe(args: ProbeArguments, *, inputs_like: FrozenEncoder | None = None) -> dict[str, Any]:
    """Probe ``args.model``'s frozen features for ``args.label_column``; write the outputs; return the results dict.

    ``inputs_like``: the pixels baseline reads the clips this encoder reads (frames, size, normalisation).
    """
    from hf_jepa.hub import read_card_metadata
    from hf_jepa.processing import save_processor

    start = time.perf_counter()
    out = Path(args.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(args.seed)

    # 1. dataset, labels, frozen encoder
    labels = inspect_label_column(args.dataset_name, args.label_column, args.train_split)
    modality = detect_modality(args.dataset_name, args.train_split) if args.modality == "auto" else args.modality
    encoder = load_frozen_encoder(args.model, modality=modality, seed=args.seed, pixel_size=args.pixel_size)
    if inputs_like is not None and encoder.model is None:
        encoder = replace(encoder, image_size=inputs_like.image_size, num_frames=inputs_like.num_frames,
                          mean=inputs_like.mean, std=inputs_like.std)
    logger.info("encoder %s (%s, D=%d), label column %r (%s)", args.model, encoder.modality, encoder.hidden_size,
                args.label_column, labels.kind)

    # 2. frozen features, once (optionally from / to the cache)
    extract = dict(label_column=args.label_column, batch_size=args.feature_batch_size, frame_step=args.frame_step,
                   num_workers=args.num_workers, cache_dir=args.cache_features,
                   feature_dtype=getattr(torch, args.feature_dtype))
    train = extract_split(encoder, args.dataset_name, args.train_split, max_samples=args.max_train_samples, **extract)
    test = extract_split(encoder, args.dataset_name, args.eval_split, max_samples=args.max_eval_samples, **extract)
    train_labels = labels.fit(train.raw_labels, split=args.train_split, num_labels=args.num_labels)
    test_labels = labels.encode(test.raw_labels, split=args.eval_split)

    # 3. probe training with the shared loop, then evaluation
    probe = probe_for_encoder(encoder, args.probe, labels.num_labels, num_self_attention_layers=args.probe_layers,
                              seed=args.seed)
    t0 = time.perf_counter()
    train_logs = train_probe(probe, train.features, train_labels, output_dir=out / "probe_training",
                             epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
                             weight_decay=args.weight_decay, seed=args.seed)
    train_seconds = time.perf_counter() - t0
    probe = probe.cpu()
    metrics = evaluate_probe(probe, test.features, test_labels)
    train_metrics = evaluate_probe(probe, train.features, train_labels)
    logger.info("%s %s probe on %r: %s split top-1 %.4f, top-5 %.4f; fit on %s split: top-1 %.4f", args.model,
                args.probe, args.label_column, args.eval_split, metrics.top1, metrics.top5, args.train_split,
                train_metrics.top1)

    # 4. outputs: the results JSON first, then what can still fail (each named if it does; the JSON stays)
    settings = {k: v for k, v in asdict(args).items() if k not in ("output_dir", "json")}
    counts = torch.bincount(test_labels, minlength=labels.num_labels)  # (C,) test samples per class
    results: dict[str, Any] = {
        "model": args.model, "dataset": args.dataset_name, "label_column": args.label_column, "probe": args.probe,
        "modality": encoder.modality, "top1": metrics.top1, "top5": metrics.top5, "train_top1": train_metrics.top1,
        "num_labels": labels.num_labels, "label_names": labels.names,
        "chance": {"uniform": 1 / labels.num_labels, "majority": float(counts.max()) / max(1, len(test_labels)),
                   "majority_class": labels.names[int(counts.argmax())] if labels.names else int(counts.argmax())},
        "train_split": args.train_split, "eval_split": args.eval_split,
        "counts": {args.train_split: len(train), args.eval_split: len(test)},
        "skipped_samples": {args.train_split: train.skipped_samples, args.eval_split: test.skipped_samples},
        "feature_shape": list(train.features.shape[1:]), "last_train_logs": train_logs,
        "seconds": {"features": round(train.seconds + test.seconds, 2), "probe_training": round(train_seconds, 2),
                    "total": round(time.perf_counter() - start, 2)},
        "confusion_matrix": metrics.confusion.tolist(), "settings": settings,
    }
    json_path = out / args.json
    copies = [json_path]  # the classifier folder gets a copy (the Space reads it beside the model)

    def write_json() -> None:
        results["seconds"]["total"] = round(time.perf_counter() - start, 2)
        for path in copies:
            path.write_text(json.dumps(results, indent=2))

    write_json()
    logger.info("wrote %s", json_path)

    def save_classifier() -> None:
        folder = out / "classifier"
        classifier = build_classifier(encoder, probe, labels, args.probe, num_self_attention_layers=args.probe_layers)
        classifier.save_pretrained(folder)
        save_processor(classifier, folder)
        # what the encoder's card recorded about its pretraining (a classifier folder's: about its encoder's)
        recorded = read_card_metadata(args.model)
        encoder_training = recorded.get("training") or recorded.get("encoder", {}).get("training")
        card = probe_model_card(folder, base_model=args.model, dataset=args.dataset_name,
                                label_column=args.label_column, probe_type=args.probe, metrics=metrics,
                                settings=settings, encoder_training=encoder_training,
                                repo_id=f"easy-jepa/{Path(args.model).name or args.model}-{args.label_column}-probe")
        card.save(folder / "README.md")
        results["classifier"] = str(folder)
        copies.append(folder / RESULTS_FILENAME)
        write_json()

    def baseline(name: str) -> None:
        spec = "pixels" if name == "pixels" else f"random:{args.model}"
        r = run_probe(replace(args, model=spec, output_dir=str(out / "baselines" / name), json="results.json",
                              baselines=[], no_save_model=True, modality=encoder.modality), inputs_like=encoder)
        results.setdefault("baselines", {})[name] = {
            "model": spec, "top1": r["top1"], "top5": r["top5"], "train_top1": r["train_top1"],
            "counts": r["counts"], "feature_shape": r["feature_shape"], "results": str(out / "baselines" / name)}
        write_json()

    title = f"{args.model} | {args.probe} probe | {args.label_column}: top-1 {metrics.top1:.3f}"
    steps: list[tuple[str, Any]] = [
        ("confusion matrix", lambda: plot_confusion_matrix(metrics.confusion, labels.names,
                                                           out / "confusion_matrix.png", title=title)),
        ("evaluate's results file", lambda: save_results(
            out, {"top1": metrics.top1, "top5": metrics.top5, "train_top1": train_metrics.top1},
            filename=result_file_name(), model=args.model, dataset=args.dataset_name,
            label_column=args.label_column, probe=args.probe, eval_split=args.eval_split,
            num_samples=metrics.num_samples)),
    ]
    if encoder.model is not None and not args.no_save_model:
        steps.insert(0, ("classifier folder", save_classifier))
    steps += [(f"{name} baseline", functools.partial(baseline, name)) for name in args.baselines]
    write_after_results(json_path, steps)
    return results

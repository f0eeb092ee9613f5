"""Probe a frozen JEPA encoder: extract features once, train an attentive or linear probe, evaluate, save.

    python scripts/probe.py --model runs/vjepa2-tiny/final --dataset_name builtin:moving_digits \
        --label_column direction --probe attentive --output_dir runs/probe --json results.json

--model: a folder / Hub id (pretraining, encoder or classifier folder), `random:<preset>` (random init of that
preset, the baseline every SSL result is read against) or `pixels` (probe on raw downsampled pixels).
Writes to --output_dir: the JSON results (top1, top5, counts, settings), confusion_matrix.png, probe_training/
(metrics.jsonl), and (not for `pixels`) classifier/: a `save_pretrained` folder with processor config and a model
card whose metadata holds the accuracies, the probe (type, data, label column) and what the encoder's card
recorded about its pretraining; it loads with AutoModelFor{Video,Image}Classification and pipeline().
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path

import torch

from hf_jepa.hub import read_card_metadata
from hf_jepa.probing import (
    PROBE_TRAINING_DEFAULTS,
    build_classifier,
    detect_modality,
    evaluate_probe,
    extract_split,
    inspect_label_column,
    load_frozen_encoder,
    plot_confusion_matrix,
    probe_for_encoder,
    probe_model_card,
    train_probe,
)
from hf_jepa.processing import save_processor

logger = logging.getLogger("probe")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", required=True, help="folder | hub id | random:<preset> | pixels")
    p.add_argument("--dataset_name", default="builtin:moving_digits", help="hub id | local folder | builtin:<name>")
    p.add_argument("--label_column", default="label")
    p.add_argument("--probe", choices=("attentive", "linear"), default="attentive")
    p.add_argument("--probe_layers", type=int, default=0, help="self-attention layers before the cross-attention")
    p.add_argument("--modality", choices=("auto", "video", "image"), default="auto")
    p.add_argument("--train_split", default="train")
    p.add_argument("--eval_split", default="test")
    p.add_argument("--output_dir", default="runs/probe")
    p.add_argument("--json", default="results.json", help="results file (relative to --output_dir)")
    p.add_argument("--epochs", type=int, default=None, help="default: 20 attentive, 100 linear")
    p.add_argument("--lr", type=float, default=None, help="peak learning rate; default: 1e-3 attentive, 5e-2 linear")
    p.add_argument("--weight_decay", type=float, default=0.01)
    p.add_argument("--batch_size", type=int, default=64, help="probe training batch size")
    p.add_argument("--feature_batch_size", type=int, default=32, help="encoder batch size")
    p.add_argument("--frame_step", type=int, default=2)
    p.add_argument("--pixel_size", type=int, default=None, help="pixels baseline: frame side (8 video, 16 image)")
    p.add_argument("--num_labels", type=int, default=None, help="integer columns: classes (default: max + 1)")
    p.add_argument("--max_train_samples", type=int, default=None)
    p.add_argument("--max_eval_samples", type=int, default=None)
    p.add_argument("--num_workers", type=int, default=0)
    p.add_argument("--cache_features", default=None, help="folder to cache frozen features in (reused next run)")
    p.add_argument("--feature_dtype", choices=("float32", "float16", "bfloat16"), default="float32")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no_save_model", action="store_true", help="skip the classifier folder")
    args = p.parse_args(argv)
    for name, value in PROBE_TRAINING_DEFAULTS[args.probe].items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    return args


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    start = time.perf_counter()
    out = Path(args.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(args.seed)

    # 1. dataset, labels, frozen encoder
    labels = inspect_label_column(args.dataset_name, args.label_column, args.train_split)
    modality = detect_modality(args.dataset_name, args.train_split) if args.modality == "auto" else args.modality
    encoder = load_frozen_encoder(args.model, modality=modality, seed=args.seed, pixel_size=args.pixel_size)
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

    # 4. outputs: JSON, confusion matrix, classifier folder with processor + model card
    title = f"{args.model} | {args.probe} probe | {args.label_column}: top-1 {metrics.top1:.3f}"
    plot_confusion_matrix(metrics.confusion, labels.names, out / "confusion_matrix.png", title=title)
    settings = {k: v for k, v in vars(args).items() if k not in ("output_dir", "json")}
    results = {
        "model": args.model, "dataset": args.dataset_name, "label_column": args.label_column, "probe": args.probe,
        "modality": encoder.modality, "top1": metrics.top1, "top5": metrics.top5, "train_top1": train_metrics.top1,
        "num_labels": labels.num_labels, "label_names": labels.names,
        "counts": {args.train_split: len(train), args.eval_split: len(test)},
        "skipped_samples": {args.train_split: train.skipped_samples, args.eval_split: test.skipped_samples},
        "feature_shape": list(train.features.shape[1:]), "last_train_logs": train_logs,
        "seconds": {"features": round(train.seconds + test.seconds, 2), "probe_training": round(train_seconds, 2),
                    "total": round(time.perf_counter() - start, 2)},
        "confusion_matrix": metrics.confusion.tolist(), "settings": settings,
    }
    if encoder.model is not None and not args.no_save_model:
        folder = out / "classifier"
        classifier = build_classifier(encoder, probe, labels, args.probe, num_self_attention_layers=args.probe_layers)
        classifier.save_pretrained(folder)
        save_processor(classifier, folder)
        # what the encoder's card recorded about its pretraining (a classifier folder's: about its encoder's)
        recorded = read_card_metadata(args.model)
        encoder_training = recorded.get("training") or recorded.get("encoder", {}).get("training")
        card = probe_model_card(model_name=f"{Path(args.model).name or args.model}-{args.label_column}-probe",
                                base_model=args.model, dataset=args.dataset_name, label_column=args.label_column,
                                probe_type=args.probe, modality=encoder.modality, metrics=metrics, settings=settings,
                                encoder_training=encoder_training)
        card.save(folder / "README.md")
        results["classifier"] = str(folder)
    results["seconds"]["total"] = round(time.perf_counter() - start, 2)
    json_path = out / args.json
    json_path.write_text(json.dumps(results, indent=2))
    logger.info("wrote %s", json_path)
    return results


if __name__ == "__main__":
    main()

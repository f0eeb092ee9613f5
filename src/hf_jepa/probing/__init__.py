"""hf_jepa.probing: probes on frozen features: extract once (optionally cached to disk), train through
`hf_jepa.training`, evaluate.

    encoder = load_frozen_encoder("runs/vjepa2-tiny/final", modality="video")   # or "random:tiny", "pixels"
    labels = inspect_label_column("builtin:moving_digits", "direction")
    train = extract_split(encoder, "builtin:moving_digits", "train", label_column="direction")
    test = extract_split(encoder, "builtin:moving_digits", "test", label_column="direction")
    train_labels = labels.fit(train.raw_labels, split="train")
    test_labels = labels.encode(test.raw_labels, split="test")
    probe = probe_for_encoder(encoder, "attentive", labels.num_labels)
    train_probe(probe, train.features, train_labels, output_dir="runs/probe/probe_training")
    metrics = evaluate_probe(probe, test.features, test_labels)            # top1, top5, confusion matrix

Features are extracted with the eval transform (no augmentation) in one pass and the probe trains on them for many
epochs: the encoder runs once per sample, not once per epoch. `scripts/probe.py` is the command line around this.

    encoder.py     FrozenEncoder, load_frozen_encoder, detect_modality
    features.py    extract_split (+ its disk cache), FeatureSplit
    probe.py       probe_for_encoder, train_probe, evaluate_probe, ProbeMetrics, topk_accuracy
    classifier.py  build_classifier (a transformers classifier folder), probe_model_card, plot_confusion_matrix
    run.py         ProbeArguments, run_probe: the whole job (scripts/probe.py)
"""

from hf_jepa.data.labels import LabelColumnError, LabelInfo, inspect_label_column
from hf_jepa.probing.classifier import build_classifier, plot_confusion_matrix, probe_model_card
from hf_jepa.probing.encoder import FrozenEncoder, detect_modality, load_frozen_encoder
from hf_jepa.probing.features import FeatureSplit, extract_split
from hf_jepa.probing.probe import (
    PROBE_TRAINING_DEFAULTS,
    ProbeMetrics,
    evaluate_probe,
    probe_for_encoder,
    topk_accuracy,
    train_probe,
)
from hf_jepa.probing.run import ProbeArguments, run_probe

__all__ = [
    "PROBE_TRAINING_DEFAULTS",
    "FeatureSplit",
    "FrozenEncoder",
    "LabelColumnError",
    "LabelInfo",
    "ProbeArguments",
    "ProbeMetrics",
    "build_classifier",
    "detect_modality",
    "evaluate_probe",
    "extract_split",
    "inspect_label_column",
    "load_frozen_encoder",
    "plot_confusion_matrix",
    "probe_for_encoder",
    "probe_model_card",
    "run_probe",
    "topk_accuracy",
    "train_probe",
]

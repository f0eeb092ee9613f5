"""The probing products a user is shown: the probe learns (a trained probe beats a zero-step one), and the processor
saved with a classifier computes the pixels the probe was trained and scored on, so `transformers.pipeline` on the
probe's test split reproduces the probe's reported top-1."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from hf_jepa.modeling.probes import build_probe
from PIL import Image
from transformers import AutoImageProcessor, AutoVideoProcessor, ViTImageProcessor, pipeline

import hf_jepa
from hf_jepa.probing.encoder import load_frozen_encoder
from hf_jepa.probing.features import feature_stream, feature_transform
from hf_jepa.probing.probe import PROBE_TRAINING_DEFAULTS, evaluate_probe, probe_for_encoder, train_probe
from hf_jepa.processing import eval_transform, save_processor

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def builtin_dirs(tmp_path_factory) -> dict[str, Path]:
    """Tiny built-in datasets (8 train / 4 test samples) generated into a temp cache."""
    from hf_jepa.data.builtin import builtin_dataset_path

    cache = tmp_path_factory.mktemp("builtin")
    return {name: builtin_dataset_path(name, num_train=8, num_test=4, num_shards=2, cache_dir=cache)
            for name in ("moving_digits", "moving_digit_frames")}


def _separable_tokens(num: int, generator: torch.Generator, num_classes: int = 4) -> tuple[torch.Tensor, ...]:
    """(num, 6, 16) tokens scattered around one of `num_classes` well separated class centres, and their (num,)
    labels (balanced)."""
    centres = torch.randn(num_classes, 16, generator=torch.Generator().manual_seed(123)) * 3.0  # (C, D)
    labels = torch.arange(num) % num_classes  # (num,)
    tokens = centres[labels][:, None, :] + torch.randn(num, 6, 16, generator=generator)  # (num, 6, D)
    return tokens, labels


@pytest.mark.parametrize("probe_type", ["attentive", "linear"])
def test_train_probe_learns_a_separable_toy_set(probe_type, tmp_path) -> None:
    """The probe trained by `train_probe` (whose accuracy `scripts/probe.py` reports) scores near 100% on held-out
    samples of a separable set; the same probe trained for zero steps scores at chance (1/4)."""
    generator = torch.Generator().manual_seed(0)
    train_x, train_y = _separable_tokens(128, generator)
    test_x, test_y = _separable_tokens(64, generator)
    probe = build_probe(probe_type, 16, 4, num_heads=2)
    with torch.no_grad():  # zero steps of training from a zero head: every class scores alike (argmax: class 0)
        probe.classifier.weight.zero_()
        probe.classifier.bias.zero_()
    assert evaluate_probe(probe, test_x, test_y).top1 == pytest.approx(0.25)
    lr = {"attentive": 1e-2, "linear": PROBE_TRAINING_DEFAULTS["linear"]["lr"]}[probe_type]
    logs = train_probe(probe, train_x, train_y, output_dir=tmp_path, epochs=10, batch_size=16, lr=lr)
    trained = evaluate_probe(probe, test_x, test_y)
    assert trained.top1 >= 0.95 and logs["train_top1"] >= 0.9
    assert trained.confusion.trace() == round(trained.top1 * 64)
    assert (tmp_path / "metrics.jsonl").is_file()


# ---------------------------------------------------------------------------------------------------------------
# One evaluation transform: the saved processor computes it
# ---------------------------------------------------------------------------------------------------------------


def _image_config() -> hf_jepa.ImageJepaConfig:
    return hf_jepa.ImageJepaConfig(image_size=32, patch_size=8, hidden_size=32, num_hidden_layers=1,
                                   num_attention_heads=2, intermediate_size=64, predictor_hidden_size=32,
                                   predictor_num_hidden_layers=1, predictor_num_attention_heads=2,
                                   predictor_intermediate_size=64, image_mean=[0.5, 0.4, 0.3],
                                   image_std=[0.2, 0.25, 0.3])


def _video_config() -> hf_jepa.VideoJepaConfig:
    return hf_jepa.VideoJepaConfig(image_size=32, patch_size=8, num_frames=8, hidden_size=32, num_hidden_layers=1,
                                   num_attention_heads=2, intermediate_size=64, predictor_hidden_size=32,
                                   predictor_num_hidden_layers=1, predictor_num_attention_heads=2,
                                   predictor_intermediate_size=64)


# (H, W): non-square both ways, odd crop offsets (33 x 90 -> 32 x 87), smaller than the crop, square
SHAPES = [(48, 64), (64, 48), (33, 90), (20, 25), (64, 64)]


@pytest.mark.parametrize(("height", "width"), SHAPES)
def test_saved_image_processor_computes_the_eval_transform(height, width, tmp_path) -> None:
    config = _image_config()
    save_processor(config, tmp_path)
    processor = AutoImageProcessor.from_pretrained(tmp_path)  # what the image-classification pipeline loads
    image = torch.randint(0, 256, (3, height, width), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    pil = Image.fromarray(image.permute(1, 2, 0).numpy())  # (H, W, 3)
    expected = eval_transform(config)(image)  # (3, 32, 32)
    for given in (pil, image):
        got = processor(images=given, return_tensors="pt")["pixel_values"][0]
        torch.testing.assert_close(got, expected, atol=1e-5, rtol=0)
    if height != width:  # negative control: a processor that squashes the frame feeds other pixels
        squash = ViTImageProcessor(size={"height": 32, "width": 32}, image_mean=config.image_mean,
                                   image_std=config.image_std)(images=pil, return_tensors="pt")["pixel_values"][0]
        assert (squash - expected).abs().mean() > 0.05


@pytest.mark.parametrize(("height", "width"), SHAPES)
def test_saved_video_processor_computes_the_eval_transform(height, width, tmp_path) -> None:
    config = _video_config()
    save_processor(config, tmp_path)
    processor = AutoVideoProcessor.from_pretrained(tmp_path)  # what the video-classification pipeline loads
    clip = torch.randint(0, 256, (8, 3, height, width), dtype=torch.uint8, generator=torch.Generator().manual_seed(1))
    got = processor(videos=[clip], return_tensors="pt")["pixel_values_videos"][0]  # (8, 3, 32, 32)
    expected = eval_transform(config)(clip)
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=0)
    assert eval_transform(config).short_side == int(32 * 256 / 224) == 36  # Meta's evaluation resize


@pytest.mark.parametrize("modality", ["image", "video"])
def test_probe_features_use_the_eval_transform(modality, tmp_path, builtin_dirs) -> None:
    """The probing job's feature stream transforms with exactly the model's `eval_transform` (the saved processor's)."""
    model = hf_jepa.ImageJepaModel(_image_config()) if modality == "image" else hf_jepa.VideoJepaModel(_video_config())
    model.save_pretrained(tmp_path / "enc")
    encoder = load_frozen_encoder(str(tmp_path / "enc"))
    assert feature_transform(encoder) == eval_transform(model.config)
    dataset = builtin_dirs["moving_digit_frames" if modality == "image" else "moving_digits"]
    stream = feature_stream(encoder, str(dataset), "test", "digit", frame_step=2)
    assert stream.transform == eval_transform(model.config)


# ---------------------------------------------------------------------------------------------------------------
# transformers.pipeline on the probe's test split gives the probe's reported top-1
# ---------------------------------------------------------------------------------------------------------------


def _probe_main():  # noqa: ANN202
    spec = importlib.util.spec_from_file_location("probe_script_fidelity", ROOT / "scripts" / "probe.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.main


def _colour_images(root: Path, split: str, num: int, seed: int) -> None:
    """An imagefolder split of non-square images (48 x 64 and 64 x 40): 'red' ones are reddish, 'blue' bluish."""
    rng = np.random.default_rng(seed)
    for i in range(num):
        name = ("red", "blue")[i % 2]
        h, w = ((48, 64), (64, 40))[(i // 2) % 2]
        image = rng.integers(0, 120, (h, w, 3))
        image[..., 0 if name == "red" else 2] += 120 + rng.integers(0, 15)
        (root / split / name).mkdir(parents=True, exist_ok=True)
        Image.fromarray(image.astype(np.uint8)).save(root / split / name / f"{i:03d}.png")


def _pipeline_top1_and_confusion(preds: list[str], labels: list[str], names: list[str]) -> tuple[float, list]:
    confusion = np.zeros((len(names), len(names)), dtype=int)
    for p, t in zip(preds, labels, strict=True):
        confusion[names.index(t), names.index(p)] += 1
    return float(np.mean([p == t for p, t in zip(preds, labels, strict=True)])), confusion.tolist()


def test_image_pipeline_top1_equals_the_probes_reported_top1(tmp_path) -> None:
    """A probe run on non-square images; the image-classification pipeline of the saved classifier folder, fed the
    test split's files, predicts what the probe predicted: same top-1, same confusion matrix. The trained probe
    also beats chance by far (a no-op training would not)."""
    data = tmp_path / "colours"
    _colour_images(data, "train", 24, seed=0)
    _colour_images(data, "test", 12, seed=1)
    hf_jepa.ImageJepaModel(_image_config()).save_pretrained(tmp_path / "enc")
    results = _probe_main()(["--model", str(tmp_path / "enc"), "--dataset_name", str(data), "--probe", "linear",
                             "--epochs", "30", "--batch_size", "8", "--feature_batch_size", "12",
                             "--output_dir", str(tmp_path / "run")])
    assert results["counts"] == {"train": 24, "test": 12} and results["top1"] >= 0.9
    classify = pipeline("image-classification", model=str(tmp_path / "run" / "classifier"))
    files = sorted((data / "test").glob("*/*.png"))
    preds = [classify(Image.open(f))[0]["label"] for f in files]
    top1, confusion = _pipeline_top1_and_confusion(preds, [f.parent.name for f in files], results["label_names"])
    assert top1 == results["top1"]
    assert confusion == results["confusion_matrix"]


def test_video_pipeline_top1_equals_the_probes_reported_top1(tmp_path, builtin_dirs) -> None:
    """The same for video: the video-classification pipeline samples 8 of a test clip's 16 frames uniformly (frames
    0, 2, ..., 14), the probe's centred clip at --frame_step 2; both resize and crop 64 -> 36 -> 32."""
    import datasets

    hf_jepa.VideoJepaModel(_video_config()).save_pretrained(tmp_path / "enc")
    dataset = str(builtin_dirs["moving_digits"])
    results = _probe_main()(["--model", str(tmp_path / "enc"), "--dataset_name", dataset, "--label_column", "digit",
                             "--probe", "attentive", "--epochs", "3", "--batch_size", "4", "--frame_step", "2",
                             "--output_dir", str(tmp_path / "run")])
    rows = datasets.load_dataset(dataset, split="test").cast_column("video", datasets.Video(decode=False))
    classify = pipeline("video-classification", model=str(tmp_path / "run" / "classifier"))
    preds, labels = [], []
    for i, row in enumerate(rows):
        clip = tmp_path / f"clip{i}.mp4"
        clip.write_bytes(row["video"]["bytes"])
        preds.append(classify(str(clip), top_k=1)[0]["label"])
        labels.append(results["label_names"][row["digit"]])
    top1, confusion = _pipeline_top1_and_confusion(preds, labels, results["label_names"])
    assert top1 == results["top1"]
    assert confusion == results["confusion_matrix"]
    assert json.loads((tmp_path / "run" / "results.json").read_text())["top1"] == results["top1"]


def test_probe_script_trains_the_probe_it_saves(tmp_path, builtin_dirs) -> None:
    """The classifier folder's probe is the trained one: its weights differ from the fresh, seeded init that
    training starts from."""
    hf_jepa.ImageJepaModel(_image_config()).save_pretrained(tmp_path / "enc")
    _probe_main()(["--model", str(tmp_path / "enc"), "--dataset_name", str(builtin_dirs["moving_digit_frames"]),
                   "--label_column", "digit", "--probe", "linear", "--epochs", "2", "--batch_size", "4",
                   "--output_dir", str(tmp_path / "run")])
    from transformers import AutoModelForImageClassification

    saved = AutoModelForImageClassification.from_pretrained(tmp_path / "run" / "classifier").probe.state_dict()
    fresh = probe_for_encoder(load_frozen_encoder(str(tmp_path / "enc")), "linear", 10, seed=0).state_dict()
    assert any(not torch.equal(saved[k], fresh[k]) for k in fresh if fresh[k].is_floating_point())

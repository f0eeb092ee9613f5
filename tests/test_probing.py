"""Probes and classifiers: shapes, padded-token masking, save/load + Auto classes, pipelines, conversion parity,
clear label errors, and a tiny end-to-end `scripts/probe.py` run on the built-in moving digits."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import run_python
from hf_jepa.modeling.modeling_easy_ijepa import ImageJepaForImageClassification
from hf_jepa.modeling.modeling_easy_vjepa2 import VideoJepaForVideoClassification
from hf_jepa.modeling.probes import build_probe
from transformers import (
    AutoImageProcessor,
    AutoModel,
    AutoModelForImageClassification,
    AutoModelForVideoClassification,
    AutoVideoProcessor,
    VJEPA2Config,
    VJEPA2ForVideoClassification,
    pipeline,
)

import hf_jepa
from hf_jepa.convert import convert_transformers_video_classifier
from hf_jepa.probing import LabelColumnError, LabelInfo, inspect_label_column, topk_accuracy
from hf_jepa.processing import save_processor

ROOT = Path(__file__).resolve().parents[1]
ATOL = 1e-5


@pytest.fixture(scope="module")
def builtin_dirs(tmp_path_factory) -> dict[str, Path]:
    """Tiny built-in datasets (8 train / 4 test clips) generated into a temp cache."""
    from hf_jepa.data.builtin import builtin_dataset_path

    cache = tmp_path_factory.mktemp("builtin")
    return {name: builtin_dataset_path(name, num_train=8, num_test=4, num_shards=2, cache_dir=cache)
            for name in ("moving_digits", "moving_digit_frames")}


def _with_labels(config, n: int = 3):  # noqa: ANN001, ANN202
    config.num_labels = n
    config.id2label = {i: f"class_{i}" for i in range(n)}
    config.label2id = {v: k for k, v in config.id2label.items()}
    return config


# ---------------------------------------------------------------------------------------------------------------
# Probes
# ---------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("probe_type", ["attentive", "linear"])
def test_probe_shapes_and_padded_tokens_are_ignored(probe_type) -> None:
    probe = build_probe(probe_type, 64, 5, num_heads=4, num_queries=2, num_self_attention_layers=1).eval()
    x = torch.randn(3, 10, 64)  # (B, N, D)
    out = probe(x, labels=torch.tensor([0, 4, 2]))
    assert out.logits.shape == (3, 5) and out.pooled_output.shape == (3, 64) and out.loss.ndim == 0
    mask = torch.ones(3, 10, dtype=torch.long)
    mask[1, 6:] = 0  # sample 1 has 6 real tokens and 4 padded ones
    garbage = x.clone()
    garbage[1, 6:] = 1e3 * torch.randn(4, 64)
    with torch.no_grad():
        masked = probe(garbage, attention_mask=mask).logits
        short = probe(x[1:2, :6]).logits
    torch.testing.assert_close(masked[1:2], short, atol=ATOL, rtol=0)  # padding has no effect at all
    torch.testing.assert_close(masked[[0, 2]], probe(x).logits[[0, 2]].detach(), atol=ATOL, rtol=0)
    with pytest.raises(ValueError, match="mask every token"):
        probe(x, attention_mask=torch.zeros(3, 10))
    with pytest.raises(ValueError, match="attention_mask: expected shape"):
        probe(x, attention_mask=torch.ones(3, 9))
    with pytest.raises(ValueError, match=r"class id 5, expected ids in \[0, num_labels=5\)"):
        probe(x, labels=torch.tensor([0, 5, 1]))


def test_topk_accuracy() -> None:
    logits = torch.tensor([[0.1, 0.9, 0.0], [0.8, 0.1, 0.15], [0.2, 0.3, 0.5]])
    labels = torch.tensor([1, 2, 0])
    assert topk_accuracy(logits, labels, 1) == pytest.approx(1 / 3)
    assert topk_accuracy(logits, labels, 2) == pytest.approx(2 / 3)
    assert topk_accuracy(logits, labels, 5) == 1.0  # k capped at the number of classes


# ---------------------------------------------------------------------------------------------------------------
# Classification models
# ---------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("family", ["video", "image"])
def test_classifier_save_load_auto_classes_and_frozen_encoder(family, tmp_path, tiny_vjepa2_config,
                                                              tiny_ijepa_config) -> None:
    if family == "video":
        config, x = _with_labels(tiny_vjepa2_config), {"pixel_values_videos": torch.randn(2, 4, 3, 32, 32)}
        pre_cls, cls, auto = hf_jepa.VideoJepaForPreTraining, VideoJepaForVideoClassification, \
            AutoModelForVideoClassification
    else:
        config, x = _with_labels(tiny_ijepa_config), {"pixel_values": torch.randn(2, 3, 32, 32)}
        config.probe_type = "attentive"
        pre_cls, cls, auto = hf_jepa.ImageJepaForPreTraining, ImageJepaForImageClassification, \
            AutoModelForImageClassification
    pretrained = pre_cls(config).eval()
    pretrained.save_pretrained(tmp_path / "pre")
    model = cls.from_pretrained(tmp_path / "pre")  # the EMA target encoder loads, the probe is new
    assert not any(p.requires_grad for p in model.target_encoder.parameters())
    assert all(p.requires_grad for p in model.probe.parameters())
    model.train()
    assert model.probe.training and not model.target_encoder.training
    with torch.no_grad():
        expected = pretrained.target_encoder(**x).last_hidden_state
        torch.testing.assert_close(model.target_encoder(**x).last_hidden_state, expected, atol=0, rtol=0)
    out = model(**x, labels=torch.tensor([0, 2]))
    assert out.logits.shape == (2, 3) and out.loss.ndim == 0
    out.loss.backward()
    assert model.probe.classifier.weight.grad is not None

    model.eval().save_pretrained(tmp_path / "clf")
    saved = json.loads((tmp_path / "clf/config.json").read_text())
    assert saved["probe_type"] == config.probe_type and saved["id2label"]["2"] == "class_2"
    assert auto.__name__ in saved["auto_map"] and (tmp_path / "clf/probes.py").is_file()
    loaded = auto.from_pretrained(tmp_path / "clf")
    assert type(loaded) is cls and not any(p.requires_grad for p in loaded.target_encoder.parameters())
    encoder = AutoModel.from_pretrained(tmp_path / "clf")  # the encoder alone, probe ignored
    with torch.no_grad():
        torch.testing.assert_close(loaded(**x).logits, model(**x).logits, atol=0, rtol=0)
        torch.testing.assert_close(encoder(**x).last_hidden_state, expected, atol=0, rtol=0)


def test_linear_probe_classifier_and_config_validation(tiny_ijepa_config) -> None:
    model = ImageJepaForImageClassification(_with_labels(tiny_ijepa_config)).eval()
    assert tiny_ijepa_config.probe_type == "linear" and type(model.probe).__name__ == "LinearProbe"
    assert model(torch.randn(1, 3, 32, 32)).logits.shape == (1, 3)
    with pytest.raises(ValueError, match="probe_type='mlp'"):
        hf_jepa.ImageJepaConfig(probe_type="mlp")
    with pytest.raises(ValueError, match="probe_num_attention_heads=5"):
        hf_jepa.VideoJepaConfig(probe_num_attention_heads=5)


def test_classifier_remote_code_loads_without_hf_jepa(tmp_path, tiny_vjepa2_config) -> None:
    model = VideoJepaForVideoClassification(_with_labels(tiny_vjepa2_config)).eval()
    model.save_pretrained(tmp_path / "clf")
    video = torch.randn(1, 4, 3, 32, 32)
    torch.save(video, tmp_path / "video.pt")
    with torch.no_grad():
        torch.save(model(video).logits, tmp_path / "expected.pt")
    result = run_python(f"""
        import torch
        from transformers import AutoModelForVideoClassification
        model = AutoModelForVideoClassification.from_pretrained({str(tmp_path / 'clf')!r}, trust_remote_code=True)
        with torch.no_grad():
            got = model(torch.load({str(tmp_path / 'video.pt')!r})).logits
        torch.testing.assert_close(got, torch.load({str(tmp_path / 'expected.pt')!r}), atol=1e-6, rtol=0)
        print("REMOTE_OK", type(model).__name__, type(model).__module__)
    """, tmp_path, block_hf_jepa=True)
    assert "REMOTE_OK VideoJepaForVideoClassification transformers_modules" in result.stdout, result.stderr[-3000:]


# ---------------------------------------------------------------------------------------------------------------
# Processors and pipelines
# ---------------------------------------------------------------------------------------------------------------


def test_pipelines_on_tiny_models(tmp_path, tiny_vjepa2_config, tiny_ijepa_config, builtin_dirs) -> None:
    image_model = ImageJepaForImageClassification(_with_labels(tiny_ijepa_config)).eval()
    image_model.save_pretrained(tmp_path / "img")
    save_processor(image_model, tmp_path / "img")
    processor = AutoImageProcessor.from_pretrained(tmp_path / "img")
    assert list(processor.image_mean) == tiny_ijepa_config.image_mean
    from PIL import Image

    image = Image.fromarray((np.random.default_rng(0).random((40, 48, 3)) * 255).astype("uint8"))
    preds = pipeline("image-classification", model=str(tmp_path / "img"))(image)
    assert {p["label"] for p in preds} == {"class_0", "class_1", "class_2"}
    features = pipeline("image-feature-extraction", model=str(tmp_path / "img"))(image)
    assert np.asarray(features).shape == (1, 16, 64)  # (1, N, D) of the encoder

    video_model = VideoJepaForVideoClassification(_with_labels(tiny_vjepa2_config)).eval()
    video_model.save_pretrained(tmp_path / "vid")
    save_processor(video_model.config, tmp_path / "vid")
    assert type(AutoVideoProcessor.from_pretrained(tmp_path / "vid")).__name__ == "VJEPA2VideoProcessor"
    pytest.importorskip("av", reason="transformers' video-classification pipeline requires PyAV")
    import datasets

    rows = datasets.load_dataset(str(builtin_dirs["moving_digits"]), split="test")
    clip = tmp_path / "clip.mp4"
    clip.write_bytes(rows.cast_column("video", datasets.Video(decode=False))[0]["video"]["bytes"])
    preds = pipeline("video-classification", model=str(tmp_path / "vid"))(str(clip), top_k=2)
    assert len(preds) == 2 and preds[0]["label"].startswith("class_")
    assert 0 < preds[1]["score"] <= preds[0]["score"] <= 1


# ---------------------------------------------------------------------------------------------------------------
# Conversion of transformers' VJEPA2ForVideoClassification
# ---------------------------------------------------------------------------------------------------------------


def test_transformers_video_classifier_converts_with_same_logits(tmp_path) -> None:
    cfg = VJEPA2Config(hidden_size=64, num_hidden_layers=2, num_attention_heads=4, mlp_ratio=2.0, crop_size=32,
                       patch_size=8, frames_per_clip=4, pred_hidden_size=32, pred_num_hidden_layers=2,
                       pred_num_attention_heads=2, pred_num_mask_tokens=3, num_pooler_layers=2, num_labels=4)
    reference = VJEPA2ForVideoClassification(cfg).eval()
    with torch.no_grad():  # random values everywhere, LayerNorms included, so the comparison means something
        for name, p in reference.named_parameters():
            unit = ("norm" in name) and name.endswith("weight")
            p.copy_(torch.randn_like(p) * 0.1 + (1.0 if unit else 0.0))
    reference.save_pretrained(tmp_path / "ref")
    ours = convert_transformers_video_classifier(tmp_path / "ref")
    assert ours.config.probe_num_self_attention_layers == 2 and ours.config.num_labels == 4
    video = torch.randn(2, 4, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(ours(video).logits, reference(pixel_values_videos=video).logits, atol=ATOL,
                                   rtol=0)
    ours.save_pretrained(tmp_path / "ours")
    again = AutoModelForVideoClassification.from_pretrained(tmp_path / "ours")
    with torch.no_grad():
        torch.testing.assert_close(again(video).logits, ours(video).logits, atol=0, rtol=0)
    with pytest.raises(ValueError, match="no config.json"):
        convert_transformers_video_classifier(tmp_path / "missing")


# ---------------------------------------------------------------------------------------------------------------
# Labels
# ---------------------------------------------------------------------------------------------------------------


def test_bad_labels_are_clear_errors(builtin_dirs) -> None:
    folder = str(builtin_dirs["moving_digits"])
    with pytest.raises(LabelColumnError, match=r"label column 'label' is not in .* expected one of \[.*'direction'"):
        inspect_label_column(folder, "label")
    with pytest.raises(LabelColumnError, match="label column 'speed' .* expected a ClassLabel, integer or string"):
        inspect_label_column(folder, "speed")
    digit = inspect_label_column(folder, "digit")
    assert digit.kind == "class_label" and digit.num_labels == 10
    with pytest.raises(LabelColumnError, match=r"'digit' has value 12 in split 'test', expected class ids in \[0, 10"):
        digit.encode([3, 12], split="test")
    direction = inspect_label_column(folder, "direction")
    assert direction.fit([0, 7, 3], split="train").tolist() == [0, 7, 3] and direction.num_labels == 8
    with pytest.raises(LabelColumnError, match=r"'direction' has value 8 in split 'test'"):
        direction.encode([8], split="test")
    with pytest.raises(LabelColumnError, match=r"'direction' has value -1 in split 'train'"):
        LabelInfo("direction", kind="int").fit([1, -1], split="train")
    names = LabelInfo("name", kind="str")
    assert names.fit(["b", "a", "b"], split="train").tolist() == [1, 0, 1]
    with pytest.raises(LabelColumnError, match="'name' has value 'c' in split 'test', expected one of"):
        names.encode(["c"], split="test")
    with pytest.raises(LabelColumnError, match="has value 1.5 .* expected integer class ids or strings"):
        LabelInfo("x", kind="int").fit([1.5], split="train")


# ---------------------------------------------------------------------------------------------------------------
# scripts/probe.py end to end
# ---------------------------------------------------------------------------------------------------------------


def _probe_main():  # noqa: ANN202
    spec = importlib.util.spec_from_file_location("probe_script", ROOT / "scripts" / "probe.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.main


def test_probe_script_end_to_end(tmp_path, builtin_dirs) -> None:
    main = _probe_main()
    common = ["--epochs", "2", "--batch_size", "4", "--feature_batch_size", "4", "--cache_features",
              str(tmp_path / "cache")]
    video_dir = tmp_path / "runs v1.2" / "video"  # a folder name with a dot and a space (evaluate.save's trap)
    video = main(["--model", "random:tiny", "--dataset_name", str(builtin_dirs["moving_digits"]), "--label_column",
                  "direction", "--probe", "attentive", "--output_dir", str(video_dir), *common])
    assert video["counts"] == {"train": 8, "test": 4} and video["num_labels"] == 8
    assert 0 <= video["top1"] <= video["top5"] <= 1
    results = json.loads((video_dir / "results.json").read_text())
    assert results["top1"] == video["top1"] and results["settings"]["probe"] == "attentive"
    assert results["chance"]["uniform"] == 1 / 8 and 1 / 8 <= results["chance"]["majority"] <= 1
    assert json.loads((video_dir / "classifier/results.json").read_text()) == results  # the copy the Space reads
    saved = json.loads(next(video_dir.glob("result-*.json")).read_text())  # evaluate.save
    assert (saved["top1"], saved["top5"], saved["model"]) == (video["top1"], video["top5"], "random:tiny")
    assert (video_dir / "confusion_matrix.png").stat().st_size > 1000
    folder = video_dir / "classifier"
    card = (folder / "README.md").read_text()
    assert "model-index" in card and "top1_accuracy" in card
    classifier = AutoModelForVideoClassification.from_pretrained(folder).eval()
    processor = AutoVideoProcessor.from_pretrained(folder)
    clip = np.zeros((8, 64, 64, 3), dtype=np.uint8)  # (T, H, W, C)
    inputs = processor(clip, return_tensors="pt")
    assert classifier(**inputs).logits.shape == (1, 8)

    # cached features: a second run with the same settings reads them back and gives the same result
    again = main(["--model", "random:tiny", "--dataset_name", str(builtin_dirs["moving_digits"]), "--label_column",
                  "direction", "--probe", "attentive", "--output_dir", str(tmp_path / "video2"), *common])
    assert again["top1"] == video["top1"] and again["seconds"]["features"] == 0

    pixels = main(["--model", "pixels", "--dataset_name", str(builtin_dirs["moving_digit_frames"]), "--label_column",
                   "digit", "--probe", "linear", "--output_dir", str(tmp_path / "pixels"), *common])
    assert pixels["modality"] == "image" and pixels["feature_shape"] == [1, 3 * 16 * 16]
    assert pixels["num_labels"] == 10 and "classifier" not in pixels

    with pytest.raises(LabelColumnError, match="label column 'label' is not in"):
        main(["--model", "pixels", "--dataset_name", str(builtin_dirs["moving_digits"]), "--output_dir",
              str(tmp_path / "bad"), *common])


def test_probe_baselines_and_an_output_failing_after_the_results(tmp_path, builtin_dirs, monkeypatch) -> None:
    """--baselines: a random init of the model's own architecture and raw pixels on the same split, their top-1 in
    the results JSON; an output that fails after the JSON is named and the rest is still written."""
    import hf_jepa.probing.run as probe_run

    main = _probe_main()
    common = ["--dataset_name", str(builtin_dirs["moving_digits"]), "--label_column", "direction", "--epochs", "2",
              "--batch_size", "4", "--feature_batch_size", "4"]
    encoder = tmp_path / "encoder"
    config = hf_jepa.VideoJepaConfig.from_preset("tiny", patch_size=16, num_hidden_layers=2)
    hf_jepa.VideoJepaModel(config).save_pretrained(encoder)
    out = tmp_path / "exp.lr3e-4"
    r = main(["--model", str(encoder), "--output_dir", str(out), "--baselines", "random", "pixels", *common])
    assert set(r["baselines"]) == {"random", "pixels"}
    assert r["baselines"]["random"]["feature_shape"] == r["feature_shape"] == [4 * 16, 192]  # its architecture
    assert r["baselines"]["pixels"]["feature_shape"] == [1, 8 * 3 * 8 * 8]
    for name, b in r["baselines"].items():
        again = json.loads((out / "baselines" / name / "results.json").read_text())
        assert b["top1"] == again["top1"] and again["counts"] == r["counts"] == {"train": 8, "test": 4}
    assert json.loads((out / "classifier/results.json").read_text())["baselines"] == r["baselines"]

    def broken(*args, **kwargs):
        raise OSError("No space left on device")

    monkeypatch.setattr(probe_run, "plot_confusion_matrix", broken)
    with pytest.raises(SystemExit, match=r"results are saved in .*results.json.*confusion matrix \(OSError: No space"):
        main(["--model", str(encoder), "--output_dir", str(tmp_path / "broken"), *common])
    assert json.loads((tmp_path / "broken/results.json").read_text())["counts"] == {"train": 8, "test": 4}
    assert (tmp_path / "broken/classifier/config.json").is_file() and list((tmp_path / "broken").glob("result-*"))


def test_probe_script_training_defaults_depend_on_probe() -> None:
    spec = importlib.util.spec_from_file_location("probe_script_args", ROOT / "scripts" / "probe.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    attentive = module.parse_args(["--model", "pixels", "--probe", "attentive"])
    linear = module.parse_args(["--model", "pixels", "--probe", "linear"])
    from hf_jepa.probing.probe import PROBE_TRAINING_DEFAULTS

    for probe, args in (("attentive", attentive), ("linear", linear)):  # each probe type gets its own defaults
        assert {"lr": args.lr, "epochs": args.epochs} == PROBE_TRAINING_DEFAULTS[probe], probe
    assert (attentive.lr, attentive.epochs) != (linear.lr, linear.epochs)
    explicit = module.parse_args(["--model", "pixels", "--probe", "linear", "--lr", "0.2", "--epochs", "3"])
    assert (explicit.lr, explicit.epochs) == (0.2, 3)

"""Hub publishing: card, validation, and a push captured by a fake HfApi that loads back from an offline HF cache."""

from __future__ import annotations

import json
import shutil
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
import torch
from conftest import HUB_COMMIT as COMMIT
from conftest import hub_cache_snapshot, run_python, world_model_outputs, world_model_outputs_source
from huggingface_hub import HfApi, ModelCard
from huggingface_hub.utils import filter_repo_objects

import hf_jepa
from hf_jepa.hub import (
    HubFolderError,
    build_model_card,
    check_model_folder,
    list_upload_files,
    read_card_metadata,
    upload_folder_to_hub,
    write_model_card,
)

REPO_ID = "org/name"
class FakeHfApi(HfApi):
    """Captures create_repo / create_branch / upload_folder; copies the committed files into `self.commit_dir`."""

    def __init__(self, commit_dir: Path) -> None:
        super().__init__(token=False)
        self.commit_dir = commit_dir
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def create_repo(self, repo_id: str, **kwargs: Any) -> str:  # type: ignore[override]
        self.calls.append(("create_repo", {"repo_id": repo_id, **kwargs}))
        return f"https://huggingface.co/{repo_id}"

    def create_branch(self, repo_id: str, **kwargs: Any) -> None:  # type: ignore[override]
        self.calls.append(("create_branch", {"repo_id": repo_id, **kwargs}))

    def upload_folder(self, **kwargs: Any) -> str:  # type: ignore[override]
        self.calls.append(("upload_folder", kwargs))
        folder = Path(kwargs["folder_path"])
        paths = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())
        for rel in filter_repo_objects(paths, allow_patterns=kwargs.get("allow_patterns"),
                                       ignore_patterns=kwargs.get("ignore_patterns")):
            (self.commit_dir / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(folder / rel, self.commit_dir / rel)
        return f"https://huggingface.co/{kwargs['repo_id']}/commit/{COMMIT}"


@pytest.fixture
def wm_folder(tmp_path: Path, tiny_ac_config: hf_jepa.JepaWorldModelConfig) -> Path:
    """A saved tiny world model; `reference.pt` beside it holds inputs and the in-memory model's outputs on them."""
    folder = tmp_path / "world_model"
    model = hf_jepa.JepaWorldModel(tiny_ac_config).eval()
    model.save_pretrained(folder)
    inputs = (torch.randn(1, 3, 3, 32, 32), torch.randn(1, 2, 3), torch.randn(1, 3, 3))  # frames, actions, states
    torch.save({"inputs": inputs, "outputs": world_model_outputs(model, *inputs)}, tmp_path / "reference.pt")
    return folder


def test_push_captured_commit_loads_offline_by_repo_id(tmp_path: Path, wm_folder: Path) -> None:
    write_model_card(wm_folder, repo_id=REPO_ID, metrics={"planning_success_rate": 0.5},
                     training={"steps": 10, "dataset": "org/two-rooms"})
    (wm_folder / "__pycache__").mkdir()
    (wm_folder / "__pycache__" / "x.pyc").write_bytes(b"junk")  # never uploaded
    api = FakeHfApi(tmp_path / "commit")
    files = upload_folder_to_hub(wm_folder, REPO_ID, private=True, api=api, commit_message="first")

    names = [c[0] for c in api.calls]
    assert names == ["create_repo", "upload_folder"]
    assert api.calls[0][1]["private"] is True and api.calls[0][1]["exist_ok"] is True
    assert api.calls[1][1]["repo_id"] == REPO_ID and api.calls[1][1]["commit_message"] == "first"
    committed = sorted(p.relative_to(api.commit_dir).as_posix() for p in api.commit_dir.rglob("*") if p.is_file())
    assert committed == [f.path for f in files]
    assert {"README.md", "config.json", "model.safetensors", "modeling_easy_vjepa2_ac.py", "layers.py",
            "positions.py"} <= set(committed)
    assert not any("__pycache__" in p for p in committed)

    hub_cache_snapshot(tmp_path / "hub", REPO_ID, api.commit_dir)
    # the model loaded by repo id gives the saved model's latents AND predictions (teacher forced, rollout)
    check = world_model_outputs_source() + textwrap.dedent(f"""
        import torch
        from transformers import AutoModel
        model = AutoModel.from_pretrained({REPO_ID!r}, **KWARGS).eval()
        reference = torch.load("reference.pt", weights_only=True)
        got = world_model_outputs(model, *reference["inputs"])
        for name in ("latents", "teacher_forced", "rollout"):
            torch.testing.assert_close(got[name], reference["outputs"][name], atol=0, rtol=0, msg=name)
        print("LOADED", type(model).__module__, type(model).__name__)
    """)
    # (a) with hf_jepa imported: the registered class
    result = run_python("import hf_jepa\nKWARGS = {}\n" + check, tmp_path)
    assert "LOADED hf_jepa.modeling.modeling_easy_vjepa2_ac JepaWorldModel" in result.stdout, result.stderr[-3000:]
    # (b) without hf_jepa: the remote code from the captured commit
    result = run_python("KWARGS = {'trust_remote_code': True}\n" + check, tmp_path, block_hf_jepa=True)
    assert "LOADED transformers_modules" in result.stdout, result.stderr[-3000:]

    card = ModelCard.load(tmp_path / "hub" / "models--org--name" / "snapshots" / COMMIT / "README.md")
    assert card.data.library_name == "transformers" and card.data.pipeline_tag == "robotics"
    assert {"jepa", "v-jepa-2", "world-model"} <= set(card.data.tags)
    assert card.data.datasets == ["org/two-rooms"]
    (result_,) = card.data.eval_results
    assert (result_.metric_type, result_.metric_value, result_.task_type) == ("success_rate", 0.5, "robotics")
    assert f'AutoModel.from_pretrained("{REPO_ID}"' in card.text


def test_revision_creates_branch_and_dry_run_touches_nothing(tmp_path: Path, wm_folder: Path) -> None:
    write_model_card(wm_folder)
    api = FakeHfApi(tmp_path / "commit")
    upload_folder_to_hub(wm_folder, REPO_ID, revision="v1", api=api)
    assert [c[0] for c in api.calls] == ["create_repo", "create_branch", "upload_folder"]
    assert api.calls[1][1]["branch"] == "v1" and api.calls[2][1]["revision"] == "v1"

    api = FakeHfApi(tmp_path / "unused")
    files = upload_folder_to_hub(wm_folder, REPO_ID, dry_run=True, api=api)
    assert api.calls == [] and not (tmp_path / "unused").exists()
    sizes = {f.path: f.size for f in files}
    assert sizes["model.safetensors"] == (wm_folder / "model.safetensors").stat().st_size
    assert [f.path for f in files] == [f.path for f in list_upload_files(wm_folder)]


def test_validation_errors_are_clear(tmp_path: Path, wm_folder: Path) -> None:
    with pytest.raises(HubFolderError, match="no config.json"):
        check_model_folder(tmp_path)
    with pytest.raises(HubFolderError, match="not a folder"):
        check_model_folder(tmp_path / "missing")
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "config.json").write_text(json.dumps({"model_type": "bert"}))
    with pytest.raises(HubFolderError, match="model_type='bert'"):
        check_model_folder(bad)
    (wm_folder / "layers.py").unlink()  # imported by the modeling files
    with pytest.raises(HubFolderError, match="layers.py is missing"):
        check_model_folder(wm_folder)
    with pytest.raises(ValueError, match="repo_id"):
        upload_folder_to_hub(wm_folder, "no-slash", dry_run=True)


def test_upload_requires_card(wm_folder: Path) -> None:
    with pytest.raises(HubFolderError, match="README.md"):
        upload_folder_to_hub(wm_folder, REPO_ID, dry_run=True)


def test_card_for_image_encoder(tmp_path: Path, tiny_ijepa_config: hf_jepa.ImageJepaConfig) -> None:
    hf_jepa.ImageJepaModel(tiny_ijepa_config).save_pretrained(tmp_path / "ijepa")
    card = build_model_card(tmp_path / "ijepa", repo_id="org/ijepa",
                            metrics={"probe_accuracy": {"value": 0.9, "dataset": "org/digits", "split": "test"},
                                     "curve": [1, 2]},  # non-numeric: left out
                            base_model="facebook/ijepa_vith14_1k")
    assert card.data.pipeline_tag == "image-feature-extraction" and "i-jepa" in card.data.tags
    assert card.data.base_model == "facebook/ijepa_vith14_1k"
    (result,) = card.data.eval_results
    assert (result.task_type, result.metric_type, result.dataset_type, result.dataset_split) == (
        "image-classification", "accuracy", "org/digits", "test")
    assert "| parameters |" in card.text


def test_card_records_training_in_its_metadata(tmp_path: Path, tiny_ijepa_config: hf_jepa.ImageJepaConfig) -> None:
    """`training` goes into the card's YAML metadata (read back by read_card_metadata) as well as its table."""
    folder = tmp_path / "ijepa"
    hf_jepa.ImageJepaModel(tiny_ijepa_config).save_pretrained(folder)
    assert read_card_metadata(folder) == {}  # no card yet
    write_model_card(folder)
    assert read_card_metadata(folder) == {}  # a card that records no training
    training = {"dataset": "builtin:textured_digits", "preset": "tiny", "steps": 300, "final_loss": 0.25,
                "config_overrides": {"patch_size": 16}}
    write_model_card(folder, training=training)
    assert read_card_metadata(folder) == {"training": training}
    assert read_card_metadata(folder / "README.md") == {"training": training}
    assert "| steps | 300 |" in (folder / "README.md").read_text()


def test_script_dry_run(tmp_path: Path, wm_folder: Path, monkeypatch: pytest.MonkeyPatch,
                        capsys: pytest.CaptureFixture[str]) -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
    try:
        import push_to_hub
    finally:
        sys.path.pop(0)
    (tmp_path / "metrics.json").write_text(json.dumps({"planning_success_rate": 1.0}))
    monkeypatch.setattr(sys, "argv", ["push_to_hub.py", "--model", str(wm_folder), "--repo_id", REPO_ID,
                                      "--dry_run", "--metrics", str(tmp_path / "metrics.json")])
    push_to_hub.main()
    out = capsys.readouterr().out
    assert "would upload" in out and "model.safetensors" in out and "README.md" in out
    assert ModelCard.load(wm_folder / "README.md").data.eval_results[0].metric_value == 1.0

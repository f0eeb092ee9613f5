"""Hostile and broken inputs: each fails with a message naming what was wrong (key, file, field), or is skipped and
counted with a WARNING; nothing runs code from a checkpoint and nothing ends in an unexplained traceback.

Covered: Meta checkpoints (code-carrying pickles, wrong shapes, missing keys), saved safetensors folders loaded
with `from_pretrained`, config.json with invalid or unknown fields, and broken LeRobot v3 folders.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch
from safetensors.torch import load_file, save_file
from transformers import AutoConfig, AutoModel, AutoModelForPreTraining

import hf_jepa
from hf_jepa.convert import CheckpointError, convert_checkpoint, convert_meta_checkpoint, load_meta_checkpoint
from hf_jepa.data.lerobot import LeRobotTrajectoryDataset, LeRobotWriter

REPO = Path(__file__).resolve().parents[1]
FIXTURES = REPO / "tests" / "fixtures" / "meta"
IJEPA_HEADS = {"num_attention_heads": 4, "predictor_num_attention_heads": 4}


# ---------------------------------------------------------------------------------------------------------------
# Meta checkpoints
# ---------------------------------------------------------------------------------------------------------------


class _RunsShell:
    """Unpickling this runs a shell command (what a malicious `.pt` can do under `weights_only=False`)."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


class _RunsExec:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return exec, (f"open({str(self.marker)!r}, 'w').write('ran')",)


@pytest.mark.parametrize("payload, global_name", [(_RunsShell, "system'"), (_RunsExec, "'exec'")])
@pytest.mark.parametrize("zipfile", [True, False])
def test_code_carrying_pickle_is_refused_and_never_runs(tmp_path, payload, global_name, zipfile) -> None:
    marker = tmp_path / "MARKER"
    ckpt = dict(torch.load(FIXTURES / "ijepa_checkpoint.pt", weights_only=True))
    ckpt["extra"] = payload(marker)
    path = tmp_path / "evil.pth"
    torch.save(ckpt, path, _use_new_zipfile_serialization=zipfile)
    for load in (lambda: convert_meta_checkpoint(path, "ijepa", overrides=IJEPA_HEADS),
                 lambda: convert_checkpoint(path, "ijepa", overrides=IJEPA_HEADS),
                 lambda: load_meta_checkpoint(path)):
        with pytest.raises(CheckpointError, match="not a plain tensor checkpoint") as err:
            load()
        message = str(err.value)
        assert str(path) in message and global_name in message and "weights_only=True" in message
        assert "weights_only=False" not in message  # torch's advice to disable the guard is not passed on
    assert not marker.exists()


def test_convert_script_reports_a_refused_checkpoint_without_a_traceback(tmp_path, capsys) -> None:
    import importlib.util
    import json

    spec = importlib.util.spec_from_file_location("convert_script", REPO / "scripts" / "convert_checkpoint.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    ckpt = dict(torch.load(FIXTURES / "ijepa_checkpoint.pt", weights_only=True))
    ckpt["extra"] = _RunsShell(tmp_path / "MARKER")
    torch.save(ckpt, tmp_path / "evil.pth")
    argv = ["--family", "ijepa", "--checkpoint", str(tmp_path / "evil.pth"), "--output", str(tmp_path / "out"),
            "--config-overrides", json.dumps(IJEPA_HEADS)]  # the old kebab-case spelling still works
    with pytest.raises(SystemExit) as exit_info:
        script.main(argv)
    assert exit_info.value.code == 1
    err = capsys.readouterr().err
    assert err.startswith("convert_checkpoint: checkpoint") and "not a plain tensor checkpoint" in err
    assert not (tmp_path / "MARKER").exists() and not (tmp_path / "out").exists()
    script.main([*argv[:3], str(FIXTURES / "ijepa_checkpoint.pt"), *argv[4:6], "--config_overrides",
                 json.dumps(IJEPA_HEADS)])
    assert (tmp_path / "out" / "model.safetensors").is_file()


def test_junk_file_names_the_file(tmp_path) -> None:
    path = tmp_path / "junk.pt"
    path.write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match=r"junk\.pt: cannot be read with torch\.load\(weights_only=True\)"):
        convert_meta_checkpoint(path, "ijepa", overrides=IJEPA_HEADS)


def _edited_checkpoint(tmp_path: Path, edit, family: str = "ijepa") -> Path:  # noqa: ANN001 -- edit(ckpt) mutates
    ckpt = torch.load(FIXTURES / f"{family}_checkpoint.pt", weights_only=True)
    ckpt = {k: dict(v) if isinstance(v, dict) else v for k, v in ckpt.items()}
    edit(ckpt)
    path = tmp_path / "edited.pth.tar"
    torch.save(ckpt, path)
    return path


def test_wrong_tensor_shape_names_key_found_and_expected(tmp_path) -> None:
    path = _edited_checkpoint(tmp_path, lambda c: c["target_encoder"].update(
        {"module.blocks.1.attn.qkv.weight": torch.zeros(100, 64)}))
    with pytest.raises(CheckpointError, match=r"ijepa target_encoder: blocks\.1\.attn\.qkv\.weight has shape "
                                              r"\(100, 64\), expected \(192, 64\)"):
        convert_meta_checkpoint(path, "ijepa", overrides=IJEPA_HEADS)
    path = _edited_checkpoint(tmp_path, lambda c: c["predictor"].update(
        {"module.predictor_blocks.1.mlp.fc2.weight": torch.zeros(32, 7)}))
    with pytest.raises(CheckpointError, match=r"ijepa predictor: predictor_blocks\.1\.mlp\.fc2\.weight has shape "
                                              r"\(32, 7\), expected \(32, 128\)"):
        convert_meta_checkpoint(path, "ijepa", overrides=IJEPA_HEADS)
    path = _edited_checkpoint(tmp_path, lambda c: c["target_encoder"].update(
        {"module.pos_embed": torch.zeros(36, 64)}))
    with pytest.raises(CheckpointError, match=r"pos_embed has shape \(36, 64\), expected 3-D"):
        convert_meta_checkpoint(path, "ijepa", overrides=IJEPA_HEADS)


def test_missing_keys_are_named(tmp_path) -> None:
    path = _edited_checkpoint(tmp_path, lambda c: c["target_encoder"].pop("module.blocks.1.mlp.fc2.weight"))
    with pytest.raises(CheckpointError, match=r"ijepa target_encoder: missing keys \['blocks\.1\.mlp\.fc2\.weight'\]"):
        convert_meta_checkpoint(path, "ijepa", overrides=IJEPA_HEADS)
    path = _edited_checkpoint(tmp_path, lambda c: c["encoder"].pop("module.pos_embed"))
    with pytest.raises(CheckpointError, match=r"missing keys \['pos_embed'\]"):
        convert_meta_checkpoint(path, "ijepa", overrides=IJEPA_HEADS, encoder_key="encoder")
    path = _edited_checkpoint(tmp_path, lambda c: c["predictor"].pop("module.backbone.mask_tokens.0"), "vjepa2")
    with pytest.raises(CheckpointError, match=r"vjepa2 predictor: missing keys \['mask_tokens\.0'\]"):
        convert_meta_checkpoint(path, "vjepa2", overrides={"num_attention_heads": 4, "predictor_num_attention_heads": 2,
                                                           "image_size": 32, "num_frames": 4})
    path = _edited_checkpoint(tmp_path, lambda c: c.pop("predictor"))
    with pytest.raises(CheckpointError, match="expected a 'predictor' state dict"):
        convert_meta_checkpoint(path, "ijepa", overrides=IJEPA_HEADS)
    path = _edited_checkpoint(tmp_path, lambda c: c["predictor"].update({"module.predictor_norm.weight": [1.0]}))
    with pytest.raises(CheckpointError, match=r"'predictor' holds non-tensor values \['module\.predictor_norm\.weight "
                                              r"\(list\)'\]"):
        convert_meta_checkpoint(path, "ijepa", overrides=IJEPA_HEADS)


# ---------------------------------------------------------------------------------------------------------------
# Our safetensors folders through from_pretrained
# ---------------------------------------------------------------------------------------------------------------


def _saved_folder(tmp_path: Path, config: hf_jepa.ImageJepaConfig, edit) -> Path:  # noqa: ANN001
    folder = tmp_path / "model"
    hf_jepa.ImageJepaForPreTraining(config).save_pretrained(folder)
    state = load_file(folder / "model.safetensors")
    edit(state)
    save_file(state, folder / "model.safetensors", metadata={"format": "pt"})
    return folder


def test_safetensors_wrong_shape_raises_naming_the_key(tmp_path, tiny_ijepa_config) -> None:
    folder = _saved_folder(tmp_path, tiny_ijepa_config, lambda s: s.update(
        {"target_encoder.blocks.1.mlp.fc1.weight": torch.zeros(100, 64)}))
    expected = r"blocks\.1\.mlp\.fc1\.weight has shape \(100, 64\) in the checkpoint, expected \(128, 64\)"
    for auto in (AutoModel, AutoModelForPreTraining):
        with pytest.raises(ValueError, match=expected):
            auto.from_pretrained(folder)
    with pytest.raises(ValueError, match=expected):
        AutoModel.from_pretrained(folder, output_loading_info=True)
    model, info = AutoModel.from_pretrained(folder, ignore_mismatched_sizes=True, output_loading_info=True)
    assert [k for k, *_ in info["mismatched_keys"]] == ["blocks.1.mlp.fc1.weight"]  # transformers' opt-in re-init
    assert model.blocks[1].mlp.fc1.weight.shape == (128, 64)


def test_safetensors_missing_tensor_is_reported_and_newly_initialised(tmp_path, tiny_ijepa_config) -> None:
    """transformers' behaviour, kept: a missing tensor is listed in the load report (a WARNING) and in
    `output_loading_info`, and initialised as a new model would be (a classifier loads its encoder this way)."""
    folder = _saved_folder(tmp_path, tiny_ijepa_config, lambda s: s.pop("target_encoder.blocks.1.mlp.fc2.weight"))
    model, info = AutoModel.from_pretrained(folder, output_loading_info=True)
    assert info["missing_keys"] == {"blocks.1.mlp.fc2.weight"} and not info["mismatched_keys"]
    assert model.blocks[1].mlp.fc2.weight.shape == (64, 128)


# ---------------------------------------------------------------------------------------------------------------
# config.json
# ---------------------------------------------------------------------------------------------------------------


@pytest.fixture
def saved_configs(tmp_path, tiny_ijepa_config, tiny_vjepa2_config, tiny_ac_config) -> dict[str, Path]:
    folders = {}
    for name, config in (("ijepa", tiny_ijepa_config), ("vjepa2", tiny_vjepa2_config), ("ac", tiny_ac_config)):
        folders[name] = tmp_path / name
        config.save_pretrained(folders[name])
    return folders


def _edit_config(folder: Path, **changes) -> Path:  # noqa: ANN003
    path = folder / "config.json"
    config = json.loads(path.read_text())
    for key, value in changes.items():
        if "." in key:  # "encoder_config.hidden_size"
            outer, inner = key.split(".")
            config[outer][inner] = value
        else:
            config[key] = value
    path.write_text(json.dumps(config))
    return folder


INVALID = [
    ("ijepa", {"hidden_size": -3}, "hidden_size=-3: expected a positive integer"),
    ("ijepa", {"num_attention_heads": 5}, "hidden_size=64: expected a multiple of num_attention_heads=5"),
    ("ijepa", {"hidden_size": "64"}, "hidden_size='64': expected a positive integer"),
    ("ijepa", {"qkv_bias": "false"}, "qkv_bias='false': expected true or false"),
    ("ijepa", {"drop_path_rate": "0.1"}, r"drop_path_rate='0.1': expected a number in \[0.0, 1.0\]"),
    ("ijepa", {"layer_norm_eps": 0}, "layer_norm_eps=0: expected a number > 0"),
    ("ijepa", {"image_mean": "0.5"}, "image_mean='0.5': expected a list of numbers"),
    ("vjepa2", {"num_frames": 3}, "num_frames=3: expected a multiple of tubelet_size=2"),
    ("vjepa2", {"num_hidden_layers": 2.5}, "num_hidden_layers=2.5: expected a positive integer"),
    ("vjepa2", {"probe_type": "mlp"}, r"probe_type='mlp': expected one of \['attentive', 'linear'\]"),
    ("ac", {"predictor_num_attention_heads": 3}, "predictor_hidden_size=32: expected a multiple of "
                                                 "predictor_num_attention_heads=3"),
    ("ac", {"action_dim": None}, "action_dim=None: expected a positive integer"),
    ("ac", {"use_extrinsics": 1}, "use_extrinsics=1: expected true or false"),
    ("ac", {"encoder_config.hidden_size": -3}, "hidden_size=-3: expected a positive integer"),
]


@pytest.mark.parametrize("family, changes, match", INVALID)
def test_invalid_config_json_names_field_value_and_expected(saved_configs, family, changes, match) -> None:
    folder = _edit_config(saved_configs[family], **changes)
    with pytest.raises(ValueError, match=match):
        AutoConfig.from_pretrained(folder)


def test_invalid_config_json_stops_model_loading(tmp_path, tiny_ijepa_config) -> None:
    hf_jepa.ImageJepaModel(tiny_ijepa_config).save_pretrained(tmp_path)
    _edit_config(tmp_path, num_attention_heads=7)
    with pytest.raises(ValueError, match="hidden_size=64: expected a multiple of num_attention_heads=7"):
        AutoModel.from_pretrained(tmp_path)


@pytest.mark.parametrize("family, typo, meant", [("ijepa", "hiden_size", "hidden_size"),
                                                  ("vjepa2", "num_frame", "num_frames"),
                                                  ("ac", "predictor_hiden_size", "predictor_hidden_size")])
def test_unknown_config_fields_warn_and_still_load(saved_configs, family, typo, meant, caplog) -> None:
    folder = _edit_config(saved_configs[family], **{typo: 7, "my_note": "x"})
    with caplog.at_level(logging.WARNING, logger="hf_jepa.modeling.validation"):
        config = AutoConfig.from_pretrained(folder)
    assert getattr(config, typo) == 7 and getattr(config, meant) != 7  # kept as transformers keeps extra keys
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1, warnings
    assert f"{sorted([typo, 'my_note'])}" in warnings[0] and f"(did you mean {meant!r} for {typo!r}?)" in warnings[0]


def test_nested_encoder_config_unknown_field_warns(saved_configs, caplog) -> None:
    folder = _edit_config(saved_configs["ac"], **{"encoder_config.patch_sise": 8})
    with caplog.at_level(logging.WARNING, logger="hf_jepa.modeling.validation"):
        AutoConfig.from_pretrained(folder)
    assert "VideoJepaConfig: unknown config field(s) ['patch_sise']" in caplog.text
    assert "(did you mean 'patch_size' for 'patch_sise'?)" in caplog.text


@pytest.mark.parametrize("family", ["ijepa", "vjepa2", "ac"])
def test_transformers_bookkeeping_keys_do_not_warn(saved_configs, family, caplog) -> None:
    assert {"transformers_version", "auto_map", "model_type"} <= set(json.loads(
        (saved_configs[family] / "config.json").read_text()))
    folder = _edit_config(saved_configs[family], torch_dtype="float32", dtype="float32", _name_or_path="org/x",
                          architectures=["Whatever"], _commit_hash="0" * 40, id2label={"0": "a", "1": "b"},
                          label2id={"a": 0, "b": 1}, problem_type="single_label_classification",
                          output_hidden_states=False, return_dict=True, chunk_size_feed_forward=0,
                          is_encoder_decoder=False, output_attentions=False, transformers_version="5.0.0")
    with caplog.at_level(logging.WARNING, logger="hf_jepa.modeling.validation"):
        AutoConfig.from_pretrained(folder)
        AutoConfig.from_pretrained(folder, num_labels=2, attn_implementation="sdpa")
    assert not caplog.records, caplog.text


# ---------------------------------------------------------------------------------------------------------------
# LeRobot v3 folders
# ---------------------------------------------------------------------------------------------------------------

CAM = "observation.image"
LENGTHS = [6, 7, 5, 6]  # two episodes per file: data/chunk-000/file-000 holds 0, 1; file-001 holds 2, 3


@pytest.fixture(scope="module")
def lerobot_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("hostile_lerobot") / "ds"
    rng = np.random.default_rng(0)
    with LeRobotWriter(root, fps=10, episodes_per_file=2) as writer:
        for n in LENGTHS:
            frames = rng.integers(0, 256, size=(n, 16, 16, 3), dtype=np.uint8)
            writer.add_episode({CAM: frames}, rng.normal(size=(n, 2)), rng.normal(size=(n, 2)))
    return root


def _broken_copy(lerobot_root: Path, tmp_path: Path) -> Path:
    broken = tmp_path / "broken"
    shutil.copytree(lerobot_root, broken)
    return broken


def _read(root: Path, caplog) -> tuple[LeRobotTrajectoryDataset, list[dict]]:  # noqa: ANN001
    ds = LeRobotTrajectoryDataset(root, frames_per_window=2, shuffle=False)
    with caplog.at_level(logging.WARNING, logger="hf_jepa.data.lerobot"):
        windows = list(ds)
    return ds, windows


def test_missing_video_file_skips_its_episodes(lerobot_root, tmp_path, caplog) -> None:
    root = _broken_copy(lerobot_root, tmp_path)
    (root / f"videos/{CAM}/chunk-000/file-001.mp4").unlink()
    ds, windows = _read(root, caplog)
    assert ds.num_skipped_episodes == 2 and ds.skipped_episodes == [2, 3]
    assert ds.skip_reasons == dict.fromkeys([2, 3], f"video file videos/{CAM}/chunk-000/file-001.mp4 is missing")
    assert {w["episode_index"] for w in windows} == {0, 1}
    assert len(windows) == (LENGTHS[0] - 1) + (LENGTHS[1] - 1)
    assert f"skipping episode 2 of {root}: video file videos/{CAM}/chunk-000/file-001.mp4 is missing" in caplog.text


def test_corrupt_parquet_shard_skips_its_episodes_and_is_read_once(lerobot_root, tmp_path, caplog,
                                                                   monkeypatch) -> None:
    root = _broken_copy(lerobot_root, tmp_path)
    (root / "data/chunk-000/file-000.parquet").write_bytes(b"PAR1 but not really" * 10)
    reads = []
    real_read_table = pq.read_table
    monkeypatch.setattr(pq, "read_table",
                        lambda path, **kw: reads.append(str(path)) or real_read_table(path, **kw))
    ds, windows = _read(root, caplog)
    assert ds.skipped_episodes == [0, 1] and ds.num_skipped_episodes == 2
    shard_reads = [r for r in reads if r.endswith("data/chunk-000/file-000.parquet")]
    assert len(shard_reads) == 1  # episode 1 is skipped without re-reading the shard
    for ep in (0, 1):
        assert ds.skip_reasons[ep].startswith("data file data/chunk-000/file-000.parquet cannot be read (ArrowInvalid")
    assert {w["episode_index"] for w in windows} == {2, 3}
    assert "skipping episode 0" in caplog.text and "skipping episode 1" in caplog.text


def _rewrite_episodes_meta(root: Path, ep: int, **changes) -> None:  # noqa: ANN003
    path = root / "meta/episodes/chunk-000/file-000.parquet"
    rows = pq.read_table(path).to_pylist()
    rows[ep].update(changes)
    pq.write_table(pa.Table.from_pylist(rows), path)


@pytest.mark.parametrize("meta_length", [LENGTHS[1] + 2, LENGTHS[1] - 2])
def test_episode_length_disagreeing_with_data_rows_is_skipped(lerobot_root, tmp_path, caplog, meta_length) -> None:
    root = _broken_copy(lerobot_root, tmp_path)
    _rewrite_episodes_meta(root, 1, length=meta_length)
    ds, windows = _read(root, caplog)
    reason = f"meta/episodes gives length={meta_length}, data file data/chunk-000/file-000.parquet has 7 rows for it"
    assert ds.skipped_episodes == [1] and ds.skip_reasons == {1: reason}
    assert f"skipping episode 1 of {root}: {reason}" in caplog.text
    assert {w["episode_index"] for w in windows} == {0, 2, 3}


def test_frame_index_with_a_gap_is_skipped(lerobot_root, tmp_path, caplog) -> None:
    root = _broken_copy(lerobot_root, tmp_path)
    path = root / "data/chunk-000/file-001.parquet"
    table = pq.read_table(path)
    frame_index = table.column("frame_index").to_numpy().copy()
    frame_index[LENGTHS[2] - 1] += 10  # the last row of episode 2
    table = table.set_column(table.schema.get_field_index("frame_index"), "frame_index", pa.array(frame_index))
    pq.write_table(table, path)
    ds, _ = _read(root, caplog)
    assert ds.skip_reasons == {2: "frame_index in data file data/chunk-000/file-001.parquet is not 0 .. 4 "
                                  "(length=5 in meta/episodes)"}


def test_unreadable_metadata_is_an_error_naming_the_file(lerobot_root, tmp_path) -> None:
    root = _broken_copy(lerobot_root, tmp_path)
    (root / "meta/episodes/chunk-000/file-000.parquet").write_bytes(b"xx")
    with pytest.raises(ValueError, match=r"meta/episodes/chunk-000/file-000\.parquet: cannot read the episodes "
                                         r"metadata parquet \(ArrowInvalid"):
        LeRobotTrajectoryDataset(root, frames_per_window=2)
    (root / "meta/info.json").write_text("{not json")
    with pytest.raises(ValueError, match=r"meta/info\.json is not valid JSON"):
        LeRobotTrajectoryDataset(root, frames_per_window=2)
    (root / "meta/info.json").write_text(json.dumps({"codebase_version": "v3.0", "features": {}}))
    with pytest.raises(ValueError, match=r"meta/info\.json lacks keys \['fps', 'data_path'\]"):
        LeRobotTrajectoryDataset(root, frames_per_window=2)
    (root / "meta/info.json").unlink()
    with pytest.raises(FileNotFoundError, match=r"meta/info\.json is missing"):
        LeRobotTrajectoryDataset(root, frames_per_window=2)

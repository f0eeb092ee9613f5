"""LeRobot v3 layout: write, read back, windows, sharding, corrupt video, offline Hub resolution, collection script."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
import torch

from hf_jepa.data.lerobot import LeRobotTrajectoryDataset, LeRobotWriter, encode_video

REPO = Path(__file__).resolve().parents[1]
CAM = "observation.image"
LENGTHS = [20, 25, 12, 30, 6]  # episode 4 is shorter than a window of T * k = 8 rows
S, A, H, W = 3, 2, 32, 48


def make_episode(ep: int, length: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Frames whose red level changes by 23 per frame (so an off-by-one frame is detectable), a moving square."""
    t = np.arange(length)
    frames = np.zeros((length, H, W, 3), np.uint8)
    frames[..., 0] = ((t * 23 + ep * 41) % 256)[:, None, None]
    frames[..., 1] = np.linspace(0, 255, W, dtype=np.uint8)[None, None, :]
    for i in range(length):
        x = (2 * i) % (W - 8)
        frames[i, 10:18, x : x + 8, 2] = 255
    rng = np.random.default_rng(ep)
    return frames, rng.normal(size=(length, S)).astype(np.float32), rng.normal(size=(length, A)).astype(np.float32)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list]:
    root = tmp_path_factory.mktemp("lerobot") / "ds"
    episodes = [make_episode(ep, n) for ep, n in enumerate(LENGTHS)]
    with LeRobotWriter(root, fps=10, state_names=["a", "b", "c"], episodes_per_file=2, robot_type="toy") as w:
        for ep, (frames, states, actions) in enumerate(episodes):
            assert w.add_episode({CAM: frames}, states, actions, task="even" if ep % 2 == 0 else "odd") == ep
    return root, episodes


def collect(ds: LeRobotTrajectoryDataset) -> list[dict]:
    return list(iter(ds))


def test_layout_and_info(dataset):
    root, _ = dataset
    info = json.loads((root / "meta/info.json").read_text())
    assert info["codebase_version"] == "v3.0" and info["fps"] == 10 and info["robot_type"] == "toy"
    assert info["total_episodes"] == 5 and info["total_frames"] == sum(LENGTHS) and info["total_tasks"] == 2
    assert info["splits"] == {"train": "0:5"}
    assert info["data_path"] == "data/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet"
    assert info["video_path"] == "videos/{video_key}/chunk-{chunk_index:03d}/file-{file_index:03d}.mp4"
    feats = info["features"]
    assert feats[CAM]["dtype"] == "video" and feats[CAM]["shape"] == [H, W, 3]
    assert feats["observation.state"] == {"dtype": "float32", "shape": [S], "names": ["a", "b", "c"]}
    assert feats["action"]["shape"] == [A]
    assert {"timestamp", "frame_index", "episode_index", "index", "task_index"} <= set(feats)
    for f in range(3):  # 5 episodes, 2 per file
        assert (root / info["data_path"].format(chunk_index=0, file_index=f)).exists()
        assert (root / info["video_path"].format(video_key=CAM, chunk_index=0, file_index=f)).exists()
    eps = pq.read_table(root / "meta/episodes/chunk-000/file-000.parquet").to_pylist()
    assert [e["length"] for e in eps] == LENGTHS
    assert eps[1][f"videos/{CAM}/from_timestamp"] == pytest.approx(2.0)  # after episode 0 (20 frames at 10 fps)
    assert eps[1][f"videos/{CAM}/to_timestamp"] == pytest.approx(4.5)
    assert eps[3]["dataset_from_index"] == sum(LENGTHS[:3]) and eps[3]["data/file_index"] == 1
    tasks = pd.read_parquet(root / "meta/tasks.parquet")
    assert tasks.index.name == "task" and tasks.loc["odd", "task_index"] == 1
    stats = json.loads((root / "meta/stats.json").read_text())
    assert np.array(stats[CAM]["mean"]).shape == (3, 1, 1) and len(stats["action"]["mean"]) == A
    rows = pq.read_table(root / "data/chunk-000/file-001.parquet").to_pydict()
    assert rows["episode_index"][0] == 2 and rows["index"][0] == sum(LENGTHS[:2])
    assert rows["timestamp"][1] == pytest.approx(0.1)


def test_round_trip_frames_states_actions(dataset):
    root, episodes = dataset
    ds = LeRobotTrajectoryDataset(root, frames_per_window=1, shuffle=False)
    windows = collect(ds)
    assert len(windows) == sum(LENGTHS) == ds.expected_num_windows() and ds.num_skipped_episodes == 0
    for w in windows:
        ep, t = w["episode_index"], int(w["frame_index"][0])
        frames, states, actions = episodes[ep]
        assert w["frames"].shape == (1, 3, H, W) and w["frames"].dtype == torch.uint8
        decoded = w["frames"][0].permute(1, 2, 0).numpy().astype(np.float32)
        errors = np.abs(frames.astype(np.float32) - decoded[None]).mean(axis=(1, 2, 3))  # vs every frame
        assert errors[t] < 8, (ep, t, errors[t])
        assert int(np.argmin(errors)) == t  # the right frame, not a neighbour
        np.testing.assert_array_equal(w["states"][0].numpy(), states[t])
        np.testing.assert_array_equal(w["actions"][0].numpy(), actions[t])


def test_windows_frame_skip_and_action_sum(dataset):
    root, episodes = dataset
    t_, k = 4, 2
    ds = LeRobotTrajectoryDataset(root, frames_per_window=t_, frame_skip=k, seed=1, image_size=16, to_float=True)
    windows = collect(ds)
    expected = sum(max(0, n - t_ * k + 1) for n in LENGTHS)
    assert len(windows) == expected == ds.expected_num_windows()
    assert 4 not in {w["episode_index"] for w in windows}  # too short
    w = windows[0]
    assert w["frames"].shape == (t_, 3, 16, 16) and w["frames"].dtype == torch.float32 and w["frames"].max() <= 1
    for w in windows[:20]:
        _, states, actions = episodes[w["episode_index"]]
        rows = w["frame_index"].numpy()
        np.testing.assert_array_equal(np.diff(rows), k)
        np.testing.assert_array_equal(w["states"].numpy(), states[rows])
        summed = np.stack([actions[r : r + k].sum(0) for r in rows])  # actions[i] moves frame i to frame i + 1
        np.testing.assert_allclose(w["actions"].numpy(), summed, rtol=1e-6)
    concat = collect(LeRobotTrajectoryDataset(root, frames_per_window=t_, frame_skip=k, action_reduce="concat"))
    assert concat[0]["actions"].shape == (t_, k * A)
    batch = next(iter(torch.utils.data.DataLoader(ds, batch_size=5)))
    assert batch["frames"].shape == (5, t_, 3, 16, 16) and batch["actions"].shape == (5, t_, A)


def test_shuffle_is_seeded_and_ranks_partition_episodes(dataset):
    root, _ = dataset
    order = [
        (w["episode_index"], int(w["frame_index"][0]))
        for w in collect(LeRobotTrajectoryDataset(root, frames_per_window=2))
    ]
    again = [
        (w["episode_index"], int(w["frame_index"][0]))
        for w in collect(LeRobotTrajectoryDataset(root, frames_per_window=2))
    ]
    assert order == again
    shards = [LeRobotTrajectoryDataset(root, frames_per_window=2, rank=r, world_size=2) for r in range(2)]
    eps = [set(s.shard_episodes) for s in shards]
    assert eps[0] | eps[1] == set(range(5)) and not eps[0] & eps[1]
    assert sum(len(collect(s)) for s in shards) == len(order)
    split = LeRobotTrajectoryDataset(root, frames_per_window=2, episodes=[1, 3])
    assert {w["episode_index"] for w in collect(split)} == {1, 3}
    with pytest.raises(ValueError, match="camera_key"):
        LeRobotTrajectoryDataset(root, frames_per_window=2, camera_key="observation.images.nope")


def test_corrupt_video_is_skipped_and_counted(dataset, tmp_path, caplog):
    root, _ = dataset
    broken = tmp_path / "broken"
    shutil.copytree(root, broken)
    (broken / f"videos/{CAM}/chunk-000/file-001.mp4").write_bytes(b"\x00not an mp4" * 100)  # episodes 2 and 3
    ds = LeRobotTrajectoryDataset(broken, frames_per_window=2, shuffle=False)
    with caplog.at_level("WARNING", logger="hf_jepa.data.lerobot"):
        windows = collect(ds)
    assert ds.num_skipped_episodes == 2 and sorted(ds.skipped_episodes) == [2, 3]
    assert {w["episode_index"] for w in windows} == {0, 1, 4}
    assert len(windows) == sum(n - 1 for n in (LENGTHS[0], LENGTHS[1], LENGTHS[4]))
    assert "skipping episode" in caplog.text


def test_offline_hub_repo_id(dataset, tmp_path):
    root, _ = dataset
    sha = "0123456789abcdef0123456789abcdef01234567"
    repo = tmp_path / "hub" / "datasets--org--name"
    shutil.copytree(root, repo / "snapshots" / sha)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(sha)
    code = (
        "from hf_jepa.data.lerobot import LeRobotTrajectoryDataset\n"
        "ds = LeRobotTrajectoryDataset('org/name', frames_per_window=2, frame_skip=2)\n"
        "print(ds.root.name, sum(1 for _ in ds))\n"
    )
    env = {**os.environ, "HF_HUB_CACHE": str(tmp_path / "hub"), "HF_HUB_OFFLINE": "1"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == [sha, str(sum(max(0, n - 3) for n in LENGTHS))]


def test_writer_validation(tmp_path):
    w = LeRobotWriter(tmp_path / "w", fps=5)
    frames = np.zeros((4, 8, 8, 3), np.uint8)
    with pytest.raises(ValueError, match="actions"):
        w.add_episode({CAM: frames}, np.zeros((4, 2)), np.zeros((2, 2)))
    with pytest.raises(ValueError, match="frames"):
        w.add_episode({CAM: frames.astype(np.float32)}, np.zeros((4, 2)), np.zeros((4, 2)))
    w.add_episode({CAM: frames}, np.zeros((4, 2)), np.zeros((3, 2)))  # T - 1 actions: padded
    w.finalize()
    with pytest.raises(FileExistsError):
        LeRobotWriter(tmp_path / "w", fps=5)
    with pytest.raises(ValueError, match="fps"):
        LeRobotWriter(tmp_path / "x", fps=0)


def test_collect_script_writes_readable_dataset(tmp_path):
    out = tmp_path / "tr"
    cmd = [sys.executable, str(REPO / "scripts/collect_trajectories.py"), "--env", "two_rooms", "--episodes", "3",
           "--steps_per_episode", "10", "--output_dir", str(out), "--seed", "0", "--image_size", "32"]  # fmt: skip
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    assert "3 episodes, 33 frames" in res.stdout
    info = json.loads((out / "meta/info.json").read_text())
    assert info["total_frames"] == 33 and info["features"][CAM]["shape"] == [32, 32, 3]
    ds = LeRobotTrajectoryDataset(out, frames_per_window=4)
    assert len(collect(ds)) == 3 * 8 == ds.expected_num_windows()


# --------------------------------------------------------------------------- the Hub's lerobot/pusht layout
HUB_LENGTHS = [14, 11]


def _hub_pusht_frames(ep: int, length: int) -> np.ndarray:
    """96 x 96 frames whose red level is 60 + 10 * frame + 50 * episode (to check which frame a window got)."""
    frames = np.full((length, 96, 96, 3), 200, np.uint8)
    frames[..., 0] = (60 + 10 * np.arange(length) + 50 * ep)[:, None, None]
    return frames


def write_hub_pusht(root: Path) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """A folder in the layout of the Hub's `lerobot/pusht` (LeRobot v3.0), written by hand as LeRobot writes it:
    `observation.image` as AV1 video, 2-D `observation.state` (agent position, px) and `action` (target, px) whose
    names are {"motors": [...]}, the `next.*` columns, one data / video / episodes file. State and action are
    variable-length list columns here (pandas writes list<double>); the fixed-size lists LeRobot writes are what
    our own writer produces, read in the tests above."""
    fps, key = 10, "observation.image"
    states = [np.random.default_rng(ep).uniform(0, 512, (n, 2)).astype(np.float32) for ep, n in enumerate(HUB_LENGTHS)]
    actions = [np.random.default_rng(10 + ep).uniform(0, 512, (n, 2)).astype(np.float32)
               for ep, n in enumerate(HUB_LENGTHS)]
    total = sum(HUB_LENGTHS)
    scalar = {"shape": [1], "names": None}
    motors = {"motors": ["motor_0", "motor_1"]}
    info = {
        "codebase_version": "v3.0", "robot_type": "unknown", "total_episodes": len(HUB_LENGTHS),
        "total_frames": total, "total_tasks": 1, "chunks_size": 1000, "data_files_size_in_mb": 100,
        "video_files_size_in_mb": 500, "fps": fps, "splits": {"train": f"0:{len(HUB_LENGTHS)}"},
        "data_path": "data/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet",
        "video_path": "videos/{video_key}/chunk-{chunk_index:03d}/file-{file_index:03d}.mp4",
        "features": {
            key: {"dtype": "video", "shape": [96, 96, 3], "names": ["height", "width", "channel"],
                  "info": {"video.height": 96, "video.width": 96, "video.codec": "av1", "video.pix_fmt": "yuv420p",
                           "video.is_depth_map": False, "video.fps": fps, "video.channels": 3, "has_audio": False}},
            "observation.state": {"dtype": "float32", "shape": [2], "names": motors},
            "action": {"dtype": "float32", "shape": [2], "names": motors},
            "episode_index": {"dtype": "int64", **scalar}, "frame_index": {"dtype": "int64", **scalar},
            "timestamp": {"dtype": "float32", **scalar}, "next.reward": {"dtype": "float32", **scalar},
            "next.done": {"dtype": "bool", **scalar}, "next.success": {"dtype": "bool", **scalar},
            "index": {"dtype": "int64", **scalar}, "task_index": {"dtype": "int64", **scalar},
        },
    }
    (root / "meta" / "episodes" / "chunk-000").mkdir(parents=True)
    (root / "data" / "chunk-000").mkdir(parents=True)
    (root / "meta" / "info.json").write_text(json.dumps(info, indent=4))
    rows, episodes, start = [], [], 0
    for ep, n in enumerate(HUB_LENGTHS):
        for t in range(n):
            rows.append({"observation.state": states[ep][t].tolist(), "action": actions[ep][t].tolist(),
                         "episode_index": ep, "frame_index": t, "timestamp": t / fps, "next.reward": 0.0,
                         "next.done": t == n - 1, "next.success": False, "index": start + t, "task_index": 0})
        episodes.append({"episode_index": ep, "tasks": ["Push the T-shaped block onto the T-shaped target."],
                         "length": n, "data/chunk_index": 0, "data/file_index": 0, "dataset_from_index": start,
                         "dataset_to_index": start + n, f"videos/{key}/chunk_index": 0, f"videos/{key}/file_index": 0,
                         f"videos/{key}/from_timestamp": start / fps, f"videos/{key}/to_timestamp": (start + n) / fps,
                         "meta/episodes/chunk_index": 0, "meta/episodes/file_index": 0})
        start += n
    frame = pd.DataFrame(rows).astype({"timestamp": "float32", "next.reward": "float32"})
    frame.to_parquet(root / "data" / "chunk-000" / "file-000.parquet")
    pd.DataFrame(episodes).to_parquet(root / "meta" / "episodes" / "chunk-000" / "file-000.parquet")
    pd.DataFrame({"task_index": [0]}, index=pd.Index(["Push the T-shaped block onto the T-shaped target."],
                                                      name="task")).to_parquet(root / "meta" / "tasks.parquet")
    video = np.concatenate([_hub_pusht_frames(ep, n) for ep, n in enumerate(HUB_LENGTHS)])
    encode_video(video, root / "videos" / key / "chunk-000" / "file-000.mp4", fps=fps, codec="libsvtav1", crf=10)
    return states, actions


@pytest.fixture(scope="module")
def hub_pusht(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list, list]:
    root = tmp_path_factory.mktemp("hub") / "pusht"
    states, actions = write_hub_pusht(root)
    return root, states, actions


def test_reader_takes_the_hub_pusht_layout(hub_pusht):
    """Windows of 3 frames 2 rows apart: (3, 3, 96, 96) frames of the right rows, (3, 2) states and summed actions."""
    root, states, actions = hub_pusht
    ds = LeRobotTrajectoryDataset(root, frames_per_window=3, frame_skip=2, shuffle=False)
    assert ds.camera_key == "observation.image" and ds.fps == 10
    items = collect(ds)
    assert len(items) == ds.expected_num_windows() == sum(n - 6 + 1 for n in HUB_LENGTHS)
    for item in items:
        ep, rows = item["episode_index"], item["frame_index"].numpy()
        t0 = int(rows[0])
        assert item["frames"].shape == (3, 3, 96, 96) and item["frames"].dtype == torch.uint8
        assert item["states"].shape == (3, 2) and item["actions"].shape == (3, 2)
        np.testing.assert_array_equal(rows, [t0, t0 + 2, t0 + 4])
        np.testing.assert_allclose(item["states"].numpy(), states[ep][rows], rtol=1e-6)
        np.testing.assert_allclose(item["actions"].numpy(), actions[ep][t0:t0 + 6].reshape(3, 2, 2).sum(1),
                                   rtol=1e-5)
        red = item["frames"][:, 0, 40:56, 40:56].float().mean((1, 2)).numpy()
        np.testing.assert_allclose(red, _hub_pusht_frames(ep, HUB_LENGTHS[ep])[rows, 48, 48, 0], atol=4)
    assert ds.num_skipped_episodes == 0


def test_world_model_training_refuses_widths_other_than_the_data(hub_pusht):
    """Widths fixed by --config_overrides must be the dataset's; rows wider than meta/info.json declares are named."""
    import hf_jepa
    from hf_jepa.data.trajectories import LatentEpisodeCache
    from hf_jepa.world_model import WorldModelArguments
    from hf_jepa.world_model.recipe import build_world_model, check_cache_widths

    root, _, _ = hub_pusht
    encoder = hf_jepa.VideoJepaModel(hf_jepa.VideoJepaConfig(
        image_size=32, patch_size=16, num_frames=2, hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
        intermediate_size=64, predictor_hidden_size=32, predictor_num_hidden_layers=1,
        predictor_num_attention_heads=2, predictor_intermediate_size=64))
    small = json.dumps({"predictor_hidden_size": 32, "predictor_num_hidden_layers": 1,
                        "predictor_num_attention_heads": 2, "predictor_intermediate_size": 64})
    args = WorldModelArguments(dataset_name=str(root), config_overrides=small[:-1] + ', "state_dim": 5}')
    with pytest.raises(ValueError, match=r"state_dim=5 differs from the dataset .* observation.state has width 2"):
        build_world_model(args, encoder, action_dim=2, state_dim=2)
    model = build_world_model(WorldModelArguments(dataset_name=str(root), config_overrides=small), encoder, 2, 2)
    cache = LatentEpisodeCache([torch.zeros(4, 4, 32)], [torch.zeros(4, 3)], [torch.zeros(4, 2)])
    with pytest.raises(ValueError, match=r"observation.state rows have width 3.*state_dim=2"):
        check_cache_widths(cache, model, str(root))


@pytest.mark.parametrize("size", [(32, 48), (33, 47)])  # even: yuv420p; odd: yuv444p
def test_encode_video_round_trips_with_torchcodec(tmp_path: Path, size: tuple[int, int]) -> None:
    """encode_video writes with torchcodec's VideoEncoder (no ffmpeg binary, no imageio): the mp4 decodes to the
    frames (lossy H.264 at crf 18: mean error of a few levels) at the fps asked."""
    from torchcodec.decoders import VideoDecoder

    h, w = size
    yy, xx = np.meshgrid(np.linspace(0, 1, h), np.linspace(0, 1, w), indexing="ij")
    frames = np.stack([np.stack([xx * (1 - t / 12), yy, 0.5 + 0.4 * np.sin(t + xx * 6)], -1) for t in range(12)])
    frames = (frames * 255).round().astype(np.uint8)  # (12, H, W, 3) smooth gradients
    path = tmp_path / "clip.mp4"
    encode_video(frames, path, fps=5, gop=4)
    decoder = VideoDecoder(str(path))
    assert decoder.metadata.num_frames == 12 and decoder.metadata.average_fps == pytest.approx(5)
    decoded = decoder.get_frames_in_range(0, 12).data.permute(0, 2, 3, 1).numpy()  # (12, H, W, 3)
    assert decoded.shape == frames.shape
    assert np.abs(decoded.astype(int) - frames.astype(int)).mean() < 4
    with pytest.raises(ValueError, match="expected uint8 \\(N, H, W, 3\\)"):
        encode_video(frames.astype(np.float32), path, fps=5)

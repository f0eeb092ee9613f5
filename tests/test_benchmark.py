"""Benchmark suite (`scripts/benchmark.py --quick`): correctness checks and the results.json contract only.

No timing thresholds: the numbers depend on the machine. The suite itself raises when our encoders disagree with
transformers' or when KV-cached and recomputed rollouts of the same candidate actions differ.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from hf_jepa.modeling.layers import KVCache
from hf_jepa.modeling.positions import apply_rope, rope_3d, rope_3d_tables, rotate_pairs

from hf_jepa.benchmark import peak_memory, time_interleaved, vit_forward_flops
from hf_jepa.benchmark.planning import ROLLOUT_TOLERANCE, planning_benchmark

ROOT = Path(__file__).resolve().parents[1]
KEYS = ("encoder_speedup_vs_transformers", "encoder_matmul_fraction", "planning_speedup_kv_cache",
        "data_to_train_ratio", "train_samples_per_second", "peak_memory_mb", "monitor_step_ratio")


def test_quick_suite_writes_every_key(tmp_path: Path) -> None:
    out = tmp_path / "results.json"
    subprocess.run([sys.executable, str(ROOT / "scripts" / "benchmark.py"), "--quick", "--device", "cpu",
                    "--json", str(out)], check=True, cwd=ROOT, timeout=600)
    results = json.loads(out.read_text())
    assert results["device"].startswith("cpu") and results["versions"]["torch"] == torch.__version__
    for key in KEYS:
        assert isinstance(results[key], dict) and results[key], key
        assert all(isinstance(v, float) and v > 0 for v in results[key].values()), key
    assert set(results["encoder_speedup_vs_transformers"]) == {"vjepa2/tiny", "ijepa/tiny"}
    assert all(d["max_abs_diff"] <= 1e-4 for d in results["details"]["encoder"].values())
    # V-JEPA 2.1 vs V-JEPA 2 at the same size and weights: equal outputs, a time ratio
    assert set(results["vjepa2_1_time_ratio"]) == {"tiny_64px_8f"}
    assert results["details"]["vjepa2_1"]["tiny_64px_8f"]["max_abs_diff"] == 0.0
    for d in results["details"]["planning"].values():  # checked equal: rollouts and energies; plans only reported
        assert d["rollout_max_rel_diff"] <= d["tolerance"] and d["energy_max_rel_diff"] <= d["tolerance"]
        assert isinstance(d["plans_agree"], bool) and d["max_action_diff"] >= 0
    assert {"world_model/tiny_4f", "world_model/tiny_8f"} <= set(results["peak_memory_mb"])
    assert set(results["monitor_step_ratio"]) == {"ijepa/tiny", "vjepa2/tiny"}
    assert all(d["log_s"] > 0 and d["amortized_ratio"] > 0 for d in results["details"]["monitors"].values())


def test_fused_rotation_equals_textbook_rope() -> None:
    pos = torch.rand(2, 10, 3) * 8
    cos, sin = rope_3d_tables(pos, 32)
    x = torch.randn(2, 4, 10, 32)  # (B, heads, N, d)
    expected = apply_rope(x, cos, sin)
    got = rotate_pairs(x.transpose(1, 2), rope_3d(pos, 32)).transpose(1, 2)  # token-major layout
    torch.testing.assert_close(got, expected, atol=1e-6, rtol=0)


def test_preallocated_kv_cache_equals_concatenation() -> None:
    grown, fixed = KVCache(2), KVCache(2, capacity=9)
    for n in (3, 2, 4):
        k, v = torch.randn(2, 3, n, 8), torch.randn(2, 3, n, 8)
        for layer in range(2):
            a, b = grown.update(layer, k, v), fixed.update(layer, k, v)
            assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    assert fixed.length == grown.length == 9


def test_flop_count_and_measurement_helpers() -> None:
    # one layer, 4 tokens, width 8, MLP 16, patch volume 12: 2*4*(4*64 + 2*128) + 4*16*8 + 2*4*12*8
    assert vit_forward_flops(tokens=4, hidden_size=8, num_layers=1, intermediate_size=16, patch_volume=12) == (
        2 * 4 * (4 * 64 + 2 * 128) + 4 * 16 * 8 + 2 * 4 * 12 * 8)
    timings = time_interleaved({"a": lambda: torch.ones(10).sum(), "b": lambda: None}, warmup=1, repeats=3)
    assert set(timings) == {"a", "b"} and all(len(t.times) == 3 for t in timings.values())
    mem = peak_memory(lambda: torch.ones(64, 2**20).sum())  # a 256 MiB temporary
    assert mem.method != "rss_high_water_mark" or 200 < mem.peak_mb < 400


def test_planning_check_with_a_four_frame_history() -> None:
    """H 5 from T0 4 observed frames (the case whose CEM plans can flip on a near-tie): the cached and recomputed
    rollouts and energies of the same candidates agree to the stated tolerance, and the plans are reported."""
    r = planning_benchmark(horizon=5, context_frames=4, num_samples=24, topk=4, iterations=2, device="cpu",
                           repeats=1)
    assert (r["horizon"], r["context_frames"], r["tolerance"]) == (5, 4, ROLLOUT_TOLERANCE)
    assert r["rollout_max_rel_diff"] <= 1e-5 and r["energy_max_rel_diff"] <= 1e-5
    assert r["plans_agree"] == (r["max_action_diff"] <= 1e-4) and r["speedup"] > 0


def test_planning_check_names_horizon_and_context_when_rollouts_differ(monkeypatch) -> None:
    from hf_jepa.modeling.modeling_easy_vjepa2_ac import JepaWorldModel

    rollout = JepaWorldModel.rollout

    def off_by_a_little(self, *args, use_cache=True, **kwargs):  # a cache that drifts by 1e-3 of the scale
        out = rollout(self, *args, use_cache=use_cache, **kwargs)
        return out * (1 + 1e-3) if use_cache else out

    monkeypatch.setattr(JepaWorldModel, "rollout", off_by_a_little)
    with pytest.raises(AssertionError, match=r"horizon 5, context 4 frame\(s\).*latents by 0\.001.*tolerance 0\.0001"):
        planning_benchmark(horizon=5, context_frames=4, num_samples=8, topk=2, iterations=1, device="cpu", repeats=1)

"""The project's metrics as local `evaluate` modules: they load offline, agree with a direct computation, and
`save_results` writes evaluate's result file."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch

from hf_jepa.metrics import METRICS, OutputsIncomplete, load_metric, save_results, write_after_results


def test_probe_accuracy_matches_a_direct_topk() -> None:
    gen = torch.Generator().manual_seed(0)
    logits = torch.randn(200, 7, generator=gen)
    labels = torch.randint(0, 7, (200,), generator=gen)
    got = load_metric("probe_accuracy").compute(predictions=logits.tolist(), references=labels.tolist(),
                                                top_k=(1, 3, 5, 10))
    for k in (1, 3, 5, 10):
        top = logits.topk(min(k, 7), dim=-1).indices
        assert got[f"top{k}"] == pytest.approx((top == labels[:, None]).any(-1).double().mean().item(), abs=1e-12)
    assert got["top10"] == 1.0  # k capped at the number of classes
    ties = load_metric("probe_accuracy").compute(predictions=[[1.0, 1.0], [0.0, 0.0]], references=[0, 1], top_k=(1,))
    assert ties == {"top1": 0.5}  # ties go to the lower class index


def test_planning_success_rate_and_mean_distance() -> None:
    got = load_metric("planning_success").compute(successes=[True, False, True, True],
                                                  final_distances=[0.1, 0.9, None, 0.2])
    assert got == {"success_rate": 0.75, "successes": 3, "episodes": 4,
                   "mean_final_distance": pytest.approx(0.4)}
    assert load_metric("planning_success").compute(successes=[False], final_distances=[None])[
        "mean_final_distance"] is None


def test_unknown_metric_is_named() -> None:
    with pytest.raises(ValueError, match=r"name='accuracy': expected one of \['probe_accuracy', 'planning_success'\]"):
        load_metric("accuracy")


def test_metrics_load_offline_in_a_fresh_process(tmp_path) -> None:
    code = ("from hf_jepa.metrics import load_metric, METRICS; "
            "print([type(load_metric(n)).__name__ for n in METRICS])")
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "HF_EVALUATE_OFFLINE": "1",
           "HF_HOME": str(tmp_path / "hf_home")}  # an empty cache: nothing to reuse, nothing to fetch
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == str(["ProbeAccuracy", "PlanningSuccess"])
    assert len(METRICS) == 2


def test_save_results_writes_evaluate_result_file(tmp_path) -> None:
    path = save_results(tmp_path / "out", {"top1": 0.5, "confusion": np.eye(2)}, model="random:tiny")
    saved = json.loads(path.read_text())
    assert path.name.startswith("result-") and path.parent == tmp_path / "out"
    assert saved["top1"] == 0.5 and saved["model"] == "random:tiny" and "confusion" not in saved
    assert "_python_version" in saved and "_timestamp" in saved  # evaluate's run metadata


@pytest.mark.parametrize("folder", ["runs/v1.2", "exp.lr3e-4", "tmp.pkEJjbmvRF/out", "my runs/v 1.2"])
def test_save_results_into_folders_with_dots_and_spaces(tmp_path, folder) -> None:
    """evaluate.save takes a path with a suffix for a file name: save_results always gives it one."""
    first = save_results(tmp_path / folder, {"top1": 0.25})
    second = save_results(tmp_path / folder, {"top1": 0.5})  # same second: a new name, nothing overwritten
    named = save_results(tmp_path / folder, {"top1": 0.75}, filename="eval.json")
    assert (tmp_path / folder).is_dir() and first.parent == second.parent == named.parent == tmp_path / folder
    assert len({first, second, named}) == 3 and named.name == "eval.json"
    assert [json.loads(p.read_text())["top1"] for p in (first, second, named)] == [0.25, 0.5, 0.75]
    with pytest.raises(ValueError, match="filename='a/b.json': expected a file name ending in .json"):
        save_results(tmp_path / folder, {"top1": 1.0}, filename="a/b.json")


def test_outputs_after_the_results_run_on_and_name_what_failed(tmp_path) -> None:
    results = tmp_path / "results.json"
    results.write_text('{"top1": 0.9}')
    ran = []

    def broken() -> None:
        raise IsADirectoryError("[Errno 21] Is a directory: 'runs/v1.2'")

    steps = [("plot", lambda: ran.append("plot")), ("evaluate's results file", broken),
             ("classifier folder", lambda: ran.append("classifier") or "saved")]
    with pytest.raises(OutputsIncomplete) as err:
        write_after_results(results, steps)
    assert ran == ["plot", "classifier"]  # the outputs after the failed one still ran
    assert str(results) in str(err.value) and "evaluate's results file (IsADirectoryError" in str(err.value)
    assert err.value.failed == {"evaluate's results file": "IsADirectoryError: [Errno 21] Is a directory: 'runs/v1.2'"}
    assert json.loads(results.read_text()) == {"top1": 0.9}
    assert write_after_results(results, steps[2:]) == {"classifier folder": "saved"}

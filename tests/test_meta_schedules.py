"""Each recipe under configs/meta/ schedules lr, weight decay and EMA momentum exactly as Meta's run does.

``tests/fixtures/meta/meta_schedules.json`` holds the values Meta's own schedulers (``init_opt``'s
``WarmupCosineSchedule`` / ``LinearDecaySchedule`` / ``WSDSchedule`` and ``CosineWDSchedule``, the train script's
momentum generator) gave update ``k`` at ~200 sampled ``k`` over the full published run (``generate_schedules.py``).
Here the recipe file is parsed the way ``scripts/pretrain.py`` / ``scripts/train_world_model.py`` parse it and our
``build_schedules`` must give the same values to 1e-7 relative at every sampled update.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hf_jepa.training import build_schedules
from hf_jepa.training.runner import parse_flags

ROOT = Path(__file__).resolve().parents[1]
RUNS = json.loads((ROOT / "tests/fixtures/meta/meta_schedules.json").read_text())["runs"]
RTOL = 1e-7


def recipe_args(family: str, meta_config: str):
    folder = ROOT / "configs" / "meta" / family
    candidates = [folder / f"{meta_config}.yaml", folder / f"{meta_config.replace('/', '-')}.yaml"]
    path = next((c for c in candidates if c.is_file()), None)
    assert path is not None, f"no recipe {candidates[0].relative_to(ROOT)} for Meta's {family} config {meta_config}"
    if family == "vjepa2_ac":
        from hf_jepa.world_model.recipe import WorldModelArguments as Arguments
    else:
        from hf_jepa.pretraining import PretrainArguments as Arguments
    return parse_flags(Arguments, [str(path)])


@pytest.mark.parametrize("run", [pytest.param(r, id=f"{r['family']}/{r['meta_config']}") for r in RUNS])
def test_recipe_schedules_equal_metas_over_the_whole_run(run: dict) -> None:
    args = recipe_args(run["family"], run["meta_config"])
    assert args.max_steps == run["updates"], "the recipe's run length differs from Meta's epochs x ipe"
    schedules = build_schedules(args)
    columns = run["columns"]
    assert (schedules.momentum is not None) == ("ema_momentum" in columns)
    worst = 0.0
    for row in run["values"]:
        k, meta = row[0], dict(zip(columns[1:], row[1:], strict=True))
        ours = {"lr": schedules.lr(k), "weight_decay": schedules.weight_decay(k)}
        if schedules.momentum is not None:
            ours["ema_momentum"] = schedules.momentum(k)
        for name, value in meta.items():
            err = abs(ours[name] - value) / max(abs(value), 1e-30) if value else abs(ours[name])
            assert err <= RTOL, f"update {k}: {name} ours {ours[name]!r} vs Meta's {value!r}"
            worst = max(worst, err)
    assert len(run["values"]) >= min(run["updates"], 100)

"""Training logs under `accelerate launch`: the loop's lines ("saved checkpoint", "resumed", "epoch done") appear
once, written by the main process, not once per rank; a warning logged with `main_process_only=False` appears on
every rank; the training logger also works before any Accelerator exists."""

from __future__ import annotations

import logging
import os
import re
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

TESTS = Path(__file__).parent

# A two-process run of `fit` on test_training's toy JEPA (6 steps, a checkpoint every 2), then `fit` again, resumed
# from the latest checkpoint, to 8; then a warning on every rank.
SCRIPT = textwrap.dedent("""
    import logging, sys
    sys.path.insert(0, {tests!r})
    logging.basicConfig(level=logging.INFO, format="LOG %(process)d %(name)s: %(message)s")
    import torch
    from accelerate import Accelerator
    from test_training import ToyJepa, toy_factory, toy_loss, toy_prepare
    from hf_jepa.training import LoopConfig, build_optimizer, fit
    from hf_jepa.training.rank_logging import get_logger

    accelerator = Accelerator()
    torch.manual_seed(0)
    model = ToyJepa(ema=False)
    optimizer = build_optimizer(model, lr=1e-2, weight_decay=0.0)
    model, optimizer = accelerator.prepare(model, optimizer)
    for max_steps, resume in ((6, None), (8, "latest")):
        config = LoopConfig(output_dir={out!r}, max_steps=max_steps, log_every=2, checkpointing_steps=2,
                            resume_from_checkpoint=resume)
        fit(config, accelerator=accelerator, model=model, dataloader_factory=toy_factory, optimizer=optimizer,
            lr_scheduler=None, compute_loss=toy_loss, prepare_batch=toy_prepare)
    get_logger("hf_jepa.training.loop").warning("rank %d checks in", accelerator.process_index,
                                                main_process_only=False)
""")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _launch(script: Path, cwd: Path) -> list[str]:
    command = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
               "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
               "--main_process_port", str(_free_port()), str(script)]
    env = {**os.environ, "ACCELERATE_USE_CPU": "1", "OMP_NUM_THREADS": "1"}
    result = subprocess.run(command, capture_output=True, text=True, env=env, cwd=cwd, timeout=300)
    assert result.returncode == 0, result.stderr[-4000:]
    return [line for line in result.stderr.splitlines() if line.startswith("LOG ")]


def test_training_lines_appear_once_under_two_processes(tmp_path: Path) -> None:
    script = tmp_path / "run.py"
    script.write_text(SCRIPT.format(tests=str(TESTS), out=str(tmp_path / "run")))
    lines = _launch(script, tmp_path)
    saved = [line for line in lines if "saved checkpoint" in line]
    steps = [re.search(r"step_\d+", line).group() for line in saved]
    assert steps == ["step_2", "step_4", "step_6", "step_8"], lines
    assert all("[RANK 0]" in line for line in saved)  # written by the main process
    assert sum("epoch 0 done at step 4" in line for line in lines) == 1, lines  # 4 batches per epoch
    assert sum("resumed from" in line and "step_6" in line for line in lines) == 1, lines
    assert sum("AdamW:" in line for line in lines) == 1, lines  # build_optimizer's summary
    per_rank = [line for line in lines if "checks in" in line]
    assert sorted(line.split("] ")[-1] for line in per_rank) == ["rank 0 checks in", "rank 1 checks in"]
    assert len({line.split()[1] for line in per_rank}) == 2  # two processes


def test_training_logger_without_an_accelerator(caplog: pytest.LogCaptureFixture, monkeypatch) -> None:
    """Before an Accelerator exists (a checkpoint helper on its own) the logger writes plainly on the launcher's
    rank 0 only; accelerate's own adapter would raise."""
    from accelerate.state import AcceleratorState, PartialState

    from hf_jepa.training.rank_logging import get_logger

    AcceleratorState._reset_state(True)
    PartialState._reset_state()
    log = get_logger("hf_jepa.training.checkpoints")
    with caplog.at_level(logging.INFO, logger="hf_jepa.training.checkpoints"):
        log.info("main says %d", 1)
        monkeypatch.setenv("RANK", "1")
        log.info("rank 1 says %d", 2)
        log.warning("rank 1 warns %d", 3, main_process_only=False)
    assert [r.getMessage() for r in caplog.records] == ["main says 1", "rank 1 warns 3"]

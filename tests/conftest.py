"""Shared test fixtures: deterministic torch, tiny configs; an HF-cache snapshot helper for offline Hub tests and a
runner for scripts in a fresh interpreter (optionally one where hf_jepa cannot be imported, as for remote code)."""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import torch

import hf_jepa

#: What `make install` sets up besides the Python package: under CI=true a test skipped because one of these is
#: missing FAILS (a broken set-up must not pass as a row of skips). Matched in the skip's reason, lower-cased.
SETUP_DEPENDENCIES = ("gradio", "playwright", "chromium")
#: Wall-clock limit of each browser test (pytest-timeout): a hung browser or page fails the test, not the run.
BROWSER_TIMEOUT_S = 300


def in_ci() -> bool:
    """True when the environment variable CI is set to a true value (as CI services set it: CI=true)."""
    return os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")


def _missing_setup_dependency(report: pytest.TestReport | pytest.CollectReport) -> str | None:
    """The set-up dependency a skip report blames, if any."""
    if not report.skipped or hasattr(report, "wasxfail"):
        return None
    longrepr = report.longrepr
    reason = str(longrepr[2] if isinstance(longrepr, tuple) and len(longrepr) == 3 else longrepr).lower()
    return next((dep for dep in SETUP_DEPENDENCIES if dep in reason), None)


def _fail_setup_skip(report: pytest.TestReport | pytest.CollectReport) -> None:
    dependency = _missing_setup_dependency(report)
    if dependency is not None and in_ci():
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else report.longrepr
        report.outcome = "failed"
        report.longrepr = (f"CI=true, but this test was skipped because {dependency} is missing ({reason}); the "
                           "set-up (`make install`: apt chromium, pip '.[dev]') provides it, so the set-up is broken")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> Iterator[None]:
    outcome = yield
    _fail_setup_skip(outcome.get_result())


@pytest.hookimpl(hookwrapper=True)
def pytest_make_collect_report(collector: pytest.Collector) -> Iterator[None]:
    outcome = yield  # a module-level importorskip (gradio) skips the whole file at collection
    _fail_setup_skip(outcome.get_result())


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)


@pytest.fixture
def tiny_ijepa_config() -> hf_jepa.ImageJepaConfig:
    return hf_jepa.ImageJepaConfig(image_size=32, patch_size=8, hidden_size=64, num_hidden_layers=2,
                                   num_attention_heads=4, intermediate_size=128, predictor_hidden_size=32,
                                   predictor_num_hidden_layers=2, predictor_num_attention_heads=2,
                                   predictor_intermediate_size=64)


@pytest.fixture
def tiny_vjepa2_config() -> hf_jepa.VideoJepaConfig:
    return hf_jepa.VideoJepaConfig(image_size=32, patch_size=8, num_frames=4, hidden_size=64, num_hidden_layers=2,
                                   num_attention_heads=4, intermediate_size=128, predictor_hidden_size=32,
                                   predictor_num_hidden_layers=2, predictor_num_attention_heads=2,
                                   predictor_intermediate_size=64, num_mask_tokens=3)


@pytest.fixture
def tiny_ac_config(tiny_vjepa2_config: hf_jepa.VideoJepaConfig) -> hf_jepa.JepaWorldModelConfig:
    return hf_jepa.JepaWorldModelConfig(encoder_config=tiny_vjepa2_config, predictor_hidden_size=32,
                                        predictor_num_hidden_layers=2, predictor_num_attention_heads=2,
                                        predictor_intermediate_size=64, action_dim=3, state_dim=3, max_steps=8)


def tiny_pusht_world_model(state_dim: int = 5, action_dim: int = 2, image_size: int = 32) -> hf_jepa.JepaWorldModel:
    """A randomly initialised, tiny JepaWorldModel of Push-T's widths (or others), frame_skip 2, in eval mode."""
    encoder = hf_jepa.VideoJepaConfig(image_size=image_size, patch_size=16, num_frames=4, hidden_size=32,
                                      num_hidden_layers=1, num_attention_heads=2, intermediate_size=64,
                                      predictor_hidden_size=32, predictor_num_hidden_layers=1,
                                      predictor_num_attention_heads=2, predictor_intermediate_size=64)
    config = hf_jepa.JepaWorldModelConfig(encoder_config=encoder, predictor_hidden_size=32,
                                          predictor_num_hidden_layers=1, predictor_num_attention_heads=2,
                                          predictor_intermediate_size=64, action_dim=action_dim, state_dim=state_dim,
                                          frame_skip=2, state_update="hold", max_steps=8)
    return hf_jepa.JepaWorldModel(config).eval()


def world_model_outputs(model: Any, frames: torch.Tensor, actions: torch.Tensor,
                        states: torch.Tensor) -> dict[str, torch.Tensor]:
    """A JepaWorldModel's encoder latents, teacher-forced predictions and 2-step rollout on the given inputs, so a
    round trip compares the predictor too, not only `encode`. Self-contained: remote-code tests paste its source
    (`inspect.getsource`) into interpreters that cannot import this file."""
    import torch

    with torch.no_grad():
        out = model(actions=actions, states=states, pixel_values_videos=frames, auto_steps=2)
    return {"latents": out.latents, "teacher_forced": out.teacher_forced, "rollout": out.rollout}


def world_model_outputs_source() -> str:
    """`world_model_outputs`' source with its imports, to paste into a fresh interpreter's script."""
    import inspect

    return "from typing import Any\n\nimport torch\n\n" + inspect.getsource(world_model_outputs)


def launch_space(config: Any) -> Iterator[str]:
    """Launch the Space app of `config` on a free local port; yields its URL, closes it (and the model cache) after."""
    import socket

    import hf_jepa.space as space

    ui = pytest.importorskip("hf_jepa.space.ui", reason="the Space needs gradio")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    space.clear_model_cache()
    demo = ui.build_demo(config)
    demo.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True,
                **ui.launch_kwargs(config))
    try:
        yield f"http://127.0.0.1:{port}/"
    finally:
        demo.close()
        space.clear_model_cache()


HUB_COMMIT = "0123456789abcdef0123456789abcdef01234567"


def hub_cache_snapshot(hub_cache: Path, repo_id: str, files: Path) -> Path:
    """Place the files of folder `files` as an HF cache snapshot of `repo_id` (`models--org--name/snapshots/<hash>`,
    `refs/main`), as a download would leave them; `HF_HUB_OFFLINE=1` then resolves the repo id from there."""
    repo_dir = hub_cache / f"models--{repo_id.replace('/', '--')}"
    snapshot = repo_dir / "snapshots" / HUB_COMMIT
    shutil.copytree(files, snapshot)
    (repo_dir / "refs").mkdir(parents=True)
    (repo_dir / "refs" / "main").write_text(HUB_COMMIT)
    return snapshot


# Prepended to a script by `run_python(..., block_hf_jepa=True)`: `import hf_jepa` fails from then on.
BLOCK_HF_JEPA = """
import sys, importlib.abc
class _BlockHfJepa(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name == "hf_jepa" or name.startswith("hf_jepa."):
            raise ImportError("hf_jepa is blocked in this process")
sys.meta_path.insert(0, _BlockHfJepa())
try:
    import hf_jepa  # noqa: F401
    raise SystemExit("hf_jepa should not be importable here")
except ImportError:
    pass
"""


def run_python(script: str, tmp_path: Path, *, block_hf_jepa: bool = False) -> subprocess.CompletedProcess:
    """Run `script` (dedented) in a fresh interpreter working in `tmp_path`, offline, with its HF folders under
    `tmp_path` (hub/ the Hub cache, modules/ the remote-code modules, hf_home/); with `block_hf_jepa` the interpreter
    cannot import hf_jepa, as on a machine that only has transformers."""
    env = {**os.environ, "HF_HUB_CACHE": str(tmp_path / "hub"), "HF_HUB_OFFLINE": "1",
           "HF_MODULES_CACHE": str(tmp_path / "modules"), "HF_HOME": str(tmp_path / "hf_home")}
    code = (BLOCK_HF_JEPA if block_hf_jepa else "") + textwrap.dedent(script)
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=tmp_path,
                          timeout=300)


@pytest.fixture
def fresh_accelerate_state():
    """Accelerate's process-wide state reset before and after a test (each test builds its own Accelerator)."""
    from accelerate.state import AcceleratorState, GradientState

    AcceleratorState._reset_state(True)
    GradientState._reset_state()
    yield
    AcceleratorState._reset_state(True)
    GradientState._reset_state()


def load_script(name: str) -> ModuleType:
    """`scripts/<name>.py` imported as a module (its `main(argv)` runs the script in-process)."""
    path = Path(__file__).resolve().parents[1] / "scripts" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"{name}_script", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module

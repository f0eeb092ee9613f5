"""Tests for hf_jepa.planning (search, energy, mpc): CEM / MPPI on synthetic energies, latent energy, MPC loop."""

from __future__ import annotations

import logging
import math
import time

import gymnasium as gym
import numpy as np
import pytest
import torch

from hf_jepa.planning import (
    CEMConfig,
    Episode,
    MPPIConfig,
    PlanResult,
    cem,
    colored_noise,
    latent_energy,
    mppi,
    project_actions,
    run_mpc,
    shift_plan,
)

H, A = 4, 2
TARGET = torch.tensor([[0.3, -0.2], [0.1, 0.4], [-0.5, 0.0], [0.25, -0.35]])  # (H, A), inside [-1, 1]


def bowl(target: torch.Tensor):
    """Quadratic bowl energy with minimum 0 at ``target`` (H, A): (S, H, A) -> (S,)."""

    def energy(actions: torch.Tensor) -> torch.Tensor:
        return (actions - target).square().sum(dim=(1, 2))

    return energy


def small_cem(**kw) -> CEMConfig:
    base = dict(
        horizon=H,
        num_samples=256,
        topk=16,
        iterations=30,
        init_std=0.5,
        momentum_mean=0.1,
        momentum_std=0.1,
        min_std=0.0,
        action_low=-1.0,
        action_high=1.0,
    )
    base.update(kw)
    return CEMConfig(**base)


def small_mppi(**kw) -> MPPIConfig:
    base = dict(
        horizon=H, num_samples=512, iterations=40, temperature=0.01, noise_std=0.1, action_low=-1.0, action_high=1.0
    )
    base.update(kw)
    return MPPIConfig(**base)


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


# ---------------------------------------------------------------------------------------------- optimum


def test_cem_finds_bowl_minimum():
    cfg = small_cem()
    res = cem(bowl(TARGET), cfg, action_dim=A, generator=gen(0))
    assert isinstance(res, PlanResult)
    assert res.actions.shape == (H, A)
    assert len(res.energy_history) == cfg.iterations
    assert (res.actions - TARGET).abs().max().item() < 1e-2
    assert res.final_energy < 1e-3
    assert res.energy_history[-1] < res.energy_history[0]


def test_colored_noise_unit_variance_and_smooth():
    """beta=0 is torch.randn itself; beta=2 keeps unit variance per entry and correlates neighbouring steps."""
    white = colored_noise((4, 6, 2), 0.0, gen(3))
    torch.testing.assert_close(white, torch.randn(4, 6, 2, generator=gen(3)), rtol=0, atol=0)
    for h in (5, 8):
        x = colored_noise((20000, h, 2), 2.0, gen(0))
        assert x.shape == (20000, h, 2)
        torch.testing.assert_close(x.var(0), torch.ones(h, 2), atol=0.05, rtol=0)
        lag1 = (x[:, 1:] * x[:, :-1]).mean().item()
        assert lag1 > 0.3, lag1  # white noise: ~0
    res = cem(bowl(TARGET), small_cem(noise_beta=2.0), action_dim=A, generator=gen(0))
    assert (res.actions - TARGET).abs().max().item() < 1e-2


def test_cem_elite_memory_and_best_sample():
    """keep_elites carries the elite into the next iteration without re-scoring it (so the elite energy never
    rises); return_best returns the lowest-energy candidate ever scored, with its energy."""
    scored: list[tuple[torch.Tensor, torch.Tensor]] = []

    def energy(actions: torch.Tensor) -> torch.Tensor:
        e = bowl(TARGET)(actions) + 0.3 * torch.sin(7 * actions).sum(dim=(1, 2))  # (S,) bumpy: local minima
        scored.append((actions.clone(), e))
        return e

    cfg = small_cem(iterations=6, keep_elites=16, return_best=True)
    res = cem(energy, cfg, action_dim=A, generator=gen(0))
    rows = [a.shape[0] for a, _ in scored]
    assert rows == [256] + [256 - 16] * 5  # the kept elites are not scored again
    assert all(b <= a + 1e-6 for a, b in zip(res.energy_history[:-1], res.energy_history[1:], strict=True))
    every_action, every_energy = torch.cat([a for a, _ in scored]), torch.cat([e for _, e in scored])
    i = int(every_energy.argmin())
    torch.testing.assert_close(res.actions, every_action[i])
    assert res.final_energy == pytest.approx(float(every_energy[i]))
    plain = cem(energy, small_cem(iterations=6), action_dim=A, generator=gen(0))
    assert res.final_energy <= plain.final_energy
    with pytest.raises(ValueError, match="CEMConfig.keep_elites=17"):
        small_cem(keep_elites=17)


def test_mppi_finds_bowl_minimum():
    cfg = small_mppi()
    res = mppi(bowl(TARGET), cfg, action_dim=A, generator=gen(0))
    assert res.actions.shape == (H, A)
    assert len(res.energy_history) == cfg.iterations
    assert (res.actions - TARGET).abs().max().item() < 3e-2
    assert res.final_energy < 5e-3
    assert res.energy_history[-1] < res.energy_history[0]


def test_presets_run_and_document_sources():
    meta = CEMConfig.meta_vjepa2_ac()
    assert (meta.horizon, meta.num_samples, meta.topk, meta.iterations) == (2, 400, 10, 10)
    assert (meta.momentum_mean, meta.momentum_std, meta.max_norm) == (0.15, 0.15, None)
    assert meta.action_high[:3] == (0.05,) * 3 and meta.action_high[3:6] == (0.0,) * 3
    lewm = CEMConfig.lewm()
    assert (lewm.horizon, lewm.num_samples, lewm.topk, lewm.iterations, lewm.init_std) == (5, 300, 30, 30, 1.0)
    assert "world_model_wrapper" in CEMConfig.meta_vjepa2_ac.__doc__
    assert "stable-worldmodel" in CEMConfig.lewm.__doc__

    # Meta preset on 7-D DROID actions: rotation dims stay exactly 0, xyz in the 0.05 box
    target = torch.tensor([[0.03, -0.02, 0.01, 0.0, 0.0, 0.0, 0.5]] * 2)
    res = cem(bowl(target), meta, action_dim=7, generator=gen(1))
    assert torch.all(res.actions[:, 3:6] == 0)
    assert res.actions[:, :3].abs().max() <= 0.05 + 1e-7
    assert (res.actions - target).abs().max().item() < 0.05

    # LeWM preset (unbounded) on a 2-D bowl, trimmed iterations to stay fast
    res = cem(bowl(torch.full((5, 2), 1.7)), lewm.replace(iterations=15), action_dim=2, generator=gen(2))
    assert (res.actions - 1.7).abs().max().item() < 0.05


# ---------------------------------------------------------------------------------------------- constraints


def _recording(energy):
    seen: list[torch.Tensor] = []

    def fn(actions: torch.Tensor) -> torch.Tensor:
        seen.append(actions.clone())
        return energy(actions)

    return fn, seen


@pytest.mark.parametrize("planner", ["cem", "mppi"])
def test_bounds_and_max_norm_respected(planner):
    far = torch.full((H, A), 5.0)  # optimum outside the action set
    fn, seen = _recording(bowl(far))
    low, high, max_norm = (-0.3, -0.5), (0.4, 0.2), 0.25
    if planner == "cem":
        cfg = small_cem(action_low=low, action_high=high, max_norm=max_norm, iterations=10)
        res = cem(fn, cfg, action_dim=A, generator=gen(0))
    else:
        cfg = small_mppi(action_low=low, action_high=high, max_norm=max_norm, iterations=10, noise_std=0.5)
        res = mppi(fn, cfg, action_dim=A, generator=gen(0))
    lo, hi = torch.tensor(low), torch.tensor(high)
    for x in [*seen, res.actions[None]]:
        assert torch.all(x >= lo - 1e-6) and torch.all(x <= hi + 1e-6)
        assert x.norm(dim=-1).max().item() <= max_norm + 1e-5
    # pushed toward (5, 5): the plan sits near the edge of the norm ball (a weighted mean of edge points
    # lies slightly inside it)
    assert res.actions.norm(dim=-1).min().item() > 0.8 * max_norm


def test_project_actions():
    a = torch.tensor([[3.0, 4.0], [0.1, 0.0], [-2.0, 0.0]])
    out = project_actions(a, torch.tensor([-1.0, -1.0]), torch.tensor([1.0, 1.0]), max_norm=1.0)
    torch.testing.assert_close(out, torch.tensor([[0.6, 0.8], [0.1, 0.0], [-1.0, 0.0]]))
    out = project_actions(a, torch.tensor([-1.0, -1.0]), torch.tensor([1.0, 1.0]))
    torch.testing.assert_close(out, torch.tensor([[1.0, 1.0], [0.1, 0.0], [-1.0, 0.0]]))


def test_project_actions_bounds_each_group():
    """norm_groups=k: an action of k env actions side by side keeps each part in the ball, not only the whole."""
    a = torch.tensor([[3.0, 4.0, 0.3, 0.4]])  # parts of norm 5 and 0.5
    out = project_actions(a, torch.full((4,), -2.0), torch.full((4,), 2.0), max_norm=1.0, norm_groups=2)
    torch.testing.assert_close(out, torch.tensor([[0.6, 0.8, 0.3, 0.4]]))
    whole = project_actions(a, torch.full((4,), -2.0), torch.full((4,), 2.0), max_norm=1.0)
    assert abs(float(whole.norm()) - 1.0) < 1e-6
    with pytest.raises(ValueError, match="norm_groups=3.*a divisor of the action width 4"):
        CEMConfig(action_low=[-1.0] * 4, action_high=[1.0] * 4, norm_groups=3)


# ---------------------------------------------------------------------------------------------- determinism


@pytest.mark.parametrize("planner", ["cem", "mppi"])
def test_determinism_per_seed(planner):
    fn, cfg, call = (
        (bowl(TARGET), small_cem(iterations=5), cem)
        if planner == "cem"
        else (bowl(TARGET), small_mppi(iterations=5), mppi)
    )
    a = call(fn, cfg, action_dim=A, generator=gen(7)).actions
    b = call(fn, cfg, action_dim=A, generator=gen(7)).actions
    c = call(fn, cfg, action_dim=A, generator=gen(8)).actions
    assert torch.equal(a, b)
    assert not torch.equal(a, c)
    # the global RNG plays no part
    torch.manual_seed(123)
    d = call(fn, cfg, action_dim=A, generator=cfg.replace(seed=7).make_generator()).actions
    assert torch.equal(a, d)


def test_warm_start_and_shift_plan():
    plan = torch.arange(8.0).reshape(4, 2)
    torch.testing.assert_close(shift_plan(plan, 1), torch.tensor([[2.0, 3], [4, 5], [6, 7], [0, 0]]))
    torch.testing.assert_close(shift_plan(plan, 2, fill="last"), torch.tensor([[4.0, 5], [6, 7], [6, 7], [6, 7]]))
    # a warm start at the optimum with tiny std stays there
    cfg = small_cem(init_std=1e-4, iterations=2)
    res = cem(bowl(TARGET), cfg, action_dim=A, generator=gen(0), init_mean=TARGET)
    assert (res.actions - TARGET).abs().max().item() < 1e-3
    # a shorter init_mean is zero-padded at the end
    res = cem(bowl(torch.zeros(H, A)), cfg, action_dim=A, generator=gen(0), init_mean=TARGET[:2])
    assert (res.actions[:2] - TARGET[:2]).abs().max().item() < 1e-3
    assert res.actions[2:].abs().max().item() < 1e-3


def test_energy_fn_shape_checked_and_nan_ranked_last():
    with pytest.raises(ValueError, match=r"energy_fn returned shape"):
        cem(lambda x: x.sum(dim=2), small_cem(iterations=1), action_dim=A, generator=gen(0))

    def nan_half(actions):  # candidates with a positive first coordinate get nan
        e = bowl(TARGET)(actions)
        return torch.where(actions[:, 0, 0] > 0, torch.nan, e)

    res = cem(nan_half, small_cem(iterations=10), action_dim=A, generator=gen(0))
    assert res.actions[0, 0] <= 1e-6
    assert all(math.isfinite(e) for e in res.energy_history)
    res = mppi(nan_half, small_mppi(iterations=10), action_dim=A, generator=gen(0))
    assert res.actions[0, 0] <= 1e-6
    assert all(math.isfinite(e) for e in res.energy_history)
    # nothing finite: MPPI keeps its mean (the warm start) and reports inf
    res = mppi(
        lambda x: torch.full(x.shape[:1], torch.nan),
        small_mppi(iterations=2),
        action_dim=A,
        generator=gen(0),
        init_mean=TARGET,
    )
    torch.testing.assert_close(res.actions, TARGET)
    assert res.energy_history == [math.inf, math.inf] and res.final_energy == math.inf


def test_debug_logging(caplog):
    with caplog.at_level(logging.DEBUG, logger="hf_jepa.planning.search"):
        cem(bowl(TARGET), small_cem(iterations=2), action_dim=A, generator=gen(0))
        mppi(bowl(TARGET), small_mppi(iterations=2), action_dim=A, generator=gen(0))
    assert any("cem iter 2/2" in r.message for r in caplog.records)
    assert any("mppi iter 2/2" in r.message for r in caplog.records)


# ---------------------------------------------------------------------------------------------- configs


@pytest.mark.parametrize(
    ("cls", "kwargs", "field"),
    [
        (CEMConfig, dict(topk=500, num_samples=400), "topk"),
        (CEMConfig, dict(horizon=0), "horizon"),
        (CEMConfig, dict(iterations=2.5), "iterations"),
        (CEMConfig, dict(momentum_mean=1.0), "momentum_mean"),
        (CEMConfig, dict(momentum_std=-0.1), "momentum_std"),
        (CEMConfig, dict(init_std=-1.0), "init_std"),
        (CEMConfig, dict(init_std=(0.1, -0.2)), "init_std[1]"),
        (CEMConfig, dict(action_low=1.0, action_high=-1.0), "action_low"),
        (CEMConfig, dict(max_norm=0.0), "max_norm"),
        (CEMConfig, dict(min_std=float("nan")), "min_std"),
        (CEMConfig, dict(seed=-1), "seed"),
        (CEMConfig, dict(noise_beta=-1.0), "noise_beta"),
        (MPPIConfig, dict(temperature=0.0), "temperature"),
        (MPPIConfig, dict(noise_std=float("inf")), "noise_std"),
        (MPPIConfig, dict(num_samples=True), "num_samples"),
        (MPPIConfig, dict(max_norm=-2.0), "max_norm"),
    ],
)
def test_config_validation_names_field_and_value(cls, kwargs, field):
    with pytest.raises(ValueError) as err:
        cls(**kwargs)
    msg = str(err.value)
    assert f"{cls.__name__}.{field}=" in msg
    assert "expected" in msg


def test_config_per_dim_lengths():
    with pytest.raises(ValueError, match="different lengths"):
        CEMConfig(action_low=(-1.0, -1.0), action_high=(1.0, 1.0, 1.0))
    cfg = CEMConfig(action_low=[-1, -2], action_high=[1, 2], init_std=0.3)
    assert cfg.action_low == (-1.0, -2.0)
    with pytest.raises(ValueError, match="action_dim=3"):
        cem(bowl(torch.zeros(5, 3)), cfg, action_dim=3, generator=gen(0))
    with pytest.raises(ValueError, match="CEMConfig.topk"):
        CEMConfig.lewm().replace(topk=1000)


# ---------------------------------------------------------------------------------------------- energy


def test_latent_energy_by_hand():
    pred = torch.tensor([[[1.0, 2.0], [3.0, 4.0]], [[0.0, 0.0], [0.0, 0.0]]])  # (S=2, N=2, D=2)
    goal = torch.tensor([[1.0, 0.0], [0.0, 4.0]])  # (N, D)
    # S0 diffs: [0, 2, 3, 0]; S1 diffs: [-1, 0, 0, -4]
    torch.testing.assert_close(latent_energy(pred, goal), torch.tensor([5 / 4, 5 / 4]))
    torch.testing.assert_close(latent_energy(pred, goal, kind="mse"), torch.tensor([13 / 4, 17 / 4]))
    per_sample_goal = torch.stack([goal, torch.zeros(2, 2)])  # (S, N, D)
    torch.testing.assert_close(latent_energy(pred, per_sample_goal), torch.tensor([5 / 4, 0.0]))
    with pytest.raises(ValueError, match="does not match"):
        latent_energy(pred, torch.zeros(3, 2))
    with pytest.raises(ValueError, match="kind"):
        latent_energy(pred, goal, kind="l2")


# ---------------------------------------------------------------------------------------------- MPC


class PointMass(gym.Env):
    """2-D point mass: ``x' = clip(x + a)``, ``|a|_2 <= 0.2``; obs and goal are 16x16 RGB images."""

    metadata = {"render_modes": ["rgb_array"]}
    size = 16

    def __init__(self):
        self.action_space = gym.spaces.Box(-0.2, 0.2, shape=(2,), dtype=np.float32)
        self.observation_space = gym.spaces.Box(0, 255, shape=(self.size, self.size, 3), dtype=np.uint8)
        self.render_mode = "rgb_array"
        self.pos = np.zeros(2, np.float32)
        self.goal = np.zeros(2, np.float32)

    def _image(self, p: np.ndarray) -> np.ndarray:
        img = np.zeros((self.size, self.size, 3), np.uint8)
        i, j = ((p + 1) / 2 * (self.size - 1)).round().astype(int)
        img[i, j] = 255
        return img

    def _info(self) -> dict:
        dist = float(np.linalg.norm(self.pos - self.goal))
        return {"state": self.pos.copy(), "goal_state": self.goal.copy(), "distance": dist, "success": dist < 0.05}

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.pos = self.np_random.uniform(-0.9, -0.5, 2).astype(np.float32)
        self.goal = self.np_random.uniform(0.5, 0.9, 2).astype(np.float32)
        return self._image(self.pos), {**self._info(), "goal": self._image(self.goal)}

    def step(self, action):
        a = np.asarray(action, np.float32)
        norm = float(np.linalg.norm(a))
        if norm > 0.2 + 1e-5:
            raise AssertionError(f"action norm {norm} exceeds 0.2")
        self.pos = np.clip(self.pos + a, -1, 1).astype(np.float32)
        info = self._info()
        return self._image(self.pos), -info["distance"], info["success"], False, info

    def render(self):
        return self._image(self.pos)


def point_mass_plan_fn(config: CEMConfig):
    """CEM over the analytic model x_t = x_0 + cumsum(a); energy: summed squared distance to goal."""
    generator = config.make_generator()

    def plan_fn(obs, goal_obs, info) -> PlanResult:
        assert goal_obs.shape == (16, 16, 3)
        x0 = torch.as_tensor(info["state"])
        g = torch.as_tensor(info["goal_state"])

        def energy(actions):  # (S, H, 2) -> (S,)
            traj = x0 + actions.cumsum(dim=1)  # (S, H, 2)
            return (traj - g).square().sum(dim=(1, 2))

        return cem(energy, config, action_dim=2, generator=generator)

    return plan_fn


@pytest.mark.parametrize(("execute_actions", "replan_every"), [(1, 1), (2, 2)])
def test_mpc_reaches_goal(execute_actions, replan_every):
    cfg = CEMConfig(
        horizon=5, num_samples=200, topk=20, iterations=6, init_std=0.2, action_low=-0.2, action_high=0.2, max_norm=0.2
    )
    env = PointMass()
    start = time.perf_counter()
    ep = run_mpc(
        env, point_mass_plan_fn(cfg), max_steps=40, execute_actions=execute_actions, replan_every=replan_every, seed=0
    )
    elapsed = time.perf_counter() - start
    assert isinstance(ep, Episode)
    assert ep.success
    assert ep.terminated and not ep.truncated
    assert ep.final_distance is not None and ep.final_distance < 0.05
    n = len(ep.actions)
    assert 0 < n < 40
    assert len(ep.frames) == n + 1 and ep.frames[0].shape == (16, 16, 3) and ep.frames[0].dtype == np.uint8
    assert len(ep.states) == n + 1
    assert ep.num_replans == len(ep.energies) == math.ceil(n / (execute_actions * replan_every))
    assert all(len(e) == cfg.iterations for e in ep.energies)
    assert 0 < ep.seconds_per_action * n <= elapsed  # planning time per action, within the episode's wall time
    assert all(np.linalg.norm(a) <= 0.2 + 1e-5 for a in ep.actions)


def test_mpc_max_steps_and_missing_goal():
    cfg = CEMConfig(
        horizon=3, num_samples=32, topk=4, iterations=2, init_std=0.2, action_low=-0.2, action_high=0.2, max_norm=0.2
    )
    env = PointMass()
    ep = run_mpc(env, point_mass_plan_fn(cfg), max_steps=3, seed=1)
    assert len(ep.actions) == 3 and not ep.terminated and not ep.success
    with pytest.raises(ValueError, match="execute_actions \\* replan_every"):
        run_mpc(env, point_mass_plan_fn(cfg), max_steps=3, execute_actions=2, replan_every=2)

    class NoGoal(PointMass):
        def reset(self, *, seed=None, options=None):
            obs, info = super().reset(seed=seed)
            info.pop("goal")
            return obs, info

    with pytest.raises(KeyError, match="goal"):
        run_mpc(NoGoal(), point_mass_plan_fn(cfg), max_steps=3)

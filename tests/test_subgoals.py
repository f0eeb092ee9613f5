"""Subgoals from a graph of dataset frames: shortest paths follow the data (around a wall), not latent distance."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from hf_jepa.subgoals import LatentSubgoalGraph, SubgoalConfig

CENTRES = torch.stack(torch.meshgrid(torch.linspace(0, 1, 11), torch.linspace(0, 1, 11), indexing="ij"), -1)


def embed(p: tuple[float, float] | torch.Tensor) -> torch.Tensor:
    """(2,) position -> (1, 4, 121) latents: a Gaussian bump on an 11 x 11 grid (distance grows with position
    distance, then saturates), split over 4 tokens."""
    p = torch.as_tensor(p, dtype=torch.float32)
    bump = torch.exp(-((CENTRES - p) ** 2).sum(-1) / 0.02).flatten()  # (121,)
    return torch.stack([bump, 0.5 * bump, bump.flip(0), -bump])[None]  # (1, 4, 121)


def u_path(n: int = 31) -> torch.Tensor:
    """(3n, 2) positions along a U: up x=0, across y=1, down x=1 (a wall between (0, 0) and (1, 0))."""
    t = torch.linspace(0, 1, n)
    zeros, ones = torch.zeros(n), torch.ones(n)
    return torch.cat([torch.stack([zeros, t], 1), torch.stack([t, ones], 1), torch.stack([ones, 1 - t], 1)])


def test_subgoal_follows_the_data_around_the_wall() -> None:
    path = u_path()
    episodes = [torch.cat([embed(p) for p in path]), torch.cat([embed(p) for p in path.flip(0)])]  # (L, 4, 121) each
    graph = LatentSubgoalGraph.from_episodes(episodes, SubgoalConfig(stride=2, lookahead=3))
    assert graph.nodes.shape == (2 * 47, 4, 121) and graph.num_place_links > 0  # the two episodes are linked in place
    start, goal = embed((0.0, 0.0)), embed((1.0, 0.0))
    route = graph.path(start, goal)
    positions = torch.cat([path[::2], path.flip(0)[::2]])[route]  # (P, 2)
    np.testing.assert_allclose(positions[0], [0, 0], atol=1e-6)
    np.testing.assert_allclose(positions[-1], [1, 0], atol=1e-6)
    assert positions[:, 1].max() == 1.0  # over the top of the U, never straight across
    assert (positions[1:] - positions[:-1]).norm(dim=1).max() < 0.2  # no jumps between far-apart frames
    sub = graph.subgoal(start, goal)  # 3 time links up the left arm: away from the goal in latent distance
    np.testing.assert_allclose(sub, embed((0.0, 0.2)), atol=1e-5)
    assert (sub - goal).norm() > (start - goal).norm() - 1e-4
    near = embed((1.0, 0.1))
    assert torch.equal(graph.subgoal(near, goal), goal)  # one link away: plan to the goal itself


def test_subgoal_config_is_validated() -> None:
    with pytest.raises(ValueError, match="stride=0"):
        SubgoalConfig(stride=0)
    with pytest.raises(ValueError, match="link_scale"):
        SubgoalConfig(link_scale=0.0)
    with pytest.raises(ValueError, match="nodes"):
        LatentSubgoalGraph(torch.zeros(1, 4, 8), torch.zeros(1))
    graph = LatentSubgoalGraph.from_episodes([torch.randn(6, 4, 8)], SubgoalConfig(stride=1))
    with pytest.raises(ValueError, match="latents: expected"):
        graph.nearest(torch.zeros(1, 4, 9))

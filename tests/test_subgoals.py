"""Subgoals from a graph of dataset frames: shortest paths follow the data (around a wall), not latent distance."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from hf_jepa.planning.subgoals import LatentSubgoalGraph, SubgoalConfig, place_links

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


@pytest.mark.parametrize("block_rows", [1, 7, 1000])
def test_place_links_in_blocks_equal_the_full_distance_matrix(block_rows: int) -> None:
    points = torch.randn(60, 12, generator=torch.Generator().manual_seed(0))  # (M, F)
    full = torch.cdist(points, points)  # (M, M)
    upper = full[torch.triu_indices(60, 60, offset=1).unbind()]  # (M(M-1)/2,) each pair once
    ordered = upper.sort().values
    radius = float(ordered[500] + ordered[501]) / 2  # between two distances: no pair on the border
    expected = torch.nonzero(torch.triu(full < radius, diagonal=1))  # (E, 2) sorted by (i, j)
    pairs, dists = place_links(points, radius, block_rows=block_rows)
    assert pairs.shape == (501, 2)
    assert torch.equal(pairs, expected)
    torch.testing.assert_close(dists, full[expected[:, 0], expected[:, 1]])
    with pytest.raises(ValueError, match="block_rows=0"):
        place_links(points, radius, block_rows=0)


def test_saved_graph_loads_with_the_same_links_and_routes(tmp_path) -> None:
    """`save` -> `load` (and `subgoal_graph_from` on the file): same nodes, links and subgoals; overrides apply,
    a stride the nodes do not have and files that are not graphs are clear errors."""
    from safetensors.torch import save_file

    from hf_jepa.planning.subgoals import GRAPH_FILENAME, subgoal_graph_from

    path = u_path()
    episodes = [torch.cat([embed(p) for p in ps]).half().float() for ps in (path, path.flip(0))]  # (L, 4, 121) each
    graph = LatentSubgoalGraph.from_episodes(episodes, SubgoalConfig(stride=2, lookahead=3))
    file = graph.save(tmp_path / "wm" / GRAPH_FILENAME)  # float16: lossless for these float16-valued latents
    loaded = LatentSubgoalGraph.load(file)
    assert loaded.config == graph.config and torch.equal(loaded.nodes, graph.nodes)
    assert torch.equal(loaded.episode_of, graph.episode_of) and loaded.num_place_links == graph.num_place_links
    start, goal = embed((0.0, 0.0)), embed((1.0, 0.0))
    assert loaded.path(start, goal) == graph.path(start, goal)
    torch.testing.assert_close(loaded.subgoal(start, goal), graph.subgoal(start, goal))
    other = subgoal_graph_from(file, model=None, lookahead=1, stride=None)  # a file needs no model
    assert other.config == SubgoalConfig(stride=2, lookahead=1)
    with pytest.raises(ValueError, match="stride=3, but .* every 2 frames"):
        LatentSubgoalGraph.load(file, stride=3)
    with pytest.raises(ValueError, match=r"\['horizon'\]: expected fields of SubgoalConfig"):
        LatentSubgoalGraph.load(file, horizon=3)
    with pytest.raises(FileNotFoundError, match="no_such.safetensors"):
        LatentSubgoalGraph.load(tmp_path / "no_such.safetensors")
    save_file({"x": torch.zeros(1)}, str(tmp_path / "other.safetensors"))
    with pytest.raises(ValueError, match="not a file written by LatentSubgoalGraph.save"):
        LatentSubgoalGraph.load(tmp_path / "other.safetensors")

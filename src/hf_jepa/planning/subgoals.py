"""Subgoals from the training data: shortest paths over a graph of dataset frames in latent space.

A planner that scores plans by the latent distance to the goal image is greedy within its horizon: when the way to
the goal first leads *away* from it (in Two-Rooms, a start and goal below the door, in different rooms), a detour
longer than the horizon never scores better than waiting against the wall. Search on the replay buffer (Eysenbach
et al., 2019, "Search on the Replay Buffer"; SPTM, Savinov et al., 2018) fixes this without knowing the
environment: the frames of the trajectories the world model was trained on are the nodes of a graph, linked

- in time: frame t and frame t + stride of the same episode (a transition that happened; cost 1), and
- in place: two frames whose latents are closer than ``link_scale`` times the median latent distance of a
  time link (the agent was at about the same place in two episodes; cost distance / median, below link_scale).

The walls of an environment are never crossed by a time link, and a place link joins only frames that look alike,
so the shortest path from the current frame's nearest node to the goal's nearest node goes the way the data went
(through the door). `LatentSubgoalGraph.subgoal` returns the latents of the node ``lookahead`` time links along it, or
the goal itself when the goal is at most that far; the planner then plans toward that subgoal, replan
after replan (a receding waypoint). Latent distances are L2 over the flattened, layer-normed frame latents.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import dijkstra
from torch import Tensor

from hf_jepa.data.transforms import frame_transform

logger = logging.getLogger(__name__)

GRAPH_FORMAT = "hf_jepa.subgoal_graph.v1"  # safetensors metadata of `LatentSubgoalGraph.save` files
GRAPH_FILENAME = "subgoal_graph.safetensors"  # its name beside a world model (`train_world_model.py`)


@dataclass(frozen=True)
class SubgoalConfig:
    """Settings of a `LatentSubgoalGraph`.

    Attributes:
        stride: dataset frames between consecutive nodes of an episode (one hop of a time link).
        link_scale: place links join nodes closer than this times the median latent distance of a time link.
        lookahead: time links along the shortest path to the subgoal; the goal itself when it is at most this far.
            At the Two-Rooms recipe (stride 5, exploration at ~0.7 of full speed) 3 links are ~15 env steps of the
            data's motion (~0.3 world units), a quarter of the planner's reach (H = 6 model steps of 10 env steps);
            on the 50-episode evaluation 2 and 3 both planned 98%, 3 in fewer steps (39 against 42 on average).
    """

    stride: int = 5
    link_scale: float = 0.5
    lookahead: int = 3

    def __post_init__(self) -> None:
        for name in ("stride", "lookahead"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"SubgoalConfig {name}={value!r}: expected an int >= 1")
        if not 0.0 < self.link_scale:
            raise ValueError(f"SubgoalConfig link_scale={self.link_scale!r}: expected > 0")


def _config_fields(overrides: dict[str, Any]) -> dict[str, Any]:
    """`overrides` without None values, checked to name `SubgoalConfig` fields."""
    names = [f.name for f in dataclasses.fields(SubgoalConfig)]
    unknown = sorted(set(overrides) - set(names))
    if unknown:
        raise ValueError(f"subgoal settings {unknown}: expected fields of SubgoalConfig {names}")
    return {k: v for k, v in overrides.items() if v is not None}


def episode_nodes(latents: list[Tensor], stride: int) -> tuple[Tensor, Tensor]:
    """The node frames of per-episode latents, each (L, N, D): every `stride`-th frame.

    Returns:
        (M, N, D) node latents (in the latents' dtype) and (M,) episode index of each node.
    """
    kept = [z[::stride] for z in latents]  # each (ceil(L / stride), N, D)
    episode_of = torch.cat([torch.full((z.shape[0],), i) for i, z in enumerate(kept)])  # (M,)
    return torch.cat(kept), episode_of


def dataset_latents(path: str, model: torch.nn.Module, *, camera_key: str | None = None,
                    show_progress: bool = True) -> list[Tensor]:
    """Per-episode (L, N, D) float16 latents of every frame of a LeRobot v3 dataset (folder or Hub id; `camera_key`:
    its video, default the first), encoded by `model.encode` on the model's device after its frame transform."""
    from hf_jepa.data.trajectories import LatentEpisodeCache

    device = next(model.parameters()).device

    def encode(frames: Tensor) -> Tensor:  # (B, 1, C, S, S) on the CPU -> (B, N, D) on the CPU
        return model.encode(frames.to(device)).cpu()

    return LatentEpisodeCache.build(path, encode, frame_transform(model), camera_key=camera_key,
                                    show_progress=show_progress).latents


def save_graph(path: str | Path, nodes: Tensor, episode_of: Tensor, config: SubgoalConfig, *,
               dtype: torch.dtype = torch.float16) -> Path:
    """Write (M, N, D) `nodes`, their (M,) `episode_of` and `config` to one safetensors file for
    `LatentSubgoalGraph.load` (which computes the links; nothing derived is stored).

    Nodes are stored in `dtype`: float16 is lossless for nodes from a latent cache (it holds float16); the demo's
    6,300 nodes of 16 x 192 latents take 39 MB (a larger `stride` stores fewer). With the file beside a world model,
    planning needs neither the dataset nor its encoding.
    """
    from safetensors.torch import save_file

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    meta = {"format": GRAPH_FORMAT, "config": json.dumps(dataclasses.asdict(config))}
    save_file({"nodes": nodes.to(dtype).contiguous(), "episode_of": episode_of.long().contiguous()}, str(path),
              metadata=meta)
    logger.info("saved a subgoal graph (%d nodes) to %s", nodes.shape[0], path)
    return path


def place_links(points: Tensor, radius: float, *, block_rows: int = 1024) -> tuple[Tensor, Tensor]:
    """All pairs of rows of `points` (M, F) closer than `radius` (L2), each pair once (i < j), with their distances.

    Computed in blocks of `block_rows` rows against the rows after them, so memory is O(block_rows * M) rather
    than the O(M^2) of a full distance matrix (6,300 nodes: 26 MB per block of 1,024 rows instead of 160 MB).

    Returns:
        (E, 2) long pairs sorted by (i, j), and (E,) float distances.
    """
    if block_rows < 1:
        raise ValueError(f"block_rows={block_rows}: expected >= 1")
    pairs, dists = [torch.zeros(0, 2, dtype=torch.long)], [torch.zeros(0)]
    for start in range(0, points.shape[0], block_rows):
        dist = torch.cdist(points[start:start + block_rows], points[start:])  # (b, M - start) block: rows vs later
        close = torch.nonzero(dist < radius)  # (e, 2) local (row, col) indices
        close = close[close[:, 1] > close[:, 0]]  # keep j > i (drops the diagonal and the block's lower half)
        dists.append(dist[close[:, 0], close[:, 1]])
        pairs.append(close + start)  # local -> global indices (both offset by start)
    return torch.cat(pairs), torch.cat(dists)


class LatentSubgoalGraph:
    """A graph over dataset frames (see module docstring).

    Args:
        nodes: (M, N, D) latents of the node frames.
        episode_of: (M,) episode index of each node (consecutive nodes of an episode are time-linked).
        config: the graph settings.
    """

    def __init__(self, nodes: Tensor, episode_of: Tensor, config: SubgoalConfig | None = None) -> None:
        if nodes.dim() != 3 or episode_of.shape != (nodes.shape[0],):
            raise ValueError(f"nodes (M, N, D) and episode_of (M,) expected, got {tuple(nodes.shape)} and "
                             f"{tuple(episode_of.shape)}")
        if nodes.shape[0] < 2:
            raise ValueError(f"nodes: expected at least 2 frames, got {nodes.shape[0]}")
        self.config = config or SubgoalConfig()
        self.nodes = nodes.float()  # (M, N, D)
        self._flat = self.nodes.flatten(1)  # (M, N, D) -> (M, N*D)
        self.episode_of = episode_of.long()
        m = self._flat.shape[0]
        same = self.episode_of[1:] == self.episode_of[:-1]  # (M-1,) node i -> i+1 is a time link
        src = torch.nonzero(same).squeeze(1)  # (E_t,)
        if src.numel() == 0:
            raise ValueError("nodes: no two consecutive nodes of one episode (episodes shorter than the stride?)")
        self._time_link_from = same.numpy()  # (M-1,) bool: node i -> i+1 is a time link
        step = (self._flat[src + 1] - self._flat[src]).norm(dim=1)  # (E_t,) latent length of a time link
        self.time_link_distance = float(step.median())
        radius = self.config.link_scale * self.time_link_distance
        close, close_dist = place_links(self._flat, radius)  # (E_p, 2) pairs i < j, (E_p,) their distances
        rows = torch.cat([src, close[:, 0]]).numpy()
        cols = torch.cat([src + 1, close[:, 1]]).numpy()
        costs = torch.cat([torch.ones(src.numel()), close_dist / self.time_link_distance]).numpy()
        # a pair both time- and place-linked keeps its cheaper link (a sparse matrix would add duplicates up)
        order = np.lexsort((costs, rows * m + cols))  # by pair, cheapest first
        keys = (rows * m + cols)[order]
        first = order[np.r_[True, keys[1:] != keys[:-1]]]
        rows, cols, costs = rows[first], cols[first], costs[first]
        both = (np.r_[rows, cols], np.r_[cols, rows])  # symmetric: a link is walked either way
        self._graph = coo_matrix((np.r_[costs, costs], both), shape=(m, m)).tocsr()
        self.num_place_links = int(close.shape[0])
        self._routes: dict[int, tuple[np.ndarray, np.ndarray]] = {}  # goal node -> (distances, predecessors)
        self._goal: tuple[Tensor, int] | None = None  # the last goal latents asked for and their nearest node
        logger.info("subgoal graph: %d nodes, %d time links, %d place links (radius %.3f)", m, src.numel(),
                    self.num_place_links, radius)

    @classmethod
    def from_episodes(cls, latents: list[Tensor], config: SubgoalConfig | None = None) -> LatentSubgoalGraph:
        """Build from per-episode frame latents, each (L, N, D), keeping every `config.stride`-th frame."""
        config = config or SubgoalConfig()
        return cls(*episode_nodes(latents, config.stride), config)

    @classmethod
    def from_dataset(cls, path: str, model: torch.nn.Module, config: SubgoalConfig | None = None, *,
                     camera_key: str | None = None, show_progress: bool = True) -> LatentSubgoalGraph:
        """Encode every frame of a LeRobot v3 dataset (`dataset_latents`) and build the graph."""
        return cls.from_episodes(dataset_latents(path, model, camera_key=camera_key, show_progress=show_progress),
                                 config)

    def save(self, path: str | Path, *, dtype: torch.dtype = torch.float16) -> Path:
        """Write the nodes, their episodes and the config to one safetensors file (see `save_graph`)."""
        return save_graph(path, self.nodes, self.episode_of, self.config, dtype=dtype)

    @classmethod
    def load(cls, path: str | Path, **overrides: Any) -> LatentSubgoalGraph:
        """A graph from a `save`d file. `overrides`: `SubgoalConfig` fields replacing the saved ones (`lookahead`,
        `link_scale`; None values are ignored); the saved nodes fix `stride`, so a different one is an error."""
        from safetensors import safe_open

        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"subgoal graph {str(path)!r}: no such file (write one with "
                                    "LatentSubgoalGraph.save or train_world_model.py --save_subgoal_graph)")
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
            if meta.get("format") != GRAPH_FORMAT:
                raise ValueError(f"{path}: format={meta.get('format')!r}, expected {GRAPH_FORMAT!r} "
                                 "(not a file written by LatentSubgoalGraph.save)")
            nodes, episode_of = f.get_tensor("nodes"), f.get_tensor("episode_of")
        saved = SubgoalConfig(**json.loads(meta["config"]))
        overrides = _config_fields(overrides)
        if overrides.get("stride", saved.stride) != saved.stride:
            raise ValueError(f"subgoal stride={overrides['stride']}, but {path} holds nodes every {saved.stride} "
                             "frames (leave the stride unset to use the file's)")
        return cls(nodes, episode_of, dataclasses.replace(saved, **overrides))

    def nearest(self, latents: Tensor) -> int:
        """Index of the node nearest to (1, N, D) or (N, D) latents."""
        z = latents.reshape(1, -1).to(self._flat)  # (1, N*D)
        if z.shape[1] != self._flat.shape[1]:
            raise ValueError(f"latents: expected {tuple(self.nodes.shape[1:])} per frame, got {tuple(latents.shape)}")
        return int(torch.cdist(z, self._flat)[0].argmin())

    def _route(self, goal_node: int) -> tuple[np.ndarray, np.ndarray]:
        if goal_node not in self._routes:
            self._routes.clear()  # one goal per episode: keep the current one only
            dist, pred = dijkstra(self._graph, directed=True, indices=goal_node, return_predecessors=True)
            self._routes[goal_node] = (dist, pred)
        return self._routes[goal_node]

    def _goal_node(self, goal: Tensor) -> int:
        """`nearest(goal)`, looked up once per goal tensor (a planner passes the same one every replan)."""
        if self._goal is None or self._goal[0] is not goal:
            self._goal = (goal, self.nearest(goal))
        return self._goal[1]

    def path(self, latents: Tensor, goal: Tensor) -> list[int]:
        """Nodes of the shortest path from the node nearest `latents` to the node nearest `goal` (both ends
        included; just the start when the goal node is unreachable)."""
        start, goal_node = self.nearest(latents), self._goal_node(goal)
        _, pred = self._route(goal_node)
        nodes = [start]
        while nodes[-1] != goal_node and pred[nodes[-1]] >= 0:
            nodes.append(int(pred[nodes[-1]]))  # the predecessor on the goal's shortest-path tree: one hop closer
        return nodes

    def subgoal(self, latents: Tensor, goal: Tensor) -> Tensor:
        """(1, N, D) latents to plan toward from (1, N, D) `latents`: the node `lookahead` time links along the
        shortest path to the (1, N, D) `goal` latents (place links are free: they move nowhere), or `goal` itself
        when the goal node is at most that far (or unreachable)."""
        path = self.path(latents, goal)
        hops = 0
        for node, nxt in zip(path[:-1], path[1:], strict=True):
            hops += int(abs(node - nxt) == 1 and self._time_link_from[min(node, nxt)])
            if hops >= self.config.lookahead:
                return self.nodes[nxt][None].to(goal)
        return goal


def subgoal_graph_from(source: str | Path, model: torch.nn.Module, *, show_progress: bool = True,
                       **overrides: Any) -> LatentSubgoalGraph:
    """The subgoal graph named by `source`: a `*.safetensors` file written by `LatentSubgoalGraph.save` (e.g.
    `train_world_model.py --save_subgoal_graph`: `<model>/subgoal_graph.safetensors`), or a LeRobot dataset (folder or
    Hub id) whose frames `model` encodes. `overrides`: `SubgoalConfig` fields (None values are ignored)."""
    if str(source).endswith(".safetensors"):
        return LatentSubgoalGraph.load(source, **overrides)
    config = SubgoalConfig(**_config_fields(overrides))
    return LatentSubgoalGraph.from_dataset(str(source), model, config, show_progress=show_progress)


__all__ = ["GRAPH_FILENAME", "LatentSubgoalGraph", "SubgoalConfig", "dataset_latents", "episode_nodes", "place_links",
           "save_graph", "subgoal_graph_from"]

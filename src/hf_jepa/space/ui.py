"""The Gradio Blocks app of the Space: the Plan tab (Two-Rooms or Push-T), Features and Probe (named endpoints /plan,
/plan_pusht, /features, /probe). The only module of hf_jepa that imports gradio.

Under load the app stays bounded: at most `SpaceConfig.plan_concurrency` plans and `encoder_concurrency` Features /
Probe requests run at once, at most `max_queue_size` wait; one more is refused at once with gradio's busy message
(gradio_client raises `QueueError("Queue is full! Please try again.")`, the browser shows "This application is
currently busy. Please try again."). Plans are long, so at most `max_waiting_plans` of them wait: one more is refused
("The planner is busy: ... Try again in a minute.", with the expected wait once a plan has finished), which leaves the
rest of the queue to the Features and Probe tabs. In the browser a click on Plan checks first and says so in a
warning notice, or, when plans are ahead, its place in the planner's queue and the expected wait
(`PlanQueue`); API clients get the refusal from the endpoint's validator (gradio_client's `ValidationError`). The
pickers' own events (sliders, clicks, Random, previews) skip the queue, so the page stays responsive while it is
full. Uploads beyond `max_upload_mb` are refused by gradio and at most `max_sessions` sessions keep state
(`launch_kwargs(config)`); gradio's copies of uploads and results are deleted after `cache_max_age_s`, and the Plan
tab keeps only its newest output folders."""

from __future__ import annotations

import logging
import shutil
import tempfile
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import gradio as gr
import numpy as np

from hf_jepa.envs.two_rooms import TwoRoomsEnv
from hf_jepa.planning.evaluation import planner_config
from hf_jepa.space.config import (
    IMAGE_EXTENSIONS,
    VIDEO_EXTENSIONS,
    HubFileUnavailable,
    InputError,
    ModelUnavailable,
    SpaceConfig,
)
from hf_jepa.space.features import classify, encoder_of, extract_patch_features, features_panel
from hf_jepa.space.media import example_clips, read_media
from hf_jepa.space.models import (
    describe_model,
    load_model,
    load_model_state_latents,
    load_subgoal_graph,
    model_status,
)
from hf_jepa.space.probe import example_truth, probe_examples, probe_record
from hf_jepa.space.pusht import (
    DEFAULT_GOAL,
    DEFAULT_START,
    from_sliders,
    plan_in_pusht,
    pusht_scene,
    pusht_status,
    random_pusht_task,
    render_pusht,
    to_sliders,
)
from hf_jepa.space.two_rooms import energy_figure, plan_in_two_rooms, render_arena

logger = logging.getLogger(__name__)

__all__ = ["BUSY", "CSS", "INTRO", "PLAN_ENVS", "PlanQueue", "RecentFolders", "build_demo", "launch_kwargs"]

BUSY = "The planner is busy:"  # starts the refusal of a plan beyond SpaceConfig.max_waiting_plans
PLAN_ENVS = ("Two-Rooms", "Push-T")  # the Plan tab's environment radio

INTRO = """# hf_jepa: JEPA features, probes and planning
I-JEPA / V-JEPA 2 encoders and the V-JEPA 2-AC world model as `transformers` models.
**Features** shows what the encoder sees, **Probe** classifies a clip, **Plan** steers an agent to a goal image
(Two-Rooms, or pushing the T block in Push-T) by imagining futures in latent space."""

CSS = """
#intro {margin-bottom: 0.25rem}
.status {font-size: 0.9rem}
footer {display: none !important}
"""


class PlanQueue:
    """The plans' share of the queue: how many wait (`waiting`, gradio's queue of the "plan" concurrency group), how
    many run, and how long the recent ones took, for the notices a visitor sees before a plan joins.

    `check` runs on a click, before the plan itself joins the queue: beyond `max_waiting_plans` waiting plans it
    shows a warning notice (`gr.Warning`) with the expected wait and stops the click's chain;
    otherwise, when plans are ahead, an info notice with the place in the queue and the expected wait. `admit` is the
    plan endpoints' validator (the same refusal for API clients, who join without the click's check).
    """

    def __init__(self, config: SpaceConfig, waiting: Callable[[str], int]) -> None:
        self.config, self.waiting = config, waiting
        self._seconds: deque[float] = deque(maxlen=8)  # durations of the last plans
        self._running = 0
        self._lock = threading.Lock()

    @contextmanager
    def track(self) -> Iterator[None]:
        """Counts a plan as running while the block runs and records its duration."""
        start = time.perf_counter()
        with self._lock:
            self._running += 1
        try:
            yield
        finally:
            with self._lock:
                self._running -= 1
                self._seconds.append(time.perf_counter() - start)

    def expected_wait(self, ahead: int) -> str:
        """'about 1 min 20 s' for `ahead` plans before a new one (running ones count in full), or '' before any
        plan has finished."""
        with self._lock:
            if not self._seconds:
                return ""
            mean = sum(self._seconds) / len(self._seconds)
        seconds = round(mean * ahead / self.config.plan_concurrency)
        return f"about {seconds // 60} min {seconds % 60} s" if seconds >= 60 else f"about {max(1, seconds)} s"

    def busy_message(self) -> str | None:
        """The refusal while `max_waiting_plans` plans wait, else None."""
        n = self.waiting("plan")
        if n < self.config.max_waiting_plans:
            return None
        waiting_now = "1 plan is" if n == 1 else f"{n} plans are"
        wait = self.expected_wait(n + self._running)
        wait = f", {wait} of planning ahead" if wait else ""
        return (f"{BUSY} {waiting_now} already waiting (at most {self.config.max_waiting_plans}){wait}. "
                "Try again in a minute.")

    def check(self) -> None:
        """A click's check before its plan joins: a busy warning (and the chain stops), or the place in the queue."""
        if (busy := self.busy_message()) is not None:
            gr.Warning(busy)
            raise gr.Error(busy, visible=False, print_exception=False)  # stops `.success`: the plan does not join
        ahead = self.waiting("plan") + self._running
        if ahead >= self.config.plan_concurrency:
            wait = self.expected_wait(ahead)
            gr.Info(f"Your plan is number {ahead - self.config.plan_concurrency + 1} in the planner's queue"
                    + (f"; it starts in {wait}." if wait else "."))

    def admit(self, *inputs: Any) -> tuple:
        """The plan endpoints' validator: refused while `max_waiting_plans` plans wait, so plans cannot fill the
        whole queue and waits stay bounded (gradio_client raises ValidationError with the message)."""
        if (busy := self.busy_message()) is None:
            return tuple(gr.validate(True, "") for _ in inputs)
        return (gr.validate(False, busy), *(gr.validate(True, "") for _ in inputs[1:]))


class RecentFolders:
    """New folders under one temporary parent; making one deletes all but the newest `keep`. A handler's output files
    only need to outlive its return (gradio then copies them into its cache), so a long-lived app keeps a bounded
    number of them instead of one more folder per request."""

    def __init__(self, prefix: str, keep: int = 16) -> None:
        self.root = Path(tempfile.mkdtemp(prefix=prefix))
        self.keep = keep
        self._made: deque[Path] = deque()
        self._lock = threading.Lock()

    def new(self) -> Path:
        with self._lock:
            folder = Path(tempfile.mkdtemp(dir=self.root))
            self._made.append(folder)
            while len(self._made) > self.keep:
                shutil.rmtree(self._made.popleft(), ignore_errors=True)
        return folder


def _error(err: Exception) -> Any:
    """The gr.Error for an exception: our messages as they are, anything else in one line (logged in full)."""
    if isinstance(err, (InputError, ModelUnavailable)):
        return gr.Error(str(err), print_exception=False)
    logger.exception("unexpected error in the Space")
    return gr.Error(f"Something went wrong ({type(err).__name__}: {err}).", print_exception=False)


def _examples(config: SpaceConfig) -> tuple[list[tuple[str, str]], str]:
    """The example clips of the Features and Probe tabs and their heading: the first `config.examples` clips of the
    probe's test split (`probe_examples`, named by the probe's results file), else clips of the built-in textured
    moving digits' test split (`example_clips`); none (logged) when they cannot be made: the app runs without them."""
    record = probe_record(config.probe_model) if model_status(config.probe_model, "probe")[0] else None
    try:
        if record is not None:
            return probe_examples(record, config.examples), (
                f"Clips of the probe's {record.eval_split} split (`{record.dataset}`), with their true "
                f"`{record.label_column}`")
    except Exception:  # noqa: BLE001
        logger.exception("could not read the probe's %s split from %s; built-in clips instead", record.eval_split,
                         record.dataset)
    try:
        return example_clips(config.examples), "Clips of the built-in textured moving digits (test split)"
    except Exception:  # noqa: BLE001
        logger.exception("could not make the example clips; the Features and Probe tabs have none")
        return [], ""


def _status_of(source: str, what: str) -> str:
    """The model line, then what it was trained on."""
    _, status = model_status(source, what)
    about = describe_model(source, what)
    return f"{status} {about}" if about else status


def _upload_column(name: str, button: str, examples: list[tuple[str, str]], heading: str = "") -> tuple[Any, Any]:
    """An image / video upload, its action button and the example clips under `heading` (elem ids ``{name}-in``
    etc.)."""
    upload = gr.File(label="Image or video", file_types=list(IMAGE_EXTENSIONS + VIDEO_EXTENSIONS),
                     elem_id=f"{name}-in")
    run = gr.Button(button, variant="primary", elem_id=f"{name}-btn")
    if examples:
        gr.Examples([[path] for path, _ in examples], inputs=[upload], example_labels=[x for _, x in examples],
                    label=heading or "Example clips", elem_id=f"{name}-examples")
    return upload, run


def _checked_budget(config: SpaceConfig, max_steps: float, num_samples: float, iterations: float,
                    horizon: float) -> tuple[int, int, int, int]:
    """(MPC steps, CEM samples, CEM iterations, horizon) as ints, within the Plan tab's limits; else InputError."""
    steps, samples = int(max_steps), int(num_samples)
    if not 1 <= steps <= config.max_plan_steps:
        raise InputError(f"MPC steps must be in [1, {config.max_plan_steps}], got {steps}.")
    if not 4 <= samples <= config.max_plan_samples:
        raise InputError(f"CEM samples must be in [4, {config.max_plan_samples}], got {samples}.")
    if not (1 <= int(iterations) <= 50 and 1 <= int(horizon) <= 16):
        raise InputError("CEM iterations must be in [1, 50] and the horizon in [1, 16].")
    return steps, samples, int(iterations), int(horizon)


def _cem(model: Any, samples: int, iterations: int, horizon: int, seed: int, env: str = "two_rooms") -> Any:
    """The Plan tab's CEM settings in `model`'s action units (`planner_config`, with `env`'s recipe)."""
    return planner_config(model, "cem", env=env, horizon=horizon, num_samples=samples, topk=max(2, samples // 10),
                          iterations=iterations, seed=seed)


def _planner_settings(config: SpaceConfig) -> list[Any]:
    """The "Planner settings" accordion: [MPC steps, CEM samples, CEM iterations, horizon, seed] components."""
    with gr.Accordion("Planner settings", open=False):
        steps = gr.Slider(1, config.max_plan_steps, value=config.max_steps, step=1, label="MPC steps (at most)")
        samples = gr.Slider(4, config.max_plan_samples, value=config.num_samples, step=4, label="CEM samples")
        iters = gr.Slider(1, 20, value=config.iterations, step=1, label="CEM iterations")
        horizon = gr.Slider(1, 16, value=config.horizon, step=1, label="Horizon (actions)")
        seed = gr.Number(0, precision=0, label="Seed")
    return [steps, samples, iters, horizon, seed]


def _plan_results(size: int, ids: tuple[str, str, str, str]) -> list[Any]:
    """The result column: [trajectory GIF, goal image, energy plot, summary] with elem ids `ids` (same order)."""
    with gr.Row():
        trajectory = gr.Image(label="Trajectory (MPC)", type="filepath", height=size, elem_id=ids[0],
                              interactive=False)
        goal_img = gr.Image(label="Goal image given to the planner", type="filepath", height=size, elem_id=ids[1],
                            interactive=False)
    summary = gr.Markdown(elem_id=ids[3])
    plot = gr.Plot(label="Energy and distance to the goal", elem_id=ids[2])
    return [trajectory, goal_img, plot, summary]


def _on_plan_click(button: Any, queue: PlanQueue) -> Any:
    """A Plan button's click: `queue.check` first (queued with no concurrency limit of its own, so it runs at once),
    whose notice a visitor sees; chain the plan with `.success` (it joins only when the check let it)."""
    return button.click(queue.check, None, None, api_visibility="private", concurrency_limit=None,
                        concurrency_id="plan_check", show_progress="hidden")


def _plan_tab(config: SpaceConfig, waiting: Callable[[str], int]) -> None:
    """The Plan tab: an environment radio (Two-Rooms / Push-T) over one panel per environment (/plan,
    /plan_pusht; one concurrency group).

    `waiting(group)`: the requests of a concurrency group waiting in the queue; a plan beyond
    `config.max_waiting_plans` is refused (`PlanQueue`).
    """
    outputs = RecentFolders("hf_jepa_space_plans_", keep=max(16, 4 * config.plan_concurrency))
    admit = PlanQueue(config, waiting)
    choice = gr.Radio(list(PLAN_ENVS), value=PLAN_ENVS[0], label="Environment", elem_id="plan-env")
    with gr.Column(visible=True) as two_rooms_panel:
        _two_rooms_panel(config, outputs, admit)
    with gr.Column(visible=False) as pusht_panel:
        _pusht_panel(config, outputs, admit)
    choice.change(lambda env: (gr.Column(visible=env == PLAN_ENVS[0]), gr.Column(visible=env == PLAN_ENVS[1])),
                  [choice], [two_rooms_panel, pusht_panel], api_visibility="private", queue=False)


def _two_rooms_panel(config: SpaceConfig, outputs: RecentFolders, admit: PlanQueue) -> None:
    """Two-Rooms: a start and a goal picked on the arena, one MPC episode of the world model (/plan)."""
    arena_env = TwoRoomsEnv()
    size = config.display_size

    def plan_fn(sx: float, sy: float, gx: float, gy: float, max_steps: float, num_samples: float,
                iterations: float, horizon: float, seed: float,
                progress: gr.Progress = gr.Progress()) -> tuple[str, str, Any, str]:  # noqa: B008
        try:
            steps, samples, iters, h = _checked_budget(config, max_steps, num_samples, iterations, horizon)
            model = load_model(config.world_model, "world model")
            cem = _cem(model, samples, iters, h, int(seed))
            progress(0, desc="Encoding the start and goal images")

            def report(i: int, n: int) -> None:
                progress((i, n), desc=f"MPC step {i + 1} (at most {n})", unit="steps")

            note = ""
            try:
                source = config.subgoal_source()
            except HubFileUnavailable as err:  # not remembered: the next plan asks the Hub again
                gr.Warning(f"Planning toward the goal without subgoals: {err}")
                source, note = None, f" No subgoals this time: {err}"
            subgoals = load_subgoal_graph(source, model) if source else None
            with admit.track():
                out = plan_in_two_rooms(model, (sx, sy), (gx, gy), cem=cem, max_steps=steps, seed=int(seed),
                                        subgoals=subgoals, display_size=size, out_dir=outputs.new(), progress=report)
        except Exception as err:  # noqa: BLE001
            raise _error(err) from err
        return out.trajectory_gif, out.goal_png, energy_figure(out.energies, out.distances,
                                                                 int(model.config.frame_skip)), out.summary + note

    def picker(sx: float, sy: float, gx: float, gy: float) -> np.ndarray:
        return render_arena(arena_env, np.array([sx, sy]), np.array([gx, gy]), size=size)

    def on_click(target: str, sx: float, sy: float, gx: float, gy: float, evt: gr.SelectData) -> tuple:
        x, y = (evt.index[0] + 0.5) / size, (evt.index[1] + 0.5) / size
        if not arena_env.is_free(np.array([x, y])):
            gr.Warning("That spot is inside a wall: click on the black floor.")
            return sx, sy, gx, gy
        return (round(x, 3), round(y, 3), gx, gy) if target == "Start" else (sx, sy, round(x, 3), round(y, 3))

    def randomize(seed: float) -> tuple[float, float, float, float, int]:
        rng_seed = int(np.random.default_rng().integers(1_000_000))
        _, info = arena_env.reset(seed=rng_seed)
        s, g = arena_env.state, info["goal_state"]
        return round(float(s[0]), 3), round(float(s[1]), 3), round(float(g[0]), 3), round(float(g[1]), 3), rng_seed

    ok, status = model_status(config.world_model, "world model")
    gr.Markdown(
        "Pick a **start** and a **goal** (click the arena, use the sliders, or **Random**), then **Plan**. "
        "The world model imagines where each candidate action sequence leads, in latent space, and "
        "the agent takes the first action of the best one, then replans (MPC)."
    )
    gr.Markdown(status, elem_classes="status")
    with gr.Row(equal_height=False):
        with gr.Column(scale=2, min_width=340):
            arena = gr.Image(picker(0.25, 0.7, 0.75, 0.7), label="Arena: click to place", interactive=False,
                             height=size, width=size, elem_id="arena", buttons=[], format="png")
            target = gr.Radio(["Start", "Goal"], value="Start", label="A click on the arena places the",
                              elem_id="click-target")
            with gr.Row():
                sx = gr.Slider(0, 1, value=0.25, step=0.005, label="Start x", buttons=[])
                sy = gr.Slider(0, 1, value=0.7, step=0.005, label="Start y", buttons=[])
            with gr.Row():
                gx = gr.Slider(0, 1, value=0.75, step=0.005, label="Goal x", buttons=[])
                gy = gr.Slider(0, 1, value=0.7, step=0.005, label="Goal y", buttons=[])
            with gr.Row():
                random_btn = gr.Button("Random", elem_id="random-btn")
                plan_btn = gr.Button("Plan ▶", variant="primary", elem_id="plan-btn", interactive=ok)
            settings = _planner_settings(config)
        with gr.Column(scale=3):
            results = _plan_results(size, ("trajectory", "goal", "energy", "plan-summary"))
    coords = [sx, sy, gx, gy]
    for slider in coords:  # the arena's events are cheap: outside the queue, so they answer while it is full
        slider.change(picker, coords, arena, api_visibility="private", show_progress="hidden", queue=False)
    arena.select(on_click, [target, *coords], coords, api_visibility="private", queue=False)
    random_btn.click(randomize, [settings[-1]], [*coords, settings[-1]], api_visibility="private", queue=False)
    _on_plan_click(plan_btn, admit).success(plan_fn, [*coords, *settings], results, api_name="plan",
                                            validator=admit.admit,
                   concurrency_limit=config.plan_concurrency, concurrency_id="plan")


def _pusht_panel(config: SpaceConfig, outputs: RecentFolders, admit: PlanQueue) -> None:
    """Push-T: agent and block placed with sliders for the start and the goal (angles in degrees), previews of both,
    one MPC episode of the Push-T world model (/plan_pusht)."""
    size = config.display_size

    def plan_fn(ax: float, ay: float, bx: float, by: float, angle: float, goal_ax: float, goal_ay: float,
                goal_bx: float, goal_by: float, goal_angle: float, max_steps: float, num_samples: float,
                iterations: float, horizon: float, seed: float,
                progress: gr.Progress = gr.Progress()) -> tuple[str, str, Any, str]:  # noqa: B008
        try:
            steps, samples, iters, h = _checked_budget(config, max_steps, num_samples, iterations, horizon)
            source = config.pusht_source()
            model = load_model(source, "Push-T world model")
            state_latents = load_model_state_latents(source, "Push-T world model", model)
            start, goal = from_sliders((ax, ay, bx, by, angle, goal_ax, goal_ay, goal_bx, goal_by, goal_angle))
            progress(0, desc=f"Encoding the start and goal {'images' if state_latents is None else 'states'}")

            def report(i: int, n: int) -> None:
                progress((i, n), desc=f"MPC step {i + 1} (at most {n})", unit="steps")

            cem = _cem(model, samples, iters, h, int(seed), "pusht")
            with admit.track():
                out = plan_in_pusht(model, start, goal, cem=cem, max_steps=steps, seed=int(seed),
                                    display_size=size, out_dir=outputs.new(), progress=report,
                                    state_latents=state_latents)
        except Exception as err:  # noqa: BLE001
            raise _error(err) from err
        figure = energy_figure(out.energies, out.distances, int(model.config.frame_skip),
                               distance_label="block distance to goal (T corners)")
        return out.trajectory_gif, out.goal_png, figure, out.summary

    def previews(*values: float) -> tuple[Any, Any]:
        """The start (with the goal outlined) and the goal image; a value outside the arena: a warning, no change."""
        start, goal = from_sliders(values)
        try:
            return pusht_scene(start, goal, size=size), render_pusht(goal, size=size)
        except InputError as err:
            gr.Warning(str(err))
            return gr.skip(), gr.skip()

    def randomize() -> list[float]:
        return to_sliders(*random_pusht_task(int(np.random.default_rng().integers(1_000_000))))

    ok, status = pusht_status(config)
    gr.Markdown("Place the **agent** (blue disk) and the **T block** for the **start** and the **goal** (sliders or "
                "**Random**), then **Plan**. The planner sees the goal image (a world model trained on true states, "
                "with perfect perception, sees the goal state instead); the start preview outlines the goal in "
                "orange. The light-green T is gym-pusht's fixed target, drawn in every image as in the data.")
    gr.Markdown(status, elem_classes="status", elem_id="pusht-status")
    initial = to_sliders(DEFAULT_START, DEFAULT_GOAL)
    images, sliders, preview_images = previews(*initial), [], []
    with gr.Row(equal_height=False):
        with gr.Column(scale=2, min_width=340):
            with gr.Row():
                for side, name in enumerate(("Start", "Goal")):
                    with gr.Column(min_width=160):
                        preview_images.append(gr.Image(images[side], label=f"{name} (preview)", interactive=False,
                                                       height=size // 2, elem_id=f"pusht-{name.lower()}", buttons=[],
                                                       format="png"))
                        for j, label in enumerate(("agent x", "agent y", "block x", "block y", "block angle (deg)")):
                            lo, hi, step = (-180, 180, 0.5) if j == 4 else (0.02, 0.98, 0.005)  # inside the walls
                            sliders.append(gr.Slider(lo, hi, value=initial[5 * side + j], step=step, buttons=[],
                                                     label=f"{name} {label}"))
            with gr.Row():
                random_btn = gr.Button("Random", elem_id="pusht-random-btn")
                plan_btn = gr.Button("Plan Push-T ▶", variant="primary", elem_id="pusht-plan-btn", interactive=ok)
            settings = _planner_settings(config)
        with gr.Column(scale=3):
            results = _plan_results(size, ("pusht-trajectory", "pusht-goal", "pusht-energy", "pusht-summary"))
    for slider in sliders:  # cheap: outside the queue, as the arena's events
        slider.change(previews, sliders, preview_images, api_visibility="private", show_progress="hidden",
                      queue=False)
    random_btn.click(randomize, None, sliders, api_visibility="private", queue=False)
    _on_plan_click(plan_btn, admit).success(plan_fn, [*sliders, *settings], results, api_name="plan_pusht",
                                            validator=admit.admit, concurrency_limit=config.plan_concurrency,
                                            concurrency_id="plan")


def _features_tab(config: SpaceConfig, examples: list[tuple[str, str]], heading: str = "") -> None:
    """The Features tab: an upload's patch features as the RGB of their first 3 principal components, beside the
    attention each patch receives in the encoder's last block (/features)."""

    def features_fn(path: str | None) -> tuple[np.ndarray, str]:
        try:
            model = load_model(config.encoder, "encoder")
            encoder = encoder_of(model)
            frames, kind = read_media(path, config, num_frames=getattr(encoder.config, "num_frames", 8))
            result = extract_patch_features(model, frames)
        except Exception as err:  # noqa: BLE001
            raise _error(err) from err
        t, h, w, d = result.tokens.shape
        text = (f"{kind.capitalize()} → {t} x {h} x {w} patch features of width {d} "
                f"({type(encoder).__name__}). Colours: first 3 principal components of the features; "
                "then the attention each patch receives in the last block (bright = attended to).")
        return features_panel(result), text

    status = _status_of(config.encoder, "encoder")
    gr.Markdown("Upload an **image** or a **short video** (at most "
                f"{config.max_video_seconds:g} s, {config.max_upload_mb:g} MB)"
                + (", or pick an example clip below" if examples else "") + ". Each patch feature of "
                "the encoder is projected on its first 3 principal components, shown as RGB: patches "
                "with similar colours have similar features. Beside it, the encoder's attention map: how much "
                "attention each patch receives in the last block, averaged over heads and patches.")
    gr.Markdown(status, elem_classes="status", elem_id="features-status")
    with gr.Row():
        with gr.Column(scale=1):
            feat_in, feat_btn = _upload_column("features", "Show features", examples, heading)
        with gr.Column(scale=2):
            feat_out = gr.Image(label="Input, the PCA of its patch features, its attention map", format="png",
                                interactive=False,
                                elem_id="features-out")
            feat_info = gr.Markdown()
    feat_btn.click(features_fn, [feat_in], [feat_out, feat_info], api_name="features",
                   concurrency_limit=config.encoder_concurrency, concurrency_id="encoder")


def _probe_tab(config: SpaceConfig, examples: list[tuple[str, str]], heading: str = "") -> None:
    """The Probe tab: the top-5 classes of an upload by the probe on the frozen encoder features (/probe); beside each
    prediction what the probe was trained on, its test top-1 against chance and the baselines, from its results file
    (`probe_record`), and for an example clip its true label."""
    record = probe_record(config.probe_model) if model_status(config.probe_model, "probe")[0] else None
    about = record.summary() if record is not None else (
        "This probe has no results file (`results.json` beside its weights, written by `scripts/probe.py`): its "
        "accuracy is not known here.")

    def probe_fn(path: str | None) -> tuple[dict[str, float], str]:
        try:
            model = load_model(config.probe_model, "probe")
            frames, kind = read_media(path, config, num_frames=getattr(model.config, "num_frames", 16),
                                      frame_step=record.frame_step if record is not None else None)
            scores = classify(model, frames)
        except Exception as err:  # noqa: BLE001
            raise _error(err) from err
        top, p = next(iter(scores.items()))
        text = f"{type(model).__name__} on the uploaded {kind}: **{top}** ({p:.0%})"
        if (truth := example_truth(path)) is not None and record is not None:
            text += (f"; this test clip's true `{record.label_column}` is **{truth}**: "
                     + ("right." if truth == top else "wrong."))
        return scores, f"{text}\n\n{about}"

    status = _status_of(config.probe_model, "probe")
    gr.Markdown("Upload a clip or an image" + (" (or pick an example clip below)" if examples else "")
                + "; a probe trained on the frozen encoder features classifies it (top 5).")
    gr.Markdown(f"{status}\n\n{about}", elem_classes="status", elem_id="probe-status")
    with gr.Row():
        with gr.Column(scale=1):
            probe_in, probe_btn = _upload_column("probe", "Classify", examples, heading)
        with gr.Column(scale=1):
            probe_out = gr.Label(num_top_classes=5, label="Top-5 classes", elem_id="probe-out")
            probe_info = gr.Markdown(elem_id="probe-info")
    probe_btn.click(probe_fn, [probe_in], [probe_out, probe_info], api_name="probe",
                    concurrency_limit=config.encoder_concurrency, concurrency_id="encoder")


def build_demo(config: SpaceConfig | None = None) -> Any:
    """The Gradio Blocks app with the Plan, Features and Probe tabs (named endpoints /plan, /plan_pusht, /features,
    /probe)."""
    config = config or SpaceConfig.from_env()
    examples, heading = _examples(config)

    def waiting(group: str) -> int:  # gradio 6 keeps one event queue per concurrency id
        queues = getattr(getattr(demo, "_queue", None), "event_queue_per_concurrency_id", None) or {}
        return len(getattr(queues.get(group), "queue", ()))

    with gr.Blocks(title="hf_jepa: JEPA world model", analytics_enabled=False,
                   delete_cache=(config.cache_max_age_s, config.cache_max_age_s)) as demo:
        gr.Markdown(INTRO, elem_id="intro")
        with gr.Tabs():
            with gr.Tab("Plan", id="plan"):
                _plan_tab(config, waiting)
            with gr.Tab("Features", id="features"):
                _features_tab(config, examples, heading)
            with gr.Tab("Probe", id="probe"):
                _probe_tab(config, examples, heading)
    # every queued event names its own concurrency limit; max_size bounds the waiting ones of all tabs together
    demo.queue(max_size=config.max_queue_size, default_concurrency_limit=1)
    return demo


def launch_kwargs(config: SpaceConfig | None = None) -> dict[str, Any]:
    """Keyword arguments for `demo.launch` (theme and CSS live there in Gradio 6); with `config`, gradio also refuses
    uploads beyond `config.max_upload_mb` before they reach the disk and keeps the state of at most
    `config.max_sessions` sessions."""
    kwargs: dict[str, Any] = {"theme": gr.themes.Soft(primary_hue="indigo"), "css": CSS, "footer_links": ["api"]}
    if config is not None:
        kwargs["max_file_size"] = f"{int(config.max_upload_mb * 1024)}kb"
        kwargs["state_session_capacity"] = config.max_sessions
    return kwargs

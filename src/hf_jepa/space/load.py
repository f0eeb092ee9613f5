"""The Space under load: concurrent `gradio_client` clients driving a running Space for a bounded time, and the
benchmark that launches one (random models of the demo's sizes, no training) and reports what it served.

    report = drive_load(url, {"/features": lambda: (handle_file(image),), ...}, clients=8, duration_s=30)
    report.summary()  # {"/features": {"served": 41, "rejected": 9, "failed": 0, "p50_s": ..., "p95_s": ...}, ...}

A request the Space refuses because it is busy counts as rejected (gradio_client's `QueueError`: "Queue is full!
Please try again.", or the Plan tab's "The planner is busy: ... Try again in a minute."); its client waits
`retry_delay_s` before the next one, as a person would. Anything else that is not a result counts as failed, with its
message. Only `gradio_client` (no gradio) is needed to drive a Space; `space_load_benchmark` also builds one
(`hf_jepa.space.ui`, gradio).
"""

from __future__ import annotations

import ctypes
import gc
import itertools
import logging
import tempfile
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from hf_jepa.space.config import SpaceConfig

logger = logging.getLogger(__name__)

__all__ = ["EndpointLoad", "LoadReport", "connect", "drive_load", "random_space_models", "rss_mb",
           "space_load_benchmark"]


@dataclass
class EndpointLoad:
    """What one endpoint did under load.

    Attributes:
        served: requests answered with a result; `latencies_s` holds their times (submit to result).
        rejected: requests refused because the Space was busy; `busy_messages` holds the distinct texts seen.
        failed: requests that ended any other way; `errors` holds up to 5 distinct messages.
    """

    served: int = 0
    rejected: int = 0
    failed: int = 0
    latencies_s: list[float] = field(default_factory=list)
    busy_messages: set[str] = field(default_factory=set)
    errors: list[str] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        lat = np.asarray(self.latencies_s, dtype=np.float64)
        pct = (lambda q: float(np.percentile(lat, q))) if lat.size else (lambda q: float("nan"))
        return {"served": self.served, "rejected": self.rejected, "failed": self.failed, "p50_s": pct(50),
                "p95_s": pct(95), "max_s": float(lat.max()) if lat.size else float("nan"),
                "busy_messages": sorted(self.busy_messages), "errors": list(self.errors)}


@dataclass
class LoadReport:
    """Per endpoint, what `drive_load` saw; `duration_s` from the first request to the last answer."""

    endpoints: dict[str, EndpointLoad]
    clients: int
    duration_s: float

    def summary(self) -> dict[str, dict[str, Any]]:
        return {name: e.summary() for name, e in self.endpoints.items()}

    @property
    def failed(self) -> int:
        return sum(e.failed for e in self.endpoints.values())


def _is_busy(err: BaseException) -> bool:
    """gradio's queue is full (QueueError), or the Space refused a plan because enough plans wait (a validation
    message saying it is busy)."""
    from gradio_client.exceptions import ValidationError
    from gradio_client.utils import QueueError

    return isinstance(err, QueueError) or (isinstance(err, ValidationError) and "busy" in str(err).lower())


def connect(url: str, count: int) -> list[Any]:
    """`count` gradio_client Clients of the Space at `url` (each its own session), not downloading result files."""
    from gradio_client import Client

    return [Client(url, verbose=False, download_files=False, analytics_enabled=False) for _ in range(count)]


def drive_load(url: str, requests: Mapping[str, Callable[[], tuple]], *, clients: int | Sequence[Any] = 8,
               duration_s: float = 30.0, timeout_s: float = 300.0, retry_delay_s: float = 0.25) -> LoadReport:
    """`clients` threads, each with its own `gradio_client.Client` (made here and closed after, or given: `connect`),
    send requests to `url` one after another until `duration_s` has passed (requests under way then finish),
    cycling through `requests` (endpoint -> a function returning the arguments), each client starting at a different
    endpoint.

    A request not answered within `timeout_s` counts as failed ("no answer within ...").
    """
    names = list(requests)
    connections = connect(url, clients) if isinstance(clients, int) else list(clients)
    report = LoadReport({name: EndpointLoad() for name in names}, len(connections), 0.0)
    lock = threading.Lock()
    start = time.perf_counter()
    deadline = start + duration_s

    def run(index: int, client: Any) -> None:
        i = index
        while time.perf_counter() < deadline:
            name = names[i % len(names)]
            i += 1
            t0 = time.perf_counter()
            try:
                client.submit(*requests[name](), api_name=name).result(timeout=timeout_s)
            except Exception as err:  # noqa: BLE001  (sorted into busy / failed)
                busy = _is_busy(err)
                text = f"{type(err).__name__}: {err}" if str(err) else f"{type(err).__name__} (no answer within " \
                       f"{timeout_s:g} s)"
                with lock:
                    stats = report.endpoints[name]
                    if busy:
                        stats.rejected += 1
                        stats.busy_messages.add(str(err))
                    else:
                        stats.failed += 1
                        if text not in stats.errors and len(stats.errors) < 5:
                            stats.errors.append(text)
                if busy:
                    time.sleep(retry_delay_s)
                continue
            with lock:
                report.endpoints[name].served += 1
                report.endpoints[name].latencies_s.append(time.perf_counter() - t0)

    threads = [threading.Thread(target=run, args=(k, c), name=f"load-client-{k}", daemon=True)
               for k, c in enumerate(connections)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    report.duration_s = time.perf_counter() - start
    if isinstance(clients, int):
        for c in connections:
            c.close()
    return report


def rss_mb(*, settle: bool = False) -> float | None:
    """Resident memory of this process in MiB (Linux /proc/self/status VmRSS, else psutil), or None.

    settle: first collect garbage and hand free heap pages back to the system (glibc `malloc_trim`), so the figure
    follows live memory rather than what the allocator keeps cached.
    """
    if settle:
        gc.collect()
        try:
            ctypes.CDLL("libc.so.6").malloc_trim(0)
        except (OSError, AttributeError):  # not glibc
            pass
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    try:
        import psutil
    except ImportError:
        return None
    return psutil.Process().memory_info().rss / 2**20


def random_space_models(root: str | Path, *, encoder: dict[str, Any] | None = None, world_model: dict[str, Any] |
                        None = None, num_labels: int = 10, seed: int = 0, **config: Any) -> SpaceConfig:
    """A SpaceConfig whose encoder, probe and world model are randomly initialised models of the demo's sizes
    (V-JEPA 2 `tiny` encoder and attentive probe, V-JEPA 2-AC `tiny` world model) saved under `root`: the same
    compute as `make demo`'s trained ones, without training. `encoder` / `world_model` override config fields
    (smaller models for tests); `config` sets SpaceConfig fields."""
    import torch

    from hf_jepa.modeling.configuration_easy_vjepa2 import VideoJepaConfig
    from hf_jepa.modeling.configuration_easy_vjepa2_ac import JepaWorldModelConfig
    from hf_jepa.modeling.modeling_easy_vjepa2 import VideoJepaForVideoClassification, VideoJepaModel
    from hf_jepa.modeling.modeling_easy_vjepa2_ac import JepaWorldModel

    root = Path(root)
    torch.manual_seed(seed)
    enc_config = VideoJepaConfig.from_preset("tiny", **(encoder or {}))
    VideoJepaModel(enc_config).save_pretrained(root / "encoder")
    labels = {i: str(i) for i in range(num_labels)}
    probe_config = VideoJepaConfig.from_preset("tiny", **(encoder or {}), num_labels=num_labels, id2label=labels,
                                               label2id={v: k for k, v in labels.items()}, probe_type="attentive")
    VideoJepaForVideoClassification(probe_config).save_pretrained(root / "probe")
    wm_config = JepaWorldModelConfig.from_preset("tiny", encoder_config=enc_config, **(world_model or {}))
    JepaWorldModel(wm_config).save_pretrained(root / "world_model")
    return SpaceConfig(encoder=str(root / "encoder"), probe_model=str(root / "probe"),
                       world_model=str(root / "world_model"), **{"examples": 0, **config})


def _media(root: Path) -> dict[str, Path]:
    """A random 96 x 128 PNG and a 16-frame 64 x 64 mp4 (8 fps) under `root`."""
    import torch
    from PIL import Image
    from torchcodec.encoders import VideoEncoder

    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 255, (96, 128, 3), dtype=np.uint8)).save(root / "image.png")
    clip = torch.from_numpy(rng.integers(0, 255, (16, 3, 64, 64), dtype=np.uint8))
    VideoEncoder(clip, frame_rate=8).to_file(str(root / "clip.mp4"))
    return {"image": root / "image.png", "video": root / "clip.mp4"}


def space_load_benchmark(config: SpaceConfig, *, clients: int = 8, duration_s: float = 60.0, warmup_s: float = 10.0,
                         plan: tuple[int, int, int, int] = (8, 64, 3, 3), timeout_s: float = 300.0) -> dict[str, Any]:
    """Launch the Space of `config` on a free local port, drive it with `clients` concurrent clients for `warmup_s`
    (not counted) then `duration_s`, mixing Plan (`plan` = MPC steps, CEM samples, iterations, horizon), Features
    (an image and a clip) and Probe (a clip) requests; then send each endpoint one ordinary request.

    Returns: {"clients", "duration_s", "limits" (queue size and concurrencies), "endpoints" (per endpoint: served,
    rejected, failed, p50_s, p95_s, max_s, busy_messages, errors), "rss_mb_before" / "rss_mb_after" (this process,
    which holds the Space and the clients, after the warm-up and after the load; `rss_mb(settle=True)`),
    "after_load_ok" (per endpoint)}.
    """
    import socket

    from gradio_client import handle_file

    from hf_jepa.space.models import clear_model_cache
    from hf_jepa.space.ui import build_demo, launch_kwargs

    steps, samples, iterations, horizon = plan
    with tempfile.TemporaryDirectory(prefix="hf_jepa_space_load_") as tmp:
        media = _media(Path(tmp))
        uploads = itertools.cycle([media["image"], media["video"]])  # Features: an image, then a clip, ...
        requests: dict[str, Callable[[], tuple]] = {
            "/plan": lambda: (0.25, 0.7, 0.75, 0.7, steps, samples, iterations, horizon, 0),
            "/features": lambda: (handle_file(str(next(uploads))),),
            "/probe": lambda: (handle_file(str(media["video"])),),
        }
        clear_model_cache()
        http_log = logging.getLogger("httpx")  # one INFO line per HTTP request otherwise
        http_level = http_log.level
        http_log.setLevel(max(http_level, logging.WARNING))
        demo = build_demo(replace(config, examples=0))
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        demo.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True,
                    **launch_kwargs(config))
        url = f"http://127.0.0.1:{port}/"
        try:
            single, *users = connect(url, clients + 1)  # the same sessions warm up and then measure
            for name, args in requests.items():  # load the models once
                single.predict(*args(), api_name=name)
            if warmup_s > 0:
                drive_load(url, requests, clients=users, duration_s=warmup_s, timeout_s=timeout_s)
            before = rss_mb(settle=True)
            report = drive_load(url, requests, clients=users, duration_s=duration_s, timeout_s=timeout_s)
            after = rss_mb(settle=True)
            after_ok = {}
            for name, args in requests.items():
                try:
                    single.predict(*args(), api_name=name)
                    after_ok[name] = True
                except Exception:  # noqa: BLE001
                    logger.exception("%s failed after the load", name)
                    after_ok[name] = False
            for c in (single, *users):
                c.close()
        finally:
            demo.close()
            clear_model_cache()
            http_log.setLevel(http_level)
    return {"clients": clients, "duration_s": report.duration_s,
            "limits": {"max_queue_size": config.max_queue_size, "max_waiting_plans": config.max_waiting_plans,
                       "plan_concurrency": config.plan_concurrency, "encoder_concurrency": config.encoder_concurrency},
            "plan": {"max_steps": steps, "num_samples": samples, "iterations": iterations, "horizon": horizon},
            "endpoints": report.summary(), "rss_mb_before": before, "rss_mb_after": after, "after_load_ok": after_ok}

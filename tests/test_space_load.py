"""The Space under load: its queue and concurrency limits as built, and (slow) 8 concurrent gradio_client clients
mixing Plan, Features and Probe requests for 30 s against a Space with a small queue: every request gets its result or
the busy message, memory stays bounded, and an ordinary request is answered afterwards."""

from __future__ import annotations

from pathlib import Path

import pytest

from hf_jepa.space.load import random_space_models, space_load_benchmark

pytest.importorskip("gradio_client", reason="the Space tests need gradio and gradio_client")
ui = pytest.importorskip("hf_jepa.space.ui", reason="the Space needs gradio (pip install 'gradio>=6.31,<7')")

pytestmark = pytest.mark.filterwarnings("ignore:.*(no_silent_downcasting|copy keyword).*")  # gradio's analytics

ENCODER = dict(image_size=32, patch_size=8, num_frames=4, hidden_size=48, num_hidden_layers=2, num_attention_heads=4,
               intermediate_size=96)
WORLD_MODEL = dict(predictor_hidden_size=24, predictor_num_hidden_layers=1, predictor_num_attention_heads=2,
                   predictor_intermediate_size=48)
# Settled RSS (after gc and malloc_trim) after the load minus that after the warm-up. Under this load it climbs for
# about a minute (the allocator; no Python objects accumulate per request) and then stays within a few MB per 12 s
# (measured over 3.5 min); +13 to +29 MB in the runs here. Gradio's per-event analytics are capped (10000 events) and
# the sessions' state by max_sessions.
RSS_GROWTH_MB = 64


def test_queue_and_concurrency_limits_are_set(tmp_path: Path) -> None:
    config = random_space_models(tmp_path, encoder=ENCODER, world_model=WORLD_MODEL, max_queue_size=5,
                                 plan_concurrency=1, encoder_concurrency=3)
    demo = ui.build_demo(config)
    assert demo._queue.max_size == 5
    by_name = {fn.api_name: fn for fn in demo.fns.values() if fn.api_name}
    assert (by_name["plan"].concurrency_limit, by_name["plan"].concurrency_id) == (1, "plan")
    assert by_name["plan"].validator is not None  # refuses a plan beyond max_waiting_plans
    for name in ("features", "probe"):  # one group: at most 3 encoder passes at once, whichever tab asks
        assert (by_name[name].concurrency_limit, by_name[name].concurrency_id) == (3, "encoder")
    private = [fn for fn in demo.fns.values() if not fn.api_name or fn.api_visibility == "private"]
    checks = [fn for fn in private if fn.concurrency_id == "plan_check"]
    # a Plan click's check is queued (its busy / place-in-queue notice needs the queue) but never waits for a slot
    assert len(checks) == 2 and all(fn.queue and fn.concurrency_limit is None for fn in checks)
    arena = [fn for fn in private if fn not in checks]
    assert arena and all(not fn.queue for fn in arena)  # the arena answers while the queue is full
    launch = ui.launch_kwargs(config)
    assert launch["max_file_size"] == f"{int(config.max_upload_mb * 1024)}kb"
    assert launch["state_session_capacity"] == config.max_sessions
    with pytest.raises(ValueError, match="SpaceConfig.max_queue_size=0"):
        type(config)(max_queue_size=0)


def test_recent_folders_keep_the_newest() -> None:
    folders = ui.RecentFolders("hf_jepa_test_recent_", keep=3)
    made = [folders.new() for _ in range(7)]
    assert [p.is_dir() for p in made] == [False] * 4 + [True] * 3
    assert sorted(folders.root.iterdir()) == sorted(made[-3:])


def test_space_under_a_short_load(tmp_path: Path) -> None:
    """The CI run of the load test (the 30 s run below measures memory too): 4 clients for 5 s against a queue of 2
    with 1 plan at a time: requests are served or refused as busy, none fails another way, the busy path is taken,
    and every endpoint answers an ordinary request afterwards."""
    config = random_space_models(tmp_path, encoder=ENCODER, world_model=WORLD_MODEL, max_queue_size=2,
                                 max_waiting_plans=1, plan_concurrency=1, encoder_concurrency=1)
    result = space_load_benchmark(config, clients=4, duration_s=5, warmup_s=0, plan=(4, 16, 2, 2), timeout_s=60)
    endpoints = result["endpoints"]
    assert set(endpoints) == {"/plan", "/features", "/probe"}
    for name, e in endpoints.items():
        assert e["failed"] == 0, (name, e["errors"])
        assert all("try again" in m.lower() for m in e["busy_messages"]), e["busy_messages"]
    assert sum(e["served"] for e in endpoints.values()) > 0
    assert sum(e["rejected"] for e in endpoints.values()) > 0  # the queue did fill: the busy path was taken
    assert result["after_load_ok"] == {"/plan": True, "/features": True, "/probe": True}


@pytest.mark.slow
def test_space_under_load(tmp_path: Path) -> None:
    """8 clients, a queue of 2 of which 1 plan, and one request of each kind at a time: some requests are refused as
    busy (gradio's full queue, the planner's own limit), none fails another way; RSS after 30 s of load is within
    RSS_GROWTH_MB of RSS after a 40 s warm-up by the same clients; then every endpoint answers an ordinary request."""
    config = random_space_models(tmp_path, encoder=ENCODER, world_model=WORLD_MODEL, max_queue_size=2,
                                 max_waiting_plans=1, plan_concurrency=1, encoder_concurrency=1)
    result = space_load_benchmark(config, clients=8, duration_s=30, warmup_s=40, plan=(4, 16, 2, 2), timeout_s=120)
    endpoints = result["endpoints"]
    print(result)
    assert set(endpoints) == {"/plan", "/features", "/probe"}
    for name, e in endpoints.items():
        assert e["failed"] == 0, (name, e["errors"])
        assert e["served"] > 0, name
        assert all("try again" in m.lower() for m in e["busy_messages"]), e["busy_messages"]
    assert sum(e["rejected"] for e in endpoints.values()) > 0  # the queue did fill: the busy path was taken
    assert any(ui.BUSY in m for m in endpoints["/plan"]["busy_messages"])  # a plan refused while one waited
    assert result["rss_mb_after"] - result["rss_mb_before"] < RSS_GROWTH_MB, result
    assert result["after_load_ok"] == {"/plan": True, "/features": True, "/probe": True}

"""hf_jepa Gradio Space: `python spaces/app.py` locally, or as the Space's app_file on Hugging Face.

All logic lives in `hf_jepa.space` (the Blocks app in `hf_jepa.space.ui`); models come from HF_JEPA_ENCODER /
HF_JEPA_PROBE_MODEL / HF_JEPA_WORLD_MODEL (local folders or Hub ids; defaults: the folders `make demo` writes: its
Two-Rooms encoder, the probe of the agent's heading on it, its Two-Rooms world model) and
HF_JEPA_PUSHT_WORLD_MODEL (the Plan tab's Push-T world model; default: the state world model `scripts/demo.py --env
pusht` writes, if it exists).
"""

from __future__ import annotations

import logging
import os

from hf_jepa.space.config import SpaceConfig
from hf_jepa.space.ui import build_demo, launch_kwargs

logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")

config = SpaceConfig.from_env()
demo = build_demo(config)

if __name__ == "__main__":
    demo.launch(server_name=os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"),
                server_port=int(os.environ.get("GRADIO_SERVER_PORT", "7860")), **launch_kwargs(config))

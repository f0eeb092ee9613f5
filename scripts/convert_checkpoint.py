"""Convert a Meta checkpoint or a transformers IJepaModel / VJEPA2Model folder into an hf_jepa folder.

    python scripts/convert_checkpoint.py --family vjepa2 --checkpoint vitl.pt --output vjepa2-vitl \
        --config-overrides '{"num_attention_heads": 16}'
"""

from __future__ import annotations

import argparse
import json
import logging

from hf_jepa.convert import FAMILIES, convert_checkpoint


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--family", required=True, choices=FAMILIES)
    parser.add_argument("--checkpoint", required=True, help="Meta .pt/.pth.tar file or transformers folder")
    parser.add_argument("--output", required=True, help="folder for save_pretrained (safetensors)")
    parser.add_argument("--config-overrides", default="{}",
                        help="JSON dict of config fields the tensor shapes cannot tell (e.g. num_attention_heads)")
    parser.add_argument("--encoder-key", default="target_encoder", choices=("target_encoder", "encoder"),
                        help="which Meta encoder to export (Meta evaluates the EMA target encoder)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        overrides = json.loads(args.config_overrides)
    except json.JSONDecodeError as err:
        parser.error(f"--config-overrides is not valid JSON: {err}")
    if not isinstance(overrides, dict):
        parser.error(f"--config-overrides must be a JSON object, got {type(overrides).__name__}")
    model = convert_checkpoint(args.checkpoint, args.family, overrides=overrides, encoder_key=args.encoder_key)
    model.save_pretrained(args.output)
    params = sum(p.numel() for p in model.parameters())
    print(f"saved {type(model).__name__} ({params / 1e6:.2f}M parameters) to {args.output}")


if __name__ == "__main__":
    main()

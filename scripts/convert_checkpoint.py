"""Convert a Meta checkpoint or a transformers IJepaModel / VJEPA2Model folder into an hf_jepa folder.

    python scripts/convert_checkpoint.py --family vjepa2 --checkpoint vitl.pt --output vjepa2-vitl \
        --config_overrides '{"num_attention_heads": 16}'

(`--config-overrides` and `--encoder-key` are accepted as aliases.)
"""

from __future__ import annotations

import argparse
import logging

from hf_jepa.convert import FAMILIES, CheckpointError, convert_checkpoint
from hf_jepa.training.runner import parse_config_overrides


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--family", required=True, choices=FAMILIES)
    parser.add_argument("--checkpoint", required=True, help="Meta .pt/.pth.tar file or transformers folder")
    parser.add_argument("--output", required=True, help="folder for save_pretrained (safetensors)")
    parser.add_argument("--config_overrides", "--config-overrides", default="{}",
                        help="JSON dict of config fields the tensor shapes cannot tell (e.g. num_attention_heads)")
    parser.add_argument("--encoder_key", "--encoder-key", default="target_encoder",
                        choices=("target_encoder", "encoder"),
                        help="which Meta encoder to export (Meta evaluates the EMA target encoder)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        overrides = parse_config_overrides(args.config_overrides)
    except ValueError as err:
        parser.error(str(err))
    try:
        model = convert_checkpoint(args.checkpoint, args.family, overrides=overrides, encoder_key=args.encoder_key)
    except (CheckpointError, FileNotFoundError) as err:
        parser.exit(1, f"convert_checkpoint: {err}\n")
    model.save_pretrained(args.output)
    params = sum(p.numel() for p in model.parameters())
    print(f"saved {type(model).__name__} ({params / 1e6:.2f}M parameters) to {args.output}")


if __name__ == "__main__":
    main()

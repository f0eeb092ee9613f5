"""Push a saved hf_jepa model folder to the Hugging Face Hub with a generated model card.

    python scripts/push_to_hub.py --model outputs/demo/world_model --repo_id easy-jepa/vjepa2-ac --dry_run
    python scripts/push_to_hub.py --model outputs/demo/world_model --repo_id easy-jepa/vjepa2-ac \
        --metrics outputs/demo/planning.json --training train.json

`--metrics` / `--training` are JSON files with flat objects (see `hf_jepa.hub.build_model_card`). The card is
written into the folder as README.md unless `--keep_card` is given and one exists.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from hf_jepa.hub import HubFolderError, upload_folder_to_hub, write_model_card


def read_json(path: str | None) -> dict | None:
    if path is None:
        return None
    data = json.loads(Path(path).read_text())
    if not isinstance(data, dict):
        raise SystemExit(f"{path}: expected a JSON object")
    return data


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, help="save_pretrained folder of an hf_jepa model")
    parser.add_argument("--repo_id", required=True, help="org/name on the Hub")
    parser.add_argument("--private", action="store_true", help="create the repo private")
    parser.add_argument("--revision", default=None, help="branch to commit to (created if missing)")
    parser.add_argument("--dry_run", action="store_true", help="list the files that would be uploaded, upload none")
    parser.add_argument("--commit_message", default=None)
    parser.add_argument("--metrics", default=None, help="JSON file: evaluation results for the model-index")
    parser.add_argument("--training", default=None, help="JSON file: training metadata for the card")
    parser.add_argument("--license", default="mit")
    parser.add_argument("--dataset", action="append", default=None, help="Hub dataset id (repeatable)")
    parser.add_argument("--base_model", default=None)
    parser.add_argument("--keep_card", action="store_true", help="keep an existing README.md")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")

    try:
        if not (args.keep_card and (Path(args.model) / "README.md").is_file()):
            write_model_card(args.model, repo_id=args.repo_id, metrics=read_json(args.metrics),
                             training=read_json(args.training), license=args.license, datasets=args.dataset,
                             base_model=args.base_model)
        files = upload_folder_to_hub(args.model, args.repo_id, private=args.private, revision=args.revision,
                                     dry_run=args.dry_run, commit_message=args.commit_message)
    except (HubFolderError, ValueError) as err:
        sys.exit(f"error: {err}")
    verb = "would upload" if args.dry_run else "uploaded"
    print(f"{verb} {len(files)} files ({sum(f.size for f in files):,} bytes) to {args.repo_id}")
    for f in files:
        print(f"{f.size:>14,}  {f.path}")


if __name__ == "__main__":
    main()

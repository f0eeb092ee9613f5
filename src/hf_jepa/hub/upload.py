"""Pushing a saved folder to the Hub in one commit (``HfApi.create_repo`` + ``HfApi.upload_folder``), or listing
what would be pushed."""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from huggingface_hub import HfApi
from huggingface_hub.utils import filter_repo_objects

from .folder import HubFolderError, architecture, check_model_folder

logger = logging.getLogger(__name__)

DEFAULT_IGNORE_PATTERNS: tuple[str, ...] = (
    ".git/*", "*/.git/*", "__pycache__/*", "*/__pycache__/*", "*.pyc", ".cache/*", "*/.cache/*",
    "checkpoints/*", "checkpoint-*/*", "*.lock", ".DS_Store",
)
"""Never uploaded: VCS and cache folders, byte code, training checkpoints (accelerate state)."""


@dataclass(frozen=True)
class UploadFile:
    """One file of an upload: its path in the repo and its size in bytes."""

    path: str
    size: int


def list_upload_files(folder: str | Path, *, ignore_patterns: Sequence[str] = DEFAULT_IGNORE_PATTERNS
                      ) -> list[UploadFile]:
    """The files ``upload_folder`` would send (relative POSIX paths, sizes), sorted by path."""
    folder = Path(folder)
    paths = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())
    kept = filter_repo_objects(paths, ignore_patterns=list(ignore_patterns))
    return [UploadFile(path=p, size=(folder / p).stat().st_size) for p in kept]


def upload_folder_to_hub(
    folder: str | Path,
    repo_id: str,
    *,
    private: bool = False,
    revision: str | None = None,
    dry_run: bool = False,
    commit_message: str | None = None,
    api: HfApi | None = None,
    require_card: bool = True,
    ignore_patterns: Sequence[str] = DEFAULT_IGNORE_PATTERNS,
) -> list[UploadFile]:
    """Push a saved hf_jepa model folder to the Hub in one commit (or, with ``dry_run``, only list it).

    Args:
        folder: a ``save_pretrained`` folder (validated: config with our model_type, weights, remote code).
        repo_id: ``org/name``.
        private: create the repo private (only when it does not exist yet).
        revision: branch to commit to (created from main if missing); None for main.
        dry_run: do not touch the Hub; log and return the files that would be uploaded.
        commit_message: defaults to "Upload <architecture> with hf_jepa".
        api: the ``HfApi`` to use (tests pass a fake); default ``HfApi()`` (token from the environment / login).
        require_card: fail if ``README.md`` is missing (write it with :func:`write_model_card` first).
        ignore_patterns: files never uploaded.

    Returns:
        The uploaded (or, in a dry run, to-be-uploaded) files with their sizes.
    """
    folder = Path(folder)
    if not re.fullmatch(r"[A-Za-z0-9][\w.-]*/[A-Za-z0-9][\w.-]*", repo_id or ""):
        raise ValueError(f"repo_id={repo_id!r}: expected 'org/name'")
    config = check_model_folder(folder)
    if require_card and not (folder / "README.md").is_file():
        raise HubFolderError(f"{folder}: no README.md model card; write one with hf_jepa.hub.write_model_card")
    files = list_upload_files(folder, ignore_patterns=ignore_patterns)
    total = sum(f.size for f in files)
    where = f"{repo_id}@{revision or 'main'}"
    if dry_run:
        logger.info("dry run: would upload %d files (%s bytes) to %s", len(files), f"{total:,}", where)
        for f in files:
            logger.info("  %10s  %s", f"{f.size:,}", f.path)
        return files
    api = api or HfApi()
    api.create_repo(repo_id, repo_type="model", private=private, exist_ok=True)
    if revision and revision != "main":
        api.create_branch(repo_id, branch=revision, repo_type="model", exist_ok=True)
    message = commit_message or f"Upload {architecture(config) or config['model_type']} with hf_jepa"
    api.upload_folder(repo_id=repo_id, folder_path=str(folder), repo_type="model", revision=revision,
                      commit_message=message, ignore_patterns=list(ignore_patterns))
    logger.info("uploaded %d files (%s bytes) to %s", len(files), f"{total:,}", where)
    return files

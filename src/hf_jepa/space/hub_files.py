"""Single files of Hub repos for the Space (a world model's subgoal graph, a model's card and config).

`hub_file` remembers what it learns for good: a downloaded file's path, and a file the repo does not have (or an id
that is no repo). What may change on the next try is never remembered: an error is logged and raised as
`HubFileUnavailable` naming the repo, the file and the error; the next call tries again. Retries are
`hf_hub_download`'s own (huggingface_hub retries HTTP 408 / 429 / 5xx and network errors with a backoff), none are
added here. With `HF_HUB_OFFLINE=1` a file missing from the cache is reported at once: the message says how to
download it.
"""

from __future__ import annotations

import functools
import logging
import threading
from pathlib import Path

from huggingface_hub import constants, hf_hub_download, try_to_load_from_cache
from huggingface_hub.errors import (
    EntryNotFoundError,
    HfHubHTTPError,
    LocalEntryNotFoundError,
    OfflineModeIsEnabled,
    RepositoryNotFoundError,
    RevisionNotFoundError,
)

from hf_jepa.space.errors import HubFileUnavailable

logger = logging.getLogger(__name__)

__all__ = ["clear_hub_cache", "hub_file"]

_KNOWN: dict[tuple[str, str], Path | None] = {}  # (repo id, filename) -> path, or None: the repo has no such file
_LOCK = threading.Lock()
_TRANSIENT_STATUS = (408, 425, 429)


def clear_hub_cache() -> None:
    """Forget the files found and the files known to be absent (tests; or after a repo changed)."""
    with _LOCK:
        _KNOWN.clear()


@functools.cache
def _transport_errors() -> tuple[type[BaseException], ...]:
    """Connection / timeout errors of the HTTP clients huggingface_hub may use, and Python's own."""
    errors: list[type[BaseException]] = [ConnectionError, TimeoutError]
    for module, names in (("httpx2", ("TransportError",)), ("httpx", ("TransportError",)),
                          ("requests", ("ConnectionError", "Timeout"))):
        try:
            mod = __import__(module)
        except ImportError:
            continue
        for name in names:
            err = getattr(getattr(mod, "exceptions", mod), name, None) or getattr(mod, name, None)
            if isinstance(err, type) and issubclass(err, BaseException):
                errors.append(err)
    return tuple(errors)


def _kind(err: BaseException) -> str:
    """'offline' (offline mode, not in the cache), 'absent' (no such file / repo / revision, or not a repo id),
    'transient' (worth another request later) or 'failed' (an error another try will not fix, e.g. HTTP 403)."""
    if isinstance(err, (LocalEntryNotFoundError, OfflineModeIsEnabled)) and constants.HF_HUB_OFFLINE:
        return "offline"
    if isinstance(err, LocalEntryNotFoundError):  # online: the Hub could not be reached (its cause says why)
        return "transient"
    if isinstance(err, (EntryNotFoundError, RepositoryNotFoundError, RevisionNotFoundError, ValueError)):
        return "absent"  # ValueError: HFValidationError (an id that cannot be a repo)
    if isinstance(err, HfHubHTTPError):
        response = getattr(err, "response", None)
        status = getattr(response, "status_code", None)
        return "transient" if status is None or status >= 500 or status in _TRANSIENT_STATUS else "failed"
    return "transient" if isinstance(err, _transport_errors()) else "failed"


def _reason(err: BaseException) -> str:
    """'HfHubHTTPError: 503 Server Error ...' in one line, from the underlying error when the Hub client wraps it."""
    cause = err.__cause__ if isinstance(err, LocalEntryNotFoundError) and err.__cause__ is not None else err
    text = (str(cause).strip().splitlines() or [""])[0]
    text = text if len(text) <= 200 else text[:197] + "..."
    return f"{type(cause).__name__}: {text}" if text else type(cause).__name__


def _cached_as_absent(repo_id: str, filename: str) -> bool:
    """Whether the HF cache records that `repo_id` has no `filename` (a `.no_exist` entry of an earlier look-up)."""
    try:
        found = try_to_load_from_cache(repo_id, filename)
    except Exception:  # noqa: BLE001  (an id the cache cannot hold)
        return False
    return found is not None and not isinstance(found, str)


def hub_file(repo_id: str, filename: str) -> Path | None:
    """Local path of `filename` in the Hub repo `repo_id` (downloaded once, or read from the HF cache offline), or
    None when the repo has no such file or `repo_id` is no repo (both remembered).

    One `hf_hub_download` call: huggingface_hub retries transient errors itself (HTTP 408 / 429 / 5xx, timeouts,
    network errors, with a backoff), so nothing is retried here.

    Raises:
        HubFileUnavailable: the file could not be had now: a transient error (after huggingface_hub's retries),
            another HTTP error, or offline mode without the file in the cache (the message gives the `hf download`
            command). Nothing is remembered: the next call tries again.
    """
    key = (repo_id, filename)
    with _LOCK:
        if key in _KNOWN:
            return _KNOWN[key]
    try:
        path = Path(hf_hub_download(repo_id, filename))
    except Exception as err:  # noqa: BLE001  (sorted below; anything unknown is reported, not remembered)
        kind = _kind(err)
        if kind == "absent" or (kind == "offline" and _cached_as_absent(repo_id, filename)):
            logger.info("the Hub repo %s has no %s (%s)", repo_id, filename, _reason(err))
            with _LOCK:
                _KNOWN[key] = None
            return None
        if kind == "offline":
            message = (f"`{filename}` of the Hub repo `{repo_id}` is not in the Hugging Face cache "
                       f"({constants.HF_HUB_CACHE}) and HF_HUB_OFFLINE is set: download it while online with "
                       f"`hf download {repo_id} {filename}`, or unset HF_HUB_OFFLINE.")
            logger.warning(message)
            raise HubFileUnavailable(message) from err
        message = (f"Could not fetch `{filename}` from the Hub repo `{repo_id}` ({_reason(err)}). "
                   "It is not remembered: the next request tries again.")
        logger.warning(message)
        raise HubFileUnavailable(message) from err
    with _LOCK:
        _KNOWN[key] = path
    return path

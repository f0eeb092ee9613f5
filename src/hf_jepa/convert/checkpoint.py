"""Reading Meta's checkpoint files: `torch.load(..., weights_only=True)`, prefix stripping, layout checks, and
strict loading that names wrong shapes, missing and unexpected keys (`CheckpointError`)."""

from __future__ import annotations

import pickle
import re
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

FAMILIES = ("ijepa", "vjepa2", "vjepa2_1", "vjepa2_ac")


# Heads of Meta's published widths (their vit_* constructors); other widths need an explicit override.
_HEADS_BY_WIDTH = {192: 3, 384: 6, 768: 12, 1024: 16, 1280: 16}


_PREFIXES = ("module.", "backbone.")


class CheckpointError(ValueError):
    """A checkpoint whose layout or contents cannot be converted; the message says what and why."""


def strip_prefixes(state_dict: dict[str, Tensor]) -> dict[str, Tensor]:
    """Remove leading `module.` / `backbone.` prefixes (in any order, any number) from every key."""
    out = {}
    for key, value in state_dict.items():
        while key.startswith(_PREFIXES):
            key = key.split(".", 1)[1]
        out[key] = value
    return out


def load_meta_checkpoint(path: str | Path) -> dict[str, Any]:
    """`torch.load(path, weights_only=True)` on CPU with a clear error for files that are not checkpoints."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path}: no such file")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        raise CheckpointError(f"checkpoint {path}: {_refusal_reason(str(err))}") from err
    except Exception as err:  # zip / io errors: report the file and the cause
        raise CheckpointError(f"checkpoint {path}: cannot be read with torch.load(weights_only=True): {err}") from err
    if not isinstance(ckpt, dict):
        raise CheckpointError(f"checkpoint {path}: expected a dict, got {type(ckpt).__name__}")
    return ckpt


def _refusal_reason(message: str) -> str:
    """What torch's weights-only unpickler refused, in one line (its message also suggests weights_only=False,
    which would run whatever code the file carries, so that advice is not repeated)."""
    found = re.search(r"GLOBAL ([\w.]+)", message)
    if found:
        return (f"not a plain tensor checkpoint: it references the Python object {found.group(1)!r}, which "
                "torch.load(weights_only=True) refuses to import or call (unpickling it could run code). Expected "
                "dicts of tensors, numbers and strings, as Meta's train scripts save; re-save the state dicts from "
                "a trusted environment if you trust the file")
    found = re.search(r"Unsupported operand (\d+)", message)
    detail = f" (pickle opcode {int(found.group(1))} is not allowed)" if found else ""
    return (f"cannot be read with torch.load(weights_only=True): not a plain tensor checkpoint{detail}; expected a "
            "file written by torch.save of dicts of tensors")


def _count_blocks(sd: dict[str, Tensor], prefix: str) -> int:
    ids = {int(m.group(1)) for k in sd if (m := re.match(rf"{re.escape(prefix)}(\d+)\.", k))}
    return max(ids) + 1 if ids else 0


def _heads(width: int, key: str, overrides: dict[str, Any]) -> int:
    if key in overrides:
        return int(overrides[key])
    if width in _HEADS_BY_WIDTH:
        return _HEADS_BY_WIDTH[width]
    raise CheckpointError(
        f"cannot infer {key} for width {width} from tensor shapes; pass --config_overrides '{{\"{key}\": N}}'"
    )


def _require(sd: dict[str, Tensor], keys: list[str], what: str) -> None:
    missing = [k for k in keys if k not in sd]
    if missing:
        raise CheckpointError(f"{what}: unknown checkpoint layout, missing keys {missing[:4]} (have {list(sd)[:4]}...)")


def _require_dims(sd: dict[str, Tensor], dims: dict[str, int], what: str) -> None:
    wrong = [f"{k} has shape {tuple(sd[k].shape)}, expected {n}-D" for k, n in dims.items() if sd[k].dim() != n]
    if wrong:
        raise CheckpointError(f"{what}: {'; '.join(wrong)}")


def _select(ckpt: dict[str, Any], key: str, path: str | Path) -> dict[str, Tensor]:
    if key not in ckpt or not isinstance(ckpt[key], dict):
        raise CheckpointError(f"checkpoint {path}: unknown layout, expected a '{key}' state dict, "
                              f"found keys {sorted(ckpt)[:8]}")
    not_tensors = [f"{k} ({type(v).__name__})" for k, v in ckpt[key].items() if not isinstance(v, Tensor)]
    if not_tensors:
        raise CheckpointError(f"checkpoint {path}: '{key}' holds non-tensor values {_first(not_tensors)}, "
                              "expected a state dict of tensors")
    return strip_prefixes(ckpt[key])


def _more(items: list[str], shown: int) -> str:
    return f" (and {len(items) - shown} more)" if len(items) > shown else ""


def _first(keys: list[str], n: int = 5) -> str:
    return f"{keys[:n]}{_more(keys, n)}"


def load_exact(model: torch.nn.Module, state: dict[str, Tensor], what: str) -> None:
    """Load every tensor, each with the shape the model (sized from the checkpoint's tensors) expects; a
    CheckpointError names the wrong shapes, missing and unexpected keys."""
    expected = model.state_dict()
    wrong = [f"{k} has shape {tuple(v.shape)}, expected {tuple(expected[k].shape)}"
             for k, v in state.items() if k in expected and v.shape != expected[k].shape]
    if wrong:
        raise CheckpointError(f"{what}: {'; '.join(wrong[:5])}{_more(wrong, 5)} (expected shapes follow the sizes "
                              "read from the checkpoint's other tensors and the overrides)")
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    if missing or unexpected:
        parts = ([f"missing keys {_first(missing)}"] if missing else []) + (
            [f"unexpected keys {_first(unexpected)}"] if unexpected else [])
        raise CheckpointError(f"{what}: {', '.join(parts)}")
    model.load_state_dict(state, strict=True)

"""Reading a run's ``best.pt`` back: tensors and plain containers only (``weights_only=True``, so no pickled code
runs), and one line when the file is not one of ours. The message never advises loading with
``weights_only=False`` (torch's own text does): a damaged or foreign file is retrained, not trusted."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from vidtrain_gui.fsutil import atomic_save, atomic_write


class CheckpointError(RuntimeError):
    """A checkpoint file that is missing, unreadable or not one of ours."""


def read_checkpoint(path: str | Path) -> dict:
    """The checkpoint dict of ``path`` (``config`` and the state dicts), or :class:`CheckpointError`."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"there is no checkpoint at {path}")
    try:
        ck = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - truncated, garbage, pickled objects: all "not ours"
        raise CheckpointError(
            f"{path} is not a VidTrain checkpoint (or it is damaged: {type(exc).__name__}); train the run again"
        ) from exc
    if not isinstance(ck, dict) or not isinstance(ck.get("config"), dict) or "state_dict" not in ck:
        raise CheckpointError(f"{path} is not a VidTrain checkpoint (no model config in it); train the run again")
    return ck


def write_checkpoint(obj: dict, path: str | Path) -> None:
    """Save a checkpoint atomically and durably: a killed job or a full disk never leaves half a ``best.pt``."""
    atomic_save(path, lambda f: torch.save(obj, f))


def write_json(path: str | Path, obj: Any) -> None:
    """A run's JSON file (metrics.json), written the same way."""
    atomic_write(path, json.dumps(obj, indent=1))


__all__ = ["CheckpointError", "read_checkpoint", "write_checkpoint", "write_json"]

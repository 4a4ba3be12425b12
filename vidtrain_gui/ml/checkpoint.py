"""Reading a run's ``best.pt`` back: tensors and plain containers only (``weights_only=True``, so no pickled code
runs), and one line when the file is not one of ours. The message never advises loading with
``weights_only=False`` (torch's own text does): a damaged or foreign file is retrained, not trusted."""

from __future__ import annotations

from pathlib import Path

import torch


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


__all__ = ["CheckpointError", "read_checkpoint"]

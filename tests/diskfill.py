"""Filling a (small, test-made) disk to the last byte: the full-disk tests and bench/faults.py share it."""

from __future__ import annotations

import os
from pathlib import Path


def fill(folder: Path) -> Path:
    """A file ``folder/filler.bin`` that takes every free byte of ``folder``'s disk; delete it to free them."""
    filler = Path(folder) / "filler.bin"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
    try:
        chunk = 1 << 20
        while chunk:  # smaller and smaller writes, down to a byte: nothing is left
            try:
                os.write(fd, b"\0" * chunk)
            except OSError:
                chunk //= 2
    finally:
        os.close(fd)
    return filler

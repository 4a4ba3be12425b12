"""Content fingerprint of a video file, so a moved or renamed file is recognised and relinked.

Size plus a hash of the first and last MiB (ARCHITECTURE.md): cheap on a one-hour file, and two
different recordings practically never share both ends and the byte size.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

CHUNK = 1 << 20


def fingerprint(path: str | os.PathLike) -> str:
    """Return ``"<size>-<blake2b hex>"`` of the file's size, first MiB and last MiB."""
    p = Path(path)
    size = p.stat().st_size
    h = hashlib.blake2b(digest_size=16)
    h.update(str(size).encode())
    with open(p, "rb") as f:
        h.update(f.read(CHUNK))
        if size > CHUNK:
            f.seek(max(CHUNK, size - CHUNK))
            h.update(f.read(CHUNK))
    return f"{size}-{h.hexdigest()}"

"""Content fingerprint of a video file, so a moved or renamed file is recognised and relinked.

Size plus a hash of the first and last MiB (ARCHITECTURE.md): cheap on a one-hour file, and two
different recordings practically never share both ends and the byte size.
"""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path

from vidtrain_gui.fsutil import UnsafePathError

CHUNK = 1 << 20
# Exactly what fingerprint() produces. Cache files are named after fingerprints, so one read from a project file is
# checked against this before it becomes part of a path (a crafted "../../x" must never name a file).
FINGERPRINT_RE = re.compile(r"[0-9]{1,20}-[0-9a-f]{32}")


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


def is_fingerprint(value: object) -> bool:
    """True when ``value`` has the form :func:`fingerprint` gives (and so is safe as a file name)."""
    return isinstance(value, str) and FINGERPRINT_RE.fullmatch(value) is not None


def checked_fingerprint(value: object, video_id: int | None = None) -> str:
    """``value`` when it is a well-formed fingerprint; :class:`~vidtrain_gui.fsutil.UnsafePathError` (one line
    naming the video) otherwise. Call it before building any path from a fingerprint read from a project."""
    if is_fingerprint(value):
        return value  # type: ignore[return-value]
    who = f"video {video_id}" if video_id is not None else "a video"
    shown = value if not isinstance(value, str) or len(value) <= 80 else value[:77] + "..."
    raise UnsafePathError(
        f"{who} has an invalid fingerprint in the database ({shown!r}); the project file may have been tampered "
        "with: no cache file was read or written for it (re-import the video, or restore project.vidtrain from a "
        "backup)"
    )

"""Writing files so that a crash, a kill or a full disk never leaves a half-written file under the real name, and
one readable line when the disk is full. Standard library only: every layer (core, media, ml, jobs) uses it.

:func:`atomic_write` writes the whole content to a uniquely named temporary file in the destination's folder
(``.<name>.<pid>-<random>.tmp``: two processes writing the same file never share a temporary), flushes and fsyncs
it, renames it over the destination with ``os.replace`` (atomic on POSIX and Windows), then fsyncs the folder so
the rename itself survives power loss. Until the rename the old file is untouched; after a failure the temporary
is removed. :func:`clean_temporaries` removes the ones a killed process left behind. :func:`inside` is the one
check that a path built from a project's stored values (fingerprints, run ids) stays in the project folder.

One family, by how the content is made: :func:`atomic_write` (bytes or text in hand), :func:`atomic_save` (a
callback writing to a binary file object: ``np.save``, ``torch.save``), :func:`atomic_file` (a ``with`` block
writing to a file object) and :func:`atomic_path` (a writer that only takes a file *name*: ``torch.onnx.export``,
SQLite's backup API, a video muxer). Each takes ``fsync=False`` for files not worth a disk flush (they are still
never seen half-written, only possibly lost with the power).
"""

from __future__ import annotations

import errno
import os
import re
import secrets
import shutil
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from glob import escape as glob_escape
from pathlib import Path
from typing import IO, Union

PathLike = Union[str, "os.PathLike[str]"]
_NO_SPACE = {errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)}
TEMP_PATTERN = re.compile(r"^\..+\.\d+-[0-9a-f]{8}\.tmp$")


class UnsafePathError(ValueError):
    """A path built from a project's stored values (a fingerprint, a run id, an artefact path) would leave the
    folder it belongs in: the project file may have been tampered with. ``str()`` is one line."""


class DiskFullError(OSError):
    """A file could not be written because its disk (or quota) is full. ``str()`` is one line naming the file,
    the space it needed and the space left."""

    def __init__(self, path: PathLike, needed: int | None = None) -> None:
        self.path = Path(path)
        self.needed = needed
        self.free = free_bytes(self.path.parent)
        need = f"about {format_bytes(needed)}, " if needed else ""
        free = f"{format_bytes(self.free)} free" if self.free is not None else "free space unknown"
        message = (
            f"not enough disk space to write {self.path} (it needs {need}{free} there): "
            "free some space on that disk and try again"
        )
        super().__init__(errno.ENOSPC, message, str(self.path))

    def __str__(self) -> str:
        return self.strerror

    def __reduce__(self):
        return (type(self), (str(self.path), self.needed))


def is_disk_full(exc: BaseException) -> bool:
    """True for an OSError (or an error wrapping one, as SQLite's "database or disk is full") meaning no space."""
    if isinstance(exc, OSError) and exc.errno in _NO_SPACE:
        return True
    text = str(exc).lower()
    return "no space left" in text or "disk is full" in text or "disk quota" in text


def free_bytes(folder: PathLike) -> int | None:
    """Free bytes on the disk holding ``folder`` (its nearest existing parent), None when it cannot be told."""
    path = Path(folder)
    for candidate in (path, *path.parents):
        try:
            return shutil.disk_usage(candidate).free
        except OSError:
            continue
    return None


def format_bytes(n: int | None) -> str:
    if n is None:
        return "?"
    value = float(n)
    for unit in ("bytes", "KB", "MB", "GB"):
        if value < 1000 or unit == "GB":
            return f"{int(value)} {unit}" if unit == "bytes" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{value:.1f} TB"  # pragma: no cover


def temporary_name(path: PathLike) -> Path:
    """A fresh temporary next to ``path``; :data:`TEMP_PATTERN` matches it (so :func:`clean_temporaries` does),
    and a folder listing by extension never mistakes it for the real file (it ends in ``.tmp``)."""
    path = Path(path)
    return path.with_name(f".{path.name}.{os.getpid()}-{secrets.token_hex(4)}.tmp")


def is_temporary(path: PathLike) -> bool:
    """True for a name :func:`temporary_name` makes."""
    return bool(TEMP_PATTERN.match(Path(path).name))


def temporaries_of(path: PathLike) -> list[Path]:
    """The temporaries of writes to ``path`` that exist now: in progress elsewhere, or left by a killed process."""
    path = Path(path)
    own = re.compile(rf"^\.{re.escape(path.name)}\.\d+-[0-9a-f]{{8}}\.tmp$")
    try:
        return sorted(p for p in path.parent.glob(f".{glob_escape(path.name)}.*.tmp") if own.match(p.name))
    except OSError:
        return []


def fsync_folder(folder: PathLike) -> None:
    """Make a rename in ``folder`` durable (a no-op where folders cannot be opened, as on Windows)."""
    try:
        fd = os.open(str(folder), os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _fsync_file(path: Path) -> None:
    with open(path, "rb+") as f:  # writable: Windows flushes only a handle opened for writing
        os.fsync(f.fileno())


def _abandon(tmp: Path, path: Path, exc: BaseException) -> None:
    """After a failed write: remove the temporary, and turn "no space" into :class:`DiskFullError` (the caller
    re-raises ``exc`` when this returns)."""
    try:
        written = tmp.stat().st_size
    except OSError:
        written = None
    with suppress(OSError):  # the write's own error is the one to report
        tmp.unlink(missing_ok=True)
    if isinstance(exc, OSError) and is_disk_full(exc) and not isinstance(exc, DiskFullError):
        raise DiskFullError(path, written) from exc


@contextmanager
def atomic_path(path: PathLike, *, fsync: bool = True) -> Iterator[Path]:
    """``with atomic_path(p) as tmp: writer(tmp)``, for writers that take a file name: ``p`` is replaced by the
    file the block wrote at ``tmp`` only when the block ends without an error; otherwise ``tmp`` is removed. A
    full disk raises :class:`DiskFullError`."""
    path = Path(path)
    tmp = temporary_name(path)
    try:
        yield tmp
        if fsync:
            _fsync_file(tmp)
        os.replace(tmp, path)
    except BaseException as exc:
        _abandon(tmp, path, exc)
        raise
    if fsync:
        fsync_folder(path.parent)


@contextmanager
def atomic_file(path: PathLike, mode: str = "wb", *, encoding: str | None = None, newline: str | None = None,
                fsync: bool = True) -> Iterator[IO]:  # fmt: skip
    """``with atomic_file(p, "w", encoding="utf-8") as f: ...``: ``p`` is replaced only when the block ends
    without an error, and then with everything that was written. A full disk raises :class:`DiskFullError`."""
    with atomic_path(path, fsync=fsync) as tmp, open(tmp, mode, encoding=encoding, newline=newline) as f:
        yield f


def atomic_write(
    path: PathLike, data: bytes | bytearray | memoryview | str, *, encoding: str = "utf-8", fsync: bool = True
) -> None:
    """Replace ``path`` with ``data`` (bytes, or text in ``encoding``) atomically and durably."""
    payload = data.encode(encoding) if isinstance(data, str) else data
    try:
        with atomic_file(path, "wb", fsync=fsync) as f:
            f.write(payload)
    except DiskFullError as exc:
        raise DiskFullError(path, memoryview(payload).nbytes) from exc.__cause__


def atomic_save(path: PathLike, write: Callable[[IO[bytes]], object], *, fsync: bool = True) -> None:
    """Replace ``path`` with what ``write(f)`` writes to a binary file (``np.save``, ``torch.save``...)."""
    with atomic_file(path, "wb", fsync=fsync) as f:
        write(f)


def inside(root: PathLike, path: PathLike, *, what: str | None = None) -> Path:
    """``path`` (absolute, or relative to ``root``) made absolute and normalised, when it lies inside ``root``;
    :class:`UnsafePathError` otherwise (``what`` names the path in the message).

    The check is on the path as written (``..`` and absolute parts from stored values are what can escape), not on
    where symbolic links point: a link the user made inside the project folder (a cache on another disk) is
    theirs to make and is followed."""
    base = os.path.abspath(os.fspath(root))
    full = os.path.abspath(os.path.join(base, os.fspath(path)))
    try:
        ok = os.path.commonpath([base, full]) == base
    except ValueError:  # another drive on Windows
        ok = False
    if not ok:
        name = what or f"the path {os.fspath(path)!r}"
        raise UnsafePathError(
            f"{name} points outside {base}; the project file may have been tampered with: nothing was written"
        )
    return Path(full)


def clean_temporaries(folder: PathLike, *, older_than_s: float = 3600.0, recursive: bool = True) -> int:
    """Remove temporaries of the atomic writes above that a killed process left in ``folder``; returns how many.
    Only files older than ``older_than_s`` go, so a write in progress in another process is left alone."""
    root = Path(folder)
    if not root.is_dir():
        return 0
    now = time.time()
    removed = 0
    for tmp in root.rglob("*.tmp") if recursive else root.glob("*.tmp"):
        if not is_temporary(tmp):
            continue
        try:
            if now - tmp.stat().st_mtime >= older_than_s:
                tmp.unlink()
                removed += 1
        except OSError:
            continue
    return removed


__all__ = [
    "DiskFullError", "UnsafePathError", "atomic_file", "atomic_path", "atomic_save", "atomic_write",
    "clean_temporaries", "format_bytes", "free_bytes", "fsync_folder", "inside", "is_disk_full", "is_temporary",
    "temporaries_of", "temporary_name",
]  # fmt: skip

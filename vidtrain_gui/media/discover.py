"""Find candidate files under the paths a user gave: files as given, folders walked recursively.

Nothing is judged by extension (a file is a video if it decodes, see probe.py); only hidden files, our own
project databases and files that are obviously not media (by a short list of extensions) are skipped in
folders. A file named directly is always tried.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from pathlib import Path

_SKIP_EXT = {".vidtrain", ".vidtrain-wal", ".vidtrain-shm", ".npz", ".npy", ".json", ".txt", ".md", ".csv",
             ".py", ".db", ".sqlite", ".tmp", ".lock", ".srt", ".vtt", ".xml", ".yaml", ".yml"}  # fmt: skip


def iter_candidates(paths: Iterable[str | os.PathLike]) -> Iterator[Path]:
    seen: set[Path] = set()
    for p in paths:
        p = Path(p).expanduser().absolute()
        if p.is_dir():
            for root, dirs, files in os.walk(p):
                skip = {"cache", "runs", "backups"} if "project.vidtrain" in files else set()  # a project's own
                dirs[:] = sorted(d for d in dirs if not d.startswith(".") and d not in skip)
                for name in sorted(files):
                    if name.startswith(".") or Path(name).suffix.lower() in _SKIP_EXT:
                        continue
                    f = Path(root) / name
                    if f not in seen:
                        seen.add(f)
                        yield f
        elif p not in seen:
            seen.add(p)
            yield p  # missing files too: the caller reports them

"""How VidTrain starts its own processes, and the entry point of the app's executables.

Jobs (features, training, prediction, export) and the device check run as processes of the same installation:

- from a Python environment, as ``python -m vidtrain_gui.cli ARGS`` (torchrun and the tests start them that way);
- in the one-folder build (PyInstaller, ``sys.frozen``), where there is no ``python`` to run, as the app's own
  executable with the hidden first argument ``--job``: ``vidtrain-gui --job ARGS``.

:func:`cli_command` gives the program and arguments for either, so the window never spells a command line itself;
vidtrain_gui/entry.py dispatches ``--job``. Before anything else, a frozen build checks that this machine has what
the build needs (:func:`startup_problem`: the C library the bundled binaries were linked against), because the
bundled Qt or torch would otherwise fail with a loader message that names a symbol, not a cause.

Stdlib and fsutil only: the window imports it, and it runs before Qt or torch is loaded.
"""

from __future__ import annotations

import json
import os
import platform
import sys
from collections.abc import Sequence
from pathlib import Path

from vidtrain_gui.fsutil import atomic_write

JOB_FLAG = "--job"
BUILD_INFO = "build.json"  # written into the one-folder build by packaging/build.py, next to the package's resources


def is_frozen() -> bool:
    """True inside the one-folder build (PyInstaller sets ``sys.frozen``)."""
    return bool(getattr(sys, "frozen", False))


def cli_command(args: Sequence[str]) -> tuple[str, list[str]]:
    """The program and arguments that run ``vidtrain ARGS`` in a new process of this installation."""
    if is_frozen():
        return sys.executable, [JOB_FLAG, *map(str, args)]
    return sys.executable, ["-m", "vidtrain_gui.cli", *map(str, args)]


def resource(name: str) -> Path:
    """A file of the package's resources (icon, desktop entry, build info): inside the package, so wheels and the
    one-folder build carry them."""
    return Path(__file__).resolve().parent / "resources" / name


def gui_executable() -> Path:
    """The window's executable of this installation: ``vidtrain-gui`` beside the running interpreter (a virtual
    environment's bin/ or Scripts/ folder) or beside the frozen executable (the one-folder build)."""
    suffix = ".exe" if sys.platform == "win32" else ""
    return Path(sys.executable).absolute().parent / f"vidtrain-gui{suffix}"  # not resolved: a venv links python


def launched_by_torchrun() -> bool:
    """Whether torchrun (or another launcher that sets ``WORLD_SIZE`` above 1) started this process. Stdlib only, so
    ``vidtrain train`` can tell before torch is imported (ml/distributed.py joins the process group)."""
    return "TORCHELASTIC_RUN_ID" in os.environ or int(os.environ.get("WORLD_SIZE", "1")) > 1


def install_desktop_entry(data_home: str | Path | None = None, uninstall: bool = False) -> list[Path]:
    """Linux: put VidTrain in the desktop's application menu (``~/.local/share/applications/vidtrain.desktop``,
    ``Exec`` = this installation's window executable, or the one-folder build's launcher ``VidTrain`` that checks
    glibc first) with its icon (hicolor, scalable), or remove both. Returns the files written or removed.
    ``data_home`` defaults to ``$XDG_DATA_HOME`` or ``~/.local/share``."""
    home = Path(data_home or os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share")
    entry = home / "applications" / "vidtrain.desktop"
    icon = home / "icons" / "hicolor" / "scalable" / "apps" / "vidtrain.svg"
    if uninstall:
        removed = [p for p in (entry, icon) if p.is_file()]
        for path in removed:
            path.unlink()
        return removed
    executable = gui_executable()
    launcher = executable.with_name("VidTrain")  # the one-folder build's glibc check (packaging/build.py)
    if is_frozen() and launcher.is_file():
        executable = launcher
    if not executable.is_file():
        raise FileNotFoundError(f"{executable} is missing: is this installation complete?")
    lines = []
    for line in resource("vidtrain.desktop").read_text("utf-8").splitlines():
        if line.startswith("Exec="):
            line = f'Exec="{executable}"'
        elif line.startswith("Icon="):
            line = f"Icon={icon}"
        lines.append(line)
    for path, data in ((icon, resource("vidtrain.svg").read_bytes()), (entry, "\n".join(lines) + "\n")):
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(path, data)
    return [entry, icon]


def build_info() -> dict:
    """What packaging/build.py recorded about the one-folder build (version, torch, CUDA, the glibc it needs);
    empty outside a build or when the file is missing or unreadable."""
    path = resource(BUILD_INFO)
    try:
        info = json.loads(path.read_text("utf-8"))
    except (OSError, ValueError):
        return {}
    return info if isinstance(info, dict) else {}


def _version_tuple(text: str) -> tuple[int, ...]:
    parts = []
    for part in text.split("."):
        digits = "".join(ch for ch in part if ch.isdigit())
        if not digits:
            break
        parts.append(int(digits))
    return tuple(parts)


def startup_problem(info: dict | None = None, libc: tuple[str, str] | None = None,
                    system: str | None = None) -> str | None:  # fmt: skip
    """Why this build cannot run on this machine, in words, or None. Linux only: the build's binaries need at least
    the glibc of the machine it was made on (``glibc_needed`` in its build info)."""
    info = build_info() if info is None else info
    system = sys.platform if system is None else system
    needed = str(info.get("glibc_needed") or "")
    if not system.startswith("linux") or not needed:
        return None
    name, have = platform.libc_ver() if libc is None else libc
    if name != "glibc" or not have:
        return (f"This VidTrain build was made for Linux with glibc {needed} or newer, and this system's C library "
                f"is {name or 'not glibc'} (musl-based systems such as Alpine cannot run it). Install VidTrain with "
                "pip instead (see the README).")  # fmt: skip
    if _version_tuple(have) >= _version_tuple(needed):
        return None
    return (f"This VidTrain build needs glibc {needed} or newer; this system has glibc {have} "
            f"(`ldd --version` tells). Install VidTrain with pip instead (see the README), or use a build made "
            "on an older system.")  # fmt: skip


def ensure_std_streams() -> None:
    """Give the process standard streams where it has none. A windowed executable on Windows starts with
    ``sys.stdout``/``sys.stderr`` None (a job's JSON output and error line would raise); the file descriptors are
    opened on the null device so that ``vidtrain --detached`` can still redirect them by number."""
    for fd, name, mode in ((0, "stdin", "r"), (1, "stdout", "w"), (2, "stderr", "w")):
        if getattr(sys, name) is not None:
            continue
        try:
            os.fstat(fd)
        except OSError:
            target = os.open(os.devnull, os.O_RDWR)
            if target != fd:
                os.dup2(target, fd)
                os.close(target)
        setattr(sys, name, open(fd, mode, encoding="utf-8", errors="replace", closefd=False))


__all__ = [
    "JOB_FLAG", "build_info", "cli_command", "ensure_std_streams", "gui_executable", "install_desktop_entry",
    "is_frozen", "launched_by_torchrun", "resource", "startup_problem",
]  # fmt: skip

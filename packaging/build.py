"""Build VidTrain's one-folder app (packaging/vidtrain.spec) with PyInstaller, the same on Linux, Windows and macOS.

    python packaging/build.py [--dist DIR] [--work DIR]

Run it with the Python whose packages the build should carry: VidTrain installed (the wheel, or the checkout) with
its dependencies, plus ``pyinstaller``. The torch found there is the one inside the build: a CUDA build of torch
on Linux brings NVIDIA's libraries (about 3 GB); install PyTorch's CPU wheels first for a small CPU-only build.

1. The icon: Qt renders the package's SVG as PNG (Linux), ICO (Windows) or ICNS (macOS) into the work folder.
2. PyInstaller runs the spec: ``DIST/VidTrain/`` holds ``vidtrain-gui``, ``vidtrain`` and ``_internal/``
   (``DIST/VidTrain.app`` on macOS too).
3. ``build.json`` goes next to the package's resources inside the build: VidTrain's, Python's, torch's and CUDA's
   versions, when and where it was built, and on Linux the newest glibc any bundled binary asks for, which the app
   checks before loading Qt or torch (vidtrain_gui/launch.py ``startup_problem``).
4. Linux: ``DIST/VidTrain/VidTrain``, a POSIX shell launcher (what the desktop entry runs) that checks the
   system's glibc before the bundled libpython needs it: the PyInstaller bootloader would otherwise stop with a
   loader message naming a symbol version. It says what is needed (in a dialog when zenity, kdialog or xmessage is
   there) and otherwise starts ``vidtrain-gui``.
5. The last line printed is JSON: the build's folder, size in bytes, file count and seconds.
"""

from __future__ import annotations

import argparse
import datetime
import json
import mmap
import os
import platform
import re
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SPEC = ROOT / "packaging" / "vidtrain.spec"
NAME = "VidTrain"
ICON_FORMATS = {"win32": ("ico", "ICO"), "darwin": ("icns", "ICNS")}
GLIBC = re.compile(rb"GLIBC_(\d+)\.(\d+)(?:\.(\d+))?\x00")


def render_icon(work: Path) -> Path:
    """The app icon in this platform's format, rendered by Qt from the package's SVG."""
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtCore import Qt
    from PySide6.QtGui import QGuiApplication, QImage, QPainter
    from PySide6.QtSvg import QSvgRenderer

    from vidtrain_gui.launch import resource

    app = QGuiApplication.instance() or QGuiApplication(sys.argv[:1])  # noqa: F841 - Qt needs one to paint
    suffix, fmt = ICON_FORMATS.get(sys.platform, ("png", "PNG"))
    image = QImage(256, 256, QImage.Format.Format_ARGB32)
    image.fill(Qt.GlobalColor.transparent)
    painter = QPainter(image)
    QSvgRenderer(str(resource("vidtrain.svg"))).render(painter)
    painter.end()
    work.mkdir(parents=True, exist_ok=True)
    path = work / f"vidtrain.{suffix}"
    if not image.save(str(path), fmt):
        raise SystemExit(f"build: Qt could not write the icon as {fmt} ({path})")
    return path


def glibc_needed(folder: Path) -> str | None:
    """The newest ``GLIBC_x.y`` version any ELF file in ``folder`` asks for (Linux), or None."""
    newest: tuple[int, ...] = ()
    for path in folder.rglob("*"):
        if path.is_symlink() or not path.is_file() or path.stat().st_size < 64:
            continue
        with path.open("rb") as f:
            if f.read(4) != b"\x7fELF":
                continue
            with mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as data:
                for match in GLIBC.finditer(data):
                    newest = max(newest, tuple(int(g) for g in match.groups() if g is not None))
    return ".".join(map(str, newest)) or None


LAUNCHER = """#!/bin/sh
# VidTrain's launcher (one-folder build, Linux; written by packaging/build.py). Every bundled binary, libpython
# first, needs glibc {needed} or newer: say so plainly instead of letting the loader fail on a symbol version.
here=$(dirname "$(readlink -f "$0")")
needed={needed}
have=$(getconf GNU_LIBC_VERSION 2>/dev/null | sed -n 's/^glibc //p')
if [ -z "$have" ] || [ "$(printf '%s\\n%s\\n' "$needed" "$have" | sort -V | head -n 1)" != "$needed" ]; then
    msg="This VidTrain build needs glibc $needed or newer; this system has ${{have:-no glibc}}. Install VidTrain \\
with pip instead (see the README), or use a build made on an older system."
    echo "VidTrain: $msg" >&2
    if command -v zenity >/dev/null 2>&1; then zenity --error --title VidTrain --text "$msg"
    elif command -v kdialog >/dev/null 2>&1; then kdialog --title VidTrain --error "$msg"
    elif command -v xmessage >/dev/null 2>&1; then xmessage -center "VidTrain: $msg"
    fi
    exit 1
fi
exec "$here/vidtrain-gui" "$@"
"""


def write_launcher(app: Path, needed: str) -> Path:
    """The Linux launcher ``app/VidTrain`` for a build that needs glibc ``needed``."""
    path = app / NAME
    path.write_text(LAUNCHER.format(needed=needed), encoding="utf-8")
    path.chmod(0o755)
    return path


def build_info(app: Path) -> dict:
    import torch

    import vidtrain_gui

    info = {
        "vidtrain": vidtrain_gui.__version__,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "platform": platform.platform(),
        "built": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }
    if sys.platform.startswith("linux"):
        info["glibc_built_with"] = platform.libc_ver()[1]
        info["glibc_needed"] = glibc_needed(app)
    return info


def folder_size(folder: Path) -> tuple[int, int]:
    files = [p for p in folder.rglob("*") if p.is_file() and not p.is_symlink()]
    return sum(p.stat().st_size for p in files), len(files)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dist", type=Path, default=ROOT / "packaging" / "dist", help="where the app goes")
    parser.add_argument("--work", type=Path, default=ROOT / "packaging" / "build", help="PyInstaller's work folder")
    args = parser.parse_args(argv)
    started = time.monotonic()
    icon = render_icon(args.work)
    env = dict(os.environ, VIDTRAIN_ICON=str(icon))
    command = [sys.executable, "-m", "PyInstaller", "--noconfirm", "--clean", "--log-level", "WARN",
               "--distpath", str(args.dist), "--workpath", str(args.work), str(SPEC)]  # fmt: skip
    print("build:", " ".join(command), flush=True)
    subprocess.run(command, check=True, env=env)
    app = args.dist / NAME
    internal = app / "_internal" if (app / "_internal").is_dir() else app
    resources = internal / "vidtrain_gui" / "resources"
    resources.mkdir(parents=True, exist_ok=True)
    info = build_info(app)
    (resources / "build.json").write_text(json.dumps(info, indent=1) + "\n", encoding="utf-8")
    if info.get("glibc_needed"):
        write_launcher(app, info["glibc_needed"])
    size, files = folder_size(app)
    seconds = round(time.monotonic() - started, 1)
    print(f"build: {app}: {size / 1e9:.2f} GB in {files} files, {seconds} s; needs glibc {info.get('glibc_needed')}")
    print(json.dumps({"app": str(app), "bytes": size, "files": files, "seconds": seconds, **info}))
    return 0


if __name__ == "__main__":
    sys.exit(main())

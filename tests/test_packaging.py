"""packaging/build.py's parts that run without PyInstaller: the glibc a build needs, read from its ELF files, and
the Linux launcher that checks it before the bundled libpython loads. (The build itself and the wheel are checked
end to end by packaging/smoke.sh, which .ci/run runs.)"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

BUILD = Path(__file__).resolve().parents[1] / "packaging" / "build.py"
pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc and the launcher are Linux's")


@pytest.fixture(scope="module")
def build():
    spec = importlib.util.spec_from_file_location("vidtrain_build", BUILD)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_glibc_a_build_needs_is_the_newest_any_elf_file_asks_for(build, tmp_path):
    (tmp_path / "lib").mkdir()
    (tmp_path / "lib" / "liba.so").write_bytes(b"\x7fELF" + b"\0" * 60 + b"GLIBC_2.17\0GLIBC_2.4\0GLIBC_2.3.4\0")
    (tmp_path / "vidtrain").write_bytes(b"\x7fELF" + b"\0" * 60 + b"GLIBC_2.34\0GLIBC_PRIVATE\0")
    (tmp_path / "notes.txt").write_bytes(b"GLIBC_2.99\0" * 10)  # not an ELF file: not counted
    assert build.glibc_needed(tmp_path) == "2.34"
    assert build.glibc_needed(tmp_path / "lib") == "2.17"  # 2.17 is newer than 2.4 and 2.3.4


def _launcher(build, tmp_path: Path, needed: str) -> Path:
    app = tmp_path / "VidTrain"
    app.mkdir()
    (app / "vidtrain-gui").write_text('#!/bin/sh\necho "started with: $*"\n')
    (app / "vidtrain-gui").chmod(0o755)
    return build.write_launcher(app, needed)


def test_the_launcher_starts_the_window_when_the_glibc_is_new_enough(build, tmp_path):
    out = subprocess.run([str(_launcher(build, tmp_path, "2.0")), "my project"], capture_output=True, text=True)
    assert out.returncode == 0 and out.stdout == "started with: my project\n"


def test_the_launcher_says_plainly_when_the_glibc_is_too_old(build, tmp_path):
    env = {"PATH": "/usr/bin:/bin"}  # no DISPLAY: no dialog, the message on stderr
    out = subprocess.run([str(_launcher(build, tmp_path, "99.1"))], capture_output=True, text=True, env=env)
    assert out.returncode == 1 and out.stdout == ""
    assert "This VidTrain build needs glibc 99.1 or newer; this system has 2." in out.stderr
    assert "Install VidTrain with pip instead" in out.stderr

"""The core layer stays importable without Qt, torch or any other VidTrain layer (see docs/architecture.md)."""

from __future__ import annotations

import pkgutil
import subprocess
import sys
import textwrap

import vidtrain_gui.core

BLOCKED = (
    "PySide6", "pyqtgraph", "torch", "torchvision", "cv2", "av", "numpy",
    "vidtrain_gui.media", "vidtrain_gui.ml", "vidtrain_gui.jobs", "vidtrain_gui.gui", "vidtrain_gui.cli",
)  # fmt: skip


def test_core_imports_nothing_above_it(subprocess_env) -> None:
    modules = sorted(m.name for m in pkgutil.walk_packages(vidtrain_gui.core.__path__, "vidtrain_gui.core."))
    assert "vidtrain_gui.core.labels" in modules
    script = textwrap.dedent(
        f"""
        import importlib, sys
        BLOCKED = {BLOCKED!r}

        class Blocker:
            def find_spec(self, name, path=None, target=None):
                if any(name == b or name.startswith(b + ".") for b in BLOCKED):
                    raise ImportError(f"core must not import {{name}}")
                return None

        sys.meta_path.insert(0, Blocker())
        for module in {modules!r}:
            importlib.import_module(module)
        loaded = [m for m in sys.modules if any(m == b or m.startswith(b + ".") for b in BLOCKED)]
        assert not loaded, loaded
        print("ok")
        """
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=subprocess_env,
                            timeout=60)  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"

"""ARCHITECTURE.md's layering, enforced: core, media and jobs import with PySide6 and torch unimportable, and
the window never imports torch or the ml layer."""

import subprocess
import sys
import textwrap

import pytest

BLOCK = textwrap.dedent(
    """
    import importlib.abc, sys
    class Block(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in {"PySide6", "shiboken6", "pyqtgraph", "torch", "torchvision"}:
                raise ImportError(f"{name} is blocked by the layering test")
    sys.meta_path.insert(0, Block())
    """
)


@pytest.mark.parametrize(
    "module",
    ["vidtrain_gui.core", "vidtrain_gui.media", "vidtrain_gui.jobs", "vidtrain_gui.footage", "vidtrain_gui.cli"],
)
def test_lower_layers_import_without_qt_and_torch(module):
    code = BLOCK + f"import {module}\nimport pkgutil, importlib\n"
    code += textwrap.dedent(
        f"""
        pkg = importlib.import_module("{module}")
        for info in pkgutil.walk_packages(getattr(pkg, "__path__", []), "{module}."):
            importlib.import_module(info.name)
        bad = sorted(m for m in sys.modules if m.split(".")[0] in {{"PySide6", "torch", "pyqtgraph"}})
        assert not bad, bad
        """
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr


def test_core_and_media_do_not_know_each_other():
    code = textwrap.dedent(
        """
        import sys, importlib, pkgutil
        for layer, other in (("core", "media"), ("media", "core")):
            for m in [k for k in sys.modules if k.startswith("vidtrain_gui.")]:
                del sys.modules[m]
            pkg = importlib.import_module(f"vidtrain_gui.{layer}")
            for info in pkgutil.walk_packages(pkg.__path__, pkg.__name__ + "."):
                importlib.import_module(info.name)
            leaked = [m for m in sys.modules if m.startswith(f"vidtrain_gui.{other}") or m.startswith("vidtrain_gui.ml")]
            assert not leaked, (layer, leaked)
        """
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr

"""ARCHITECTURE.md's layering, enforced two ways.

- Statically: every import under vidtrain_gui (module level, inside functions, under try/if guards, `from x import
  y`, relative imports resolved, `importlib.import_module("...")` with a literal name) is mapped to its layer and
  checked against FORBIDDEN; and nothing the window imports, at any depth, reaches torch (UNREACHABLE). A failure
  names the file, the line and the edge.
- In a subprocess: core, media, jobs, footage and the CLI import with PySide6 and torch unimportable, and core and
  media import nothing of each other or of ml.
"""

from __future__ import annotations

import ast
import subprocess
import sys
import textwrap
from collections import defaultdict, deque
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest

PACKAGE = "vidtrain_gui"
PACKAGE_DIR = Path(__file__).resolve().parents[1] / PACKAGE

# VidTrain's own top-level modules. In the tables below such a name, or a dotted path under one ("ml.featurecache"),
# means vidtrain_gui.<name>; "vidtrain_gui" means the whole package; THIRD_PARTY means anything outside the standard
# library and vidtrain_gui; any other name is a top-level package (torch, PySide6, numpy). A new top-level module
# fails test_every_layer_has_a_row until it is given its place here.
LAYERS = ("core", "media", "footage", "ml", "jobs", "gui", "cli", "fsutil", "buildinfo", "launch", "entry", "storage")
QT = ("PySide6", "shiboken6", "pyqtgraph")
TORCH = ("torch", "torchvision")
THIRD_PARTY = "<third-party>"

# importer -> what it must never import, at any depth of the file (functions, try/if guards included).
FORBIDDEN: dict[str, tuple[str, ...]] = {
    # the store: stdlib + SQLAlchemy; knows nothing above it and nothing of media (tests/core/test_core_imports.py)
    "core": ("media", "footage", "ml", "jobs", "gui", "cli", "storage", *QT, *TORCH, "numpy", "cv2", "av"),
    # decoding: knows nothing of the store nor of anything above it
    "media": ("core", "footage", "ml", "jobs", "gui", "cli", *QT, *TORCH),
    # the core-media glue (ingest, demo): below ml, jobs, the CLI and the window, which all stand on it
    "footage": ("ml", "jobs", "gui", "cli", *QT, *TORCH),
    # torch; never Qt, never what runs it
    "ml": ("jobs", "gui", "cli", *QT),
    # copied verbatim into model bundles next to predict.py: onnxruntime, OpenCV and numpy only
    "ml.bundle_predict": (PACKAGE, *TORCH, "av"),
    # runner and cache repair: no Qt (torch never at import time: the subprocess tests below)
    "jobs": ("gui", "cli", *QT),
    # the window: never torch; ml only through jobs (a process), the CLI only as a process
    "gui": ("ml", "cli", *TORCH),
    # headless
    "cli": ("gui", *QT),
    # where the app keeps things and clearing caches (CLI, window, ml's engine cache): on the store, below the rest
    "storage": ("media", "footage", "ml", "jobs", "gui", "cli", *QT, *TORCH, "numpy", "cv2", "av"),
    # below every layer: stdlib only, knows nothing of VidTrain
    "fsutil": (PACKAGE, THIRD_PARTY),
    # how the app starts its own processes; read by the window and by the frozen build before Qt or torch loads
    "launch": ("core", "media", "footage", "ml", "jobs", "gui", "cli", "entry", "storage", "buildinfo", THIRD_PARTY),
    # the executables' entry: hands over to the CLI (--job) or the window, and knows nothing below them
    "entry": ("core", "media", "footage", "ml", "jobs", *QT, *TORCH),
    # read by the window (Help > About): versions from package metadata, never by importing the packages
    "buildinfo": ("core", "media", "footage", "ml", "jobs", "gui", "cli", THIRD_PARTY),
}

# Exceptions to FORBIDDEN, importer -> targets. The window may use torch-free ml modules listed here; there are none
# today (gui imports nothing of ml), so any gui -> ml import fails until someone lists it here on purpose.
ALLOWED: dict[str, tuple[str, ...]] = {
    "gui": (),
}

# importer -> what no chain of imports starting in it may reach, following every import (inside functions too:
# the window's process runs them) through vidtrain_gui's own modules and the packages each one runs on import.
UNREACHABLE: dict[str, tuple[str, ...]] = {
    "gui": TORCH,
}


@dataclass(frozen=True)
class Import:
    file: str  # as shown in messages: vidtrain_gui/gui/player.py
    line: int
    source: str  # the importing module: vidtrain_gui.gui.player
    target: str  # the imported module: torch.nn, vidtrain_gui.ml.features
    typing_only: bool = False  # under `if TYPE_CHECKING:`: checked as an edge, never run

    @property
    def where(self) -> str:
        return f"{self.file}:{self.line}"


def module_name(path: Path, package_dir: Path) -> str:
    parts = path.relative_to(package_dir.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _from_base(node: ast.ImportFrom, package: str, where: str) -> str:
    """The absolute module of `from <base> import ...`; a relative one is resolved against the importer's package."""
    if not node.level:
        return node.module or ""
    parts = package.split(".")
    if node.level > len(parts):
        raise ValueError(f"{where}: relative import beyond the top-level package")
    base = parts[: len(parts) - node.level + 1]
    return ".".join(base + ([node.module] if node.module else []))


def _dynamic_target(node: ast.AST) -> str | None:
    """`importlib.import_module("x")` / `import_module("x")` / `__import__("x")` with a literal absolute name."""
    if not isinstance(node, ast.Call) or not node.args:
        return None
    func = node.func
    name = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else None
    arg = node.args[0]
    if name in {"import_module", "__import__"} and isinstance(arg, ast.Constant) and isinstance(arg.value, str):
        return None if arg.value.startswith(".") else arg.value
    return None


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _walk(node: ast.AST, typing_only: bool = False):
    """Every node with whether it sits in the body of an `if TYPE_CHECKING:`."""
    yield node, typing_only
    for field, value in ast.iter_fields(node):
        guarded = typing_only or (isinstance(node, ast.If) and field == "body" and _is_type_checking(node.test))
        for child in value if isinstance(value, list) else [value]:
            if isinstance(child, ast.AST):
                yield from _walk(child, guarded)


def collect_imports(package_dir: Path) -> list[Import]:
    files = sorted(package_dir.rglob("*.py"))
    modules = {module_name(f, package_dir) for f in files}
    found: list[Import] = []
    for path in files:
        source = module_name(path, package_dir)
        package = source if path.name == "__init__.py" else source.rpartition(".")[0]
        shown = path.relative_to(package_dir.parent).as_posix()
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=shown)
        for node, typing_only in _walk(tree):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = _from_base(node, package, f"{shown}:{node.lineno}")
                # `from pkg import name` imports the module pkg.name when there is one, else an attribute of pkg
                targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base for a in node.names]
            elif target := _dynamic_target(node):
                targets = [target]
            else:
                continue
            found.extend(Import(shown, node.lineno, source, t, typing_only) for t in dict.fromkeys(targets))
    return found


def matches(module: str, name: str) -> bool:
    """Whether the dotted module belongs to a table name (see LAYERS for what names mean)."""
    top = module.split(".")[0]
    if name == THIRD_PARTY:
        return top != PACKAGE and top not in sys.stdlib_module_names
    full = f"{PACKAGE}.{name}" if name.split(".")[0] in LAYERS else name
    return module == full or module.startswith(full + ".")


def find_violations(
    package_dir: Path,
    forbidden: Mapping[str, tuple[str, ...]] = FORBIDDEN,
    allowed: Mapping[str, tuple[str, ...]] = ALLOWED,
) -> list[str]:
    """One line per forbidden edge: `file:line: importer -> forbidden (imports module)`."""
    problems = []
    for imp in collect_imports(package_dir):
        if any(matches(imp.source, k) and any(matches(imp.target, a) for a in ok) for k, ok in allowed.items()):
            continue
        for key, targets in forbidden.items():
            if matches(imp.source, key):
                problems += [
                    f"{imp.where}: {key} -> {t} (imports {imp.target})" for t in targets if matches(imp.target, t)
                ]
    return problems


def find_reach_violations(package_dir: Path, unreachable: Mapping[str, tuple[str, ...]] = UNREACHABLE) -> list[str]:
    """One line per import of a forbidden module that a chain of imports from the importer reaches, with the chain."""
    imports = collect_imports(package_dir)
    modules = {module_name(f, package_dir) for f in package_dir.rglob("*.py")}
    by_source: dict[str, list[Import]] = defaultdict(list)
    for imp in imports:
        if not imp.typing_only:
            by_source[imp.source].append(imp)

    def runs(target: str) -> list[str]:  # our modules that importing target executes: its packages, then itself
        parts = target.split(".")
        return [m for m in (".".join(parts[:i]) for i in range(1, len(parts) + 1)) if m in modules]

    problems = []
    for key, targets in unreachable.items():
        reached_by: dict[str, Import | None] = {m: None for m in sorted(modules) if matches(m, key)}
        queue = deque(reached_by)
        while queue:
            for imp in by_source[queue.popleft()]:
                bad = [t for t in targets if matches(imp.target, t)]
                if bad:
                    chain, step = [imp], reached_by[imp.source]
                    while step is not None:
                        chain.append(step)
                        step = reached_by[step.source]
                    path = " -> ".join(f"{i.where} imports {i.target}" for i in reversed(chain))
                    problems.append(f"{key} reaches {bad[0]}: {path}")
                for module in runs(imp.target):
                    if module not in reached_by:
                        reached_by[module] = imp
                        queue.append(module)
    return problems


def test_every_layer_has_a_row():
    on_disk = {p.stem for p in PACKAGE_DIR.glob("*.py") if p.stem != "__init__"}
    on_disk |= {p.parent.name for p in PACKAGE_DIR.glob("*/__init__.py")}
    assert on_disk == set(LAYERS), "a new top-level module needs its place in LAYERS and FORBIDDEN"
    assert set(LAYERS) <= set(FORBIDDEN)
    names = {n for table in (FORBIDDEN, ALLOWED, UNREACHABLE) for k, v in table.items() for n in (k, *v)}
    for name in names:
        if name.split(".")[0] in LAYERS:  # a rule on a module that was renamed away would silently pass
            path = PACKAGE_DIR.joinpath(*name.split("."))
            assert path.with_suffix(".py").is_file() or (path / "__init__.py").is_file(), name
        else:
            assert name in {PACKAGE, THIRD_PARTY} or name not in sys.stdlib_module_names, name


def test_no_forbidden_imports():
    imports = collect_imports(PACKAGE_DIR)
    assert len({i.file for i in imports}) > 50, "the checker found too few files to be looking at the package"
    problems = find_violations(PACKAGE_DIR)
    assert not problems, "forbidden imports (see FORBIDDEN in tests/test_layering.py):\n" + "\n".join(problems)


def test_window_never_reaches_torch():
    problems = find_reach_violations(PACKAGE_DIR)
    assert not problems, "\n".join(problems)


PLANTED = {
    "__init__.py": "",
    "fsutil.py": "import os\n",
    "core/__init__.py": "",
    "core/models.py": """\
        import json
        try:
            import numpy
        except ImportError:
            numpy = None


        def load():
            from ..media import probe
            from vidtrain_gui import fsutil
            return probe, fsutil
        """,
    "media/__init__.py": "from .probe import probe\n",
    "media/probe.py": """\
        import importlib


        def probe():
            return importlib.import_module("torch")
        """,
    "ml/__init__.py": "",
    "ml/features.py": "import torch\n",
    "jobs/__init__.py": """\
        from typing import TYPE_CHECKING

        if TYPE_CHECKING:
            import torch
        """,
    "jobs/runner.py": """\
        def run():
            from vidtrain_gui.ml import features
            return features
        """,
    "gui/__init__.py": "",
    "gui/window.py": """\
        from vidtrain_gui.jobs import runner
        from vidtrain_gui.media import probe

        if runner:
            from .. import ml
        """,
}


def _plant(root: Path) -> Path:
    for name, text in PLANTED.items():
        path = root / PACKAGE / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
    return root / PACKAGE


def test_checker_catches_planted_violations(tmp_path):
    package_dir = _plant(tmp_path)
    assert sorted(find_violations(package_dir)) == [
        "vidtrain_gui/core/models.py:3: core -> numpy (imports numpy)",
        "vidtrain_gui/core/models.py:9: core -> media (imports vidtrain_gui.media.probe)",
        "vidtrain_gui/gui/window.py:5: gui -> ml (imports vidtrain_gui.ml)",
        "vidtrain_gui/media/probe.py:5: media -> torch (imports torch)",
    ]
    # an explicit allowance lifts exactly its edge
    assert find_violations(package_dir, allowed={"gui": ("ml",)}) == [
        "vidtrain_gui/core/models.py:3: core -> numpy (imports numpy)",
        "vidtrain_gui/core/models.py:9: core -> media (imports vidtrain_gui.media.probe)",
        "vidtrain_gui/media/probe.py:5: media -> torch (imports torch)",
    ]
    # the window reaches torch twice (through a function of jobs into ml, and through media), not through the
    # `if TYPE_CHECKING:` import in jobs/__init__.py, which never runs
    assert sorted(find_reach_violations(package_dir)) == [
        "gui reaches torch: vidtrain_gui/gui/window.py:1 imports vidtrain_gui.jobs.runner"
        " -> vidtrain_gui/jobs/runner.py:2 imports vidtrain_gui.ml.features"
        " -> vidtrain_gui/ml/features.py:1 imports torch",
        "gui reaches torch: vidtrain_gui/gui/window.py:2 imports vidtrain_gui.media.probe"
        " -> vidtrain_gui/media/probe.py:5 imports torch",
    ]


def test_checker_passes_a_clean_tree(tmp_path):
    package_dir = _plant(tmp_path)
    for name in ("core/models.py", "media/probe.py", "jobs/runner.py", "gui/window.py"):
        (package_dir / name).write_text("import json\nfrom vidtrain_gui import fsutil\n")
    assert find_violations(package_dir) == []
    assert find_reach_violations(package_dir) == []


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
    [
        "vidtrain_gui.core",
        "vidtrain_gui.media",
        "vidtrain_gui.jobs",
        "vidtrain_gui.footage",
        "vidtrain_gui.cli",
        "vidtrain_gui.storage",
    ],
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
            leaked = [m for m in sys.modules
                      if m.startswith(f"vidtrain_gui.{other}") or m.startswith("vidtrain_gui.ml")]
            assert not leaked, (layer, leaked)
        """
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr

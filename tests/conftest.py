"""Shared test fixtures. Qt always runs headless here (labelme's conftest does the same)."""

import os
import sys
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("VIDTRAIN_SHARED_DATA", ROOT.parent / "shared" / "data"))

if str(ROOT / "tests") not in sys.path:
    sys.path.insert(0, str(ROOT / "tests"))


import pytest  # noqa: E402


@pytest.fixture(scope="session", autouse=True)
def _engine_cache(tmp_path_factory):
    """Exported engines (ml/inference.py) go to a folder of this test session, not the user's cache; it is set in
    the environment so job subprocesses use it too."""
    if "VIDTRAIN_CACHE_DIR" not in os.environ:
        os.environ["VIDTRAIN_CACHE_DIR"] = str(tmp_path_factory.mktemp("vidtrain-cache"))
    # The window's settings (core/settings.py) too: no test reads or writes the user's own.
    os.environ.setdefault("VIDTRAIN_SETTINGS", str(tmp_path_factory.mktemp("vidtrain-settings") / "settings.json"))
    yield


# Modules whose tests train, export, run torchrun or real jobs (each over ~10 s of the suite's ~7 min on 2 cores,
# measured with --durations): marked slow in one place, so `pytest -m "not slow"` runs the quick rest. CI runs all.
SLOW_MODULES = frozenset({
    "test_e2e_cli.py", "test_ml_export.py", "test_ml_ddp.py", "test_ml_timeline.py", "test_ml_train.py",
    "test_ml_finetune.py", "test_gui_loop.py", "test_gui_jobmonitor.py", "test_faults_checkpoint.py",
    "test_faults_jobs.py", "test_media_shared_footage.py", "test_e2e_review.py",
    "test_ml_seams.py",
})  # fmt: skip


def pytest_collection_modifyitems(config, items):
    for item in items:
        if item.path.name in SLOW_MODULES:
            item.add_marker(pytest.mark.slow)

"""Shared test fixtures. Qt always runs headless here (labelme's conftest does the same)."""

import os
import sys
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("VIDTRAIN_SHARED_DATA", ROOT.parent / "shared" / "data"))

if str(ROOT / "tests") not in sys.path:
    sys.path.insert(0, str(ROOT / "tests"))

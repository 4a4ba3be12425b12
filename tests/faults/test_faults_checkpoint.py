"""A garbage or foreign ``best.pt`` is "not a VidTrain checkpoint (or damaged)" in one line, never torch's advice to
load it with ``weights_only=False`` (issue 14, Messages)."""

from __future__ import annotations

import pickle
import subprocess
import sys

import pytest

from vidtrain_gui.core import runs as R
from vidtrain_gui.core.project import Project

GARBAGE = {
    "random bytes": b"\x00\x17garbage" * 100,
    "truncated zip": b"PK\x03\x04" + b"\x00" * 40,
    # A pickle that would call a function: refused by weights_only, and the message must not suggest turning it off.
    "pickled code": pickle.dumps(print, protocol=2),
}


@pytest.fixture
def project_with_run(tmp_path):
    with Project.create(tmp_path / "proj") as p:
        run = R.create_run(p, "train", {"mode": "fast"}, classes=["a", "b"])
        R.update_run(p, run.id, status="done", metrics={"mode": "fast"})
        yield p, run


@pytest.mark.parametrize("kind", sorted(GARBAGE))
def test_a_garbage_checkpoint_is_named_in_one_line(project_with_run, kind, tmp_path):
    p, run = project_with_run
    (R.run_dir(p, run.id) / "best.pt").write_bytes(GARBAGE[kind])
    for args in (["predict", p.root, "--run", run.id], ["export", "model", p.root, "--run", run.id,
                                                       "--out", tmp_path / "bundle"]):  # fmt: skip
        r = subprocess.run([sys.executable, "-m", "vidtrain_gui.cli", *map(str, args)], capture_output=True, text=True)
        assert r.returncode != 0
        assert "not a VidTrain checkpoint (or it is damaged" in r.stderr, r.stderr
        assert "weights_only" not in r.stderr and "Traceback" not in r.stderr
        errors = [line for line in r.stderr.splitlines() if line.startswith("vidtrain: error")]
        assert len(errors) == 1 and "best.pt" in errors[0]

"""Every cache writer goes through fsutil's one atomic-write family: the temporaries they make are never taken for
cache entries or backups by whatever lists those folders, are cleaned once old, and an engine export (a writer
that takes a file name) gets a unique temporary too, removed when the export fails."""

from __future__ import annotations

import os
import time

import numpy as np
import pytest
import torch

from vidtrain_gui import fsutil
from vidtrain_gui.core import backups
from vidtrain_gui.core.project import Project
from vidtrain_gui.jobs.caches import check_caches, clean_cache_temporaries
from vidtrain_gui.ml import featurecache as FC
from vidtrain_gui.ml import inference as I
from vidtrain_gui.ml.backbones import get_backbone

FP = "0123456789abcdef0123456789abcdef"


def _age(path, seconds):
    t = time.time() - seconds
    os.utime(path, (t, t))


def _temporary_of(target):
    """What a writer of ``target`` killed half-way leaves."""
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = fsutil.temporary_name(target)
    tmp.write_bytes(b"half-written")
    return tmp


def test_temporaries_are_never_cache_entries_or_backups_and_go_when_old(tmp_path):
    with Project.create(tmp_path / "proj") as p:
        cache = p.cache_dir
        features = p.features_dir / "some-backbone"
        targets = [
            cache / "index" / f"{FP}.npz", p.thumbs_dir / f"{FP}.jpg", features / f"{FP}-r2.npy",
            features / f"{FP}-r2.json", cache / "strips" / f"{FP}-strip160x90.npy",
            cache / "strips" / f"{FP}-strip160x90.json",
        ]  # fmt: skip
        temps = [_temporary_of(t) for t in targets]
        backup = _temporary_of(backups.backup_dir(p.root) / "project-20260101T000000Z.vidtrain")
        report = check_caches(p, repair=False)
        assert report.damaged == [] and report.warnings == []  # not one is read as a (damaged) entry
        assert FC.check_folder(p.features_dir, repair=False, older_than_s=0) == []
        assert backups.list_backups(p.root) == [] and backup.exists()
        assert clean_cache_temporaries(p) == 0 and all(t.exists() for t in temps)  # may be writes in progress
        for t in temps[:3]:
            _age(t, 2 * 3600)
        assert clean_cache_temporaries(p) == 3
        assert [t.exists() for t in temps] == [False] * 3 + [True] * 3


def test_a_feature_entry_write_clears_its_own_old_temporaries(tmp_path):
    folder = tmp_path / "features" / "key"
    npy = folder / f"{FP}-r2.npy"
    old = [_temporary_of(npy), _temporary_of(npy.with_suffix(".json")), folder / f"{npy.name}.4242-deadbeef.tmp"]
    old[2].write_bytes(b"an earlier version's name")
    young = _temporary_of(npy)  # another job writing the same entry now
    other = _temporary_of(folder / f"{FP}-r4.npy")  # another entry's
    for t in [*old, other]:
        _age(t, 3600)
    FC.write_entry(npy, npy.with_suffix(".json"), np.zeros((2, 3), np.float16), {"n_samples": 2})
    assert [t.exists() for t in old] == [False] * 3 and young.exists() and other.exists()
    assert fsutil.temporaries_of(npy) == [young]


@pytest.mark.parametrize("fails", [False, True])
def test_an_engine_export_writes_a_unique_temporary_and_renames_it(tmp_path, monkeypatch, fails):
    path = tmp_path / "engines" / "lite0.onnx"
    path.parent.mkdir()
    path.write_bytes(b"the engine before")
    names = []

    def export(model, args, f, **kwargs):
        names.append(f)
        with open(f, "wb") as out:
            out.write(b"an engine")
        if fails:
            raise RuntimeError("the exporter gave up")

    monkeypatch.setattr(torch.onnx, "export", export)
    if fails:
        with pytest.raises(RuntimeError, match="gave up"):
            I._export(None, get_backbone("efficientnet_lite0"), path)
    else:
        I._export(None, get_backbone("efficientnet_lite0"), path)
    [name] = names
    assert os.path.dirname(name) == str(path.parent) and fsutil.is_temporary(name)
    assert path.read_bytes() == (b"the engine before" if fails else b"an engine")
    assert sorted(os.listdir(path.parent)) == ["lite0.onnx"]

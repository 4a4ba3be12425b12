"""vidtrain_gui.storage on a real project in tmp_path, with the user folders moved into tmp_path by the environment
(XDG_* on Linux, TORCH_HOME, VIDTRAIN_CACHE_DIR): what each place measures, what clearing removes and keeps, and
every refusal. A running job is this test's own process recorded as a run's process, as the jobs tests do."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from vidtrain_gui import fsutil, storage
from vidtrain_gui.core import classes as CL
from vidtrain_gui.core import runs as R
from vidtrain_gui.core.project import Project
from vidtrain_gui.jobs.runner import live_runs, process_started

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="the user folders are moved with XDG_* variables")


@pytest.fixture
def home(tmp_path, monkeypatch) -> Path:
    """The user's folders, all under tmp_path/home; nothing of the real home is read or written."""
    root = tmp_path / "home"
    monkeypatch.setenv("HOME", str(root))
    for var, sub in (("XDG_CACHE_HOME", "cache"), ("XDG_DATA_HOME", "data"), ("XDG_CONFIG_HOME", "config")):
        monkeypatch.setenv(var, str(root / sub))
    monkeypatch.delenv("TORCH_HOME", raising=False)
    monkeypatch.delenv("VIDTRAIN_CACHE_DIR", raising=False)
    monkeypatch.setenv("VIDTRAIN_SETTINGS", str(root / "settings.json"))
    return root


@pytest.fixture
def project(home, tmp_path):
    with Project.create(tmp_path / "proj") as p:
        yield p


def _write(path: Path, n: int) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(os.urandom(n))
    return path


def _fill(project) -> dict[str, int]:
    """Real files in every part of the cache folder; returns the bytes written per place key."""
    cache = project.cache_dir
    _write(cache / "features" / "efficientnet_lite0-abc" / "fp1-r5.npy", 1000)
    _write(cache / "features" / "efficientnet_lite0-abc" / "fp1-r5.json", 24)
    _write(cache / "index" / "fp1.npz", 200)
    _write(cache / "strips" / "fp1-strip160x90.npy", 3000)
    _write(cache / "thumbs" / "fp1.jpg", 50)
    _write(cache / "jobs" / "start-1.log", 70)
    return {"features": 1024, "index": 200, "strips": 3000, "thumbs": 50, "job-logs": 70}


def _sizes(project=None) -> dict[str, int]:
    return {p.key: p.size_bytes for p in storage.places(project)}


def _live_run(project) -> R.RunInfo:
    """A run whose process is this test's own: alive for as long as the test runs."""
    run = R.create_run(project, "features", {}, pid=os.getpid(), hostname=socket.gethostname(),
                       pid_started=process_started(os.getpid()))  # fmt: skip
    return R.update_run(project, run.id, status="running")


def _dead_run(project) -> R.RunInfo:
    """A run left "running" by a process that has ended (killed before it could report)."""
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    started = process_started(proc.pid) or time.time()
    proc.wait()
    run = R.create_run(project, "features", {}, pid=proc.pid, hostname=socket.gethostname(), pid_started=started)
    return R.update_run(project, run.id, status="running")


# --- where things go ------------------------------------------------------------------------------------------


def test_the_user_folders_follow_the_environment(home, monkeypatch):
    import torch.hub

    from vidtrain_gui.ml import inference

    assert storage.user_cache_dir() == home / "cache" / "vidtrain"
    assert storage.engine_cache_dir() == home / "cache" / "vidtrain" / "engines"
    assert storage.demo_folder() == home / "data" / "vidtrain" / "VidTrain demo"
    assert inference.engine_cache_dir is storage.engine_cache_dir  # one rule, still importable from ml
    monkeypatch.setenv("VIDTRAIN_CACHE_DIR", str(home / "elsewhere"))
    assert inference.engine_path.__globals__["engine_cache_dir"]() == home / "elsewhere" / "engines"
    # torch's hub folder, by torch's own rule, in each of its three cases
    assert storage.torch_hub_dir() == home / "cache" / "torch" / "hub"
    assert storage.torch_hub_dir() == Path(torch.hub._get_torch_home()) / "hub"
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert storage.torch_hub_dir() == home / ".cache" / "torch" / "hub" == Path(torch.hub._get_torch_home()) / "hub"
    monkeypatch.setenv("TORCH_HOME", str(home / "th"))
    assert storage.torch_hub_dir() == home / "th" / "hub" == Path(torch.hub._get_torch_home()) / "hub"
    places = {p.key: p for p in storage.places()}
    assert places["weights"].path == home / "th" / "hub" / "checkpoints"
    assert places["settings"].path == home / "settings.json" and not places["settings"].clearable


def test_sizes_of_every_place_add_up(project, home):
    written = _fill(project)
    _write(storage.engine_cache_dir() / "bk-torch2-opset18.onnx", 4000)
    _write(storage.torch_hub_dir() / "checkpoints" / "w.pth", 500)
    sizes = _sizes(project)
    assert {k: sizes[k] for k in written} == written
    assert sizes["engines"] == 4000 and sizes["weights"] == 500 and sizes["demo"] == 0
    db_files = [project.db_path.with_name(project.db_path.name + end) for end in ("", "-wal", "-shm")]
    assert sizes["database"] == sum(p.stat().st_size for p in db_files if p.exists())
    assert sizes["database"] > 0
    assert sizes["project"] == sum(p.stat().st_size for p in project.root.rglob("*") if p.is_file())
    assert storage.total_cache_bytes(storage.places(project)) == sum(written.values()) + 4000 + 500
    assert storage.places(project, sizes=False)[0].size_bytes is None


def test_clear_frees_the_part_and_leaves_the_rest_and_the_database(project, tmp_path):
    written = _fill(project)
    CL.add_class(project, "walk")
    outside = _write(tmp_path / "outside" / "big.bin", 10_000)
    (project.features_dir / "linked-file").symlink_to(outside)
    (project.features_dir / "linked-folder").symlink_to(outside.parent, target_is_directory=True)
    assert _sizes(project)["features"] == written["features"]  # links count nothing
    in_progress = fsutil.temporary_name(project.features_dir / "x.npy")
    in_progress.write_bytes(b"12345")  # a job writing now: left to it
    assert storage.clear("features", project) == written["features"]
    assert [p.name for p in project.features_dir.iterdir()] == [in_progress.name]
    assert outside.read_bytes() and len(list(outside.parent.iterdir())) == 1  # the links' targets are untouched
    after = _sizes(project)
    assert after["features"] == 5
    assert {k: after[k] for k in ("index", "strips", "thumbs", "job-logs")} == {
        k: written[k] for k in ("index", "strips", "thumbs", "job-logs")}  # fmt: skip
    assert [c.name for c in CL.list_classes(project)] == ["walk"]
    assert storage.clear("strips", project) == 3000 and not any(project.cache_dir.joinpath("strips").iterdir())
    assert storage.clear("index", project) == 200
    assert storage.clear("index", project) == 0  # nothing left: nothing freed
    with Project.open(project.root, readonly=True) as again:
        assert [c.name for c in CL.list_classes(again)] == ["walk"]


@pytest.mark.parametrize("key", ["thumbs", "job-logs", "database", "runs", "backups", "project", "settings",
                                 "weights"])  # fmt: skip
def test_what_is_not_rebuilt_by_itself_is_never_cleared(project, key):
    _fill(project)
    _write(storage.torch_hub_dir() / "checkpoints" / "w.pth", 500)
    before = _sizes(project)
    with pytest.raises(storage.ClearRefused, match="cannot be cleared"):
        storage.clear(key, project)
    assert _sizes(project) == before


def test_unknown_places_and_project_parts_without_a_project_are_refused(project):
    _fill(project)
    with pytest.raises(storage.ClearRefused, match="no place 'cache'"):
        storage.clear("cache", project)
    with pytest.raises(storage.ClearRefused, match="name the project"):
        storage.clear("features")
    assert _sizes(project)["features"] == 1024


def test_a_running_job_blocks_clearing_its_project_caches(project):
    _fill(project)
    run = _live_run(project)
    for running in (storage.recorded_running, live_runs):
        with pytest.raises(storage.ClearRefused, match=f"job of this project is running \\(run {run.id}\\)"):
            storage.clear("features", project, running=running)
    assert _sizes(project)["features"] == 1024
    assert storage.clear("engines", project, running=live_runs) == 0  # app-wide: not the project's job's
    R.update_run(project, run.id, status="done")
    assert storage.clear("features", project, running=live_runs) == 1024


def test_a_job_killed_outright_blocks_by_the_record_but_not_by_live_runs(project):
    _fill(project)
    run = _dead_run(project)
    with pytest.raises(storage.ClearRefused, match=run.id):
        storage.clear("strips", project)  # the default reads only the runs table
    assert live_runs(project) == []
    assert storage.clear("strips", project, running=live_runs) == 3000
    assert R.get_run(project, run.id).status == "running"  # live_runs only reads


def test_another_window_or_a_read_only_project_is_refused(project):
    _fill(project)
    other = Project.open(project.root)
    try:
        assert other.try_lock_writer()  # another VidTrain window editing it
        with pytest.raises(storage.ClearRefused, match="another VidTrain window"):
            storage.clear("strips", project)
        with Project.open(project.root, readonly=True) as ro, pytest.raises(storage.ClearRefused, match="read-only"):
            storage.clear("strips", ro)
    finally:
        other.close()
    assert _sizes(project)["strips"] == 3000
    assert storage.clear("strips", project) == 3000 and not project.holds_writer_lock  # taken and given back


def test_a_part_that_is_a_link_is_refused_and_its_target_kept(project, tmp_path):
    target = tmp_path / "big-disk" / "features"
    _write(target / "fp1-r5.npy", 700)
    project.features_dir.rmdir()
    project.features_dir.symlink_to(target, target_is_directory=True)
    with pytest.raises(storage.ClearRefused, match="link"):
        storage.clear("features", project)
    assert (target / "fp1-r5.npy").stat().st_size == 700


def test_the_demo_is_cleared_unless_it_is_in_use(home, project):
    demo_root = storage.demo_folder()
    with Project.create(demo_root) as demo:
        CL.add_class(demo, "ball")
    _write(demo_root / "videos" / "demo1.mp4", 2000)
    size = _sizes()["demo"]
    assert size > 2000
    with Project.open(demo_root) as demo:
        with pytest.raises(storage.ClearRefused, match="the project open"):
            storage.clear("demo", demo)
        assert demo.try_lock_writer()
        with pytest.raises(storage.ClearRefused, match="another VidTrain window"):
            storage.clear("demo", project)
    with Project.open(demo_root) as demo:
        run = _live_run(demo)
    with pytest.raises(storage.ClearRefused, match=run.id):
        storage.clear("demo", None, running=live_runs)
    with Project.open(demo_root) as demo:
        R.update_run(demo, run.id, status="done")
    assert (demo_root / "project.vidtrain").is_file()
    freed = storage.clear("demo", project, running=live_runs)
    assert freed >= size and not demo_root.exists()
    assert storage.clear("demo") == 0  # gone already


def test_a_demo_folder_holding_something_else_is_left_alone(home):
    stranger = _write(storage.demo_folder() / "notes.txt", 10)
    with pytest.raises(storage.ClearRefused, match="does not hold the demo"):
        storage.clear("demo")
    assert stranger.is_file()
    stranger.unlink()
    _write(storage.demo_folder() / "videos" / "demo1.mp4", 300)  # a demo whose making stopped half-way
    assert storage.clear("demo") == 300 and not storage.demo_folder().exists()


def test_the_engine_cache_honours_its_override(home, monkeypatch, tmp_path):
    monkeypatch.setenv("VIDTRAIN_CACHE_DIR", str(tmp_path / "vc"))
    engine = _write(tmp_path / "vc" / "engines" / "bk.onnx", 800)
    assert _sizes()["engines"] == 800
    assert storage.clear("engines") == 800 and not engine.exists() and engine.parent.is_dir()


def test_folder_size_and_human_size(tmp_path):
    assert storage.folder_size(tmp_path / "missing") == 0
    f = _write(tmp_path / "a" / "f.bin", 1234)
    _write(tmp_path / "a" / "sub" / "g.bin", 66)
    (tmp_path / "a" / "link").symlink_to(f)
    assert storage.folder_size(f) == 1234 and storage.folder_size(tmp_path / "a") == 1300
    assert storage.folder_size(tmp_path / "a" / "link") == 0
    sizes = [0, 999, 12_300, 12_345_678, 1_234_567_890]
    assert [storage.human_size(n) for n in sizes] == ["0 B", "999 B", "12.3 kB", "12.3 MB", "1.2 GB"]

"""Training on several processes: ``torchrun --nproc-per-node 2`` of the real ``vidtrain train`` on CPU (gloo), on the
generated left/right-motion videos of test_ml_train. Covers one job for all ranks (one Run row, events from rank 0
only, a loadable checkpoint, world size 2 in the metrics), the features shared out between the ranks, stop-early
travelling from rank 0 to the others, a failing rank 1 recorded as a failed run; and in-process, ``Dist`` alone."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from motionproject import import_motion_videos, tag_by_motion

from vidtrain_gui.core import runs as R
from vidtrain_gui.core import videos as V
from vidtrain_gui.core.project import Project
from vidtrain_gui.jobs.runner import STOP_FILE, QuietContext, run_distributed_job
from vidtrain_gui.ml.backbones import get_backbone
from vidtrain_gui.ml.distributed import SINGLE, Dist
from vidtrain_gui.ml.features import extract_features, is_cached, load_features
from vidtrain_gui.ml.heads import HEADS, make_head

TIMEOUT_S = 120
FPS = 8.0
MOTIONS = ("left", "right", "left", "right")
# As in test_ml_train: the square wraps around every ~30 frames, clips sit inside one sweep.
CLIP_RANGES = [(s + 1, s + 14) for s in (0, 30, 60)] + [(s + 15, s + 29) for s in (0, 30, 60)]
# Rank 1 fails once its features are ready: loaded before the CLI by Python's startup hook, in rank 1 only.
FAIL_ON_RANK_1 = """
import os
if os.environ.get("RANK") == "1":
    from vidtrain_gui.ml import train

    def fail(*args, **kwargs):
        raise RuntimeError("rank 1 cannot read its samples")

    train.build_samples = fail
"""


def torchrun(*args, env: dict | None = None, nproc: int = 2) -> subprocess.Popen:
    """``torchrun --standalone --nproc-per-node NPROC ARGS`` (a free port on localhost, chosen by torchrun), in its
    own process group so that a hung run can be killed with its workers."""
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", str(nproc),
           *map(str, args)]  # fmt: skip
    full_env = {**os.environ, "OMP_NUM_THREADS": "1", **(env or {})}
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=full_env,
                            start_new_session=True)  # fmt: skip


def finish(proc: subprocess.Popen) -> tuple[int, list[dict], str]:
    try:
        out, err = proc.communicate(timeout=TIMEOUT_S)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        pytest.fail(f"torchrun hung for {TIMEOUT_S} s: {err[-3000:]}")
    return proc.returncode, [json.loads(line) for line in out.splitlines()], err


def train_args(project, *extra) -> list:
    return ["-m", "vidtrain_gui.cli", "train", project.root, "--json", "--device", "cpu", "--head", "gru", *extra]


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    """Four tagged videos, two of them with features and motion cached: a run computes the other two, one per rank."""
    tmp = tmp_path_factory.mktemp("ddp")
    p = import_motion_videos(tmp, MOTIONS)
    tag_by_motion(p, CLIP_RANGES)
    first_two = [v.id for v in V.list_videos(p)][:2]
    assert extract_features(p, sample_fps=FPS, device="cpu", video_ids=first_two, motion=True).computed == 2
    yield p
    p.close()


def _cached(p) -> list[bool]:
    key = get_backbone("efficientnet_lite0").key("default")
    return [is_cached(p, v, key, FPS) for v in V.list_videos(p)]


def test_torchrun_two_processes_train_as_one_job(project):
    missing = [v for v, cached in zip(V.list_videos(project), _cached(project)) if not cached]
    assert len(missing) == 2
    key = get_backbone("efficientnet_lite0").key("default")

    rc, events, err = finish(torchrun(*train_args(project, "--epochs", "40", "--patience", "40")))
    assert rc == 0, err[-3000:]
    types = [e["type"] for e in events]
    assert types.count("started") == 1 and types.count("done") == 1 and types[-1] == "done"  # rank 0 only
    assert events[0]["config"]["world_size"] == 2 and events[0]["config"]["backend"] == "gloo"
    epochs = [e for e in events if e["type"] == "epoch"]
    assert [e["epoch"] for e in epochs] == list(range(1, 41))
    assert any("x 2 processes (gloo)" in e["message"] for e in events if e["type"] == "log")

    # The missing features were shared out: each rank computed one video, rank 0 reported only its own.
    assert all(_cached(project))
    sizes = {len(load_features(project, v, key, FPS)[1]) for v in missing}
    assert max(e["total"] for e in events if e["type"] == "progress" and e["stage"] == "features") in sizes

    runs = R.list_runs(project, kind="train")
    assert len(runs) == 1 and runs[0].status == "done" and runs[0].id == events[-1]["run_id"]
    m = runs[0].metrics
    assert m["world_size"] == 2 and m["validation"] == "held_out" and m["n_train"] + m["n_val"] == 24
    assert m["val_acc"] >= 0.9 and min(e["train_loss"] for e in epochs[-5:]) < 0.5 * epochs[0]["train_loss"]
    assert runs[0].classes == ["left", "right"]
    run_dir = R.run_dir(project, runs[0].id)
    assert json.loads((run_dir / "metrics.json").read_text())["best_epoch"] == m["best_epoch"]
    ck = torch.load(run_dir / "best.pt", weights_only=True)
    cfg = ck["config"]
    head = make_head(cfg["head"], cfg["feature_dim"], cfg["num_classes"], cfg["frames"], **cfg["head_kwargs"])
    head.load_state_dict(ck["state_dict"])  # plain keys, not DDP's "module." ones
    assert not list(run_dir.glob("error-rank*"))


def test_finetune_mode_runs_on_two_processes(project):
    """Fine-tune mode through the same entry: frozen BatchNorm (no buffer sync), every trainable parameter used."""
    args = train_args(project, "--mode", "finetune", "--frames", "2", "--epochs", "2", "--batch-size", "4",
                      "--unfreeze", "1")  # fmt: skip
    rc, events, err = finish(torchrun(*args))
    assert rc == 0, err[-3000:]
    assert "find_unused_parameters=True" not in err and "deprecated" not in err
    types = [e["type"] for e in events]
    assert types.count("started") == 1 and types[-1] == "done"
    assert [e["epoch"] for e in events if e["type"] == "epoch"] == [1, 2]
    run = R.get_run(project, events[-1]["run_id"])
    assert run.status == "done" and run.metrics["world_size"] == 2 and run.metrics["mode"] == "finetune"
    ck = torch.load(R.run_dir(project, run.id) / "best.pt", weights_only=True)
    assert "backbone_state_dict" in ck and not any(k.startswith("module.") for k in ck["state_dict"])


def test_torchrun_with_one_process_joins_a_group_of_one(project):
    """``--nproc-per-node 1`` still trains through DDP and the collectives (on a one-GPU machine: the NCCL path)."""
    args = train_args(project, "--mode", "finetune", "--frames", "2", "--epochs", "1", "--batch-size", "4",
                      "--unfreeze", "1")  # fmt: skip
    rc, events, err = finish(torchrun(*args, nproc=1))
    assert rc == 0, err[-3000:]
    assert events[0]["config"]["world_size"] == 1 and events[0]["config"]["backend"] == "gloo"
    assert any("x 1 process (gloo)" in e["message"] for e in events if e["type"] == "log")
    run = R.get_run(project, events[-1]["run_id"])
    assert run.status == "done" and run.metrics["world_size"] == 1


def test_stop_file_stops_every_rank_through_the_console_script(project):
    vidtrain = shutil.which("vidtrain", path=str(Path(sys.executable).parent))
    assert vidtrain, "the vidtrain console script is installed with the package"
    args = [vidtrain, *train_args(project, "--epochs", "5000", "--patience", "5000")[2:]]
    proc = torchrun(*args)
    started = json.loads(proc.stdout.readline())
    for line in proc.stdout:  # rank 0's first epoch: then ask it to stop, as `vidtrain runs stop` does
        if json.loads(line)["type"] == "epoch":
            (R.run_dir(project, started["run_id"]) / STOP_FILE).touch()
            break
    rc, events, err = finish(proc)
    assert rc == 0, err[-3000:]
    assert events[-1]["type"] == "done" and events[-1]["status"] == "stopped"
    assert events[-1]["metrics"]["epochs_run"] < 5000
    assert R.get_run(project, started["run_id"]).status == "stopped"
    assert (R.run_dir(project, started["run_id"]) / "best.pt").exists()


def test_a_failing_rank_fails_the_run_without_hanging(project, tmp_path):
    (tmp_path / "sitecustomize.py").write_text(FAIL_ON_RANK_1)
    t0 = time.monotonic()
    rc, events, err = finish(torchrun(*train_args(project, "--epochs", "5"), env={"PYTHONPATH": str(tmp_path)}))
    assert rc != 0 and time.monotonic() - t0 < 60
    assert "vidtrain: error: process 1: rank 1 cannot read its samples" in err
    message = "process 1: rank 1 cannot read its samples"
    assert events[-1]["type"] == "error" and events[-1]["message"] == message
    run = R.get_run(project, events[-1]["run_id"])
    assert run.status == "failed" and run.error == message
    assert not (R.run_dir(project, run.id) / "best.pt").exists()


# ---- in-process ---------------------------------------------------------------------------------------------------


def test_shard_gives_every_rank_as_many_samples_and_covers_all():
    order = torch.randperm(11, generator=torch.Generator().manual_seed(0))
    for world in (2, 3, 4):
        shards = [Dist(rank=r, world_size=world).shard(order) for r in range(world)]
        assert len({len(s) for s in shards}) == 1 and len(shards[0]) == -(-11 // world)
        assert set(torch.cat(shards).tolist()) == set(range(11))
    assert torch.equal(SINGLE.shard(order), order)


def test_single_process_dist_is_the_identity():
    assert SINGLE.any(True) is True and SINGLE.any(False) is False
    assert SINGLE.sum([1, 2.5]) == [1.0, 2.5] and SINGLE.broadcast({"a": 1}) == {"a": 1}
    model = torch.nn.Linear(2, 2)
    assert SINGLE.wrap(model, torch.device("cpu"), find_unused=False) is model
    assert SINGLE.is_main and not SINGLE.enabled


@pytest.mark.parametrize("name", HEADS)
def test_every_head_uses_all_its_parameters(name):
    # Fast mode wraps heads with find_unused=False: DDP would stall on a parameter left out of a forward pass.
    head = make_head(name, 16, 3, 8)
    head(torch.randn(4, 8, 16)).sum().backward()
    assert all(p.grad is not None for p in head.parameters() if p.requires_grad)


class _Rank1:
    rank, is_main = 1, False

    def __init__(self, run_id: str):
        self.run_id = run_id

    def broadcast(self, obj):
        return self.run_id


def test_a_quiet_rank_reports_nothing_and_leaves_its_error_for_rank_0(tmp_path):
    p = Project.create(tmp_path / "proj")
    run = R.create_run(p, "train", {})
    seen = []

    def work(ctx):
        assert isinstance(ctx, QuietContext) and ctx.run_dir == R.run_dir(p, run.id) and not ctx.should_stop()
        ctx.emit({"type": "log"})
        seen.append(ctx.run_id)
        raise ValueError("out of memory")

    assert run_distributed_job(p, "train", {}, work, _Rank1(run.id)) == "process 1: out of memory"
    assert seen == [run.id] and (R.run_dir(p, run.id) / "events.jsonl").exists() is False
    saved = json.loads((R.run_dir(p, run.id) / "error-rank1.json").read_text())
    assert saved == {"rank": 1, "message": "process 1: out of memory"}
    assert run_distributed_job(p, "train", {}, lambda ctx: {}, _Rank1(run.id)) is None
    p.close()

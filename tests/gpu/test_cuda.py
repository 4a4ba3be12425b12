"""Every CUDA path of VidTrain, run on a real GPU (issue 17): device choice and names with memory, mixed precision,
features with the preprocessing on the GPU (against the CPU's), fine-tuning (autocast, GradScaler or bfloat16, the
memory and idle-share figures, a model that predicts on the GPU), out-of-memory halving under a memory cap,
``torchrun --nproc-per-node 1`` on NCCL and an exported bundle on onnxruntime's CUDA provider.

Marked ``cuda``: every test skips cleanly on a machine without a usable CUDA GPU (CI, this project's CPU machines);
``bench/gpu.sh`` runs them on the lent GPU machine. Nothing here imports Qt (that machine has no PySide6)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from motionproject import import_motion_videos, tag_by_motion

from vidtrain_gui.core import runs as R
from vidtrain_gui.core import videos as V
from vidtrain_gui.ml.backbones import get_backbone
from vidtrain_gui.ml.device import (
    autocast_context,
    cpu_note,
    cuda_details,
    describe_device,
    device_event,
    memory_in_use,
    pick_device,
    reset_memory_peak,
)
from vidtrain_gui.ml.features import extract_features, load_features

pytestmark = [
    pytest.mark.cuda,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU (bench/gpu.sh runs these on one)"),
]

TIMEOUT_S = 600
FPS = 8.0
MOTIONS = ("left", "right") * 4
CLIP_RANGES = [(s + 1, s + 14) for s in (0, 30, 60)] + [(s + 15, s + 29) for s in (0, 30, 60)]
ROOT = Path(__file__).resolve().parents[2]


def cli(*args, env: dict | None = None, prelude: str = "", timeout: int = TIMEOUT_S) -> tuple[int, list[dict], str]:
    """``vidtrain ARGS --json`` in a fresh process (``prelude``: Python run before the CLI, e.g. a memory cap):
    its exit code, its JSON events and its standard error."""
    code = f"{prelude}\nimport sys\nfrom vidtrain_gui.cli import main\nsys.exit(main({[str(a) for a in args]!r}))"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=timeout, cwd=ROOT,
                          env={**os.environ, **(env or {})})  # fmt: skip
    events = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    return proc.returncode, events, proc.stderr


def warnings_of(events: list[dict]) -> list[str]:
    return [e["message"] for e in events if e["type"] == "log" and e["level"] == "warning"]


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    p = import_motion_videos(tmp_path_factory.mktemp("cuda"), MOTIONS)
    tag_by_motion(p, CLIP_RANGES)
    yield p
    p.close()


# ---- devices -----------------------------------------------------------------------------------------------------


def test_auto_picks_the_gpu_and_names_it_with_its_memory():
    dev = pick_device("auto")
    assert dev.type == "cuda" and pick_device("cuda") == dev
    assert describe_device(dev) == f"CUDA: {torch.cuda.get_device_name(dev.index)}"
    details = cuda_details(dev)
    assert 0 < details["memory_free_mb"] <= details["memory_total_mb"]
    event = device_event(dev)
    assert event["memory_total_mb"] == details["memory_total_mb"] and "note" not in event
    assert cpu_note(dev) is None and cpu_note("cpu", gpu_present=True) is None  # CUDA works: nothing to explain
    reset_memory_peak(dev)
    x = torch.empty(256, 2**20, dtype=torch.uint8, device=dev)  # 256 MiB
    used = memory_in_use(dev)
    del x
    assert used["gpu_peak_mb"] >= 256 and used["gpu_total_mb"] == details["memory_total_mb"]


def test_the_devices_command_lists_the_gpu_with_its_memory():
    rc, events, err = cli("--json", "devices")
    assert rc == 0, err[-2000:]
    out = events[-1]
    gpus = [d for d in out["devices"] if d["id"].startswith("cuda:")]
    assert len(gpus) == torch.cuda.device_count() and out["default"].startswith("CUDA: ")
    assert all(d["memory_total_mb"] > 0 and "capability" in d for d in gpus) and out["cpu_note"] is None


def test_mixed_precision_uses_bfloat16_to_train_and_float16_for_features():
    dev = pick_device("cuda")
    a = torch.randn(64, 64, device=dev)
    with autocast_context(dev, training=True):
        trained = (a @ a).dtype
    with autocast_context(dev, training=False):
        frozen = (a @ a).dtype
    assert trained == (torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16)
    assert frozen == torch.float16


# ---- features ----------------------------------------------------------------------------------------------------


def test_features_on_the_gpu_match_the_cpu(tmp_path):
    """The GPU path: uint8 frames sent to the GPU and preprocessed there, the backbone under float16 autocast, several
    decoding threads; the CPU path: preprocessing on the decoding thread, ONNX Runtime. They share one cache, so
    they agree closely."""
    cpu_p = import_motion_videos(tmp_path / "cpu", MOTIONS[:4])
    gpu_p = import_motion_videos(tmp_path / "gpu", MOTIONS[:4])
    try:
        cpu = extract_features(cpu_p, sample_fps=FPS, device="cpu")
        gpu = extract_features(gpu_p, sample_fps=FPS, device="cuda")
        assert gpu.device.startswith("CUDA: ") and gpu.computed == cpu.computed == 4
        key = get_backbone("efficientnet_lite0").key("default")
        for v_cpu, v_gpu in zip(V.list_videos(cpu_p), V.list_videos(gpu_p)):
            (a, ia), (b, ib) = load_features(cpu_p, v_cpu, key, FPS), load_features(gpu_p, v_gpu, key, FPS)
            assert list(ia) == list(ib)
            a, b = torch.from_numpy(a).float(), torch.from_numpy(b).float()
            assert torch.nn.functional.cosine_similarity(a, b, dim=1).min() > 0.99
    finally:
        cpu_p.close()
        gpu_p.close()


# ---- fine-tuning -------------------------------------------------------------------------------------------------


def test_finetune_on_the_gpu_reports_memory_and_idle_share_and_predicts_there(project):
    rc, events, err = cli("train", project.root, "--json", "--mode", "finetune", "--device", "cuda", "--frames", "4",
                          "--epochs", "3", "--batch-size", "4", "--unfreeze", "2", "--workers", "2")  # fmt: skip
    assert rc == 0, err[-3000:]
    device = next(e for e in events if e["type"] == "device")
    assert device["name"].startswith("CUDA: ") and device["memory_total_mb"] > 0
    epochs = [e for e in events if e["type"] == "epoch"]
    assert len(epochs) == 3
    for e in epochs:
        assert 0 < e["gpu_peak_mb"] <= e["gpu_total_mb"] and 0 <= e["data_wait_share"] <= 1
    run = R.get_run(project, events[-1]["run_id"])
    assert run.status == "done" and run.config["device"] == "cuda"
    ck = torch.load(R.run_dir(project, run.id) / "best.pt", weights_only=True)
    assert all(v.device.type == "cpu" for v in ck["backbone_state_dict"].values())  # loadable anywhere

    rc, events, err = cli("predict", project.root, "--json", "--run", run.id, "--device", "cuda")
    assert rc == 0, err[-3000:]
    assert next(e for e in events if e["type"] == "device")["name"].startswith("CUDA: ")
    assert R.get_run(project, events[-1]["run_id"]).status == "done"


def test_out_of_memory_halves_the_batch_and_the_run_finishes(project):
    """A memory cap of 2 GiB (``set_per_process_memory_fraction``) and a batch of 16 clips of 32 frames with every
    block trained (512 images at 224 px with their activations): the batch cannot fit, the run halves it (a warning
    each time) and finishes; one clip (32 images) fits."""
    total = torch.cuda.get_device_properties(0).total_memory
    prelude = f"import torch\ntorch.cuda.set_per_process_memory_fraction({2 * 2**30 / total!r})"
    rc, events, err = cli("train", project.root, "--json", "--mode", "finetune", "--device", "cuda", "--frames", "32",
                          "--epochs", "1", "--batch-size", "16", "--unfreeze", "all", prelude=prelude)  # fmt: skip
    assert rc == 0, err[-3000:]
    halvings = [w for w in warnings_of(events) if w.startswith("GPU out of memory at batch")]
    assert halvings and halvings[0].startswith("GPU out of memory at batch 16: halving to 8"), warnings_of(events)
    assert R.get_run(project, events[-1]["run_id"]).status == "done"


def test_torchrun_with_one_process_trains_over_nccl(project):
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "1", "-m",
           "vidtrain_gui.cli", "train", str(project.root), "--json", "--mode", "finetune", "--frames", "4",
           "--epochs", "2", "--batch-size", "4", "--unfreeze", "1"]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=TIMEOUT_S, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-3000:]
    events = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    config = events[0]["config"]
    assert config["backend"] == "nccl" and config["world_size"] == 1
    assert any("x 1 process (nccl)" in e["message"] for e in events if e["type"] == "log")
    run = R.get_run(project, events[-1]["run_id"])
    assert run.status == "done" and run.metrics["world_size"] == 1


# ---- the exported bundle -----------------------------------------------------------------------------------------


def test_the_exported_bundle_runs_on_onnxruntimes_cuda_provider(project, tmp_path):
    ort = pytest.importorskip("onnxruntime")
    if "CUDAExecutionProvider" not in ort.get_available_providers():
        pytest.skip(f"this onnxruntime ({ort.__version__}) has no CUDA provider: onnxruntime-gpu is not installed")
    from vidtrain_gui.ml import bundle_predict as BP
    from vidtrain_gui.ml.export import export_model

    run = next(r for r in R.list_runs(project, kind="train") if r.status == "done")
    out = export_model(project, run.id, tmp_path / "bundle")["out_dir"]
    card = BP.load_card(Path(out) / "model_card.json")
    video = Path(V.list_videos(project)[0].path)
    on_gpu = BP.classify(video, Path(out) / "model.onnx", card, device="cuda")
    on_cpu = BP.classify(video, Path(out) / "model.onnx", card, device="cpu")
    assert [w["class"] for w in on_gpu["windows"]] == [w["class"] for w in on_cpu["windows"]]

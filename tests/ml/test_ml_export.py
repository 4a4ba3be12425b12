"""Model bundles (ml/export.py, ml/bundle_predict.py) from real runs: four generated left/right-motion videos, tagged
with clips tiling each video, trained for real (fast mode with and without motion, a tiny fine-tune run), exported
for real, and loaded back with torch.jit and ONNX Runtime. Covers the files and the model card, the agreement of
ONNX, TorchScript and the app's model, refusing unfinished runs and foreign folders, the bundle's copies of the
app's sampling and motion code, and predict.py in a fresh virtual environment with only its three packages."""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
import sys
import warnings
from datetime import datetime
from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np
import onnxruntime as ort
import pytest
import tomllib
import torch
from motionproject import import_motion_videos, stop_after_epoch, tag_by_motion
from videogen import vfr_pts, write_pyav

from vidtrain_gui.core import classes as CL
from vidtrain_gui.core import labels as L
from vidtrain_gui.core import options as OPT
from vidtrain_gui.core import runs as R
from vidtrain_gui.jobs.runner import JobCancelled, run_job
from vidtrain_gui.media import probe
from vidtrain_gui.media.reader import sample_indices
from vidtrain_gui.ml import bundle_predict as BP
from vidtrain_gui.ml import motion as M
from vidtrain_gui.ml.backbones import get_backbone
from vidtrain_gui.ml.export import MAX_ABS_DIFF, ExportError, export_model
from vidtrain_gui.ml.features import frame_preprocessor, sample_frames
from vidtrain_gui.ml.finetune import finetune
from vidtrain_gui.ml.model import load
from vidtrain_gui.ml.rows import clip_rows
from vidtrain_gui.ml.train import train

ROOT = Path(__file__).resolve().parents[2]
MOTIONS = ("left", "right", "left", "right")
# Clips tile each whole video (the square wraps every ~30 frames), so every window predict.py slides is like a
# training clip, wrap-arounds included.
CLIP_RANGES = [(a, a + 13) for a in range(0, 87, 6)]
FILES = {"model.pt", "model.onnx", "predict.py", "model_card.json"}


def _job(p, work, on_ctx=None, **config):
    def run(ctx):
        if on_ctx:
            on_ctx(ctx)
        return work(ctx)

    return run_job(p, "train", {k: str(v) for k, v in config.items()}, run, stdout=io.StringIO(),
                   install_signals=False)  # fmt: skip


def _train(p, on_ctx=None, **kw):
    kw.setdefault("device", "cpu")
    return _job(p, lambda ctx: train(ctx, **kw), on_ctx, **kw)


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    p = import_motion_videos(tmp_path_factory.mktemp("export"), MOTIONS, first_length=100)
    tag_by_motion(p, CLIP_RANGES)
    yield p
    p.close()


@pytest.fixture(scope="module")
def fast(project, tmp_path_factory):
    """The default fast mode (gru, motion and deltas), exported."""
    run = _train(project, head="gru", epochs=40, patience=40)
    assert run.status == "done", run.error
    out = tmp_path_factory.mktemp("bundles") / "fast"
    events = []
    result = export_model(project, run.id, out, emit=events.append)
    return run, result, out, events


@pytest.fixture(scope="module")
def no_motion(project, tmp_path_factory):
    """``--no-motion``, stopped after epoch 2 of 5 (a stopped run keeps its best epoch and can be exported)."""
    run = _train(project, head="mlp", epochs=5, frames=4, motion=False, on_ctx=stop_after_epoch(2))
    assert run.status == "stopped", run.error
    out = tmp_path_factory.mktemp("bundles") / "no-motion"
    return run, export_model(project, run.id, out), out


@pytest.fixture(scope="module")
def fine(project, tmp_path_factory):
    kw = {"frames": 2, "batch_size": 4, "epochs": 1, "unfreeze": 1, "flip": False, "device": "cpu"}
    ids = [c.id for c in L.list_clips(project)][::6]  # 10 clips: a tiny run
    run = _job(project, lambda ctx: finetune(ctx, clip_ids=ids, **kw), **kw)
    assert run.status == "done", run.error
    out = tmp_path_factory.mktemp("bundles") / "finetune"
    return run, export_model(project, run.id, out), out


def _card(out: Path) -> dict:
    return json.loads((out / "model_card.json").read_text(encoding="utf-8"))


def _torchscript(out: Path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # torch.jit is deprecated, still the portable file
        return torch.jit.load(str(out / "model.pt"))


def _session(out: Path):
    return ort.InferenceSession(str(out / "model.onnx"), providers=["CPUExecutionProvider"])


# ---- fast mode ---------------------------------------------------------------------------------------------------


def test_fast_bundle_has_its_files_a_full_card_and_matches_the_app(project, fast):
    run, result, out, events = fast
    assert {p.name for p in out.iterdir()} == FILES
    assert sorted(result["files"]) == sorted(str(out / f) for f in FILES) and result["out_dir"] == str(out)
    assert result["classes"] == ["left", "right"] and result["mode"] == "fast"
    assert result["max_abs_diff_onnx"] < MAX_ABS_DIFF and result["max_abs_diff_torchscript"] < MAX_ABS_DIFF
    card = _card(out)
    assert card["format"] == "vidtrain-model-bundle" and card["format_version"] == 1 and card["run_id"] == run.id
    assert datetime.fromisoformat(card["created"]).utcoffset().total_seconds() == 0
    colours = {c.name: c.color for c in CL.list_classes(project)}
    assert card["classes"] == [{"index": k, "name": n, "color": colours[n]} for k, n in enumerate(["left", "right"])]
    ck = torch.load(R.run_dir(project, run.id) / "best.pt", weights_only=True)
    assert card["clip"]["frames"] == 8 and card["clip"]["sample_fps"] == 8.0
    # The window: half the median clip (13 frames at 25 fps), core/options.py WINDOW_CLIPS.
    assert card["clip"]["length_s"] == ck["config"]["clip_length_s"] == pytest.approx(OPT.WINDOW_CLIPS * 13 / 25)
    frames = card["inputs"]["frames"]
    assert frames["shape"] == ["batch", 8, "height", "width", 3] and frames["dtype"] == "uint8"
    assert frames["layout"] == "NTHWC" and frames["color"] == "RGB"
    assert frames["resize"]["size"] == [256] and frames["crop"]["size"] == [224, 224]
    assert frames["normalisation"]["mean"] == pytest.approx([127 / 255] * 3)
    assert "455x256" in frames["resize"]["rule"]  # 1920x1080 -> short side 256, as the app's Preprocess
    motion = card["inputs"]["motion"]
    assert motion["shape"] == ["batch", 8, 64] and motion["descriptor"] == M.MOTION_KEY and motion["gap_s"] == 0.08
    assert card["outputs"]["probabilities"]["shape"] == ["batch", 2]
    model = card["model"]
    assert model["backbone"] == "efficientnet_lite0" and model["head"] == "gru" and model["motion"]
    assert model["weights_id"] == get_backbone("efficientnet_lite0").weights_id and model["onnx_opset"] == 18
    metrics = json.loads((R.run_dir(project, run.id) / "metrics.json").read_text())
    assert card["metrics"]["val_acc"] == metrics["val_acc"] and card["metrics"]["per_class"] == metrics["per_class"]
    assert card["metrics"]["validation"] == "held_out" and card["metrics"]["val_macro_f1"] == metrics["val_macro_f1"]
    data = card["training_data"]
    assert sum(data["train_clips_per_class"].values()) == metrics["n_train"] and data["videos"] == 4
    assert set(card["software"]) >= {"vidtrain_gui", "torch", "onnx", "onnxruntime", "opencv", "numpy", "python"}
    check = card["verification"]
    assert check["max_abs_diff_onnx"] == result["max_abs_diff_onnx"] and check["limit"] == MAX_ABS_DIFF
    real = [c for c in check["checks"] if c["inputs"].startswith("clip")]
    assert real and sum(c["batch"] for c in real) == 4 and all(c["same_top_class"] for c in check["checks"])
    assert (out / "predict.py").read_text() == Path(BP.__file__).read_text()
    assert len(card["files"]["model.onnx"]["sha256"]) == 64
    progress = [e for e in events if e["type"] == "progress"]
    assert progress[0]["stage"] == "export" and progress[-1]["done"] == progress[-1]["total"]


def test_onnx_torchscript_and_the_app_agree_on_fresh_frames(project, fast, tmp_path):
    """A video the model never saw, at another size: frames resized (not cropped) so the graph crops an odd
    margin (455 - 224) itself; motion from the bundle's own code."""
    run, _, out, _ = fast
    video = write_pyav(tmp_path / "fresh.mp4", 60, motion="left", size=(320, 180))
    cap = cv2.VideoCapture(str(video))
    frames = [cv2.cvtColor(cap.read()[1], cv2.COLOR_BGR2RGB) for _ in range(60)]
    rh, rw = BP.resized_hw(180, 320, [256])
    assert [rh, rw] == frame_preprocessor(get_backbone("efficientnet_lite0")).resized_hw(180, 320) == [256, 455]
    starts = (0, 17, 33)
    x = np.stack([np.stack([cv2.resize(frames[s + 2 * t], (rw, rh), interpolation=cv2.INTER_AREA) for t in range(8)])
                  for s in starts])  # fmt: skip
    small = BP.grey_size((320, 180))
    grey = [BP.to_grey(cv2.cvtColor(f, cv2.COLOR_RGB2BGR), small) for f in frames]
    motion = np.stack([np.stack([BP.describe_motion(grey[s + 2 * t], grey[s + 2 * t + 2], 0.08) for t in range(8)])
                       for s in starts])  # fmt: skip
    onnx_p = _session(out).run(None, {"frames": x, "motion": motion})[0]
    ts_p = _torchscript(out)(torch.from_numpy(x), torch.from_numpy(motion)).numpy()
    assert onnx_p.shape == (3, 2) and onnx_p.dtype == np.float32 and np.allclose(onnx_p.sum(axis=1), 1, atol=1e-5)
    assert np.abs(onnx_p - ts_p).max() < MAX_ABS_DIFF
    # The app's model: the backbone's own Preprocess (which crops 455 -> 224 with Python's round) and the head.
    head = load(R.run_dir(project, run.id) / "best.pt").head
    spec = get_backbone("efficientnet_lite0")
    with torch.no_grad():
        feats = spec.build("default").eval()(spec.preprocess(x.reshape(-1, rh, rw, 3))).view(3, 8, -1)
        app = torch.softmax(head(torch.cat([feats, torch.from_numpy(motion)], dim=2)), dim=1).numpy()
    assert np.abs(onnx_p - app).max() < MAX_ABS_DIFF


def test_a_no_motion_run_exports_with_frames_only(no_motion):
    _, result, out = no_motion
    card = _card(out)
    assert [i.name for i in _session(out).get_inputs()] == ["frames"]
    assert card["inputs"]["motion"] is None and not card["model"]["motion"] and card["clip"]["frames"] == 4
    assert result["max_abs_diff_onnx"] < MAX_ABS_DIFF and result["max_abs_diff_torchscript"] < MAX_ABS_DIFF
    assert card["metrics"]["best_epoch"] <= 2 and card["model"]["head"] == "mlp"


def test_finetune_run_exports(fine, tmp_path):
    _, result, out = fine
    card = _card(out)
    assert card["mode"] == "finetune" and card["clip"]["sampling"]["kind"] == "even" and card["clip"]["frames"] == 2
    assert card["inputs"]["motion"] is None and [i.name for i in _session(out).get_inputs()] == ["frames"]
    assert card["model"]["unfrozen_blocks"] == 1 and result["classes"] == ["left", "right"]
    assert result["max_abs_diff_onnx"] < MAX_ABS_DIFF and result["max_abs_diff_torchscript"] < MAX_ABS_DIFF
    assert any(c["inputs"].startswith("clip") for c in card["verification"]["checks"])
    # predict.py's fine-tune path: T frames spread over each window's frames, as VideoReader.sample does.
    video = write_pyav(tmp_path / "left.mp4", 50, motion="left")
    doc = BP.classify(video, out / "model.onnx", card, stride=0.25)
    assert doc["mode"] == "finetune" and len(doc["windows"]) == 7  # 2 s video: windows of 0.26 s at 0, 0.25 ... 1.5
    assert all(sum(w["probabilities"]) == pytest.approx(1, abs=1e-5) for w in doc["windows"])


# ---- refusals ----------------------------------------------------------------------------------------------------


def test_unfinished_runs_and_other_kinds_are_refused(project, tmp_path):
    failed = _train(project, head="lstm")
    assert failed.status == "failed"

    def cancel(ctx):
        emit = ctx.emit

        def spy(event):
            emit(event)
            if event.get("type") == "epoch":
                raise JobCancelled()  # what SIGTERM does in the middle of a job

        ctx.emit = spy

    cancelled = _train(project, head="linear", frames=4, motion=False, epochs=3, on_ctx=cancel)
    assert cancelled.status == "cancelled"
    other = R.create_run(project, "features", {})
    out = tmp_path / "bundle"
    for run_id, message in ((failed.id, "it failed (unknown head 'lstm'"), (cancelled.id, "it was cancelled"),
                            (other.id, "is a features run"), ("20000101-000000-0000", "there is no run")):  # fmt: skip
        with pytest.raises(ExportError, match=re.escape(message)):
            export_model(project, run_id, out)
    cleaned = _train(project, head="linear", frames=4, motion=False, epochs=1)
    (R.run_dir(project, cleaned.id) / "best.pt").unlink()
    with pytest.raises(ExportError, match="has no model file"):
        export_model(project, cleaned.id, out)
    assert not out.exists() and not list(tmp_path.iterdir())  # nothing left behind


def test_folders_in_use_are_refused_and_a_bundle_is_replaced(project, no_motion, tmp_path):
    run, first, out = no_motion
    foreign = tmp_path / "notes"
    foreign.mkdir()
    (foreign / "todo.txt").write_text("keep me")
    with pytest.raises(ExportError, match="not empty and does not hold a model bundle"):
        export_model(project, run.id, foreign)
    assert [p.name for p in foreign.iterdir()] == ["todo.txt"]
    with pytest.raises(ExportError, match="opset must be"):
        export_model(project, run.id, tmp_path / "old", opset=13)
    (out / "model_card.json").write_text(json.dumps({**_card(out), "run_id": "older"}))
    again = export_model(project, run.id, out)  # the same folder: the old bundle is replaced
    assert {p.name for p in out.iterdir()} == FILES and again["classes"] == first["classes"]
    assert _card(out)["run_id"] == run.id
    assert _card(out)["files"]["model.onnx"]["bytes"] == (out / "model.onnx").stat().st_size > 0
    assert not [p for p in out.parent.iterdir() if p.name.startswith(".")]  # no staging folder left


# ---- the bundle's copies of the app's code -----------------------------------------------------------------------


def test_bundle_motion_and_sampling_equal_the_apps(tmp_path):
    video = write_pyav(tmp_path / "m.mp4", 40, motion="right", size=(200, 120))
    vfr = write_pyav(tmp_path / "vfr.mp4", 40, pts=vfr_pts(40), time_base=Fraction(1, 1000))
    cap = cv2.VideoCapture(str(video))
    bgr = [cap.read()[1] for _ in range(40)]
    assert BP.grey_size((200, 120)) == M.grey_size((200, 120))
    for size in ((1920, 1080), (1080, 1920), (97, 61), (640, 480)):
        assert BP.grey_size(size) == M.grey_size(size)
    grey = [BP.to_grey(f, BP.grey_size((200, 120))) for f in bgr]
    for a, b, dt in ((0, 2, 0.08), (5, 6, 0.04), (10, 13, 0.12), (39, 39, 0.0), (20, 22, 0.08)):
        ours, apps = BP.describe_motion(grey[a], grey[b], dt), M.describe_motion(grey[a], grey[b], dt)
        assert ours.dtype == apps.dtype == np.float32 and np.array_equal(ours, apps)
    assert np.abs(BP.describe_motion(grey[0], grey[2], 0.08)).sum() > 0
    for path in (video, vfr):
        app_ts = probe(path).index.timestamps()
        ts, fps = BP.read_timestamps(path)
        assert np.allclose(ts, app_ts, atol=1e-9)
        for rate in (8.0, 3.0, 30.0):
            idx = BP.sample_frames(ts, rate, fps)
            assert np.array_equal(idx, sample_frames(app_ts, rate, fps=fps))
            for ours, apps in zip(BP.partner_frames(ts, idx), M.partner_frames(app_ts, idx)):
                assert np.allclose(ours, apps)
    rng = np.random.default_rng(0)
    idx = np.unique(rng.integers(0, 300, 60)).astype(np.int32)
    for _ in range(200):
        start = int(rng.integers(0, 290))
        end, t = start + int(rng.integers(1, 40)), int(rng.integers(1, 12))
        assert np.array_equal(BP.clip_rows(idx, start, end, t), clip_rows(idx, start, end, t))
        assert np.array_equal(BP.sample_indices(start, end, t), sample_indices(start, end, t))
    prep = frame_preprocessor(get_backbone("efficientnet_lite0"))
    for h, w in ((1080, 1920), (1920, 1080), (480, 640), (128, 192), (333, 333), (701, 1001)):
        assert BP.resized_hw(h, w, [256]) == prep.resized_hw(h, w)
    assert [BP.centre_offset(d) for d in range(300)] == [round(d / 2.0) for d in range(300)]


def test_windows_cover_the_video_in_strides():
    assert BP.window_spans(4.0, 1.0, 0.5) == [(k * 0.5, k * 0.5 + 1.0) for k in range(7)]
    assert BP.window_spans(0.6, 1.0, 0.5) == [(0.0, 0.6)]  # shorter than a window: one window over all of it
    ts = np.arange(100) / 25
    assert BP.window_frames(ts, 0.52, 1.04) == (13, 26)


# ---- predict.py --------------------------------------------------------------------------------------------------


def test_predict_reports_unreadable_videos_and_missing_models(fast, tmp_path, capsys):
    _, _, out, _ = fast
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"not a video at all" * 100)
    assert BP.main([str(junk), "--model", str(out / "model.onnx")]) == 2
    err = capsys.readouterr().err
    assert "cannot read" in err or "no frames" in err
    video = write_pyav(tmp_path / "left.mp4", 40, motion="left")
    assert BP.main([str(video), "--model", str(tmp_path / "model.onnx")]) == 2
    assert "model card" in capsys.readouterr().err
    assert BP.main([str(tmp_path / "gone.mp4"), "--model", str(out / "model.onnx")]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert BP.main([str(video), "--model", str(out / "model.onnx"), "--stride", "0.5"]) == 0
    text = capsys.readouterr().out
    assert "share of time" in text and "left" in text and "0.50" in text


def _fresh_venv(tmp_path: Path) -> Path:
    """A virtual environment with only predict.py's packages (OpenCV as pyproject.toml declares it)."""
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    opencv = next(d for d in deps if d.startswith("opencv-python")).split(">")[0].split("=")[0].strip()
    env_dir = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(env_dir)], check=True, capture_output=True, timeout=120)
    python = env_dir / ("Scripts/python.exe" if os.name == "nt" else "bin/python")
    r = subprocess.run([str(python), "-m", "pip", "install", "--quiet", "onnxruntime", opencv, "numpy"],
                       capture_output=True, text=True, timeout=600, check=False)  # fmt: skip
    if r.returncode != 0:
        pytest.skip(f"pip could not install onnxruntime, {opencv} and numpy here: {r.stderr.strip()[-500:]}")
    return python


@pytest.mark.slow
def test_predict_py_runs_alone_in_a_fresh_environment(fast, tmp_path):
    _, _, out, _ = fast
    python = _fresh_venv(tmp_path)
    r = subprocess.run([str(python), "-c", "import torch"], capture_output=True, check=False)
    assert r.returncode != 0  # really nothing but the three packages
    for motion, n in (("left", 150), ("right", 131)):
        video = write_pyav(tmp_path / f"new-{motion}.mp4", n, motion=motion)
        r = subprocess.run([str(python), str(out / "predict.py"), str(video), "--json"], capture_output=True,
                           text=True, timeout=120, cwd=tmp_path, check=False)  # fmt: skip
        assert r.returncode == 0, r.stderr
        doc = json.loads(r.stdout)
        assert doc["classes"] == ["left", "right"] and doc["frames"] == n and doc["mode"] == "fast"
        windows = doc["windows"]
        length = OPT.WINDOW_CLIPS * 13 / 25
        assert len(windows) >= 8 and all(w["end_s"] - w["start_s"] == pytest.approx(length) for w in windows)
        right = [w["class"] == motion for w in windows]
        assert sum(right) >= 0.75 * len(windows), windows
        assert max(doc["summary"], key=lambda c: doc["summary"][c]["share"]) == motion
        assert sum(s["share"] for s in doc["summary"].values()) == pytest.approx(1.0)
    r = subprocess.run([str(python), str(out / "predict.py"), str(tmp_path / "missing.mp4")], capture_output=True,
                       text=True, timeout=120, check=False)  # fmt: skip
    assert r.returncode == 2 and "does not exist" in r.stderr


def test_the_bundle_runs_on_onnxruntimes_cuda_provider_only_where_there_is_one():
    """``predict.py --device``: auto takes CUDA when onnxruntime has it (onnxruntime-gpu), cuda without it is a clear
    error (tests/gpu runs a bundle on the provider itself)."""
    cpu, gpu = ["CPUExecutionProvider"], ["CUDAExecutionProvider", "CPUExecutionProvider"]
    assert BP.providers("auto", cpu) == cpu and BP.providers("cpu", gpu) == cpu
    assert BP.providers("auto", gpu) == gpu and BP.providers("cuda", gpu) == gpu
    with pytest.raises(BP.BundleError, match="pip install onnxruntime-gpu"):
        BP.providers("cuda", cpu)
    with pytest.raises(BP.BundleError, match="auto, cpu or cuda"):
        BP.providers("tpu", gpu)

"""Fine-tune mode on real generated videos (left/right moving squares), decoded and trained for real on the CPU.
Kept small for speed: 2 frames per clip, 2 clips per video, the last block unfrozen, 1-2 epochs. Covers the events,
metrics and checkpoint, rebuilding the model from the checkpoint, which weights move, clip-consistent augmentation,
out-of-memory halving, stop-early, the checks before any decoding, repeatability and unreadable videos."""

from __future__ import annotations

import io
import json
import os

import numpy as np
import pytest
import torch
from motionproject import import_motion_videos, stop_after_epoch, tag_by_motion

from vidtrain_gui.core import classes as CL
from vidtrain_gui.core import labels as L
from vidtrain_gui.core import runs as R
from vidtrain_gui.core import videos as V
from vidtrain_gui.core.predictions import list_predictions
from vidtrain_gui.footage.ingest import open_reader
from vidtrain_gui.jobs.runner import run_job
from vidtrain_gui.ml.backbones import get_backbone
from vidtrain_gui.ml.finetune import (
    ClipDataset,
    ClipTransform,
    backbone_blocks,
    clip_items,
    finetune,
    resolve_unfreeze,
)
from vidtrain_gui.ml.heads import make_head
from vidtrain_gui.ml.loop import balanced_accuracy
from vidtrain_gui.ml.model import FinetuneModel, clip_logits, decode_size, load
from vidtrain_gui.ml.model import clip_probabilities as finetuned_probabilities
from vidtrain_gui.ml.predict import predict
from vidtrain_gui.ml.rows import clip_windows
from vidtrain_gui.ml.trainset import TrainingError, read_training_set

# The fifth video's file is deleted after tagging: every run must leave its clips out with a warning.
MOTIONS = ("left", "right", "left", "right", "left")
CLIP_RANGES = [(1, 14), (31, 44)]
FAST = {"frames": 2, "batch_size": 2, "epochs": 2, "unfreeze": 1, "flip": False, "device": "cpu"}
LITE0 = get_backbone("efficientnet_lite0")


def _import(tmp, motions):
    return import_motion_videos(tmp, motions, first_length=60)


def _tag(p, names=("left", "right")):
    tag_by_motion(p, CLIP_RANGES, names)


def _run(p, on_ctx=None, **kw):
    out = io.StringIO()
    kw = {**FAST, **kw}

    def work(ctx):
        if on_ctx:
            on_ctx(ctx)
        return finetune(ctx, **kw)

    run = run_job(p, "train", {k: str(v) for k, v in kw.items()}, work, stdout=out, install_signals=False)
    return run, [json.loads(line) for line in out.getvalue().splitlines()]


def _warnings(events):
    return [e["message"] for e in events if e["type"] == "log" and e["level"] == "warning"]


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    p = _import(tmp_path_factory.mktemp("finetune"), MOTIONS)
    _tag(p)
    os.remove(next(v.path for v in V.list_videos(p) if v.name == "left4.mp4"))
    yield p
    p.close()


@pytest.fixture(scope="module")
def main_run(project):
    return _run(project)


# ---- end to end --------------------------------------------------------------------------------------------------


def test_run_finishes_with_epoch_events_metrics_and_checkpoint(project, main_run):
    run, events = main_run
    assert run.status == "done", run.error
    m = run.metrics
    assert m["validation"] == "held_out" and m["n_train"] == 4 and m["n_val"] == 4  # left4's 2 clips left out
    assert any("left4.mp4: cannot be read" in w and "2 clip(s) are left out" in w for w in _warnings(events))
    assert m["class_names"] == ["left", "right"] and m["mode"] == "finetune" and m["unfrozen_blocks"] == 1
    assert 1 <= m["best_epoch"] <= m["epochs_run"] == 2
    epochs = [e for e in events if e["type"] == "epoch"]
    assert [e["epoch"] for e in epochs] == [1, 2]
    for e in epochs:
        assert set(e) >= {"epoch", "train_loss", "val_loss", "val_acc", "val_macro_f1", "per_class"}
        assert set(e["per_class"]["left"]) == {"precision", "recall", "f1", "support"}
    # The kept epoch is the most balanced one on validation, the lower loss breaking ties (ml/loop.py SELECT).
    best = epochs[m["best_epoch"] - 1]
    assert m["val_loss"] == best["val_loss"]
    key = [(round(balanced_accuracy({"per_class": e["per_class"]}), 9), -e["val_loss"]) for e in epochs]
    assert key[m["best_epoch"] - 1] == max(key)
    train_progress = [e for e in events if e["type"] == "progress" and e["stage"] == "train"]
    assert {(e["epoch"], e["done"], e["total"]) for e in train_progress} >= {(1, 2, 2), (2, 2, 2)}  # per batch
    run_dir = R.run_dir(project, run.id)
    assert json.loads((run_dir / "metrics.json").read_text()) == m
    ck = torch.load(run_dir / "best.pt", weights_only=True)
    assert ck["config"]["mode"] == "finetune" and ck["class_names"] == ["left", "right"]
    assert ck["best_epoch"] == m["best_epoch"] and ck["val_clip_ids"] == m["val_clip_ids"]
    assert not list(run_dir.glob("*.tmp"))


def test_each_epoch_reports_its_time_and_the_share_spent_waiting_for_clips(project, main_run):
    """Issue 17: the epoch event says how long training took and what share of it went waiting for decoded clips
    (on a GPU: the share the GPU sat idle); no GPU figures on the CPU; the history in metrics.json keeps them."""
    run, events = main_run
    device = next(e for e in events if e["type"] == "device")
    assert device["name"].startswith("CPU") and "memory_total_mb" not in device
    for e in (e for e in events if e["type"] == "epoch"):
        assert 0 < e["data_wait_s"] <= e["epoch_s"] and 0 < e["data_wait_share"] <= 1
        assert not any(k.startswith("gpu_") for k in e)
    assert all(0 < h["data_wait_share"] <= 1 for h in run.metrics["history"])


def test_decoding_workers_give_the_same_clips(project, main_run):
    """``workers=1`` decodes in a DataLoader worker process (the GPU default): the same draws, so the same run."""
    run, events = _run(project, workers=1)
    assert run.status == "done", run.error
    assert run.metrics["history"][0]["train_loss"] == pytest.approx(main_run[0].metrics["history"][0]["train_loss"])
    ck = torch.load(R.run_dir(project, run.id) / "best.pt", weights_only=True)
    assert ck["config"]["workers"] == 1


def test_rebuilt_model_gives_the_validation_logits(project, main_run):
    run, _ = main_run
    loaded = load(R.run_dir(project, run.id) / "best.pt")
    model, ck = loaded.net, loaded.checkpoint
    assert not model.training
    clips = {c.id: c for c in L.list_clips(project)}
    videos = {v.id: v for v in V.list_videos(project)}
    batch, per_clip = [], []
    for cid in ck["val_clip_ids"]:
        clip = clips[cid]
        video = videos[clip.video_id]
        # Validation sees a clip's middle window (ml/rows.py clip_windows), prediction the mean over its windows.
        windows = clip_windows(clip.start_frame, clip.end_frame, round(ck["config"]["clip_length_s"] * video.fps))
        assert len(windows) >= 2
        with open_reader(project, video) as reader:
            size = decode_size(LITE0, *reader.size)
            frames = [reader.sample((int(s), int(e)), ck["config"]["frames"], size=size) for s, e in windows]
        batch.append(frames[len(windows) // 2])
        per_clip.append(torch.softmax(clip_logits(model, np.stack(frames)), dim=1).mean(dim=0).numpy())
    logits = clip_logits(model, np.stack(batch))
    assert logits.shape == (4, 2)
    torch.testing.assert_close(logits, ck["val_logits"], rtol=1e-4, atol=1e-5)
    # ml/predict.py, as the prediction code will use it: the mean probabilities over each clip's windows.
    val = [clips[i] for i in ck["val_clip_ids"]]
    probs = finetuned_probabilities(project, R.run_dir(project, run.id) / "best.pt", val)
    np.testing.assert_allclose(probs, np.stack(per_clip), rtol=1e-4, atol=1e-5)


def test_frozen_blocks_stay_put_and_the_unfrozen_block_trains(project, main_run):
    run, _ = main_run
    ck = torch.load(R.run_dir(project, run.id) / "best.pt", weights_only=True)
    before = LITE0.build("default").state_dict()
    after = ck["backbone_state_dict"]
    assert before.keys() == after.keys()
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    # unfreeze=1 is _conv_head/_bn1; BatchNorm running statistics never move (they stay in eval mode).
    assert changed == {"_conv_head.weight", "_bn1.weight", "_bn1.bias"}


def test_stop_after_epoch_one_keeps_the_best_and_the_same_seed_repeats_it(project, main_run):
    run, events = _run(project, on_ctx=stop_after_epoch(1), epochs=5)
    assert run.status == "stopped", run.error
    assert run.metrics["epochs_run"] == 1 and [e["epoch"] for e in events if e["type"] == "epoch"] == [1]
    assert torch.load(R.run_dir(project, run.id) / "best.pt", weights_only=True)["best_epoch"] == 1
    # Same seed, same data: epoch 1 is the main run's epoch 1 to the last bit (the epoch count plays no part).
    timing = ("t", "epoch_s", "data_wait_s", "data_wait_share")
    first = [{k: v for k, v in e.items() if k not in timing} for _, evs in (main_run, (run, events)) for e in evs
             if e["type"] == "epoch" and e["epoch"] == 1]  # fmt: skip
    assert first[0] == first[1]


def test_gpu_out_of_memory_halves_the_batch_and_goes_on(project, monkeypatch):
    forward = FinetuneModel.forward
    raised = []

    def flaky(self, x):  # the first training forward of 2 clips runs out of memory, as a GPU would
        if self.training and len(x) > 1 and not raised:
            raised.append(len(x))
            raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return forward(self, x)

    monkeypatch.setattr(FinetuneModel, "forward", flaky)
    run, events = _run(project, epochs=1)
    assert run.status == "done", run.error
    assert raised == [2]
    assert "GPU out of memory at batch 2: halving to 1" in _warnings(events)
    assert run.metrics["epochs_run"] == 1


def test_out_of_memory_at_one_clip_is_a_clear_error(project, monkeypatch):
    def oom(self, x):
        raise torch.cuda.OutOfMemoryError("CUDA out of memory")

    monkeypatch.setattr(FinetuneModel, "forward", oom)
    run, events = _run(project, epochs=1)
    assert run.status == "failed" and "GPU out of memory with a batch of 1 clip" in run.error
    assert "GPU out of memory at batch 2: halving to 1" in _warnings(events)


# ---- checks before any decoding ----------------------------------------------------------------------------------


def test_one_class_or_an_empty_class_fails_before_decoding(tmp_path):
    p = _import(tmp_path, ("left",))
    _tag(p, names=("left",))
    os.remove(V.list_videos(p)[0].path)  # decoding would warn about it; the class check comes first
    run, events = _run(p)
    assert run.status == "failed" and "at least two classes" in run.error and not _warnings(events)
    CL.add_class(p, "right")
    run, events = _run(p)
    assert run.status == "failed" and "'right'" in run.error and "no clips" in run.error and not _warnings(events)
    p.close()


def test_bad_arguments_are_clear_errors(project):
    for kw, message in (({"head": "lstm"}, "unknown head 'lstm'"), ({"unfreeze": "some"}, "unfreeze must be"),
                        ({"frames": 0}, "frames must be")):  # fmt: skip
        run, _ = _run(project, **kw)
        assert run.status == "failed" and message in run.error


# ---- units -------------------------------------------------------------------------------------------------------


def test_augmentation_draws_once_per_clip(project):
    video = next(v for v in V.list_videos(project) if v.name == "right1.mp4")
    with open_reader(project, video) as reader:
        frame = torch.from_numpy(reader.frame(10, size=decode_size(LITE0, *reader.size)).copy())
    clip = frame.expand(4, *frame.shape)  # four identical frames: shared parameters give four identical outputs
    aug = ClipTransform(LITE0, augment=True)
    outs = []
    for seed in range(8):
        torch.manual_seed(seed)
        x = aug(clip)
        assert x.shape == (4, 3, 224, 224) and x.dtype == torch.float32
        assert all(torch.equal(x[0], x[t]) for t in range(1, 4))
        outs.append(x[0])
    assert len({o.sum().item() for o in outs}) == 8  # every draw differs
    plain = ClipTransform(LITE0, augment=False)
    assert torch.equal(plain(clip), plain(clip)) and plain(clip).shape == (4, 3, 224, 224)
    assert torch.equal(plain(clip), LITE0.preprocess(clip))  # validation = the backbone's own preprocessing


def test_dataset_seeds_fix_the_draw_and_reuse_readers(project):
    items, sources = clip_items(project, read_training_set(project), LITE0, lambda *a: None)
    assert len(items) == 8 and len(sources) == 4
    ds = ClipDataset(items, sources, 3, ClipTransform(LITE0, augment=True))
    a, y, i = ds[(0, 7)]
    assert a.shape == (3, 3, 224, 224) and (y, i) == (items[0].label, 0)
    assert torch.equal(ds[(0, 7)][0], a) and not torch.equal(ds[(0, 8)][0], a)
    assert items[1].video_id == items[0].video_id
    ds[(1, 0)]
    assert len(ds._readers) == 1  # the same video's next clip reuses its reader
    ds.close()


def test_blocks_per_backbone_and_unfreeze_counts():
    lite = backbone_blocks(LITE0.build("none"))
    assert lite[0] == ["_conv_stem", "_bn0"] and lite[-1] == ["_conv_head", "_bn1"]
    assert lite[1:-1] == [[f"_blocks.{k}"] for k in range(16)]
    assert backbone_blocks(get_backbone("resnet18").build("none")) == [["conv1", "bn1"]] + [
        [f"layer{k}"] for k in range(1, 5)
    ]
    mobilenet = backbone_blocks(get_backbone("mobilenet_v3_large").build("none"))
    assert mobilenet[0] == ["features.0"] and mobilenet[-1] == ["classifier"]  # the kept 960 -> 1280 layer
    assert resolve_unfreeze("all", 18) == 18 and resolve_unfreeze("2", 18) == 2 and resolve_unfreeze(40, 18) == 18
    assert resolve_unfreeze(0, 18) == 0
    for bad in (-1, "-1", "half", 1.5, True):
        with pytest.raises(TrainingError, match="unfreeze must be"):
            resolve_unfreeze(bad, 18)


def test_frozen_modules_and_batchnorm_stay_in_eval_mode():
    net = LITE0.build("none")
    blocks = backbone_blocks(net)
    frozen = [n for b in blocks[:-2] for n in b]
    model = FinetuneModel(LITE0, net, make_head("mlp", 1280, 2, 2), frozen).train()
    assert model.head.training and model.backbone._blocks[15].training and not model.backbone._blocks[14].training
    assert not model.backbone._blocks[15]._bn1.training  # trainable weights, frozen statistics
    assert not any(p.requires_grad for p in model.backbone._blocks[14].parameters())
    assert all(p.requires_grad for p in model.backbone._blocks[15].parameters())


def test_video_backbone_gives_one_step_to_the_head():
    spec = get_backbone("r3d_18")
    model = FinetuneModel(spec, spec.build("none"), make_head("gru", 512, 3, 1)).eval()
    with torch.no_grad():
        assert model(torch.randn(2, 4, 3, 32, 32)).shape == (2, 3)


def test_predict_job_scores_windows_and_clips_from_decoded_frames(project, main_run):
    """A fine-tune run predicts by decoding: its clip scores are the checkpoint's own, its training clips say
    they were seen in training, and the deleted video is skipped with a warning."""
    run, _ = main_run
    out = io.StringIO()
    pred = run_job(project, "predict", {}, lambda ctx: predict(ctx, run_id=run.id, device="cpu", stride_s=0.5),
                   stdout=out, install_signals=False)  # fmt: skip
    assert pred.status == "done", pred.error
    events = [json.loads(line) for line in out.getvalue().splitlines()]
    assert any("left4.mp4: the file is missing" in w for w in _warnings(events))
    assert pred.classes == ["left", "right"] and pred.parent_run_id == run.id
    clips = {c.id: c for c in L.list_clips(project)}
    rows = list_predictions(project, pred.id, kind="clip")
    ck = torch.load(R.run_dir(project, run.id) / "best.pt", weights_only=True)
    origins = {r.clip_id: r.origin for r in rows}
    assert {origins[c] for c in ck["val_clip_ids"]} == {"held-out"}
    assert set(origins.values()) == {"held-out", "in-training"} and pred.metrics["oof_folds"] == 0
    val = [clips[c] for c in ck["val_clip_ids"]]
    expected = finetuned_probabilities(project, R.run_dir(project, run.id) / "best.pt", val)
    got = {r.clip_id: np.frombuffer(r.probs, "<f4") for r in rows}
    np.testing.assert_allclose(np.stack([got[c.id] for c in val]), expected, rtol=1e-4, atol=1e-5)
    windows = list_predictions(project, pred.id, kind="window")
    live = [v for v in V.list_videos(project) if v.name != "left4.mp4"]
    assert {w.video_id for w in windows} == {v.id for v in live}
    for v in live:
        mine = [w for w in windows if w.video_id == v.id]
        assert mine[0].start_frame == 0 and mine[-1].end_frame == v.frame_count
    # Windows scored in one pass agree with scoring each window on its own.
    v = live[0]
    spans = np.array([[w.start_frame, w.end_frame] for w in windows if w.video_id == v.id][:3])
    alone = finetuned_probabilities(project, R.run_dir(project, run.id) / "best.pt",
                                    [type("W", (), {"video_id": v.id, "start_frame": int(s), "end_frame": int(e)})
                                     for s, e in spans])  # fmt: skip
    first = np.stack([np.frombuffer(w.probs, "<f4") for w in windows if w.video_id == v.id][:3])
    np.testing.assert_allclose(first, alone, rtol=1e-4, atol=1e-5)

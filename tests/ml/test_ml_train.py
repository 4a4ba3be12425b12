"""Fast-mode training on real generated videos: four tiny clips-of-motion videos ("left" / "right" squares), features
extracted once for the module, then heads trained as jobs. Covers accuracy on held-out videos, falling loss, the
checkpoint, repeatability, the checks before any work, stop-early, NaN, the grouped split and every head."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from motionproject import import_motion_videos, stop_after_epoch, tag_by_motion, train_as_job

from vidtrain_gui.core import classes as CL
from vidtrain_gui.core import labels as L
from vidtrain_gui.core import runs as R
from vidtrain_gui.ml import rows as T
from vidtrain_gui.ml.checkpoint import CheckpointError
from vidtrain_gui.ml.heads import HEADS, make_head
from vidtrain_gui.ml.model import clip_probabilities
from vidtrain_gui.ml.rows import clip_rows
from vidtrain_gui.ml.trainset import NO_VALIDATION_WARNING, grouped_split

MOTIONS = ("left", "right", "left", "right")
# The square wraps around every ~30 frames (videogen.draw_frame): clips sit inside one sweep, two per sweep.
CLIP_RANGES = [(s + 1, s + 14) for s in (0, 30, 60)] + [(s + 15, s + 29) for s in (0, 30, 60)]


def _import(tmp, motions):
    return import_motion_videos(tmp, motions, first_length=100)


def _tag(p, names=("left", "right")):
    tag_by_motion(p, CLIP_RANGES, names)


_run = train_as_job


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    p = _import(tmp_path_factory.mktemp("train"), MOTIONS)
    _tag(p)
    yield p
    p.close()


@pytest.fixture(scope="module")
def gru_run(project):
    return _run(project, head="gru", epochs=40, patience=40)


# ---- end to end --------------------------------------------------------------------------------------------------


def test_gru_learns_motion_direction_on_held_out_videos(project, gru_run):
    run, events = gru_run
    assert run.status == "done", run.error
    m = run.metrics
    assert m["validation"] == "held_out" and m["n_train"] + m["n_val"] == 24 and m["n_val"] > 0
    assert m["val_acc"] >= 0.9 and m["val_macro_f1"] >= 0.9
    assert m["class_names"] == ["left", "right"]
    assert np.array(m["confusion"]).sum() == m["n_val"] and len(m["confusion"]) == 2
    assert 1 <= m["best_epoch"] <= m["epochs_run"]
    epochs = [e for e in events if e["type"] == "epoch"]
    assert len(epochs) == m["epochs_run"]
    assert set(epochs[0]) >= {"epoch", "train_loss", "val_loss", "val_acc", "val_macro_f1", "per_class"}
    assert set(epochs[0]["per_class"]["left"]) == {"precision", "recall", "f1", "support"}
    assert min(e["train_loss"] for e in epochs[-5:]) < 0.5 * epochs[0]["train_loss"]  # the loss falls
    assert m["val_loss"] < epochs[0]["val_loss"]
    assert any(e["type"] == "progress" and e["stage"] == "features" for e in events)
    run_dir = R.run_dir(project, run.id)
    assert json.loads((run_dir / "metrics.json").read_text())["best_epoch"] == m["best_epoch"]


def test_clip_probabilities_from_the_checkpoint_reproduce_validation(project, gru_run):
    """ml/predict.py scores clips from the checkpoint and the cache exactly as training validated them."""
    run, _ = gru_run
    m = run.metrics
    by_id = {c.id: c for c in L.list_clips(project)}
    val = [by_id[i] for i in m["val_clip_ids"]]
    probs = clip_probabilities(project, R.run_dir(project, run.id) / "best.pt", val)
    assert probs.shape == (m["n_val"], 2) and np.allclose(probs.sum(axis=1), 1.0, atol=1e-5)
    classes = [c.id for c in CL.list_classes(project)]
    truth = np.array([classes.index(c.class_id) for c in val])
    assert float((probs.argmax(axis=1) == truth).mean()) == pytest.approx(m["val_acc"])
    with pytest.raises(CheckpointError, match="no checkpoint"):
        clip_probabilities(project, R.run_dir(project, run.id) / "missing.pt", val)


def test_checkpoint_loads_weights_only_and_rebuilds_the_head(project, gru_run):
    run, _ = gru_run
    ck = torch.load(R.run_dir(project, run.id) / "best.pt", weights_only=True)
    assert ck["class_names"] == ["left", "right"]
    assert ck["best_epoch"] == run.metrics["best_epoch"] and ck["feature_key"] == run.metrics["feature_key"]
    cfg = ck["config"]
    head = make_head(cfg["head"], cfg["feature_dim"], cfg["num_classes"], cfg["frames"], **cfg["head_kwargs"])
    head.load_state_dict(ck["state_dict"])
    width = cfg["feature_dim"] + cfg["head_kwargs"]["motion_dim"]  # appearance features, then motion descriptors
    assert cfg["motion"] and cfg["head_kwargs"]["deltas"] and cfg["head_kwargs"]["motion_dim"] == 64
    assert head.eval()(torch.zeros(3, cfg["frames"], width)).shape == (3, 2)


def test_tconv_and_attention_also_learn_it(project):
    # Order-aware heads; the clips' mean square position also differs by direction, so even mlp can separate
    # these particular videos, which is why only order-aware heads carry the accuracy claim.
    for head in ("tconv", "attention"):
        run, _ = _run(project, head=head, epochs=60, patience=60)
        assert run.status == "done", run.error
        assert run.metrics["val_acc"] >= 0.9, (head, run.metrics["history"][-3:])


def test_same_seed_same_metrics(project):
    a, _ = _run(project, head="mlp", epochs=8)
    b, _ = _run(project, head="mlp", epochs=8)
    c, _ = _run(project, head="mlp", epochs=8, seed=1)
    strip = lambda m: {k: v for k, v in m.items() if k != "seconds"}  # noqa: E731
    assert strip(a.metrics) == strip(b.metrics)
    assert strip(a.metrics)["history"] != strip(c.metrics)["history"]


def test_stop_after_epoch_two_keeps_best(project):
    run, events = _run(project, on_ctx=stop_after_epoch(2), head="mlp", epochs=50)
    assert run.status == "stopped"
    assert run.metrics["epochs_run"] == 2 and [e["epoch"] for e in events if e["type"] == "epoch"] == [1, 2]
    assert (R.run_dir(project, run.id) / "best.pt").exists()


@pytest.mark.parametrize(
    ("options", "error"),
    [
        ({"head": "mlp", "epochs": 5}, "loss became NaN at epoch 1; lower the learning rate"),
        # The default stats head, solved exactly (ml/exact.py): no learning rate to blame.
        ({}, "the training windows' cached features hold NaN or infinite values; delete the project's "
             "cache/features folder to compute them again"),
    ],
)  # fmt: skip
def test_nan_features_fail_the_run_without_a_checkpoint(project, monkeypatch, options, error):
    real = T.load_features

    def poisoned(*a, **kw):
        feats, idx = real(*a, **kw)
        return np.full_like(feats, np.nan), idx

    monkeypatch.setattr(T, "load_features", poisoned)
    run, events = _run(project, **options)
    assert run.status == "failed"
    assert run.error == error
    assert not (R.run_dir(project, run.id) / "best.pt").exists()


def test_huge_learning_rate_is_a_clear_error(project):
    run, _ = _run(project, head="mlp", epochs=30, lr=1e10)
    assert run.status == "failed" and "lower the learning rate" in run.error
    assert not (R.run_dir(project, run.id) / "best.pt").exists()


# ---- checks before any work --------------------------------------------------------------------------------------


def test_one_class_fails_before_features(tmp_path):
    p = _import(tmp_path, ("left",))
    _tag(p, names=("left",))
    run, _ = _run(p, head="mlp")
    assert run.status == "failed" and "at least two classes" in run.error
    CL.add_class(p, "right")  # a second class, but without clips
    run, _ = _run(p, head="mlp")
    assert run.status == "failed" and "'right'" in run.error and "no clips" in run.error
    assert not any(x.is_file() for x in p.features_dir.rglob("*"))  # nothing was extracted
    p.close()


def test_unknown_head_is_a_clear_error(project):
    run, _ = _run(project, head="lstm")
    assert run.status == "failed" and "unknown head 'lstm'" in run.error
    with pytest.raises(ValueError, match="unknown head"):
        make_head("lstm", 8, 2, 4)


def test_refit_trains_the_kept_head_again_on_every_clip_for_the_best_epochs_number(project):
    """refit=True: the validation scores are the validated head's (the same as without refit), the saved head is
    another one, trained on the validation clips too, and it loads and scores like any other."""
    plain, _ = _run(project, head="stats", epochs=6, solver="adamw")
    again, events = _run(project, head="stats", epochs=6, refit=True, solver="adamw")
    assert plain.metrics["refit"] is False and again.metrics["refit"] is True
    same = ("val_acc", "best_epoch", "history")
    assert [again.metrics[k] for k in same] == [plain.metrics[k] for k in same]
    logs = [e["message"] for e in events if e["type"] == "log"]
    assert any(m.startswith("refitting the head on all") and f"for {again.metrics['best_epoch']} epochs" in m
               for m in logs)  # fmt: skip
    states = [torch.load(R.run_dir(project, r.id) / "best.pt", weights_only=True)["state_dict"] for r in (plain, again)]
    assert any(not torch.equal(states[0][k], states[1][k]) for k in states[0])
    clips = L.list_clips(project)
    probs = clip_probabilities(project, R.run_dir(project, again.id) / "best.pt", clips)
    assert probs.shape == (len(clips), 2) and np.allclose(probs.sum(1), 1, atol=1e-5)


def test_too_few_videos_trains_on_all_with_a_warning(tmp_path):
    p = _import(tmp_path, ("left", "right"))  # each class in one video only: nothing can be held out for it
    _tag(p)
    run, events = _run(p, head="mlp", epochs=3)
    assert run.status == "done", run.error
    assert run.metrics["validation"] == "training_data" and run.metrics["n_val"] == run.metrics["n_train"] == 12
    assert run.metrics["refit"] is False  # nothing was held out: there is nothing to refit with
    assert any(e["type"] == "log" and e["level"] == "warning" and e["message"] == NO_VALIDATION_WARNING for e in events)
    p.close()


# ---- units -------------------------------------------------------------------------------------------------------


def test_grouped_split_keeps_groups_whole_and_every_class_on_both_sides():
    rng = np.random.default_rng(0)
    for seed in range(20):
        groups, labels = [], []
        for v in range(12):
            g = f"group:{v % 5}" if v < 9 else f"video:{v}"  # some videos share a source group
            for _ in range(int(rng.integers(1, 8))):
                groups.append(g)
                labels.append(int(rng.integers(0, 3)))
        split = grouped_split(groups, labels, seed=seed)
        if split is None:
            continue
        train_idx, val_idx = split
        assert sorted(train_idx + val_idx) == list(range(len(labels)))
        assert not {groups[i] for i in train_idx} & {groups[i] for i in val_idx}
        assert {labels[i] for i in val_idx} == {labels[i] for i in train_idx} == set(labels)


def test_grouped_split_refuses_what_cannot_be_validated():
    assert grouped_split(["a"] * 4, [0, 1, 0, 1]) is None  # one group
    assert grouped_split(["a", "a", "b", "c"], [0, 1, 0, 0]) is None  # class 1 lives in group "a" only
    assert grouped_split(["a", "b", "c", "d"], [0, 1, 0, 1]) is not None


def test_clip_rows_spreads_repeats_and_falls_back_to_nearest():
    idx = np.arange(0, 100, 3, dtype=np.int32)  # rows at frames 0, 3, 6, ...
    rows = clip_rows(idx, 30, 60, 4)  # rows 10..19 are inside
    assert list(rows) == [11, 13, 16, 18] and all(30 <= idx[r] < 60 for r in rows)
    assert list(clip_rows(idx, 30, 36, 4)) == [10, 10, 11, 11]  # fewer rows than frames: repeat, in order
    assert list(clip_rows(idx, 31, 33, 3)) == [10, 10, 10]  # nothing inside: the nearest row (frame 30 or 33)


@pytest.mark.parametrize("name", HEADS)
def test_every_head_gives_logits_and_trains(name):
    torch.manual_seed(0)
    head = make_head(name, 32, 3, 8)
    x, y = torch.randn(16, 8, 32), torch.randint(0, 3, (16,))
    opt = torch.optim.Adam(head.parameters(), lr=1e-2)
    losses = []
    for _ in range(30):
        loss = torch.nn.functional.cross_entropy(head(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    assert head.eval()(x).shape == (16, 3)
    assert losses[-1] < losses[0]


def test_clip_ids_restrict_training_to_those_clips(project):
    clips = L.list_clips(project)
    first = [c.id for c in clips if c.video_id == clips[0].video_id]
    keep = [c.id for c in clips if c.id not in first[:3]]  # half of the first video's clips left out
    run, _ = _run(project, head="linear", epochs=3, clip_ids=keep)
    assert run.status == "done"
    assert run.metrics["validation"] == "held_out"
    assert run.metrics["n_train"] + run.metrics["n_val"] == len(keep) == len(clips) - 3

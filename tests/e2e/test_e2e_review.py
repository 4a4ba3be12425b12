"""`vidtrain review`: a prediction run's review queue on the command line, in the order of the window's review panel.

A project of generated videos (a square moving left or right) is trained and predicted through the CLI in-process;
the command's JSON must be `core.review.review_queue`'s items, field for field and in the same order (and the
window's `load_queue`, which leaves out what was reviewed since the run), with `--limit`, `--order`, `--run` and
`--clips-only`; its errors are one line."""

from __future__ import annotations

import json

import numpy as np
import pytest
from motionproject import import_motion_videos, tag_by_motion

from vidtrain_gui.cli import main
from vidtrain_gui.core import labels as L
from vidtrain_gui.core import runs as R
from vidtrain_gui.core import videos as V
from vidtrain_gui.core.project import Project
from vidtrain_gui.core.review import accept_prediction, review_queue

MOTIONS = ("left", "right", "left", "right", "left", "right")
RANGES = [(0, 24), (30, 54), (60, 84)]


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("review")
    p = import_motion_videos(tmp, MOTIONS, first_length=90)
    ids = tag_by_motion(p, RANGES)
    videos = V.list_videos(p)
    # An untagged clip (its prediction is "new", with no label) and a clip tagged against its motion (a likely
    # disagreement between the model and the user).
    L.add_clip(p, videos[0].id, 84, 90)
    right = next(v for v in videos if v.name.startswith("right"))
    wrong = next(c for c in L.list_clips(p) if c.video_id == right.id)
    L.set_clip_class(p, wrong.id, ids["left"])
    root = str(p.root)
    p.close()
    assert main(["train", root, "--device", "cpu", "--epochs", "15", "--patience", "15"]) == 0
    assert main(["predict", root, "--device", "cpu", "--folds", "2"]) == 0
    p = Project.open(root)
    yield p
    p.close()


def review(capsys, *args) -> dict:
    capsys.readouterr()
    assert main(["review", *map(str, args), "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def expected(p, run, items) -> list[dict]:
    """review_queue's items written out independently of the command."""
    names = {v.id: v.name for v in V.list_videos(p)}
    out = []
    for it in items:
        pr = it.prediction
        probs = np.frombuffer(pr.probs, "<f4")
        top = sorted(map(float, probs), reverse=True)
        out.append({
            "prediction_id": pr.id, "kind": pr.kind, "clip_id": pr.clip_id, "video_id": pr.video_id,
            "video": names[pr.video_id], "start_frame": pr.start_frame, "end_frame": pr.end_frame,
            "predicted": run.classes[int(probs.argmax())], "confidence": float(probs.max()),
            "margin": top[0] - top[1],
            "scores": dict(zip(run.classes, map(float, probs))), "label": it.label, "origin": pr.origin,
        })  # fmt: skip
    return out


def test_json_is_the_review_queue_in_its_order(project, capsys):
    run = R.resolve_prediction_run(project)
    doc = review(capsys, project.root)
    queue = review_queue(project, run.id, "uncertainty")
    assert doc["run_id"] == run.id and doc["train_run_id"] == run.parent_run_id
    assert doc["order"] == "uncertainty" and doc["kinds"] == ["clip", "window"]
    assert doc["classes"] == run.classes == ["left", "right"]
    assert doc["total"] == len(queue) == len(doc["items"])
    assert doc["items"] == expected(project, run, queue)
    assert [i["prediction_id"] for i in doc["items"]] == [it.prediction.id for it in queue]
    kinds = {i["kind"] for i in doc["items"]}
    assert kinds == {"clip", "window"}
    margins = [i["margin"] for i in doc["items"]]
    assert margins == sorted(margins)
    clips = {c.id: c for c in L.list_clips(project)}
    by_clip = {i["clip_id"]: i for i in doc["items"] if i["kind"] == "clip"}
    assert set(by_clip) == set(clips)
    untagged = [cid for cid, c in clips.items() if c.class_id is None]
    assert [by_clip[cid]["label"] for cid in untagged] == [None] and by_clip[untagged[0]]["origin"] == "new"
    assert all(i["clip_id"] is None and i["label"] is None for i in doc["items"] if i["kind"] == "window")
    # --run: the prediction run itself, or its training run (its newest predictions), as `vidtrain segments`.
    assert review(capsys, project.root, "--run", run.id) == doc
    assert review(capsys, project.root, "--run", run.parent_run_id) == doc


def test_limit_order_and_clips_only(project, capsys):
    run = R.resolve_prediction_run(project)
    full = review(capsys, project.root)
    top = review(capsys, project.root, "--limit", 3)
    assert top["items"] == full["items"][:3] and top["total"] == full["total"]
    clips = review(capsys, project.root, "--clips-only")
    assert clips["kinds"] == ["clip"]
    assert clips["items"] == expected(project, run, review_queue(project, run.id, "uncertainty", kinds=("clip",)))
    assert clips["items"] == [i for i in full["items"] if i["kind"] == "clip"]
    dis = review(capsys, project.root, "--order", "disagreement")
    queue = review_queue(project, run.id, "disagreement")
    assert dis["items"] == expected(project, run, queue) and dis["total"] == len(queue)
    assert dis["items"], "the clip tagged against its motion should disagree with its out-of-fold prediction"
    assert all(i["label"] is not None and i["label"] != i["predicted"] for i in dis["items"])
    confidences = [i["confidence"] for i in dis["items"]]
    assert confidences == sorted(confidences, reverse=True)
    assert review(capsys, project.root, "--order", "disagreement", "--limit", 1)["items"] == dis["items"][:1]


def test_human_output_is_one_line_per_item(project, capsys):
    run = R.resolve_prediction_run(project)
    queue = review_queue(project, run.id, "uncertainty", limit=5)
    capsys.readouterr()
    assert main(["review", str(project.root), "--limit", "5"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 5
    for line, it in zip(lines, queue):
        fields = line.split("\t")
        assert fields[0] == str(it.prediction.id)
        assert fields[1] == (f"clip {it.prediction.clip_id}" if it.prediction.kind == "clip" else "window")
        assert fields[3] == f"{it.prediction.start_frame}-{it.prediction.end_frame}"
        assert fields[4].startswith(f"{it.predicted} {it.top1:.2f}")
        assert fields[-1] == f"label: {it.label or '-'}"


def test_reviewed_items_leave_it_as_in_the_window(project, capsys):
    """A prediction accepted since the run leaves the list, as it leaves the window's panel (gui load_queue)."""
    from vidtrain_gui.gui.reviewpanel import load_queue

    run = R.resolve_prediction_run(project)
    before = review(capsys, project.root)
    first = next(i for i in before["items"] if i["kind"] == "clip")
    result = accept_prediction(project, first["prediction_id"])
    try:
        after = review(capsys, project.root)
        assert first["prediction_id"] not in {i["prediction_id"] for i in after["items"]}
        assert after["total"] == before["total"] - 1
        for kinds, flag in ((("clip", "window"), ()), (("clip",), ("--clips-only",))):
            window = load_queue(project, run.id, "uncertainty", kinds).items
            got = review(capsys, project.root, *flag)["items"]
            assert [i["prediction_id"] for i in got] == [it.prediction.id for it in window]
    finally:
        result.undo.apply(project)
    assert review(capsys, project.root) == before


def test_errors_are_one_line(tmp_path, capsys):
    p = Project.create(tmp_path / "proj")
    root = str(p.root)
    train = R.create_run(p, "train", {})
    R.update_run(p, train.id, status="done")
    p.close()
    for args, words in (
        ([], "no predictions yet"),
        (["--run", train.id], "no finished predictions yet"),
        (["--run", "nope"], "no run 'nope'"),
    ):
        capsys.readouterr()
        assert main(["review", root, *args]) == 1
        err = capsys.readouterr().err
        assert err.startswith("vidtrain: error: ") and words in err and err.count("\n") == 1, err
    capsys.readouterr()
    assert main(["review", str(tmp_path / "nowhere")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("vidtrain: error: ") and err.count("\n") == 1
    with pytest.raises(SystemExit) as exc:  # a usage mistake: argparse's exit code 2
        main(["review", root, "--limit", "0"])
    assert exc.value.code == 2
    assert "expected a whole number above 0" in capsys.readouterr().err

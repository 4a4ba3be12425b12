"""The Export dialog (gui/exportdialog.py): labels and predictions of a real project written off the GUI thread and
parsed back, each item's outcome reported on its own (a file that cannot be written fails only its item), the
checks made before anything starts, the run lists and their preselection, a model job that fails, and, for real,
a trained model exported through the `vidtrain export model` job (cancelled once, then finished with the dialog
closed) and loaded back with ONNX Runtime."""

from __future__ import annotations

import contextlib
import csv
import io
import json

import numpy as np
import onnxruntime as ort
import pytest
from fakevideo import fake_video as _video
from PySide6.QtCore import Qt
from videogen import write_pyav

from vidtrain_gui.cli import main as cli_main
from vidtrain_gui.core import classes as CL
from vidtrain_gui.core import labels as L
from vidtrain_gui.core import predictions as P
from vidtrain_gui.core import runs as R
from vidtrain_gui.core import videos as V
from vidtrain_gui.core.project import Project
from vidtrain_gui.footage.ingest import import_paths
from vidtrain_gui.gui.exportdialog import ExportDialog

JOB_TIMEOUT = 180_000  # ms: a cold `vidtrain` process imports torch before it exports


def _permissions_ignored(tmp_path) -> bool:
    """True where this process writes into a read-only folder anyway (root, or an OS without POSIX modes)."""
    probe = tmp_path / "probe"
    probe.mkdir()
    probe.chmod(0o500)
    try:
        (probe / "file").write_text("x")
    except PermissionError:
        return False
    finally:
        probe.chmod(0o700)
    return True


@pytest.fixture
def world(project):
    """Two fake videos (25 and 50 fps: no frame index, so seconds come from fps), classes walk and groom, three
    clips, and a finished prediction run with two segments and a window."""
    a, b = _video(project, "a.mp4", 25), _video(project, "b.mp4", 50)
    walk, groom = CL.add_class(project, "walk").value, CL.add_class(project, "groom").value
    L.add_clip(project, a.id, 100, 150, walk.id)
    L.add_clip(project, a.id, 10, 35, groom.id)
    L.add_clip(project, b.id, 200, 275, walk.id)
    run = R.create_run(project, "predict", {}, classes=["walk", "groom"])
    P.add_predictions(project, run.id, [
        {"kind": "segment", "video_id": a.id, "start_frame": 0, "end_frame": 50, "class_index": 1, "confidence": 0.8},
        {"kind": "segment", "video_id": b.id, "start_frame": 100, "end_frame": 300, "class_index": 0,
         "confidence": 0.9},
        {"kind": "window", "video_id": a.id, "start_frame": 0, "end_frame": 13, "class_index": 1, "confidence": 0.7,
         "probs": [0.3, 0.7]},
    ])  # fmt: skip
    R.update_run(project, run.id, status="done", metrics={"videos": 2, "honest_acc": 0.75})
    return {"a": a, "b": b, "run": run}


class Spy:
    """Stands in for the dialog's questions and outside effects, and records them."""

    def __init__(self, dialog: ExportDialog, answer: bool = True):
        self.questions: list[str] = []
        self.opened: list[str] = []
        self.answer = answer
        dialog.confirm = self._confirm
        dialog.open_folder = self.opened.append
        dialog.show_error = pytest.fail

    def _confirm(self, question: str) -> bool:
        self.questions.append(question)
        return self.answer


def _dialog(qtbot, project, **kw) -> tuple[ExportDialog, Spy]:
    dialog = ExportDialog(project, **kw)
    qtbot.addWidget(dialog)
    dialog.show()
    return dialog, Spy(dialog)


def _choose(dialog: ExportDialog, *, model=False, labels=False, predictions=False, folder=None) -> None:
    dialog.model_check.setChecked(model)
    dialog.labels_check.setChecked(labels)
    dialog.predictions_check.setChecked(predictions)
    if folder is not None:
        dialog.folder_edit.setText(str(folder))


def _select(combo, data) -> None:
    index = combo.findData(data)
    assert index >= 0, data
    combo.setCurrentIndex(index)


def _export(qtbot, dialog: ExportDialog, timeout: int = 10_000) -> dict:
    with qtbot.waitSignal(dialog.finished_all, timeout=timeout) as finished:
        qtbot.mouseClick(dialog.export_button, Qt.MouseButton.LeftButton)
    return finished.args[0]


# ---- labels and predictions ------------------------------------------------------------------------------------------


def test_labels_and_predictions_are_written_off_the_gui_thread_and_reported(qtbot, project, world, tmp_path):
    dialog, spy = _dialog(qtbot, project, prediction_run_id=world["run"].id)
    assert dialog.predictions_check.isChecked() and not dialog.model_check.isChecked()
    assert dialog.folder_edit.text() == str(project.root / "exports")  # the default
    assert not dialog.open_button.isEnabled()
    out = tmp_path / "out" / "new"  # made as needed
    _choose(dialog, labels=True, predictions=True, folder=out)
    _select(dialog.labels_format_combo, "csv")
    _select(dialog.level_combo, "segment")
    _select(dialog.predictions_format_combo, "json")
    exported = []
    dialog.exported.connect(exported.append)
    with qtbot.waitSignal(dialog.finished_all, timeout=10_000) as finished:
        qtbot.mouseClick(dialog.export_button, Qt.MouseButton.LeftButton)
        # Started, not done: the files are made on the thread pool, and the inputs wait for them.
        assert dialog.status_texts() == ["Labels: exporting…", "Predictions: exporting…"]
        assert not dialog.export_button.isEnabled() and not dialog.folder_edit.isEnabled()
        assert not dialog.labels_check.isEnabled() and dialog.progress_bar.maximum() == 0  # busy
    results = finished.args[0]
    labels_path, predictions_path = out / "labels.csv", out / "predictions-segment.json"
    assert results == {"labels": (True, str(labels_path)), "predictions": (True, str(predictions_path))}
    assert exported == [str(out)]
    rows = list(csv.DictReader(io.StringIO(labels_path.read_text(encoding="utf-8"))))
    assert [(r["video"], r["start_frame"], r["end_frame"], r["class"], r["start_s"]) for r in rows] == [
        ("/v/a.mp4", "10", "35", "groom", "0.4"), ("/v/a.mp4", "100", "150", "walk", "4.0"),
        ("/v/b.mp4", "200", "275", "walk", "4.0"),
    ]  # fmt: skip
    segments = json.loads(predictions_path.read_text(encoding="utf-8"))
    assert [(s["video"], s["start_frame"], s["end_frame"], s["predicted_class"], s["end_s"]) for s in segments] == [
        ("/v/a.mp4", 0, 50, "groom", 2.0), ("/v/b.mp4", 100, 300, "walk", 6.0),
    ]  # fmt: skip
    texts = dialog.status_texts()
    assert texts[0].startswith("Labels: done (labels.csv, ") and texts[1].startswith("Predictions: done (")
    assert dialog.export_button.isEnabled() and dialog.folder_edit.isEnabled()
    assert dialog.progress_bar.value() == dialog.progress_bar.maximum() == 1
    assert sorted(p.name for p in out.iterdir()) == ["labels.csv", "predictions-segment.json"]  # no partial files
    assert dialog.open_button.isEnabled()
    qtbot.mouseClick(dialog.open_button, Qt.MouseButton.LeftButton)
    assert spy.opened == [str(out)]


def test_window_level_csv_has_a_probability_column_per_class(qtbot, project, world, tmp_path):
    dialog, _ = _dialog(qtbot, project)
    assert dialog.labels_check.isChecked()  # nothing preselected: the labels
    assert "2 video(s)" in dialog.prediction_combo.currentText() and "75%" in dialog.prediction_combo.currentText()
    _choose(dialog, predictions=True, folder=tmp_path)
    _select(dialog.level_combo, "window")
    assert _export(qtbot, dialog)["predictions"] == (True, str(tmp_path / "predictions-window.csv"))
    rows = list(csv.DictReader(io.StringIO((tmp_path / "predictions-window.csv").read_text(encoding="utf-8"))))
    assert [(r["predicted_class"], r["p_walk"], r["p_groom"]) for r in rows] == [("groom", "0.3", "0.7")]


@pytest.mark.parametrize("blocker", ["a folder", "a read-only file"])
def test_a_file_that_cannot_be_written_fails_its_item_and_the_other_is_written(qtbot, project, world, tmp_path,
                                                                                blocker):  # fmt: skip
    if blocker == "a read-only file" and _permissions_ignored(tmp_path):
        pytest.skip("this process writes read-only files (root)")
    out = tmp_path / "out"
    out.mkdir()
    target = out / "labels.json"
    if blocker == "a folder":
        (target / "inside").mkdir(parents=True)
    else:
        target.write_text("[]\n", encoding="utf-8")
        target.chmod(0o400)
    dialog, _ = _dialog(qtbot, project)
    _choose(dialog, labels=True, predictions=True, folder=out)
    _select(dialog.labels_format_combo, "json")
    results = _export(qtbot, dialog)
    ok, message = results["labels"]
    assert not ok and message.startswith(f"cannot write {target}: ")
    assert results["predictions"] == (True, str(out / "predictions-clip.csv"))
    assert (out / "predictions-clip.csv").is_file()
    if blocker == "a read-only file":
        assert "read-only" in message and target.read_text(encoding="utf-8") == "[]\n"  # kept as it was
    assert dialog.status_texts()[0] == f"Labels: failed: {message}"
    assert dialog.status_texts()[1].startswith("Predictions: done")
    assert not list(out.glob(".*.tmp"))  # no temporary left behind
    assert dialog.open_button.isEnabled()  # something was written


# ---- checks before starting ------------------------------------------------------------------------------------------


def test_nothing_starts_when_the_choices_are_incomplete(qtbot, project, world, tmp_path):
    dialog, _ = _dialog(qtbot, project)
    out = tmp_path / "out"

    def refused(expected: str) -> None:
        with qtbot.assertNotEmitted(dialog.finished_all, wait=100):
            qtbot.mouseClick(dialog.export_button, Qt.MouseButton.LeftButton)
        assert expected in dialog.message_label.text()
        assert dialog.status_texts() == [] and not out.exists() and dialog.export_button.isEnabled()

    _choose(dialog, folder=out)
    refused("Choose at least one thing")
    _choose(dialog, labels=True, folder="  ")
    refused("Choose a folder")
    _choose(dialog, model=True, folder=out)  # this project has no training run
    assert not dialog.train_combo.isEnabled() and dialog.train_combo.currentData() is None
    refused("no finished training run")
    (tmp_path / "file").write_text("x")
    _choose(dialog, labels=True, folder=tmp_path / "file")
    refused("is a file, not a folder")
    dialog.ask_folder = lambda start: str(out) if start == str(tmp_path) else None  # starts at the nearest folder
    qtbot.mouseClick(dialog.choose_button, Qt.MouseButton.LeftButton)
    assert dialog.folder_edit.text() == str(out)
    with qtbot.waitSignal(dialog.finished_all):
        assert dialog.export() is True and dialog.message_label.text() == ""  # fixed: the message goes


def test_a_read_only_folder_is_refused_before_anything_starts(qtbot, project, world, tmp_path):
    if _permissions_ignored(tmp_path):
        pytest.skip("this process writes into read-only folders (root)")
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        dialog, _ = _dialog(qtbot, project)
        _choose(dialog, labels=True, folder=locked / "sub")
        assert dialog.export() is False
        assert dialog.message_label.text() == f"{locked} is not writable: choose another folder."
        assert dialog.status_texts() == []
    finally:
        locked.chmod(0o700)


def test_no_prediction_run_is_said_before_anything_starts(qtbot, project, tmp_path):
    failed = R.create_run(project, "predict", {})
    R.update_run(project, failed.id, status="failed", error="boom")
    dialog, _ = _dialog(qtbot, project)
    assert dialog.prediction_combo.count() == 1 and dialog.prediction_combo.currentData() is None
    _choose(dialog, predictions=True, folder=tmp_path)
    assert dialog.export() is False and "no finished predictions" in dialog.message_label.text()


# ---- the model bundle's run and folder ---------------------------------------------------------------------------


def _train_run(project, status="done", checkpoint=b"not a checkpoint", val_acc=0.9):
    run = R.create_run(project, "train", {"mode": "fast", "backbone": "efficientnet_lite0"}, classes=["walk"])
    if checkpoint is not None:
        (R.run_dir(project, run.id) / "best.pt").write_bytes(checkpoint)
    return R.update_run(project, run.id, status=status, metrics={"val_acc": val_acc})


def test_training_runs_are_listed_and_preselected_with_a_subfolder_name(qtbot, project, tmp_path):
    older, newer = _train_run(project), _train_run(project, status="stopped", val_acc=0.5)
    _train_run(project, status="failed")
    _train_run(project, checkpoint=None)  # finished without a model file
    dialog, _ = _dialog(qtbot, project, train_run_id=older.id)
    assert dialog.model_check.isChecked() and not dialog.labels_check.isChecked()
    assert [dialog.train_combo.itemData(k) for k in range(dialog.train_combo.count())] == [newer.id, older.id]
    assert dialog.train_combo.currentData() == older.id
    text = dialog.train_combo.currentText()
    assert "fast" in text and "efficientnet_lite0" in text and "val. acc. 90%" in text
    assert "stopped early" in dialog.train_combo.itemText(0)
    assert dialog.model_name_edit.text() == f"model-{older.id[:15]}"
    _select(dialog.train_combo, newer.id)  # the default name follows the run...
    assert dialog.model_name_edit.text() == f"model-{newer.id[:15]}"
    dialog.model_name_edit.setText("mine")  # ...until the user names it
    _select(dialog.train_combo, older.id)
    assert dialog.model_name_edit.text() == "mine"
    dialog.model_check.setChecked(False)
    assert not dialog.train_combo.isEnabled() and not dialog.model_name_edit.isEnabled()


def test_the_bundle_folder_is_not_overwritten_without_asking(qtbot, project, tmp_path):
    run = _train_run(project)
    dialog, spy = _dialog(qtbot, project, train_run_id=run.id)
    _choose(dialog, model=True, folder=tmp_path)
    bundle = tmp_path / dialog.model_name_edit.text()
    bundle.mkdir()
    (bundle / "notes.txt").write_text("mine")
    assert dialog.export() is False and f"{bundle} is not empty" in dialog.message_label.text()
    (bundle / "notes.txt").unlink()
    (bundle / "model_card.json").write_text("{}")  # an earlier bundle
    spy.answer = False
    assert dialog.export() is False
    assert spy.questions == [f"{bundle} already holds a model bundle. Replace it?"]
    assert "was kept" in dialog.message_label.text() and dialog.status_texts() == []
    dialog.model_name_edit.setText("a/b")
    assert dialog.export() is False and "a name, not a path" in dialog.message_label.text()


def test_a_failing_model_job_is_reported_with_its_reason(qtbot, project, world, tmp_path):
    run = _train_run(project)  # best.pt is not a checkpoint: the job fails before writing anything
    dialog, _ = _dialog(qtbot, project, train_run_id=run.id)
    _choose(dialog, model=True, labels=True, folder=tmp_path)
    results = _export(qtbot, dialog, timeout=JOB_TIMEOUT)
    ok, message = results["model"]
    assert not ok and "is not a VidTrain checkpoint" in message
    assert results["labels"] == (True, str(tmp_path / "labels.csv"))
    assert dialog.status_texts()[0] == f"Model bundle: failed: {message}"
    assert not (tmp_path / dialog.model_name_edit.text()).exists()
    export_runs = R.list_runs(project, kind="export")
    assert [(r.status, r.parent_run_id) for r in export_runs] == [("failed", run.id)]


# ---- a real model bundle --------------------------------------------------------------------------------------------


@pytest.fixture
def trained(tmp_path):
    """Two short generated videos (a square moving left, one moving right), tagged by motion and trained by the
    real CLI in fast mode (the default backbone's features, no optical flow, 5 epochs)."""
    paths = [write_pyav(tmp_path / f"{m}.mp4", 50 + k, size=(160, 120), motion=m)
             for k, m in enumerate(("left", "right"))]  # fmt: skip
    p = Project.create(tmp_path / "proj")
    assert [o.status for o in import_paths(p, paths, thumbnails=False)] == ["imported", "imported"]
    ids = {n: CL.add_class(p, n).value.id for n in ("left", "right")}
    for v in V.list_videos(p):
        for start in range(0, 40, 8):
            L.add_clip(p, v.id, start, start + 12, ids["left" if v.name.startswith("left") else "right"])
    # Closed while the CLI opens the project in this process: core.project reads the database's header with a
    # plain open() and close(), which drops this process's SQLite locks on the file, and a job that finds no other
    # reader then deletes the -wal/-shm files under the still-open project (whose reads then go stale).
    p.close()
    with contextlib.redirect_stdout(io.StringIO()):
        assert cli_main(["train", str(tmp_path / "proj"), "--device", "cpu", "--no-motion", "--epochs", "5"]) == 0
    p = Project.open(tmp_path / "proj")
    (run,) = R.list_runs(p, kind="train")
    yield p, run
    p.close()


@pytest.mark.slow
def test_a_trained_model_is_exported_as_a_bundle_that_onnx_runtime_runs(qtbot, trained, tmp_path):
    project, run = trained
    dialog, spy = _dialog(qtbot, project, train_run_id=run.id)
    assert "efficientnet_lite0" in dialog.train_combo.currentText()
    out = tmp_path / "out"
    _choose(dialog, model=True, folder=out)
    bundle = out / f"model-{run.id[:15]}"

    # Cancelled as soon as it starts: nothing is written. (The job takes about two seconds here, so a cancel at its
    # first progress line can come after it has finished on a busy machine; one at once always ends it.)
    with qtbot.waitSignal(dialog.finished_all, timeout=JOB_TIMEOUT) as cancelled:
        qtbot.mouseClick(dialog.export_button, Qt.MouseButton.LeftButton)
        assert dialog.cancel_button.isEnabled() and not dialog.model_check.isEnabled()
        qtbot.mouseClick(dialog.cancel_button, Qt.MouseButton.LeftButton)
    assert cancelled.args[0] == {"model": (False, "cancelled")}
    assert dialog.status_texts() == ["Model bundle: cancelled"] and not bundle.exists()
    assert not dialog.cancel_button.isEnabled() and not dialog.open_button.isEnabled()

    # Closing while it runs asks; "no" closes the dialog and the job goes on to the end.
    spy.answer = False
    with qtbot.waitSignal(dialog.finished_all, timeout=JOB_TIMEOUT) as finished:
        qtbot.mouseClick(dialog.export_button, Qt.MouseButton.LeftButton)
        seen = []  # the status and the bar's range after each of the job's events (connected after the dialog)
        dialog.monitor.event_received.connect(
            lambda _e: seen.append((dialog.status_texts()[0], dialog.progress_bar.maximum()))
        )
        dialog.reject()
        assert len(spy.questions) == 1 and "still being exported" in spy.questions[0] and not dialog.isVisible()
    assert finished.args[0] == {"model": (True, str(bundle))}
    assert ("Model bundle: exporting… (ONNX)", 4) in seen
    status = dialog.status_texts()[0]
    assert status.startswith("Model bundle: done (model.onnx ") and status.endswith("B, verified)")
    assert sorted(f.name for f in bundle.iterdir()) == ["model.onnx", "model.pt", "model_card.json", "predict.py"]
    assert dialog.progress_bar.value() == dialog.progress_bar.maximum()

    card = json.loads((bundle / "model_card.json").read_text(encoding="utf-8"))
    assert card["run_id"] == run.id and [c["name"] for c in card["classes"]] == ["left", "right"]
    session = ort.InferenceSession(str(bundle / "model.onnx"), providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == ["frames"]  # trained without motion
    spec = card["inputs"]["frames"]
    crop_h, crop_w = spec["crop"]["size"]
    sizes = {"batch": 2, "height": crop_h, "width": crop_w + 40}  # any batch, any frame size >= the crop
    shape = [sizes.get(dim, dim) for dim in spec["shape"]]
    assert shape == [2, card["clip"]["frames"], crop_h, crop_w + 40, 3]
    (probs,) = session.run(None, {"frames": np.zeros(shape, dtype=np.uint8)})
    assert probs.shape == (2, 2) and np.allclose(probs.sum(axis=1), 1.0, atol=1e-5)

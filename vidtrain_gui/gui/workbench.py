"""The window's model side: Train, the training panel, run history, predictions, review and export.

This module owns :class:`Workbench`, which builds those docks and the toolbar of a :class:`MainWindow` and connects
them; the window itself keeps the labeling side (player, timeline, classes, clips). The flow it wires:

- **Train** (toolbar button, Ctrl+T) starts the train -> predict pipeline with the user's options
  (gui/trainer.py; the options come from the Advanced dialog, gui/traindialog.py, and live in the settings file).
  The training panel (gui/trainpanel.py) follows it: live plots, stage, ETA, device, warnings, Stop early, Cancel,
  the job's log.
- When prediction has ended, its run is **shown** everywhere at once: the timeline's prediction track with its
  sliders (gui/predictionview.py), the clip table's predicted class and confidence, the review queue
  (gui/reviewpanel.py), the confusion matrix (gui/confusion.py) and the run history's marker (gui/runspanel.py).
  The run history chooses another run to show, or predicts with a run that has no predictions yet.
- **Export…** opens the export dialog (gui/exportdialog.py) for the shown runs.
- Opening a project reattaches to a pipeline still running (the window was closed during training) and otherwise
  shows the newest prediction run.

``predictions_shown(run_id)`` is emitted when a shown run's track has been drawn on the timeline (the moment the
loop benchmark measures to).
"""

from __future__ import annotations

from PySide6.QtCore import QObject, Qt, QThreadPool, QTimer, Signal
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QDockWidget, QToolBar

from vidtrain_gui.core import classes as CL
from vidtrain_gui.core import runs as R
from vidtrain_gui.core.errors import VidTrainError
from vidtrain_gui.gui.confusion import ConfusionView
from vidtrain_gui.gui.exportdialog import ExportDialog
from vidtrain_gui.gui.logdialog import LogDialog
from vidtrain_gui.gui.predictionview import PredictionTrack, SegmentControls, newest_prediction_run
from vidtrain_gui.gui.reviewpanel import ReviewPanel
from vidtrain_gui.gui.runspanel import RunsPanel
from vidtrain_gui.gui.tasks import run_in_background
from vidtrain_gui.gui.traindialog import AdvancedTrainDialog, TrainOptions
from vidtrain_gui.gui.trainer import TrainController
from vidtrain_gui.gui.trainpanel import TrainPanel
from vidtrain_gui.jobs.runner import read_events


class Workbench(QObject):
    """Training, predictions, review and export for ``window`` (a MainWindow with project, history, timeline,
    player, clips, settings, show_video, show_error and statusBar)."""

    predictions_shown = Signal(str)

    def __init__(self, window):
        super().__init__(window)
        self.window = window
        self.project = window.project
        self.options = TrainOptions.from_dict(window.settings.train_options)
        self.shown_run_id: str | None = None
        self.export_dialog: ExportDialog | None = None
        self.controller = TrainController(self.project, self)
        self.panel = TrainPanel(window)
        self.runs = RunsPanel(self.project, window)
        self.review = ReviewPanel(self.project, window.history, window)
        self.confusion = ConfusionView(self.project, window)
        self.controls = SegmentControls(window)
        self.track = PredictionTrack(self.project, window.timeline, self.controls, self)
        for view in (self.runs, self.review, self.confusion):  # one way to show a message: the window's
            view.show_error = lambda message: self.window.show_error(message)
        self._build()
        self._connect()

    # ---- building ----------------------------------------------------------------------------------------------

    def _build(self) -> None:
        w = self.window
        bottom, right = Qt.DockWidgetArea.BottomDockWidgetArea, Qt.DockWidgetArea.RightDockWidgetArea
        docks = self.docks = {
            name: w.add_dock(title, name, widget, area)
            for title, name, widget, area in (
                ("Training", "trainingDock", self.panel, bottom),
                ("Runs", "runsDock", self.runs, bottom),
                ("Review", "reviewDock", self.review, right),
                ("Predictions", "predictionsDock", self.controls, right),
                ("Confusion", "confusionDock", self.confusion, bottom),
            )
        }
        w.tabifyDockWidget(w.findChild(QDockWidget, "clipsDock"), docks["trainingDock"])
        w.tabifyDockWidget(docks["trainingDock"], docks["runsDock"])
        w.tabifyDockWidget(docks["runsDock"], docks["confusionDock"])
        w.tabifyDockWidget(w.findChild(QDockWidget, "classesDock"), docks["reviewDock"])
        w.tabifyDockWidget(docks["reviewDock"], docks["predictionsDock"])
        w.findChild(QDockWidget, "classesDock").raise_()
        w.findChild(QDockWidget, "clipsDock").raise_()

        bar = QToolBar("Model", w)
        bar.setObjectName("modelToolBar")
        bar.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextOnly)
        self.train_action = QAction("Train", w)
        self.train_action.setShortcut(QKeySequence("Ctrl+T"))
        self.train_action.setToolTip("Train a classifier on the tagged clips, then predict every video (Ctrl+T)")
        self.train_action.triggered.connect(self.start_training)
        self.advanced_action = QAction("Advanced…", w)
        self.advanced_action.setToolTip("Backbone, mode, head, frames per clip, epochs, learning rate, device…")
        self.advanced_action.triggered.connect(self.edit_options)
        self.export_action = QAction("Export…", w)
        self.export_action.setShortcut(QKeySequence("Ctrl+E"))
        self.export_action.triggered.connect(self.open_export)
        for action in (self.train_action, self.advanced_action, self.export_action):
            bar.addAction(action)
        self.train_action.setEnabled(not self.project.readonly)  # another window edits the project
        self.train_button = bar.widgetForAction(self.train_action)
        self.train_button.setObjectName("trainButton")
        w.addToolBar(Qt.ToolBarArea.TopToolBarArea, bar)
        menu = w.menuBar().addMenu("&Model")
        for action in (self.train_action, self.advanced_action, self.export_action):
            menu.addAction(action)
        for dock in docks.values():  # the View menu lists every dock
            w.view_menu.addAction(dock.toggleViewAction())

    def _connect(self) -> None:
        c = self.controller
        c.job_started.connect(self._on_job_started)
        c.event.connect(self.panel.feed)
        c.job_finished.connect(self._on_job_finished)
        c.pipeline_finished.connect(self._on_pipeline_finished)
        c.start_failed.connect(self._on_start_failed)
        c.busy_changed.connect(self._on_busy_changed)
        self.panel.stop_requested.connect(c.stop_early)
        self.panel.cancel_requested.connect(c.cancel)
        self.panel.log_requested.connect(self.show_log)
        self.runs.show_predictions.connect(self.show_predictions)
        self.runs.predict_requested.connect(self.predict_with)
        self.review.item_selected.connect(self._on_review_item)
        self.docks["reviewDock"].visibilityChanged.connect(self._on_review_shown)
        self.window.classes.classes_changed.connect(self._on_classes_changed)
        self.confusion.clip_activated.connect(self.window._on_clips_clip_activated)
        self.track.failed.connect(lambda m: self.window.statusBar().showMessage(m, 8000))
        self.track.drawn.connect(self._on_track_drawn)

    def after_open(self) -> None:
        """Reattach to a running pipeline, or show the newest predictions."""
        if self.project.closed:  # the window was closed before its first turn of the event loop
            return
        self.runs.refresh()
        self.review.set_hotkeys(self.window.classes.hotkey_map())
        self.panel.set_classes([(c.name, c.color) for c in CL.list_classes(self.project)])
        if self.controller.reattach():
            self.docks["trainingDock"].raise_()
            self.window.statusBar().showMessage("A training run is in progress: following it", 8000)
            return
        self._replay_latest_training()
        if (run_id := newest_prediction_run(self.project)) is not None:
            self.show_predictions(run_id)

    # ---- training ----------------------------------------------------------------------------------------------

    def start_training(self) -> None:
        self.panel.set_classes([(c.name, c.color) for c in CL.list_classes(self.project)])
        if self.controller.start(self.options.to_args()):
            self.docks["trainingDock"].raise_()
            self.window.statusBar().showMessage(f"Training started ({self.options.summary()})", 5000)

    def predict_with(self, train_run_id: str) -> None:
        if self.controller.predict(train_run_id):
            self.docks["trainingDock"].raise_()

    def edit_options(self) -> None:
        dialog = AdvancedTrainDialog(self.options, self.window)  # the app's one device probe (DeviceProbe.shared)
        if dialog.exec():
            self.options = dialog.options()
            self.window.settings.train_options = self.options.to_dict()

    def show_log(self, run_id: str) -> None:
        events = []
        if run_id:  # a prediction's log starts with its training's: the pipeline is one job to the user
            try:
                parent = R.get_run(self.project, run_id).parent_run_id
            except VidTrainError:
                parent = None
            for rid in (parent, run_id):
                events += read_events(self.project, rid)[0] if rid else []
        extra = ""
        log = self.controller.start_log
        if log is not None and log.is_file():
            extra = log.read_text(encoding="utf-8", errors="replace")[-20000:]
        LogDialog(events, extra, title=f"Job log · run {run_id}" if run_id else "Job log", parent=self.window).exec()

    def _on_job_started(self, run_id: str, kind: str) -> None:
        self.panel.begin(run_id, kind)  # the run list is read again when the pipeline ends, not now: at a job's
        # start the machine is busiest, and hundreds of runs take tens of milliseconds to read and lay out

    def _on_job_finished(self, kind: str, status: str, event: dict) -> None:
        if status == "failed":
            self.window.show_error(f"The {'training' if kind == 'train' else 'prediction'} job failed: "
                                   f"{event.get('message') or 'no message'}", title="Training")  # fmt: skip

    def _on_pipeline_finished(self, status: str, train_run_id: str, prediction_run_id: str) -> None:
        self.panel.finish(status, {})
        self.window.statusBar().showMessage(self._outcome(status, train_run_id), 10000)
        # Each view is refreshed in its own turn of the event loop: together they would stall the window.
        self.runs.refresh_in_background()
        if prediction_run_id and status in ("done", "stopped"):
            self._later(lambda: self.show_predictions(prediction_run_id))

    def _outcome(self, status: str, train_run_id: str) -> str:
        metrics = {}
        if train_run_id:
            try:
                metrics = R.get_run(self.project, train_run_id).metrics or {}
            except VidTrainError:
                pass  # deleted meanwhile: the status alone is said
        if status in ("done", "stopped") and "val_acc" in metrics:
            return (f"Training {'finished' if status == 'done' else 'stopped early'}: validation accuracy "
                    f"{metrics['val_acc']:.2f}, macro F1 {metrics.get('val_macro_f1', 0.0):.2f}")  # fmt: skip
        return f"Training {status}"

    def _on_start_failed(self, message: str) -> None:
        self.panel.set_running(False)
        self.window.show_error(message, title="Training")

    def _on_busy_changed(self, busy: bool) -> None:
        self.train_action.setEnabled(not busy and not self.project.readonly)
        self.panel.set_running(busy)

    # ---- predictions -------------------------------------------------------------------------------------------

    def show_predictions(self, run_id: str | None) -> None:
        """Show prediction run ``run_id`` everywhere (None: none)."""
        try:
            self.track.show_run(run_id)
        except VidTrainError as exc:
            self.window.show_error(str(exc))
            return
        self.shown_run_id = run_id
        self.review.set_run(run_id)  # these two read in the background
        self.confusion.set_run(run_id)
        self._later(lambda: self.window.clips.set_prediction_run(run_id))
        self.runs.mark_shown(run_id)

    def on_video_shown(self, video) -> None:
        self.track.show_video(video.id if video is not None else None, video.fps if video is not None else 0.0)

    def on_labels_changed(self) -> None:
        self.confusion.refresh()

    def _on_classes_changed(self) -> None:
        self.review.set_hotkeys(self.window.classes.hotkey_map())
        self.track.classes_changed()

    def _on_track_drawn(self, run_id: str) -> None:
        self.predictions_shown.emit(run_id)

    def _on_review_item(self, video_id: int, start: int, end: int) -> None:
        """Show the review queue's current item; loop it only when the user moved to it. While the Review tab is
        hidden the player stays the user's (the item is shown when the tab is)."""
        if self.review.visibleRegion().isEmpty():  # a dock in a tab that is not the current one still "isVisible"
            return
        loop = self.review.loop_enabled and not self.review.selecting_on_load
        self._show_review_item(video_id, start, end, loop=loop)

    def _on_review_shown(self, visible: bool) -> None:
        item = self.review.current_item() if visible else None
        if item is not None:
            p = item.prediction
            self._show_review_item(p.video_id, p.start_frame, p.end_frame, loop=False)

    def _show_review_item(self, video_id: int, start: int, end: int, *, loop: bool) -> None:
        w = self.window
        if w.video is None or w.video.id != video_id:
            w.show_video(video_id)
        if loop:
            w.player.play_range(start, end)
        else:
            w.player.seek(start)

    def _later(self, fn) -> None:
        """``fn()`` at the event loop's next turn, unless the project was closed by then (the window closed)."""
        QTimer.singleShot(0, self.window, lambda: None if self.project.closed else fn())

    def _replay_latest_training(self) -> None:
        """A reopened window, or a read-only second one, shows the latest training's curves and outcome (read off
        the GUI thread), not "No training yet"."""
        project = self.project

        def read():
            runs = [r for r in R.list_runs(project, kind="train") if r.finished]
            if not runs:
                return None
            run = max(runs, key=lambda r: r.created_at)
            return run, read_events(project, run.id)[0]

        def done(found) -> None:
            if found is None or self.project.closed or self.controller.busy or self.panel.run_id is not None:
                return
            run, events = found
            self.panel.begin(run.id, "train")
            self.panel.feed_many(events)
            self.panel.finish(run.status, events[-1] if events else {})

        run_in_background(self.window, read, done=done, failed=lambda _message: None)

    def review_has_focus(self) -> bool:
        focus = self.window.focusWidget()
        return focus is not None and (focus is self.review or self.review.isAncestorOf(focus))

    def close(self) -> None:
        """The window closes: save what the sliders changed and wait for background reads and writes."""
        self.controller.detach()
        self.track.flush()
        QThreadPool.globalInstance().waitForDone(5000)

    # ---- export ------------------------------------------------------------------------------------------------

    def open_export(self) -> None:
        train_run = None
        if self.shown_run_id is not None:
            try:
                train_run = R.get_run(self.project, self.shown_run_id).parent_run_id
            except VidTrainError:
                train_run = None
        # Window-modal but not blocking (open, not exec): the window's event loop, and a running job, go on.
        self.export_dialog = ExportDialog(self.project, self.window, train_run_id=train_run,
                                          prediction_run_id=self.shown_run_id)  # fmt: skip
        self.export_dialog.show_error = lambda message: self.window.show_error(message, title="Export")
        self.export_dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        self.export_dialog.open()


__all__ = ["Workbench"]

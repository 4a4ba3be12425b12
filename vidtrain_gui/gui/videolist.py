"""The project's videos as a list (``VideoListWidget``): thumbnail, name, duration, clips per class, file status and
source group, with a name filter, "Locate..." to relink a video whose file moved, and "Set source group…".

The model (``VideoListModel``) reads the project in three queries per ``refresh`` (videos, clip counts, classes) and
keeps plain values, so painting never touches the database. Thumbnails are the JPEGs the import wrote
(``footage.ingest.thumb_path``); they are read on a ``QThreadPool`` thread only when a row is first painted, scaled
there, and cached by fingerprint; a grey placeholder shows until then, or when there is none.

Relinking checks the chosen file's content fingerprint itself: ``core.videos.relink_video`` stores any path it is
given, and pointing a video at another recording would silently misplace every clip on it. The file dialog and the
error box are attributes (``locate_dialog``, ``show_error``) so tests and the window can replace them.

Names are elided in the middle (their ends, a number or a date, are what tell recordings apart), with the full path
in the tooltip, and the name column is as wide as the longest name while the clip counts keep some room; the
counts give way first. Each class in the counts is a colour swatch beside its name in the text colour: text in
the class's colour could not be read on the selection's highlight.

**Source groups.** A video's group (a camera, a session: ``core.videos`` ``group_name``) keeps all its videos' clips
on one side of every validation split, so near-duplicate footage cannot make the validation score look better than
it is. The Group column shows it; it is hidden while no video has one, so a project that does not use groups keeps
its room for names. "Set source group…" in the context menu sets it for the selected videos (several at once) with a
prompt offering the groups already used (``group_dialog``, replaceable like ``locate_dialog``). It is saved at once
and has no undo: a group is not a label edit (it never changes a clip), and setting it again changes it back.

With ``setAcceptDrops(True)`` the widget takes drops of files and folders itself and emits ``paths_dropped`` (for
``ImportController.start``). It is off by default so that drops fall through to a window that handles them.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PySide6.QtCore import (
    QAbstractTableModel,
    QEvent,
    QModelIndex,
    QObject,
    QPoint,
    QRect,
    QRectF,
    QSize,
    QSortFilterProxyModel,
    Qt,
    QThreadPool,
    Signal,
    Slot,
)
from PySide6.QtGui import QBrush, QColor, QDragEnterEvent, QDropEvent, QImage, QPalette, QPixmap
from PySide6.QtWidgets import (
    QAbstractItemView,
    QApplication,
    QDialog,
    QFileDialog,
    QHBoxLayout,
    QHeaderView,
    QInputDialog,
    QLabel,
    QLineEdit,
    QMenu,
    QMessageBox,
    QPushButton,
    QStyle,
    QStyledItemDelegate,
    QStyleOptionViewItem,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from vidtrain_gui.core import classes as CL
from vidtrain_gui.core import labels as L
from vidtrain_gui.core import videos as V
from vidtrain_gui.core.errors import VidTrainError
from vidtrain_gui.footage.ingest import CheckReport, check_videos, thumb_path
from vidtrain_gui.fsutil import UnsafePathError
from vidtrain_gui.gui.importer import paths_from_mime
from vidtrain_gui.media.fingerprint import fingerprint

NAME, DURATION, CLIPS, GROUP, STATUS = range(5)  # the status stays last, where the eye looks for trouble
HEADERS = ("Video", "Duration", "Clips", "Group", "Status")
SET_GROUP_TEXT = "Set source group…"
VIDEO_ID_ROLE = Qt.ItemDataRole.UserRole + 1
CLIP_SEGMENTS_ROLE = Qt.ItemDataRole.UserRole + 2  # [(text, colour)] for the clips column
THUMB_SIZE = QSize(64, 36)
DIM_COLOR = QColor("#8c8c8c")  # missing rows, and the clips cell of a video without clips
BADGE_COLOR = QColor("#f4c7c3")
NOTE_COLOR = QColor("#fbe7b2")  # a video imported with notes (lying header, variable frame rate): readable, not broken
UNTAGGED_COLOR = "#8c8c8c"
SWATCH_PX = 10  # a class's colour square in the clips column
MIN_NAME_PX = 120  # the name column never gets narrower than this (thumbnail and a few letters)
MIN_CLIPS_PX = 60  # nor squeezes the clip counts below this (three classes' swatches and counts)
CELL_PADDING_PX = 24  # around a name: the cell's margins and the gap after the thumbnail
MAX_GROUP_PX = 140  # the group column fits its longest name up to this; longer ones elide (tooltip in full)
VIDEO_FILTER = "Videos (*.mp4 *.m4v *.mov *.avi *.mkv *.webm *.mpg *.mpeg *.wmv *.flv *.mts *.m2ts *.ts);;All files (*)"


def format_duration(seconds: float) -> str:
    """``75.4`` -> ``"0:01:15"``; h:mm:ss, rounded to the second."""
    total = max(0, round(seconds or 0))
    h, rest = divmod(total, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}"


@dataclass(frozen=True)
class _Row:
    video: V.VideoInfo
    segments: tuple[tuple[str, str], ...]  # (text, colour) per class with clips, untagged last

    @property
    def counts_text(self) -> str:
        return " · ".join(text for text, _ in self.segments)


def _segments(counts: dict[int | None, int], classes: list) -> tuple[tuple[str, str], ...]:
    segments = [(f"{c.name} {counts[c.id]}", c.color) for c in classes if counts.get(c.id)]
    if counts.get(None):
        segments.append((f"untagged {counts[None]}", UNTAGGED_COLOR))
    return tuple(segments)


class _ThumbSignals(QObject):
    loaded = Signal(str, QImage)  # fingerprint, image (null when unreadable)


def _load_thumbnail(path: str, fp: str, size: QSize, signals: _ThumbSignals) -> None:
    # Worker thread: QImage (unlike QPixmap) may be made and scaled here.
    image = QImage(path)
    if not image.isNull():
        image = image.scaled(size, Qt.AspectRatioMode.KeepAspectRatio, Qt.TransformationMode.SmoothTransformation)
    try:
        signals.loaded.emit(fp, image)
    except RuntimeError:  # the list was closed meanwhile
        pass


class VideoListModel(QAbstractTableModel):
    """One row per video of ``project``, in the order they were added. Call ``refresh`` after changes."""

    def __init__(self, project, parent: QObject | None = None, pool: QThreadPool | None = None) -> None:
        super().__init__(parent)
        self._project = project
        self._rows: list[_Row] = []
        self._pool = pool or QThreadPool.globalInstance()
        self._thumbs: dict[str, QPixmap] = {}
        self._thumbs_pending: set[str] = set()
        self._thumbs_absent: set[str] = set()  # forgotten at refresh: an import may have written it since
        self._placeholder = QPixmap(THUMB_SIZE)
        self._placeholder.fill(QColor("#b4b4b4"))
        self._thumb_signals = _ThumbSignals(self)
        self._thumb_signals.loaded.connect(self._on_thumbnail_loaded)

    # --- reading the project -------------------------------------------------------------------------------

    def refresh(self) -> None:
        videos = V.list_videos(self._project)
        counts = L.clip_counts(self._project)
        classes = CL.list_classes(self._project)
        self.beginResetModel()
        self._rows = [_Row(v, _segments(counts.get(v.id, {}), classes)) for v in videos]
        self._thumbs_absent.clear()
        self.endResetModel()

    def video_at(self, row: int) -> V.VideoInfo | None:
        return self._rows[row].video if 0 <= row < len(self._rows) else None

    def row_of(self, video_id: int) -> int:
        return next((i for i, r in enumerate(self._rows) if r.video.id == video_id), -1)

    def videos(self) -> list[V.VideoInfo]:
        return [r.video for r in self._rows]

    def has_groups(self) -> bool:
        """Whether any video is in a source group (the Group column is shown only then)."""
        return any(r.video.group_name for r in self._rows)

    def thumbnail(self, video_id: int) -> QPixmap | None:
        """The loaded thumbnail of a video, or None while it is loading or when there is none."""
        row = self.row_of(video_id)
        return None if row < 0 else self._thumbs.get(self._rows[row].video.fingerprint)

    # --- Qt model ------------------------------------------------------------------------------------------

    def rowCount(self, parent: QModelIndex = QModelIndex()) -> int:  # noqa: B008 - Qt's signature
        return 0 if parent.isValid() else len(self._rows)

    def columnCount(self, parent: QModelIndex = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(HEADERS)

    def headerData(self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.DisplayRole:
            return HEADERS[section]
        return None

    def data(self, index: QModelIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid() or not 0 <= index.row() < len(self._rows):
            return None
        row = self._rows[index.row()]
        video, col = row.video, index.column()
        missing = video.status != "ok"
        if role == Qt.ItemDataRole.DisplayRole:
            if col == NAME:
                return video.name
            if col == DURATION:
                return format_duration(video.duration_s)
            if col == CLIPS:
                return row.counts_text
            if col == GROUP:
                return video.group_name or ""
            return "ok, notes" if video.status == "ok" and video.notes else video.status
        if role == VIDEO_ID_ROLE:
            return video.id
        if role == CLIP_SEGMENTS_ROLE and col == CLIPS:
            return row.segments
        if role == Qt.ItemDataRole.DecorationRole and col == NAME:
            return self._thumbnail_or_placeholder(video.fingerprint)
        if role == Qt.ItemDataRole.ForegroundRole and (missing or (col == CLIPS and not row.segments)):
            return QBrush(DIM_COLOR)
        if role == Qt.ItemDataRole.BackgroundRole and col == STATUS and (missing or video.notes):
            return QBrush(BADGE_COLOR if missing else NOTE_COLOR)
        if role == Qt.ItemDataRole.TextAlignmentRole and col in (DURATION, STATUS):
            return int(Qt.AlignmentFlag.AlignCenter)
        if role == Qt.ItemDataRole.ToolTipRole:
            if col == GROUP:
                return (
                    f"Source group {video.group_name!r}: its clips stay on one side of every validation split"
                    if video.group_name
                    else "No source group: the video is a group of its own"
                ) + f"\n{SET_GROUP_TEXT} in the context menu changes it."
            if missing:
                tip = f"{video.status}: {video.path}\nUse Locate... to point at the file's new place."
            else:
                tip = f"{video.path}\n{video.width}x{video.height}, {video.fps:g} fps, {video.frame_count} frames"
                if video.group_name:
                    tip += f"\nSource group: {video.group_name}"
                if video.notes:  # what the import noticed: the file plays, but not as its header says
                    tip += "\nNoted at import:\n" + "\n".join(f"• {note}" for note in video.note_list)
            return f"Clips: {row.counts_text}\n{tip}" if col == CLIPS and row.segments else tip
        return None

    # --- thumbnails ----------------------------------------------------------------------------------------

    def _thumbnail_or_placeholder(self, fp: str) -> QPixmap:
        pixmap = self._thumbs.get(fp)
        if pixmap is not None:
            return pixmap
        if fp not in self._thumbs_pending and fp not in self._thumbs_absent:
            try:
                path = thumb_path(self._project, fp)
            except UnsafePathError:  # a malformed fingerprint in the project file never names a file
                self._thumbs_absent.add(fp)
                return self._placeholder
            if path.is_file():
                self._thumbs_pending.add(fp)
                signals, size = self._thumb_signals, QSize(THUMB_SIZE)
                self._pool.start(lambda: _load_thumbnail(str(path), fp, size, signals))
            else:
                self._thumbs_absent.add(fp)
        return self._placeholder

    @Slot(str, QImage)
    def _on_thumbnail_loaded(self, fp: str, image: QImage) -> None:
        self._thumbs_pending.discard(fp)
        if image.isNull():
            self._thumbs_absent.add(fp)
            return
        self._thumbs[fp] = QPixmap.fromImage(image)
        for i, row in enumerate(self._rows):
            if row.video.fingerprint == fp:
                index = self.index(i, NAME)
                self.dataChanged.emit(index, index, [Qt.ItemDataRole.DecorationRole])


class _ClipCountsDelegate(QStyledItemDelegate):
    """Paints "■ walk 3  ■ run 1": a swatch of each class's colour, then its name and count in the cell's own text
    colour (the highlighted-text colour on a selected row), so the text reads on any row. In a narrow column only
    the counts follow the swatches ("■ 3  ■ 1"); what still does not fit ends in "…" (the tooltip has it all)."""

    def paint(self, painter, option: QStyleOptionViewItem, index: QModelIndex) -> None:  # type: ignore[override]
        segments = index.data(CLIP_SEGMENTS_ROLE)
        if not segments:
            super().paint(painter, option, index)
            return
        opt = QStyleOptionViewItem(option)
        self.initStyleOption(opt, index)
        opt.text = ""
        style = opt.widget.style() if opt.widget is not None else QApplication.style()
        style.drawControl(QStyle.ControlElement.CE_ItemViewItem, opt, painter, opt.widget)
        dim = index.data(Qt.ItemDataRole.ForegroundRole) is not None  # a missing video: no colours
        text_color = self.text_color(opt, dim)
        rect = opt.rect.adjusted(4, 0, -4, 0)
        metrics = opt.fontMetrics
        gap, ellipsis = metrics.horizontalAdvance("  "), metrics.horizontalAdvance("…")
        side = min(SWATCH_PX, rect.height() - 4)
        align = int(Qt.AlignmentFlag.AlignVCenter | Qt.AlignmentFlag.AlignLeft)
        full = sum(side + 4 + metrics.horizontalAdvance(text) for text, _ in segments) + gap * (len(segments) - 1)
        if full > rect.width():
            segments = [(text.rsplit(" ", 1)[-1], color) for text, color in segments]  # the count after the name
        x = rect.left()
        painter.save()
        painter.setFont(opt.font)
        for i, (text, color) in enumerate(segments):
            room = rect.right() - (0 if i == len(segments) - 1 else ellipsis + gap)  # keep room for a "…" after
            if x + side + 4 + metrics.horizontalAdvance(text) > room:
                if x + ellipsis <= rect.right():
                    painter.setPen(text_color)
                    painter.drawText(QRect(x, rect.top(), rect.right() - x, rect.height()), align, "…")
                break
            painter.setPen(QColor(0, 0, 0, 110))  # an edge: a pale class still shows on white and on the highlight
            painter.setBrush(DIM_COLOR if dim else QColor(color))
            painter.drawRect(QRectF(x, rect.center().y() - side / 2 + 0.5, side, side))
            x += side + 4
            painter.setPen(text_color)
            painter.drawText(QRect(x, rect.top(), rect.right() - x, rect.height()), align, text)
            x += metrics.horizontalAdvance(text) + gap
        painter.restore()

    @staticmethod
    def text_color(opt: QStyleOptionViewItem, dim: bool = False) -> QColor:
        """The counts' text colour: the palette's highlighted text on a selected row; elsewhere its text colour, or
        grey for a missing video."""
        active = bool(opt.state & QStyle.StateFlag.State_Active)
        group = QPalette.ColorGroup.Active if active else QPalette.ColorGroup.Inactive
        if opt.state & QStyle.StateFlag.State_Selected:
            return opt.palette.color(group, QPalette.ColorRole.HighlightedText)
        return QColor(DIM_COLOR) if dim else opt.palette.color(group, QPalette.ColorRole.Text)


class VideoListWidget(QWidget):
    """The project's videos. Signals: ``video_activated(video_id)`` when the user makes another video current
    (click or keyboard; not when ``select_video`` does), ``relinked(video_id)`` after Locate...,
    ``groups_changed(video_ids)`` after "Set source group…" saved, and ``paths_dropped(paths)`` when files or
    folders are dropped on it (after ``setAcceptDrops(True)``). Several rows can be selected (Shift, Ctrl) for
    "Set source group…"; the current row is the video shown."""

    video_activated = Signal(int)
    relinked = Signal(int)
    groups_changed = Signal(list)
    paths_dropped = Signal(list)

    def __init__(self, project, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._project = project
        self._quiet = False  # set while the selection changes by program, not by the user
        # Replaceable for tests and for the window: locate_dialog(video) -> path or None; show_error(title, text).
        self.locate_dialog: Callable[[V.VideoInfo], str | None] = self._ask_for_file
        # group_dialog(videos, groups already used) -> the group typed ("" for none), or None if cancelled.
        self.group_dialog: Callable[[list[V.VideoInfo], list[str]], str | None] = self._ask_for_group
        self.show_error: Callable[[str, str], None] = lambda title, text: QMessageBox.warning(self, title, text)

        self.model = VideoListModel(project, self)
        self.proxy = QSortFilterProxyModel(self)
        self.proxy.setSourceModel(self.model)
        self.proxy.setFilterKeyColumn(NAME)
        self.proxy.setFilterCaseSensitivity(Qt.CaseSensitivity.CaseInsensitive)

        self.filter_edit = QLineEdit(self)
        self.filter_edit.setPlaceholderText("Filter by name")
        self.filter_edit.setClearButtonEnabled(True)
        self.filter_edit.textChanged.connect(self._on_filter_edit_text_changed)
        self.locate_button = QPushButton("Locate...", self)
        self.locate_button.setToolTip("Point a missing video at its file's new place")
        self.locate_button.setEnabled(False)
        self.locate_button.clicked.connect(self._on_locate_button_clicked)
        self.summary_label = QLabel(self)

        self.view = QTableView(self)
        self.view.setModel(self.proxy)
        self.view.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.view.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.view.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.view.setIconSize(THUMB_SIZE)
        self.view.setWordWrap(False)
        self.view.setTextElideMode(Qt.TextElideMode.ElideMiddle)
        self.view.setShowGrid(False)
        self.view.verticalHeader().hide()
        self.view.verticalHeader().setDefaultSectionSize(THUMB_SIZE.height() + 6)
        header = self.view.horizontalHeader()
        header.setStretchLastSection(False)
        header.setSectionResizeMode(NAME, QHeaderView.ResizeMode.Fixed)  # sized by _fit_name_column
        header.setSectionResizeMode(CLIPS, QHeaderView.ResizeMode.Stretch)
        header.setSectionResizeMode(GROUP, QHeaderView.ResizeMode.Fixed)  # sized by _fit_name_column
        for col in (DURATION, STATUS):
            header.setSectionResizeMode(col, QHeaderView.ResizeMode.ResizeToContents)
        self.view.viewport().installEventFilter(self)  # a resize refits the name column
        self.view.setItemDelegateForColumn(CLIPS, _ClipCountsDelegate(self.view))
        self.view.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.view.customContextMenuRequested.connect(self._on_view_custom_context_menu_requested)
        self.view.selectionModel().currentRowChanged.connect(self._on_selection_current_row_changed)

        top = QHBoxLayout()
        top.addWidget(self.filter_edit, 1)
        top.addWidget(self.locate_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(top)
        layout.addWidget(self.view, 1)
        layout.addWidget(self.summary_label)
        self.refresh()

    # --- public API ----------------------------------------------------------------------------------------

    def refresh(self) -> None:
        """Reload from the project, keeping the current video (without emitting ``video_activated``)."""
        current = self.current_video_id()
        self._quiet = True
        try:
            self.model.refresh()
            if current is not None:
                self._select_source_row(self.model.row_of(current))
        finally:
            self._quiet = False
        videos = self.model.videos()
        missing = sum(v.status != "ok" for v in videos)
        text = f"{len(videos)} video{'s' * (len(videos) != 1)}"
        self.summary_label.setText(text + (f", {missing} not found or unreadable" if missing else ""))
        self.view.setColumnHidden(GROUP, not self.model.has_groups())
        self._update_locate_button()
        self._fit_name_column()

    def current_video_id(self) -> int | None:
        index = self.view.currentIndex()
        return None if not index.isValid() else index.data(VIDEO_ID_ROLE)

    def select_video(self, video_id: int) -> bool:
        """Make ``video_id`` current (clearing the filter if it hides it); False if there is no such video."""
        row = self.model.row_of(video_id)
        if row < 0:
            return False
        if not self.proxy.mapFromSource(self.model.index(row, NAME)).isValid():
            self.filter_edit.clear()
        self._quiet = True
        try:
            self._select_source_row(row)
        finally:
            self._quiet = False
        self._update_locate_button()
        return True

    def locate(self, video_id: int) -> bool:
        """Ask for a video's file (``locate_dialog``) and relink it if it is the same content; True if relinked.
        A different file is refused with a message (``show_error``) and nothing changes."""
        try:
            video = V.get_video(self._project, video_id)
        except VidTrainError as exc:
            self.show_error("Cannot locate the video", str(exc))
            return False
        path = self.locate_dialog(video)
        if not path:
            return False
        try:
            found = fingerprint(path)
        except OSError as exc:
            self.show_error("Cannot read the file", f"{path}: {exc.strerror or exc}. Choose a file you can read.")
            return False
        if found != video.fingerprint:
            self.show_error(
                "Not the same video",
                f"{Path(path).name} is not the video imported as {video.name}: its content differs, so its clips "
                f"would not match. Choose the file that was at {video.path} (it may have been renamed).",
            )
            return False
        try:
            V.relink_video(self._project, video_id, path)
        except VidTrainError as exc:
            self.show_error("Cannot relink the video", str(exc))
            return False
        self.refresh()
        self.relinked.emit(video_id)
        return True

    def selected_video_ids(self) -> list[int]:
        """The selected videos' ids, in the order the list shows them."""
        rows = sorted(self.view.selectionModel().selectedRows(NAME), key=lambda index: index.row())
        return [int(index.data(VIDEO_ID_ROLE)) for index in rows]

    def set_source_group(self, video_ids: list[int]) -> bool:
        """Ask for a source group (``group_dialog``, offering the groups already used) and put ``video_ids`` in it,
        or out of theirs when the answer is empty; True if saved. Saved at once, with no undo: a source group is
        not a label edit. An error (a control character, a video removed meanwhile) goes to ``show_error`` and
        changes nothing."""
        wanted = set(video_ids)
        videos = [v for v in self.model.videos() if v.id in wanted]
        if not videos:
            return False
        try:
            groups = V.list_groups(self._project)
        except VidTrainError as exc:
            self.show_error("Cannot set the source group", str(exc))
            return False
        answer = self.group_dialog(videos, groups)
        if answer is None:
            return False
        try:
            V.set_video_groups(self._project, [v.id for v in videos], answer)
        except VidTrainError as exc:
            self.show_error("Cannot set the source group", str(exc))
            return False
        self.refresh()
        self.groups_changed.emit([v.id for v in videos])
        return True

    def group_prompt(self, videos: list[V.VideoInfo], groups: list[str]) -> QInputDialog:
        """The (not yet shown) prompt of ``set_source_group``: an editable list of ``groups``, filled with the
        videos' group when they share one, empty meaning none."""
        dialog = QInputDialog(self)
        dialog.setWindowTitle("Set source group")
        what = videos[0].name if len(videos) == 1 else f"{len(videos)} videos"
        dialog.setLabelText(
            f"Source group of {what} (a camera or a session):\n"
            "clips of one group are never split between training and validation.\nLeave empty for none."
        )
        dialog.setComboBoxItems(groups)
        dialog.setComboBoxEditable(True)
        shared = {v.group_name for v in videos}
        dialog.setTextValue((shared.pop() or "") if len(shared) == 1 else "")
        return dialog

    def check_files(self) -> CheckReport:
        """Mark videos whose file is gone as missing (and found ones as ok again), then refresh."""
        report = check_videos(self._project)
        self.refresh()
        return report

    def context_menu(self, video_id: int) -> QMenu:
        """The menu for a row (built separately from showing it, so it can be tested)."""
        video = next((v for v in self.model.videos() if v.id == video_id), None)
        menu = QMenu(self)
        locate = menu.addAction("Locate...")
        locate.setEnabled(video is not None and video.status != "ok")
        locate.triggered.connect(lambda: self.locate(video_id))
        selected = self.selected_video_ids()
        targets = selected if video_id in selected else [video_id]
        set_group = menu.addAction(SET_GROUP_TEXT)
        set_group.setEnabled(video is not None and not self._project.readonly)
        set_group.setToolTip(f"Put {'this video' if len(targets) == 1 else f'the {len(targets)} selected videos'} "
                             "in a source group (a camera, a session), kept on one side of validation")  # fmt: skip
        set_group.triggered.connect(lambda: self.set_source_group(targets))
        menu.addAction("Check all files", self.check_files)
        return menu

    # --- slots ---------------------------------------------------------------------------------------------

    @Slot(str)
    def _on_filter_edit_text_changed(self, text: str) -> None:
        self.proxy.setFilterFixedString(text.strip())

    @Slot()
    def _on_locate_button_clicked(self) -> None:
        video_id = self.current_video_id()
        if video_id is not None:
            self.locate(video_id)

    @Slot(QModelIndex, QModelIndex)
    def _on_selection_current_row_changed(self, current: QModelIndex, _previous: QModelIndex) -> None:
        self._update_locate_button()
        if not self._quiet and current.isValid():
            self.video_activated.emit(int(current.data(VIDEO_ID_ROLE)))

    @Slot(QPoint)
    def _on_view_custom_context_menu_requested(self, pos: QPoint) -> None:
        index = self.view.indexAt(pos)
        if index.isValid():
            self.context_menu(int(index.data(VIDEO_ID_ROLE))).exec(self.view.viewport().mapToGlobal(pos))

    # --- drag and drop -------------------------------------------------------------------------------------

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        if paths_from_mime(event.mimeData()):
            event.acceptProposedAction()

    def dragMoveEvent(self, event) -> None:  # type: ignore[no-untyped-def]
        if paths_from_mime(event.mimeData()):
            event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:
        paths = paths_from_mime(event.mimeData())
        if paths:
            event.acceptProposedAction()
            self.paths_dropped.emit(paths)

    # --- helpers -------------------------------------------------------------------------------------------

    def eventFilter(self, watched, event) -> bool:  # type: ignore[no-untyped-def]
        if watched is self.view.viewport() and event.type() == QEvent.Type.Resize:
            self._fit_name_column()
        return False

    def name_column_needs(self) -> int:
        """The width (px) that shows every video's name in full beside its thumbnail."""
        metrics = self.view.fontMetrics()
        longest = max((metrics.horizontalAdvance(v.name) for v in self.model.videos()), default=0)
        header = self.view.horizontalHeader().sectionSizeFromContents(NAME).width()
        return max(THUMB_SIZE.width() + longest + CELL_PADDING_PX, header)

    def _fit_name_column(self) -> None:
        """As wide as the longest name needs, short of squeezing the clip counts below ``MIN_CLIPS_PX``; the
        names elide in the middle when even that is too little."""
        header = self.view.horizontalHeader()
        if not self.view.isColumnHidden(GROUP):
            metrics = self.view.fontMetrics()
            longest = max((metrics.horizontalAdvance(v.group_name or "") for v in self.model.videos()), default=0)
            title = header.sectionSizeFromContents(GROUP).width()
            self.view.setColumnWidth(GROUP, max(title, min(longest + CELL_PADDING_PX, MAX_GROUP_PX)))
        others = sum(header.sectionSize(col) for col in (DURATION, STATUS, GROUP) if not self.view.isColumnHidden(col))
        room = self.view.viewport().width() - others - MIN_CLIPS_PX
        self.view.setColumnWidth(NAME, max(MIN_NAME_PX, min(self.name_column_needs(), room)))

    def _select_source_row(self, row: int) -> None:
        index = self.proxy.mapFromSource(self.model.index(row, NAME)) if row >= 0 else QModelIndex()
        if not index.isValid():
            return
        self.view.setCurrentIndex(index)
        self.view.scrollTo(index)

    def _update_locate_button(self) -> None:
        video_id = self.current_video_id()
        row = self.model.row_of(video_id) if video_id is not None else -1
        video = self.model.video_at(row)
        self.locate_button.setEnabled(video is not None and video.status != "ok")

    def _ask_for_group(self, videos: list[V.VideoInfo], groups: list[str]) -> str | None:
        dialog = self.group_prompt(videos, groups)
        try:
            return dialog.textValue() if dialog.exec() == QDialog.DialogCode.Accepted else None
        finally:
            dialog.deleteLater()

    def _ask_for_file(self, video: V.VideoInfo) -> str | None:
        old_dir = os.path.dirname(video.path)
        start = old_dir if os.path.isdir(old_dir) else str(Path.home())
        path, _ = QFileDialog.getOpenFileName(self, f"Locate {video.name}", start, VIDEO_FILTER)
        return path or None


__all__ = ["SET_GROUP_TEXT", "VideoListModel", "VideoListWidget", "format_duration"]

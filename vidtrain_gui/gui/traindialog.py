"""The Advanced training dialog (``AdvancedTrainDialog``), the typed training options it edits (``TrainOptions``)
and the probe that asks this machine which devices and backbones it offers (``DeviceProbe``).

This module owns what the window's Train button hands to ``vidtrain train``. ``TrainOptions`` mirrors the train
command's options (``cli.parser``): ``to_args()`` gives only the flags that differ from the command's own
defaults, so the command stays the single place that knows them; the tuned values (epochs, learning rate, batch
size, patience) stay None for "the mode's own default" and the mode defaults (``MODE_DEFAULTS``) only label that
choice. Every default, choice and range is core/options.py's, which the CLI's parser and the ml functions use too.
Options a mode ignores (fps, motion and deltas in fine-tune mode, unfreeze in fast mode) are kept, not passed and
not checked, so switching mode back and forth loses nothing. ``from_dict`` reads the user's settings file field by
field: a value it cannot use falls back to that field's default instead of losing the rest.

``DeviceProbe`` runs ``vidtrain --json devices`` (it imports torch: seconds) as an asynchronous ``QProcess``, never
on the GUI thread. Its answer is kept at class level for the app's lifetime (every ``ready`` fills it), and the
dialog's default probe is one shared instance owned by the application, so a dialog closed before the answer does
not kill the process and the next dialog opens with the answer at once. A failure is not kept: the next dialog
asks again.

The dialog reads its widgets into a ``TrainOptions`` on every change and shows ``problems()`` (plus what only the
probe's answer can tell: a device or backbone this machine does not have) in red, with OK disabled; ``accept()``
refuses too, so a caller that does not go through the button gets the same rule.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, fields
from typing import Any, ClassVar

from PySide6.QtCore import QCoreApplication, QObject, QProcess, Qt, Signal
from PySide6.QtGui import QStandardItemModel
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QDoubleSpinBox,
    QFormLayout,
    QLabel,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from vidtrain_gui.buildinfo import gpu_memory_text
from vidtrain_gui.core import options as OPT
from vidtrain_gui.launch import cli_command

MAX_UNFREEZE_CHOICE = 12  # the unfreeze list offers 0..12 and "all"; a backbone with fewer blocks caps it
CPU_FINETUNE_HINT = "Fine-tuning on a CPU takes a long time; fast mode is made for this machine."
MISSING_WEIGHTS_TIP = "weights not downloaded — see docs"
EXACT_FIT_TIP = (
    "In fast mode the linear and stats heads are solved exactly, on every tagged clip: epochs, learning rate, "
    "batch size and patience apply to the other heads and to fine-tune mode."
)
PROBLEM_STYLE = "color: #c62828;"
_FAST_FIELDS = ("fps", "motion", "deltas")  # what only one mode uses: checked and passed in that mode only
_FINETUNE_FIELDS = ("unfreeze",)
_COMMON_FIELDS = ("mode", "backbone", "head", "frames", "epochs", "lr", "batch_size", "patience", "device")


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


@dataclass
class TrainOptions:
    """The options of one ``vidtrain train`` run; None for a tuned value means the mode's own default. The defaults
    are the command's (core/options.py), so that ``to_args()`` of untouched options is no flag at all."""

    mode: str = OPT.DEFAULT_MODE
    backbone: str = OPT.DEFAULT_BACKBONE
    head: str = OPT.DEFAULT_HEAD
    frames: int = OPT.DEFAULT_FRAMES
    epochs: int | None = None
    lr: float | None = None
    batch_size: int | None = None
    patience: int | None = None
    device: str = OPT.DEFAULT_DEVICE
    fps: float = OPT.DEFAULT_FPS  # fast mode only
    motion: bool = OPT.DEFAULT_MOTION  # fast mode only
    deltas: bool = OPT.DEFAULT_DELTAS  # fast mode only
    unfreeze: int | str | None = None  # fine-tune mode only: blocks to train, "all", or None for the default

    def mode_default(self, name: str) -> float:
        """The mode's own value of a tuned option (``epochs``, ``lr``, ``batch_size``, ``patience``)."""
        return OPT.MODE_DEFAULTS.get(self.mode, OPT.MODE_DEFAULTS[OPT.DEFAULT_MODE])[name]

    def problems(self) -> list[str]:
        """What keeps these options from a run, one sentence each; empty when they are fine."""
        names = _COMMON_FIELDS + {"fast": _FAST_FIELDS, "finetune": _FINETUNE_FIELDS}.get(self.mode, ())
        checks = [_field_problem(name, getattr(self, name)) for name in names]
        return [problem for problem in checks if problem]

    def to_args(self) -> list[str]:
        """The ``vidtrain train`` flags for these options, only those that differ from the command's defaults (no
        ``train``, project or ``--predict``: the caller adds them)."""
        defaults = TrainOptions()
        args: list[str] = []
        for name, flag in (("mode", "--mode"), ("backbone", "--backbone"), ("head", "--head"), ("frames", "--frames")):
            if getattr(self, name) != getattr(defaults, name):
                args += [flag, str(getattr(self, name))]
        for name in ("epochs", "lr", "batch_size", "patience"):
            value = getattr(self, name)
            if value is not None:
                args += [f"--{name.replace('_', '-')}", repr(float(value)) if name == "lr" else str(value)]
        if self.device != defaults.device:
            args += ["--device", self.device]
        if self.mode == "fast":
            if self.fps != defaults.fps:
                args += ["--fps", repr(float(self.fps))]
            args += [] if self.motion else ["--no-motion"]
            args += [] if self.deltas else ["--no-deltas"]
        elif self.unfreeze is not None:
            args += ["--unfreeze", str(self.unfreeze)]
        return args

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Any) -> TrainOptions:
        """Options from ``to_dict()``'s output as stored in the settings file: unknown keys are ignored, a value of
        the wrong type or out of range falls back to its field's default."""
        options = cls()
        if not isinstance(data, dict):
            return options
        for f in fields(cls):
            if f.name not in data:
                continue
            value = _coerce(f.name, data[f.name])
            if value is not _BAD and _field_problem(f.name, value) is None:
                setattr(options, f.name, value)
        return options

    def summary(self) -> str:
        """One line for the window next to the Train button: "fast · efficientnet_lite0 · gru · 8 frames · auto
        device", then each tuned value that is set (not left to the mode)."""
        parts = [self.mode, self.backbone, self.head, f"{self.frames} frames", f"{self.device} device"]
        for name, unit in (("epochs", "epochs"), ("lr", "lr"), ("batch_size", "batch"), ("patience", "patience")):
            value = getattr(self, name)
            if value is not None:
                parts.append(f"{unit} {value:g}" if name == "lr" else f"{value} {unit}")
        return " · ".join(parts)


def _optional(check: Callable[[Any], bool]) -> Callable[[Any], bool]:
    return lambda v: v is None or check(v)


def _ranged(name: str) -> tuple[Callable[[Any], bool], str]:
    """A tuned option's rule: None (the mode's default) or a value in core/options.py's range."""
    rule = OPT.RANGES[name]
    return _optional(rule.accepts), rule.message


# Each field's rule: whether a value is usable, and the sentence shown when it is not ({v!r}: the value).
_RULES: dict[str, tuple[Callable[[Any], bool], str]] = {
    "mode": (lambda v: v in OPT.MODES, "Unknown mode {v!r}: choose " + " or ".join(OPT.MODES) + "."),
    "backbone": (lambda v: isinstance(v, str) and bool(v.strip()), "Choose a backbone."),
    "head": (lambda v: v in OPT.HEADS, "Unknown head {v!r}: choose one of " + ", ".join(OPT.HEADS) + "."),
    **{name: _ranged(name) for name in ("frames", "epochs", "lr", "batch_size", "patience")},
    "device": (
        lambda v: isinstance(v, str) and OPT.DEVICE_PATTERN.fullmatch(v) is not None,
        "Unknown device {v!r}: use auto, cpu, cuda, cuda:N or mps.",
    ),
    "fps": (lambda v: OPT.RANGES["fps"].accepts(v), OPT.RANGES["fps"].message),
    "motion": (lambda v: isinstance(v, bool), "Motion must be on or off."),
    "deltas": (lambda v: isinstance(v, bool), "Deltas must be on or off."),
    "unfreeze": (
        _optional(lambda v: v == "all" or OPT.RANGES["unfreeze"].accepts(v)),
        OPT.RANGES["unfreeze"].message + " Got {v!r}.",
    ),
}


def _field_problem(name: str, value: Any) -> str | None:
    """None when ``value`` is usable for field ``name``, else the sentence that says why not."""
    usable, message = _RULES[name]
    return None if usable(value) else message.format(v=value)


_BAD = object()  # _coerce's "cannot use this value"


def _coerce(name: str, value: Any) -> Any:
    """A stored value as its field's type (an int stored as 8.0 is 8, an fps stored as 8 is 8.0), or ``_BAD``."""
    if name in ("fps", "lr") and _is_number(value):
        return float(value)
    if name in ("frames", "epochs", "batch_size", "patience", "unfreeze") and _is_number(value):
        return int(value) if float(value).is_integer() else _BAD
    return value


# --- the device probe ----------------------------------------------------------------------------------------------


class DeviceProbe(QObject):
    """Asks ``vidtrain --json devices`` in a separate process; ``ready(dict)`` with its answer, or ``failed(str)``.
    Every answer is kept for the app's lifetime (``cached()``)."""

    ready = Signal(dict)
    failed = Signal(str)

    ARGUMENTS: ClassVar[list[str]] = ["--json", "devices"]  # of `vidtrain` (launch.cli_command)
    _result: ClassVar[dict | None] = None
    _shared: ClassVar[DeviceProbe | None] = None

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._process: QProcess | None = None
        self.ready.connect(self._remember)

    @classmethod
    def shared(cls) -> DeviceProbe:
        """The application's probe: owned by the application, so it outlives the dialog that started it."""
        if cls._shared is None:
            cls._shared = DeviceProbe(QCoreApplication.instance())
            cls._shared.destroyed.connect(lambda: setattr(DeviceProbe, "_shared", None))
        return cls._shared

    def cached(self) -> dict | None:
        """The last answer of any probe in this app, or None before the first."""
        return DeviceProbe._result

    def is_running(self) -> bool:
        return self._process is not None

    def start(self) -> None:
        """Start the probe (nothing if it is already running); the answer comes as ``ready`` or ``failed``."""
        if self._process is not None:
            return
        process = self._process = QProcess(self)
        process.finished.connect(self._on_finished)
        process.errorOccurred.connect(self._on_error)
        process.start(*self.command())

    def command(self) -> tuple[str, list[str]]:
        """The program and arguments of the probe's process."""
        return cli_command(self.ARGUMENTS)

    def _remember(self, result: dict) -> None:
        DeviceProbe._result = result

    def _on_error(self, error: QProcess.ProcessError) -> None:
        if error == QProcess.ProcessError.FailedToStart and self._process is not None:  # no finished() follows
            message = self._process.errorString()
            self._done()
            self.failed.emit(f"Could not start the device check: {message}")

    def _on_finished(self, exit_code: int, exit_status: QProcess.ExitStatus) -> None:
        if self._process is None:
            return
        out = bytes(self._process.readAllStandardOutput().data()).decode("utf-8", "replace")
        err = bytes(self._process.readAllStandardError().data()).decode("utf-8", "replace")
        self._done()
        if exit_status != QProcess.ExitStatus.NormalExit:
            self.failed.emit("The device check crashed.")
            return
        if exit_code != 0:
            last = next((line.strip() for line in reversed(err.splitlines()) if line.strip()), "no message")
            self.failed.emit(f"The device check failed (exit code {exit_code}): {last}")
            return
        try:
            result = json.loads(out)
        except ValueError:
            result = None
        if not isinstance(result, dict) or not isinstance(result.get("devices"), list):
            self.failed.emit(f"The device check gave an answer that is not understood: {out.strip()[:200]!r}")
            return
        self.ready.emit(result)

    def _done(self) -> None:
        process, self._process = self._process, None
        if process is not None:
            process.deleteLater()


# --- the dialog ----------------------------------------------------------------------------------------------------


def _names(result: dict | None) -> dict[str, str]:
    """Device id -> name from a probe answer (``auto`` named after what it picks)."""
    if result is None:
        return {}
    names = {d["id"]: str(d.get("name", d["id"])) for d in result.get("devices", []) if isinstance(d, dict)
             and isinstance(d.get("id"), str)}  # fmt: skip
    if isinstance(result.get("default"), str):
        names["auto"] = result["default"]
    return names


def _device_name(result: dict | None, device: str) -> str | None:
    """The probe's name for ``device`` ("cuda" is the first CUDA device), or None if the machine lacks it."""
    names = _names(result)
    if device == "cuda":
        return next((name for device_id, name in names.items() if device_id.startswith("cuda:")), None)
    return names.get(device)


def _device_memory(result: dict | None, device: str) -> str:
    """The memory of a CUDA device in the probe's answer ("cuda": the first), as " — 79.6 GB, 78.1 GB free"; else ""."""
    entries = [d for d in (result or {}).get("devices", []) if isinstance(d, dict)]
    wanted = (lambda i: i.startswith("cuda:")) if device == "cuda" else (lambda i: i == device)  # noqa: E731
    entry = next((d for d in entries if wanted(str(d.get("id")))), {})
    text = gpu_memory_text(entry)
    return f" — {text}" if text else ""


class AdvancedTrainDialog(QDialog):
    """Edits a ``TrainOptions``: ``exec()`` it, then read ``options()``."""

    def __init__(self, options: TrainOptions, parent: QWidget | None = None, probe: DeviceProbe | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Advanced training options")
        self.probe = probe if probe is not None else DeviceProbe.shared()
        self._probe_result: dict | None = None
        self._probe_error: str | None = None

        self.mode = QComboBox()
        self.mode.addItem("Fast: a head on cached backbone features", "fast")
        self.mode.addItem("Fine-tune: the backbone's last blocks with the head", "finetune")
        self.backbone = QComboBox()
        self.head = QComboBox()
        for name in OPT.HEADS:
            self.head.addItem(name, name)
        self.frames = QSpinBox()
        self.frames.setRange(int(OPT.RANGES["frames"].low), int(OPT.RANGES["frames"].high))
        self.epochs = self._default_spin(int(OPT.RANGES["epochs"].high))
        self.batch_size = self._default_spin(int(OPT.RANGES["batch_size"].high))
        self.patience = self._default_spin(int(OPT.RANGES["patience"].high))
        self.lr = QDoubleSpinBox()
        self.lr.setDecimals(6)
        self.lr.setRange(0.0, OPT.RANGES["lr"].high)
        self.lr.setSingleStep(0.0001)
        self.device = QComboBox()
        self.device.setEditable(True)
        self.device.setInsertPolicy(QComboBox.InsertPolicy.NoInsert)
        self.fps = QDoubleSpinBox()
        self.fps.setDecimals(2)
        self.fps.setRange(0.0, OPT.RANGES["fps"].high)  # 0 is shown as a problem rather than silently raised
        self.fps.setSuffix(" fps")
        self.motion = QCheckBox("Optical-flow motion descriptors")
        self.deltas = QCheckBox("Frame-to-frame feature changes")
        self.unfreeze = QComboBox()
        self.device_line = QLabel()
        self.device_line.setWordWrap(True)  # with the reason a GPU here is not used
        self.hint = QLabel(CPU_FINETUNE_HINT)
        self.hint.setWordWrap(True)
        self.problems_label = QLabel()
        self.problems_label.setWordWrap(True)
        self.problems_label.setStyleSheet(PROBLEM_STYLE)
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel
                                        | QDialogButtonBox.StandardButton.RestoreDefaults)  # fmt: skip
        self.ok_button = self.buttons.button(QDialogButtonBox.StandardButton.Ok)
        self.restore_button = self.buttons.button(QDialogButtonBox.StandardButton.RestoreDefaults)

        form = QFormLayout()
        for label, widget in (("Mode", self.mode), ("Backbone", self.backbone), ("Head", self.head),
                              ("Frames per clip", self.frames), ("Epochs", self.epochs),
                              ("Learning rate", self.lr), ("Batch size", self.batch_size),
                              ("Patience (epochs)", self.patience), ("Device", self.device),
                              ("Sampling rate (fast)", self.fps), ("Motion (fast)", self.motion),
                              ("Deltas (fast)", self.deltas), ("Unfreeze (fine-tune)", self.unfreeze)):  # fmt: skip
            form.addRow(label, widget)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        for widget in (self.device_line, self.hint, self.problems_label):
            layout.addWidget(widget)
        layout.addWidget(self.buttons)

        self._set_widgets(options)
        for combo in (self.mode, self.backbone, self.head, self.unfreeze):
            combo.currentIndexChanged.connect(self._update)
        self.device.currentTextChanged.connect(self._update)
        for spin in (self.frames, self.epochs, self.batch_size, self.patience, self.lr, self.fps):
            spin.valueChanged.connect(self._update)
        for box in (self.motion, self.deltas):
            box.toggled.connect(self._update)
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        self.restore_button.clicked.connect(self.restore_defaults)
        self._update()

        self.probe.ready.connect(self.apply_probe_result)
        self.probe.failed.connect(self.apply_probe_failure)
        cached = self.probe.cached()
        if cached is not None:
            self.apply_probe_result(cached)
        else:
            self.probe.start()

    @staticmethod
    def _default_spin(maximum: int) -> QSpinBox:
        spin = QSpinBox()
        spin.setRange(0, maximum)  # 0: the special value, "mode default (N)"
        return spin

    # --- reading and writing the widgets ---

    def options(self) -> TrainOptions:
        """The options as edited now."""
        unfreeze = self.unfreeze.currentData()
        return TrainOptions(
            mode=self.mode.currentData(),
            backbone=self.backbone.currentData() or "",
            head=self.head.currentData(),
            frames=self.frames.value(),
            epochs=self.epochs.value() or None,
            lr=self.lr.value() or None,
            batch_size=self.batch_size.value() or None,
            patience=self.patience.value() or None,
            device=self.device.currentText().strip().lower(),
            fps=self.fps.value(),
            motion=self.motion.isChecked(),
            deltas=self.deltas.isChecked(),
            unfreeze=None if unfreeze == "default" else unfreeze,
        )

    def _set_widgets(self, options: TrainOptions) -> None:
        widgets = (self.mode, self.backbone, self.head, self.unfreeze, self.device, self.frames, self.epochs,
                   self.batch_size, self.patience, self.lr, self.fps, self.motion, self.deltas)  # fmt: skip
        for widget in widgets:
            widget.blockSignals(True)
        self.mode.setCurrentIndex(max(0, self.mode.findData(options.mode)))
        self.head.setCurrentIndex(max(0, self.head.findData(options.head)))
        self._fill_backbones(options.backbone)
        self._fill_devices(options.device)
        self._fill_unfreeze(options.unfreeze)
        self.frames.setValue(options.frames)
        self.epochs.setValue(options.epochs or 0)
        self.lr.setValue(options.lr or 0.0)
        self.batch_size.setValue(options.batch_size or 0)
        self.patience.setValue(options.patience or 0)
        self.fps.setValue(options.fps)
        self.motion.setChecked(options.motion)
        self.deltas.setChecked(options.deltas)
        for widget in widgets:
            widget.blockSignals(False)

    def _fill_backbones(self, current: str) -> None:
        """The probe's backbones (those without weights greyed), or only ``current`` until it answers."""
        blocked = self.backbone.blockSignals(True)  # a refill is no edit
        self.backbone.clear()
        known = self._probe_result.get("backbones", []) if self._probe_result else []
        model = self.backbone.model()
        for info in known:
            if not isinstance(info, dict) or not isinstance(info.get("name"), str):
                continue
            self.backbone.addItem(f"{info['name']} ({info.get('kind', 'image')})", info["name"])
            index = self.backbone.count() - 1
            if info.get("weights_available", True):
                self.backbone.setItemData(index, str(info.get("description", "")), Qt.ItemDataRole.ToolTipRole)
            else:
                self.backbone.setItemData(index, MISSING_WEIGHTS_TIP, Qt.ItemDataRole.ToolTipRole)
                if isinstance(model, QStandardItemModel) and info["name"] != current:
                    model.item(index).setEnabled(False)
        if self.backbone.findData(current) < 0 and current:
            self.backbone.addItem(current, current)
        self.backbone.setCurrentIndex(max(0, self.backbone.findData(current)))
        self.backbone.blockSignals(blocked)

    def _fill_devices(self, current: str) -> None:
        blocked = self.device.blockSignals(True)  # a refill is no edit
        self.device.clear()
        names = _names(self._probe_result) or {"auto": "", "cpu": "CPU"}
        for device_id, name in names.items():
            self.device.addItem(device_id)
            self.device.setItemData(self.device.count() - 1, name, Qt.ItemDataRole.ToolTipRole)
        self.device.setCurrentText(current)
        self.device.blockSignals(blocked)

    def _fill_unfreeze(self, current: int | str | None) -> None:
        self.unfreeze.clear()
        self.unfreeze.addItem(f"default ({OPT.DEFAULT_UNFREEZE} blocks)", "default")
        self.unfreeze.addItem("all blocks", "all")
        choices = sorted(set(range(MAX_UNFREEZE_CHOICE + 1)) | ({current} if isinstance(current, int) else set()))
        for n in choices:
            self.unfreeze.addItem(f"{n} block" if n == 1 else f"{n} blocks", n)
        self.unfreeze.setCurrentIndex(max(0, self.unfreeze.findData("default" if current is None else current)))

    # --- the probe ---

    def apply_probe_result(self, result: dict) -> None:
        """The machine's devices and backbones are known: list them and name the device in use."""
        options = self.options()
        self._probe_result, self._probe_error = result, None
        self._fill_backbones(options.backbone)
        self._fill_devices(options.device)
        self._update()

    def apply_probe_failure(self, message: str) -> None:
        self._probe_error = message
        self._update()

    def device_in_use(self) -> str:
        """The "Device: ..." line: the probe's name for the chosen device."""
        device = self.options().device
        if self._probe_result is None:
            return f"Device: could not be detected ({self._probe_error})" if self._probe_error else \
                "Device: detecting…"  # fmt: skip
        name = _device_name(self._probe_result, device)
        if not name:
            return f"Device: {device} (not found on this machine)"
        # Why the GPU of this machine is not used, when the run would be on the CPU.
        note = self._probe_result.get("cpu_note") if self._cpu_only() else None
        return f"Device: {name}{_device_memory(self._probe_result, device)}" + (f" — {note}" if note else "")

    def _cpu_only(self) -> bool:
        """Whether the run would train on a CPU: 'cpu' chosen, or 'auto' on a machine with nothing else."""
        device = self.options().device
        if device == "cpu":
            return True
        names = _names(self._probe_result)
        return device == "auto" and bool(names) and set(names) <= {"auto", "cpu"}

    # --- checking ---

    def problems(self) -> list[str]:
        """``TrainOptions.problems()`` and what the probe's answer adds: a device or backbone this machine lacks."""
        options = self.options()
        problems = options.problems()
        if self._probe_result is None:
            return problems
        if OPT.DEVICE_PATTERN.fullmatch(options.device) and _device_name(self._probe_result, options.device) is None:
            problems.append(f"Device {options.device!r} is not on this machine.")
        backbones = {b.get("name"): b for b in self._probe_result.get("backbones", []) if isinstance(b, dict)}
        if options.backbone and options.backbone not in backbones:
            problems.append(f"Backbone {options.backbone!r} is not known to this version of VidTrain.")
        elif options.backbone and not backbones[options.backbone].get("weights_available", True):
            problems.append(f"The weights of backbone {options.backbone!r} are not downloaded — see docs.")
        return problems

    def _update(self) -> None:
        options = self.options()
        finetune = options.mode == "finetune"
        for widget in (self.fps, self.motion, self.deltas):
            widget.setEnabled(not finetune)
        self.unfreeze.setEnabled(finetune)
        # Fast mode's linear and stats heads are solved exactly (ml/exact.py): no epochs, rate, batch or patience.
        exact = OPT.solver_for(options.mode, options.head) == "exact"
        for spin in (self.epochs, self.lr, self.batch_size, self.patience):
            spin.setEnabled(not exact)
            spin.setToolTip(EXACT_FIT_TIP if exact else "")
        for spin, name in ((self.epochs, "epochs"), (self.batch_size, "batch_size"), (self.patience, "patience")):
            spin.setSpecialValueText(f"mode default ({options.mode_default(name):g})")
        self.lr.setSpecialValueText(f"mode default ({options.mode_default('lr'):g})")
        self.device_line.setText(self.device_in_use())
        self.hint.setVisible(finetune and self._cpu_only())
        problems = self.problems()
        self.problems_label.setText("\n".join(problems))
        self.problems_label.setVisible(bool(problems))
        self.ok_button.setEnabled(not problems)

    def restore_defaults(self) -> None:
        self._set_widgets(TrainOptions())
        self._update()

    def accept(self) -> None:
        """Closes with OK only while there is no problem."""
        self._update()
        if not self.problems():
            super().accept()

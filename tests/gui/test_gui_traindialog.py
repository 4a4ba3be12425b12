"""The training options and the Advanced training dialog (gui/traindialog.py): ``TrainOptions`` gives exactly the
flags the real ``vidtrain train`` parser reads back, validates, and survives the settings file; the dialog edits
them, refuses bad values with the reason shown, follows the mode, and lists what the device probe reports; the
probe runs the real ``vidtrain --json devices`` and reports failures of its process."""

from __future__ import annotations

import sys

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QDialog

from vidtrain_gui.cli import build_parser
from vidtrain_gui.gui.traindialog import (
    CPU_FINETUNE_HINT,
    EXACT_FIT_TIP,
    MISSING_WEIGHTS_TIP,
    AdvancedTrainDialog,
    DeviceProbe,
    TrainOptions,
)

PROBE_TIMEOUT = 60_000

CPU_MACHINE = {
    "devices": [{"id": "auto", "name": "CPU (2 threads)"}, {"id": "cpu", "name": "CPU"}],
    "default": "CPU (2 threads)",
    "backbones": [
        {"name": "efficientnet_lite0", "kind": "image", "description": "EfficientNet-Lite0", "feature_dim": 1280,
         "weights_available": True},
        {"name": "resnet18", "kind": "image", "description": "ResNet-18", "feature_dim": 512,
         "weights_available": False},
        {"name": "r3d_18", "kind": "video", "description": "ResNet3D-18", "feature_dim": 512,
         "weights_available": True},
    ],
}  # fmt: skip
GPU_MACHINE = {**CPU_MACHINE, "default": "CUDA: NVIDIA H100",
               "devices": CPU_MACHINE["devices"] + [{"id": "cuda:0", "name": "CUDA: NVIDIA H100"}]}  # fmt: skip


class InstantProbe(DeviceProbe):
    """A probe whose ``start`` answers at once (``result``) or fails (``error``), counting its starts."""

    def __init__(self, result: dict | None = None, error: str | None = None) -> None:
        super().__init__()
        self.result, self.error, self.starts = result, error, 0

    def start(self) -> None:
        self.starts += 1
        if self.error is not None:
            self.failed.emit(self.error)
        elif self.result is not None:
            self.ready.emit(self.result)


@pytest.fixture(autouse=True)
def _no_cached_probe(monkeypatch):
    """Each test starts with no probe answer kept (the cache lives for the app, i.e. the whole test session)."""
    monkeypatch.setattr(DeviceProbe, "_result", None)


def _parse(options: TrainOptions):
    return build_parser().parse_args(["train", "proj", *options.to_args()])


def _dialog(qtbot, options: TrainOptions | None = None, probe: DeviceProbe | None = None) -> AdvancedTrainDialog:
    dialog = AdvancedTrainDialog(options or TrainOptions(), probe=probe if probe is not None else InstantProbe())
    qtbot.addWidget(dialog)
    return dialog


def _combo_texts(combo) -> list[str]:
    return [combo.itemData(i) for i in range(combo.count())]


# --- TrainOptions --------------------------------------------------------------------------------------------------


def test_default_options_pass_no_flags_and_are_the_parsers_defaults():
    options = TrainOptions()
    assert options.to_args() == [] and options.problems() == []
    args = _parse(options)
    assert (args.mode, args.backbone, args.head, args.frames, args.device, args.fps) == (
        options.mode,
        options.backbone,
        options.head,
        options.frames,
        options.device,
        options.fps,
    )
    assert (args.epochs, args.lr, args.batch_size, args.patience, args.unfreeze) == (None,) * 5
    assert args.motion and args.deltas and not args.predict
    assert options.summary() == "fast · efficientnet_lite0 · stats · 8 frames · auto device"


@pytest.mark.parametrize(("change", "flags"), [
    ({"mode": "finetune"}, ["--mode", "finetune"]),
    ({"backbone": "resnet18"}, ["--backbone", "resnet18"]),
    ({"head": "attention"}, ["--head", "attention"]),
    ({"frames": 16}, ["--frames", "16"]),
    ({"epochs": 20}, ["--epochs", "20"]),
    ({"lr": 3e-4}, ["--lr", "0.0003"]),
    ({"batch_size": 32}, ["--batch-size", "32"]),
    ({"patience": 3}, ["--patience", "3"]),
    ({"device": "cuda:1"}, ["--device", "cuda:1"]),
    ({"fps": 12.5}, ["--fps", "12.5"]),
    ({"motion": False}, ["--no-motion"]),
    ({"deltas": False}, ["--no-deltas"]),
    ({"mode": "finetune", "unfreeze": "all"}, ["--mode", "finetune", "--unfreeze", "all"]),
    ({"mode": "finetune", "unfreeze": 2}, ["--mode", "finetune", "--unfreeze", "2"]),
    # What a mode does not use is kept but not passed.
    ({"mode": "finetune", "fps": 4.0, "motion": False}, ["--mode", "finetune"]),
    ({"unfreeze": 2}, []),
])  # fmt: skip
def test_each_change_maps_to_its_flags_and_the_parser_reads_it_back(change, flags):
    options = TrainOptions(**change)
    assert options.to_args() == flags and options.problems() == []
    args = _parse(options)
    for name, value in change.items():
        passed = options.mode == "fast" or name not in ("fps", "motion", "deltas")
        if name != "unfreeze" or options.mode == "finetune":
            assert getattr(args, name) == (value if passed else getattr(TrainOptions(), name)), name


@pytest.mark.parametrize(("change", "words"), [
    ({"frames": 0}, "Frames per clip"), ({"frames": 65}, "Frames per clip"),
    ({"epochs": 0}, "Epochs"), ({"epochs": 10001}, "Epochs"),
    ({"lr": 0.0}, "learning rate"), ({"lr": 1.5}, "learning rate"), ({"lr": float("nan")}, "learning rate"),
    ({"batch_size": 0}, "batch size"), ({"batch_size": 5000}, "batch size"),
    ({"patience": 0}, "Patience"),
    ({"fps": 0.0}, "sampling rate"), ({"fps": 61.0}, "sampling rate"),
    ({"head": "lstm"}, "Unknown head 'lstm'"), ({"mode": "slow"}, "Unknown mode 'slow'"),
    ({"device": "gpu"}, "Unknown device 'gpu'"), ({"backbone": " "}, "Choose a backbone"),
    ({"mode": "finetune", "unfreeze": -1}, "Unfreeze"), ({"mode": "finetune", "unfreeze": "some"}, "Unfreeze"),
])  # fmt: skip
def test_bad_values_are_problems_in_a_sentence(change, words):
    problems = TrainOptions(**change).problems()
    assert len(problems) == 1 and words in problems[0] and problems[0].endswith(".")


def test_only_the_modes_own_options_are_checked():
    assert TrainOptions(mode="finetune", fps=0.0).problems() == []
    assert TrainOptions(mode="fast", unfreeze="some").problems() == []
    assert TrainOptions(mode="finetune", backbone="r3d_18").problems() == []  # a video backbone fine-tunes too


def test_options_survive_the_settings_file_and_bad_entries_fall_back_to_defaults():
    options = TrainOptions(mode="finetune", backbone="r3d_18", head="tconv", frames=16, epochs=30, lr=5e-4,
                           batch_size=4, patience=2, device="cuda:0", fps=6.0, motion=False, deltas=False,
                           unfreeze="all")  # fmt: skip
    assert TrainOptions.from_dict(options.to_dict()) == options
    stored = {**TrainOptions(epochs=7).to_dict(), "head": "lstm", "frames": "eight", "lr": 2.0, "motion": "yes",
              "fps": 5, "batch_size": 16.0, "unknown": 1}  # fmt: skip
    restored = TrainOptions.from_dict(stored)
    assert restored == TrainOptions(epochs=7, fps=5.0, batch_size=16)
    assert isinstance(restored.fps, float) and isinstance(restored.batch_size, int)
    assert TrainOptions.from_dict(None) == TrainOptions() == TrainOptions.from_dict({"epochs": 2.5})


# --- the dialog ----------------------------------------------------------------------------------------------------


def test_editing_the_fields_changes_the_options(qtbot):
    dialog = _dialog(qtbot, probe=InstantProbe(GPU_MACHINE))
    dialog.head.setCurrentIndex(dialog.head.findData("attention"))
    dialog.frames.setValue(12)
    dialog.epochs.setValue(40)
    dialog.lr.setValue(0.0005)
    dialog.device.setCurrentIndex(dialog.device.findText("cuda:0"))
    dialog.motion.click()
    dialog.backbone.setCurrentIndex(dialog.backbone.findData("r3d_18"))
    expected = TrainOptions(backbone="r3d_18", head="attention", frames=12, epochs=40, lr=0.0005, device="cuda:0",
                            motion=False)  # fmt: skip
    assert dialog.options() == expected
    assert dialog.device_line.text() == "Device: CUDA: NVIDIA H100"
    dialog.accept()
    assert dialog.result() == QDialog.DialogCode.Accepted and dialog.options().to_args() == expected.to_args()


def test_the_dialog_opens_with_the_given_options_and_tuned_values_show_the_mode_default(qtbot):
    given = TrainOptions(mode="finetune", frames=4, batch_size=2, unfreeze=2)
    dialog = _dialog(qtbot, given, InstantProbe(CPU_MACHINE))
    assert dialog.options() == given
    assert dialog.epochs.text() == "mode default (20)" and dialog.patience.text() == "mode default (5)"
    dialog.mode.setCurrentIndex(dialog.mode.findData("fast"))
    assert dialog.epochs.text() == "mode default (100)" and dialog.lr.text() == "mode default (0.001)"


def test_a_bad_value_disables_ok_and_shows_the_problem(qtbot):
    dialog = _dialog(qtbot, probe=InstantProbe(CPU_MACHINE))
    assert dialog.ok_button.isEnabled() and dialog.problems_label.isHidden()
    dialog.device.lineEdit().clear()
    qtbot.keyClicks(dialog.device.lineEdit(), "gpu")
    assert not dialog.ok_button.isEnabled() and not dialog.problems_label.isHidden()
    assert "Unknown device 'gpu'" in dialog.problems_label.text()
    dialog.accept()  # refused, like the disabled button
    assert dialog.result() != QDialog.DialogCode.Accepted
    dialog.device.setCurrentText("auto")
    dialog.fps.setValue(0.0)
    assert dialog.problems_label.text() == "The sampling rate must be above 0 and at most 60 frames per second."
    dialog.fps.setValue(10.0)
    assert dialog.ok_button.isEnabled() and dialog.problems_label.isHidden()


def test_a_device_or_backbone_this_machine_lacks_is_refused(qtbot):
    dialog = _dialog(qtbot, TrainOptions(device="cuda:0"), InstantProbe(CPU_MACHINE))
    assert dialog.problems() == ["Device 'cuda:0' is not on this machine."] and not dialog.ok_button.isEnabled()
    assert dialog.device_line.text() == "Device: cuda:0 (not found on this machine)"
    dialog.device.setCurrentText("cpu")
    dialog.backbone.setCurrentIndex(dialog.backbone.findData("resnet18"))  # greyed, but a program may pick it
    assert dialog.problems() == ["The weights of backbone 'resnet18' are not downloaded — see docs."]


def test_finetune_mode_enables_unfreeze_and_disables_the_fast_options(qtbot):
    dialog = _dialog(qtbot, probe=InstantProbe(GPU_MACHINE))
    assert dialog.fps.isEnabled() and dialog.motion.isEnabled() and not dialog.unfreeze.isEnabled()
    dialog.mode.setCurrentIndex(dialog.mode.findData("finetune"))
    assert not dialog.fps.isEnabled() and not dialog.motion.isEnabled() and not dialog.deltas.isEnabled()
    assert dialog.unfreeze.isEnabled()
    dialog.unfreeze.setCurrentIndex(dialog.unfreeze.findData("all"))
    assert dialog.options().to_args() == ["--mode", "finetune", "--unfreeze", "all"]
    assert dialog.hint.isHidden()  # a GPU is there: no warning


def test_the_exactly_solved_heads_grey_the_epoch_options_of_fast_mode(qtbot):
    dialog = _dialog(qtbot, probe=InstantProbe(CPU_MACHINE))
    tuned = (dialog.epochs, dialog.lr, dialog.batch_size, dialog.patience)
    assert dialog.options().head == "stats" and not any(w.isEnabled() for w in tuned)
    assert all(w.toolTip() == EXACT_FIT_TIP for w in tuned)
    dialog.head.setCurrentIndex(dialog.head.findData("gru"))
    assert all(w.isEnabled() and not w.toolTip() for w in tuned)
    dialog.head.setCurrentIndex(dialog.head.findData("linear"))
    assert not any(w.isEnabled() for w in tuned)
    dialog.mode.setCurrentIndex(dialog.mode.findData("finetune"))  # fine-tuning trains the backbone in epochs
    assert all(w.isEnabled() for w in tuned)


def test_finetune_on_a_cpu_only_machine_shows_the_hint(qtbot):
    dialog = _dialog(qtbot, probe=InstantProbe(CPU_MACHINE))
    assert dialog.hint.isHidden()
    dialog.mode.setCurrentIndex(dialog.mode.findData("finetune"))
    assert not dialog.hint.isHidden() and dialog.hint.text() == CPU_FINETUNE_HINT
    dialog.mode.setCurrentIndex(dialog.mode.findData("fast"))
    assert dialog.hint.isHidden()


def test_restore_defaults(qtbot):
    dialog = _dialog(qtbot, TrainOptions(mode="finetune", head="mlp", frames=3, epochs=5, lr=0.01, patience=2,
                                         unfreeze=1, device="cpu"), InstantProbe(CPU_MACHINE))  # fmt: skip
    assert dialog.options() != TrainOptions()
    qtbot.mouseClick(dialog.restore_button, Qt.MouseButton.LeftButton)
    assert dialog.options() == TrainOptions()
    assert dialog.fps.isEnabled() and not dialog.unfreeze.isEnabled() and dialog.epochs.text() == "mode default (100)"


# --- the probe in the dialog ---------------------------------------------------------------------------------------


def test_until_the_probe_answers_only_the_current_backbone_is_listed(qtbot):
    probe = InstantProbe()  # never answers
    dialog = _dialog(qtbot, TrainOptions(backbone="resnet18"), probe)
    assert probe.starts == 1
    assert _combo_texts(dialog.backbone) == ["resnet18"] and dialog.device_line.text() == "Device: detecting…"
    assert dialog.ok_button.isEnabled()  # nothing known yet to refuse
    dialog.apply_probe_result(CPU_MACHINE)
    assert _combo_texts(dialog.backbone) == ["efficientnet_lite0", "resnet18", "r3d_18"]
    assert dialog.options().backbone == "resnet18" and dialog.device_line.text() == "Device: CPU (2 threads)"


def test_the_probe_answer_lists_backbones_greying_those_without_weights(qtbot):
    dialog = _dialog(qtbot, probe=InstantProbe(GPU_MACHINE))
    assert _combo_texts(dialog.backbone) == ["efficientnet_lite0", "resnet18", "r3d_18"]
    model = dialog.backbone.model()
    resnet = dialog.backbone.findData("resnet18")
    assert not model.item(resnet).isEnabled() and model.item(dialog.backbone.findData("r3d_18")).isEnabled()
    assert dialog.backbone.itemData(resnet, Qt.ItemDataRole.ToolTipRole) == MISSING_WEIGHTS_TIP
    assert [dialog.device.itemText(i) for i in range(dialog.device.count())] == ["auto", "cpu", "cuda:0"]
    assert dialog.device_line.text() == "Device: CUDA: NVIDIA H100"
    dialog.device.setCurrentIndex(dialog.device.findText("cpu"))
    assert dialog.device_line.text() == "Device: CPU"


def test_the_device_line_shows_the_gpu_memory_and_why_a_gpu_is_not_used(qtbot):
    gpu = {**GPU_MACHINE, "devices": CPU_MACHINE["devices"] + [
        {"id": "cuda:0", "name": "CUDA: NVIDIA H100", "memory_total_mb": 81559, "memory_free_mb": 80000}]}  # fmt: skip
    dialog = _dialog(qtbot, probe=InstantProbe(gpu))
    dialog.device.setCurrentIndex(dialog.device.findText("cuda:0"))
    assert dialog.device_line.text() == "Device: CUDA: NVIDIA H100 — 79.6 GB, 78.1 GB free"
    dialog.device.setEditText("cuda")
    assert dialog.device_line.text() == "Device: CUDA: NVIDIA H100 — 79.6 GB, 78.1 GB free"

    note = "running on the CPU: this machine has an NVIDIA GPU, but no CUDA GPU is visible"
    dialog.apply_probe_result({**CPU_MACHINE, "cpu_note": note})
    dialog.device.setEditText("auto")
    assert dialog.device_line.text() == f"Device: CPU (2 threads) — {note}"
    assert dialog.device_line.wordWrap()


def test_a_probe_failure_shows_its_message(qtbot):
    dialog = _dialog(qtbot, probe=InstantProbe(error="The device check failed (exit code 1): no torch"))
    assert dialog.device_line.text() == (
        "Device: could not be detected (The device check failed (exit code 1): no torch)"
    )
    assert dialog.ok_button.isEnabled() and _combo_texts(dialog.backbone) == ["efficientnet_lite0"]


def test_the_answer_is_kept_so_the_next_dialog_opens_with_it(qtbot):
    first = InstantProbe(GPU_MACHINE)
    _dialog(qtbot, probe=first)
    second = InstantProbe(GPU_MACHINE)
    dialog = _dialog(qtbot, probe=second)
    assert second.starts == 0 and dialog.device_line.text() == "Device: CUDA: NVIDIA H100"
    assert "cuda:0" in [dialog.device.itemText(i) for i in range(dialog.device.count())]


# --- the real probe ------------------------------------------------------------------------------------------------


class ScriptProbe(DeviceProbe):
    """The real probe machinery running a small Python script instead of ``vidtrain devices``."""

    def __init__(self, script: str) -> None:
        super().__init__()
        self.script = script

    def command(self) -> tuple[str, list[str]]:
        return sys.executable, ["-c", self.script]


@pytest.mark.parametrize(("script", "message"), [
    ("import sys; print('Traceback', file=sys.stderr); print('vidtrain: error: no torch', file=sys.stderr); "
     "sys.exit(2)", "The device check failed (exit code 2): vidtrain: error: no torch"),
    ("print('not json')", "The device check gave an answer that is not understood: 'not json'"),
    ("print('[1, 2]')", "The device check gave an answer that is not understood: '[1, 2]'"),
])  # fmt: skip
def test_the_probe_reports_a_failing_process(qtbot, script, message):
    probe = ScriptProbe(script)
    with qtbot.waitSignal(probe.failed, timeout=PROBE_TIMEOUT) as failed:
        probe.start()
    assert failed.args == [message] and probe.cached() is None and not probe.is_running()


def test_the_probe_reports_a_program_that_does_not_start(qtbot, monkeypatch):
    monkeypatch.setattr(sys, "executable", "/nonexistent/python")
    probe = DeviceProbe()
    with qtbot.waitSignal(probe.failed, timeout=PROBE_TIMEOUT) as failed:
        probe.start()
    assert failed.args[0].startswith("Could not start the device check:") and not probe.is_running()


def test_the_real_probe_lists_this_machines_devices_and_backbones(qtbot):
    probe = DeviceProbe()
    with qtbot.waitSignal(probe.ready, timeout=PROBE_TIMEOUT) as ready:
        probe.start()
        assert probe.is_running()
        probe.start()  # a second start while running is ignored
    result = ready.args[0]
    assert "cpu" in [d["id"] for d in result["devices"]] and result["devices"][0]["id"] == "auto"
    assert "efficientnet_lite0" in [b["name"] for b in result["backbones"]]
    assert probe.cached() == result and not probe.is_running()
    dialog = AdvancedTrainDialog(TrainOptions())  # the app's shared probe: the kept answer, no second process
    qtbot.addWidget(dialog)
    assert dialog.probe is DeviceProbe.shared() and not dialog.probe.is_running()
    assert dialog.device_line.text() == f"Device: {result['default']}"

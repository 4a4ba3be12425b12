"""Every numeric option has one range, checked alike by the CLI (before any work) and the Advanced dialog
(issue 14: ``train --frames 100000`` used 24 GB and was killed; ``--folds 0`` crashed with a Python error).
That the CLI, the dialog and the ml functions share their defaults is tests/core/test_core_options.py's."""

from __future__ import annotations

import subprocess
import sys

import pytest

from vidtrain_gui.cli import build_parser
from vidtrain_gui.core import options as OPT
from vidtrain_gui.gui.traindialog import AdvancedTrainDialog, DeviceProbe, TrainOptions

DIALOG_FIELDS = ("frames", "epochs", "lr", "batch_size", "patience", "fps", "unfreeze")
# The command and flag of each option; every option of core/options.py is on some command.
FLAGS = {
    "frames": "train", "epochs": "train", "lr": "train", "batch_size": "train", "patience": "train",
    "fps": "train", "unfreeze": "train", "workers": "train", "seed": "train", "folds": "predict", "stride": "predict",
    "smoothing": "segments", "min_segment": "segments", "threshold": "segments", "switch_penalty": "segments",
}  # fmt: skip


def _cli_accepts(name: str, value) -> bool:
    command = FLAGS[name]
    flag = "--" + name.replace("_", "-")
    text = f"walk={value}" if name == "threshold" else str(value)
    extra = ["--mode", "finetune"] if name in ("unfreeze", "workers") else []
    try:
        build_parser().parse_args([command, "P", *extra, flag, text])
    except SystemExit:
        return False
    return True


def _probes(rule: OPT.Range):
    step = 1 if rule.whole else 1e-6
    values = [rule.low - step, rule.low, rule.low + step, rule.high - step, rule.high, rule.high + step]
    if rule.whole:
        values = [int(v) for v in values] + [rule.low + 0.5]
    return values + [float("nan"), float("inf")]


def test_every_option_is_on_a_command():
    assert set(FLAGS) == set(OPT.RANGES)


@pytest.mark.parametrize("name", sorted(OPT.RANGES))
def test_the_cli_accepts_exactly_the_options_range(name, capsys):
    rule = OPT.RANGES[name]
    for value in _probes(rule):
        assert _cli_accepts(name, value) == rule.accepts(value), (name, value)
    capsys.readouterr()


@pytest.mark.parametrize("name", DIALOG_FIELDS)
def test_the_dialog_and_the_cli_agree(name, capsys):
    for value in _probes(OPT.RANGES[name]):
        mode = "finetune" if name == "unfreeze" else "fast"
        dialog_ok = not TrainOptions(mode=mode, **{name: value}).problems()
        assert dialog_ok == _cli_accepts(name, value), (name, value)
    capsys.readouterr()


class _SilentProbe(DeviceProbe):
    def start(self) -> None:  # the devices are not what this test is about: no `vidtrain devices` process
        pass


def test_the_dialogs_spin_boxes_stop_at_the_ranges(qtbot):
    dialog = AdvancedTrainDialog(TrainOptions(), probe=_SilentProbe())
    qtbot.addWidget(dialog)
    for name in ("frames", "epochs", "batch_size", "patience", "lr", "fps"):
        assert getattr(dialog, name).maximum() == OPT.RANGES[name].high, name
    assert dialog.frames.minimum() == OPT.RANGES["frames"].low


def test_out_of_range_options_are_refused_in_one_line_before_any_work(tmp_path):
    for args in (["train", tmp_path, "--frames", "100000"], ["predict", tmp_path, "--folds", "0"]):
        r = subprocess.run([sys.executable, "-m", "vidtrain_gui.cli", *map(str, args)], capture_output=True, text=True)
        assert r.returncode == 2
        last = r.stderr.strip().splitlines()[-1]
        assert "must be a whole number from" in last and "Traceback" not in r.stderr

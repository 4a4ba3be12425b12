"""core/options.py is the one place of every training, feature and prediction default: the CLI's parser, the
Advanced training dialog and the ml functions' signatures all read it. These tests tie the three to it, so a
default changed in one place only (the bug this replaced: the same values written three times) fails here."""

from __future__ import annotations

import inspect
from dataclasses import asdict, fields

import pytest

from vidtrain_gui.cli import build_parser
from vidtrain_gui.core import options as OPT
from vidtrain_gui.gui.traindialog import AdvancedTrainDialog, DeviceProbe, TrainOptions

CLI_NAMES = {"sample_fps": "fps"}  # the command's name of an ml parameter named otherwise
# The ml functions' own: no command sets them.
NOT_ON_THE_CLI = {"weight_decay", "augment", "flip", "refit", "solver", "l2"}
TUNED = tuple(OPT.MODE_DEFAULTS[OPT.DEFAULT_MODE])  # epochs, lr, batch_size, patience
NOT_OPTIONS = {"dist"}  # where a training runs (torchrun), not what it trains: no default to share


def _cli(defaults: dict) -> dict:
    """ml parameter defaults as the parser's ``args`` names them, without those no command has."""
    return {CLI_NAMES.get(k, k): v for k, v in defaults.items() if k not in NOT_ON_THE_CLI}


def _parsed(*argv: str) -> dict:
    return vars(build_parser().parse_args(list(argv)))


def _train_cli_defaults() -> dict:
    """What ``vidtrain train P`` leaves in ``args``: the shared and fast-only defaults, the tuned values and
    unfreeze None (each mode's own then applies: the job passes only what the user gave)."""
    return {"mode": OPT.DEFAULT_MODE, **_cli(OPT.COMMON_DEFAULTS), **_cli(OPT.MODE_ONLY_DEFAULTS["fast"]),
            **dict.fromkeys((*TUNED, "unfreeze"))}  # fmt: skip


def _signature_defaults(fn) -> dict:
    return {n: p.default for n, p in inspect.signature(fn).parameters.items() if p.default is not p.empty}


# --- core/options.py itself --------------------------------------------------------------------------------------


def test_defaults_of_a_mode_are_the_shared_tuned_and_own_ones():
    assert set(OPT.MODE_DEFAULTS) == set(OPT.MODE_ONLY_DEFAULTS) == set(OPT.MODES)
    for mode in OPT.MODES:
        got = OPT.defaults(mode)
        assert got == {**OPT.COMMON_DEFAULTS, **OPT.MODE_DEFAULTS[mode], **OPT.MODE_ONLY_DEFAULTS[mode]}
        got["epochs"] = -1  # a new dict each call: a caller's change does not change the defaults
        assert OPT.defaults(mode)["epochs"] == OPT.MODE_DEFAULTS[mode]["epochs"]
    with pytest.raises(ValueError, match="unknown mode"):
        OPT.defaults("slow")


def test_every_default_is_a_valid_choice_and_in_its_range():
    assert OPT.DEFAULT_MODE in OPT.MODES and OPT.DEFAULT_HEAD in OPT.HEADS
    assert OPT.DEVICE_PATTERN.fullmatch(OPT.DEFAULT_DEVICE)
    ranged = [("frames", OPT.DEFAULT_FRAMES), ("fps", OPT.DEFAULT_FPS), ("seed", OPT.DEFAULT_SEED),
              ("unfreeze", OPT.DEFAULT_UNFREEZE), ("batch_size", OPT.FEATURE_BATCH_SIZE),
              ("folds", OPT.DEFAULT_FOLDS)]  # fmt: skip
    ranged += [(name, value) for mode in OPT.MODES for name, value in OPT.MODE_DEFAULTS[mode].items()]
    assert [(name, value) for name, value in ranged if OPT.problem(name, value)] == []


def test_one_rule_says_which_heads_are_solved_exactly():
    assert OPT.solver_for("fast", OPT.DEFAULT_HEAD) == "exact" and OPT.solver_for("fast", "linear", "exact") == "exact"
    assert OPT.solver_for("fast", "stats", "adamw") == "adamw"
    assert [OPT.solver_for("fast", h) for h in ("gru", "tconv", "mlp", "attention")] == ["adamw"] * 4
    assert OPT.solver_for("finetune", "stats") == "adamw"  # fine-tuning trains the backbone in epochs


# --- the CLI's parser --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", OPT.MODES)
def test_the_train_commands_defaults_are_core_options(mode):
    args = _parsed("train", "P", "--mode", mode)
    expected = {**_train_cli_defaults(), "mode": mode}
    assert {k: args[k] for k in expected} == expected
    # A flag added later with a default of its own (not off, not "not given") must take it from core too.
    bookkeeping = {"project", "command", "func"}
    extra = {k: v for k, v in args.items() if k not in {*expected, *bookkeeping} and v not in (None, False)}
    assert extra == {}


def test_the_feature_and_predict_commands_defaults_are_core_options():
    args = _parsed("features", "P")
    expected = {**_cli(OPT.FEATURE_DEFAULTS), "motion": OPT.DEFAULT_MOTION}
    assert {k: args[k] for k in expected} == expected
    args = _parsed("predict", "P")
    assert {k: args[k] for k in OPT.PREDICT_DEFAULTS} == OPT.PREDICT_DEFAULTS


def test_the_train_help_shows_core_options_defaults(capsys):
    with pytest.raises(SystemExit):
        build_parser().parse_args(["train", "--help"])
    text = " ".join(capsys.readouterr().out.split())  # argparse wraps lines anywhere between words
    for name in TUNED:
        shown = ", ".join(f"{mode}: {OPT.MODE_DEFAULTS[mode][name]:g}" for mode in OPT.MODES)
        assert f"the mode's own ({shown})" in text, name
    assert f"'all' (default {OPT.DEFAULT_UNFREEZE})" in text
    assert f"default {OPT.DEFAULT_FPS:g})" in text and f"default {OPT.DEFAULT_FRAMES})" in text


# --- the Advanced training dialog --------------------------------------------------------------------------------


class _SilentProbe(DeviceProbe):
    def start(self) -> None:  # the devices are not what this test is about: no `vidtrain devices` process
        pass


def test_the_dialogs_options_default_to_the_commands():
    names = {f.name for f in fields(TrainOptions)}
    assert asdict(TrainOptions()) == {k: v for k, v in _train_cli_defaults().items() if k in names}
    assert names <= set(_train_cli_defaults())  # no dialog option without a command default to compare
    for mode in OPT.MODES:
        assert {name: TrainOptions(mode=mode).mode_default(name) for name in TUNED} == OPT.MODE_DEFAULTS[mode]


def test_the_dialog_shows_and_restores_core_options_defaults(qtbot):
    dialog = AdvancedTrainDialog(TrainOptions(), probe=_SilentProbe())
    qtbot.addWidget(dialog)
    assert dialog.options() == TrainOptions()
    assert dialog.unfreeze.itemText(0) == f"default ({OPT.DEFAULT_UNFREEZE} blocks)"
    for mode in OPT.MODES:
        dialog.mode.setCurrentIndex(dialog.mode.findData(mode))
        for name in TUNED:
            assert getattr(dialog, name).specialValueText() == f"mode default ({OPT.MODE_DEFAULTS[mode][name]:g})"
    dialog.frames.setValue(OPT.DEFAULT_FRAMES + 1)
    dialog.restore_defaults()
    assert dialog.options() == TrainOptions()


# --- the ml functions' signatures ----------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", OPT.MODES)
def test_the_training_functions_defaults_are_core_options(mode):
    from vidtrain_gui.ml.finetune import finetune
    from vidtrain_gui.ml.train import train

    got = _signature_defaults({"fast": train, "finetune": finetune}[mode])
    expected = OPT.defaults(mode)
    assert {k: got.get(k, "<no default>") for k in expected} == expected
    # The other way round too: a default the function gained (other than None, "not given") belongs in core.
    extra = {k: v for k, v in got.items() if v is not None and k not in expected and k not in NOT_OPTIONS}
    assert extra == {}, f"defaults of {mode} mode not in core/options.py: {extra}"


def test_the_finetune_modules_own_constants_if_any_are_core_options():
    from vidtrain_gui.ml import finetune

    # Kept or dropped by the ml layer as it likes; where kept, they must be the same values.
    assert getattr(finetune, "DEFAULT_UNFREEZE", OPT.DEFAULT_UNFREEZE) == OPT.DEFAULT_UNFREEZE
    assert getattr(finetune, "BACKBONE_LR_FACTOR", OPT.BACKBONE_LR_FACTOR) == OPT.BACKBONE_LR_FACTOR


def test_the_feature_and_predict_functions_defaults_are_core_options():
    from vidtrain_gui.ml.features import extract_features, extract_motion
    from vidtrain_gui.ml.oof import out_of_fold
    from vidtrain_gui.ml.predict import predict  # the predict job (ml/timeline.py's before the ml rewrite)

    got = _signature_defaults(extract_features)
    assert {k: got[k] for k in OPT.FEATURE_DEFAULTS} == OPT.FEATURE_DEFAULTS
    assert _signature_defaults(extract_motion)["sample_fps"] == OPT.DEFAULT_FPS
    got = _signature_defaults(predict)
    assert {k: got[k] for k in OPT.PREDICT_DEFAULTS} == OPT.PREDICT_DEFAULTS
    assert _signature_defaults(out_of_fold)["folds"] == OPT.DEFAULT_FOLDS

"""The ml package's shared pieces (one training loop, one model loader, one set of defaults) changed no numbers: the
same seed trains the same fast-mode model, bit for bit, as before they were drawn out of ``ml/train.py``."""

from __future__ import annotations

import ast
import hashlib
import io
import json
import platform
from pathlib import Path

import pytest
import torch
from motionproject import import_motion_videos, tag_by_motion

from vidtrain_gui.core import options as OPT
from vidtrain_gui.core import runs as R
from vidtrain_gui.core import videos as V
from vidtrain_gui.jobs.runner import run_job
from vidtrain_gui.ml import loop
from vidtrain_gui.ml.checkpoint import read_checkpoint
from vidtrain_gui.ml.train import train

CLIP_RANGES = [(s + 1, s + 14) for s in (0, 30, 60)] + [(s + 15, s + 29) for s in (0, 30, 60)]
# Recorded with the two training loops before the shared loop (commit f65848f), torch 2.14.1 on x86_64 CPU: the sha256
# of the checkpoint's head weights and of the epoch history, for the GRU and the linear head.
GOLDEN = {
    "torch": "2.14.1",
    "machine": "x86_64",
    "gru": "889237b55f2f80ca8e90dd652d25c3f11df1ad512e84a08988b32fd443ed2204:"
    "e7ec8070ef8749af5e116052ded2df5bce23d5eb8a3964473f48862575631f6d",
    "linear": "f36c458410ebacfb7d7e916cf4312c22d53a73769b76fcb535a757b6c6e8174e:"
    "be55423c416fe92c249f9988f4946483cf850fcecb8caf7fbce379743d1edadd",
}


def state_digest(state: dict[str, torch.Tensor]) -> str:
    h = hashlib.sha256()
    for name in sorted(state):
        h.update(name.encode())
        h.update(state[name].detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    p = import_motion_videos(tmp_path_factory.mktemp("seams"), ("left", "right", "left", "right"), first_length=100)
    tag_by_motion(p, CLIP_RANGES)
    # One source group per video, as every video was its own group when the bits were recorded (since then, videos
    # in no group that look alike are grouped by look).
    for v in V.list_videos(p):
        V.set_video_group(p, v.id, f"v{v.id}")  # sorted as "video:<id>" was
    yield p
    p.close()


def _fingerprint(project, head: str, monkeypatch) -> str:
    monkeypatch.setattr(loop, "SELECT", "loss")  # the first loops' rule for the best epoch, as when recorded
    monkeypatch.setattr(OPT, "WINDOW_CLIPS", 1.0)  # windows as long as the median clip: one sample per clip, as then

    def work(ctx):
        return train(ctx, head=head, epochs=12, patience=4, device="cpu", seed=3, solver="adamw")

    run = run_job(project, "train", {"head": head}, work, stdout=io.StringIO(), install_signals=False)
    assert run.status == "done", run.error
    # The job records what its model knows on its Run, however it was started (here: neither the CLI nor the window).
    assert run.classes == ["left", "right"]
    assert run.artifacts == {"checkpoint": "best.pt", "metrics": "metrics.json"}
    ck = read_checkpoint(R.run_dir(project, run.id) / "best.pt")
    history = json.dumps(run.metrics["history"], sort_keys=True).encode()
    return state_digest(ck["state_dict"]) + ":" + hashlib.sha256(history).hexdigest()


@pytest.mark.parametrize("head", ["gru", "linear"])
def test_the_same_seed_trains_the_same_fast_model_as_before_the_shared_loop(project, head, monkeypatch):
    if (torch.__version__.split("+")[0], platform.machine()) != (GOLDEN["torch"], GOLDEN["machine"]):
        pytest.skip("the recorded bits are those of torch 2.14.1 on x86_64")
    assert _fingerprint(project, head, monkeypatch) == GOLDEN[head]


ML = Path(__file__).resolve().parents[2] / "vidtrain_gui" / "ml"


def _ml_imports(name: str) -> set[str]:
    tree = ast.parse((ML / f"{name}.py").read_text(encoding="utf-8"))
    found = set()
    for node in ast.walk(tree):  # function-level imports count too
        if isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
    return {m.removeprefix("vidtrain_gui.ml.") for m in found if m.startswith("vidtrain_gui.ml.")}


@pytest.mark.parametrize("module", ["predict", "export", "oof", "model", "loop", "trainset", "rows", "metrics"])
def test_scoring_exporting_and_the_shared_pieces_import_no_training_module(module):
    assert not _ml_imports(module) & {"train", "finetune"}


def test_the_two_training_modes_do_not_import_each_other():
    assert "finetune" not in _ml_imports("train") and "train" not in _ml_imports("finetune")


class _Scripted:
    """A trainer whose epochs are given: (validation loss, recall of class a, recall of class b) per epoch."""

    def __init__(self, script):
        self.script, self.kept = script, []

    def train_epoch(self, epoch):
        return loop.EpochResult(1.0, 1)

    def validate(self, epoch):
        loss, ra, rb = self.script[epoch - 1]
        per_class = {
            "a": {"recall": ra, "support": 5},
            "b": {"recall": rb, "support": 5},
            "c": {"recall": 0.0, "support": 0},
        }
        return loop.Validation(loss, {"acc": (ra + rb) / 2, "macro_f1": 0.0, "per_class": per_class})

    def keep_best(self, epoch):
        self.kept.append(epoch)


class _Ctx:
    def __init__(self):
        self.events = []

    def emit(self, event):
        self.events.append(event)

    def progress(self, *a, **kw):
        pass

    def log(self, *a, **kw):
        pass

    def should_stop(self):
        return False


# Loss rises from the first epoch on while the classes get told apart: a validation split of other cameras.
SHIFTED = [(0.60, 1.0, 0.0), (0.65, 0.8, 0.6), (0.70, 0.8, 0.8), (0.75, 0.8, 0.8), (0.90, 0.6, 0.6), (0.95, 0.6, 0.6)]


def test_the_best_epoch_is_the_most_balanced_one_not_the_lowest_loss():
    from vidtrain_gui.ml.distributed import SINGLE

    trainer = _Scripted(SHIFTED)
    result = loop.fit(_Ctx(), trainer, epochs=6, patience=2, dist=SINGLE)
    # Epoch 1 says "a" for everything (balanced 0.5): its loss is the lowest, yet it is not kept.
    assert result.best_epoch == 3 and trainer.kept == [1, 2, 3]  # epoch 4 ties on balance, loses on loss
    assert result.epochs_run == 5  # two epochs without a better one after epoch 3
    assert loop.balanced_accuracy(result.best_metrics) == 0.8


def test_the_first_loops_rule_kept_the_lowest_loss(monkeypatch):
    from vidtrain_gui.ml.distributed import SINGLE

    monkeypatch.setattr(loop, "SELECT", "loss")
    result = loop.fit(_Ctx(), _Scripted(SHIFTED), epochs=6, patience=2, dist=SINGLE)
    assert result.best_epoch == 1 and result.epochs_run == 3

"""The exact fit of the linear and stats heads (ml/exact.py): the solution is the optimum of the penalised,
class-weighted loss on standardised summaries, whatever the seed or the order of the samples; the training job uses
it by default for those heads, reports its rounds as epochs, keeps the fit on every window, and refuses it for a
head it cannot solve."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from motionproject import import_motion_videos, stop_after_epoch, tag_by_motion, train_as_job

from vidtrain_gui.core import labels as L
from vidtrain_gui.core import options as OPT
from vidtrain_gui.core import runs as R
from vidtrain_gui.ml.checkpoint import read_checkpoint
from vidtrain_gui.ml.exact import ExactFit, block_scales, can_fit_exactly, fit_exact, summaries
from vidtrain_gui.ml.heads import make_head
from vidtrain_gui.ml.metrics import balanced_weights
from vidtrain_gui.ml.model import clip_probabilities
from vidtrain_gui.ml.oof import fit_head

CLIP_RANGES = [(s + 1, s + 14) for s in (0, 30, 60)] + [(s + 15, s + 29) for s in (0, 30, 60)]


def _data(n: int = 80, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """[n, 5, 6 + 3] samples whose class shows in the spread of one motion column and the mean of one feature,
    on columns of very different scales (as cached features and flow descriptors are)."""
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % 2
    x = torch.randn(n, 5, 9, generator=g) * torch.tensor([1, 10, 0.1, 1, 1, 100, 1, 1, 1.0])
    x[:, :, 0] += 2.0 * y[:, None]
    x[:, :, 7] *= 1 + 3 * y[:, None]
    return x, y


def _head(name: str = "stats"):
    torch.manual_seed(0)
    return make_head(name, 6, 2, 5, motion_dim=3, deltas=True)


def _objective_gradient(head, x, y, l2: float) -> float:
    """The gradient's norm of the penalised loss at the fitted head, in the standardised coordinates it solves."""
    z = summaries(head, x)
    mu, sd = z.mean(0), block_scales(z, head.summary_blocks())
    w = (head.out.weight.detach() * sd).requires_grad_()
    b = (head.out.bias.detach() + head.out.weight.detach() @ mu).requires_grad_()
    loss_fn = torch.nn.CrossEntropyLoss(weight=balanced_weights(y, 2))
    loss = loss_fn(((z - mu) / sd) @ w.T + b, y) + l2 * w.pow(2).sum()
    gw, gb = torch.autograd.grad(loss, [w, b])
    return float(torch.cat([gw.flatten(), gb]).norm())


def test_the_fit_is_the_optimum_and_the_head_computes_it():
    x, y = _data()
    head = fit_exact(_head(), x, y, balanced_weights(y, 2), l2=0.3)
    assert _objective_gradient(head, x, y, 0.3) < 1e-3
    assert not head.training
    # It learned the two signals: on fresh samples of the same kind it is right nearly always.
    xt, yt = _data(200, seed=1)
    with torch.no_grad():
        assert (head(xt).argmax(1) == yt).float().mean() > 0.9


def test_the_solution_does_not_depend_on_the_seed_or_the_order_of_the_samples():
    x, y = _data()
    a = fit_exact(_head(), x, y, balanced_weights(y, 2), l2=0.3)
    perm = torch.randperm(len(y), generator=torch.Generator().manual_seed(5))
    torch.manual_seed(123)  # another initialisation of the head's other layers: none of them is trained
    b = fit_exact(make_head("stats", 6, 2, 5, motion_dim=3, deltas=True), x[perm], y[perm], balanced_weights(y, 2),
                  l2=0.3)  # fmt: skip
    sd = block_scales(summaries(a, x), a.summary_blocks())  # the weights as solved, on scaled columns
    assert torch.allclose(a.out.weight.detach() * sd, b.out.weight.detach() * sd, atol=1e-4)
    with torch.no_grad():
        assert torch.allclose(a(x), b(x), atol=1e-3)


def test_a_stronger_penalty_gives_smaller_standardised_weights_and_a_softer_model():
    x, y = _data()
    norms, confidence = [], []
    for l2 in (0.01, 1.0, 100.0):
        head = fit_exact(_head(), x, y, balanced_weights(y, 2), l2=l2)
        sd = block_scales(summaries(head, x), head.summary_blocks())
        norms.append(float((head.out.weight.detach() * sd).norm()))
        with torch.no_grad():
            confidence.append(float(torch.softmax(head(x), 1).amax(1).mean()))
    assert norms[0] > norms[1] > norms[2] and confidence[0] > confidence[1] > confidence[2]


def test_the_linear_head_fits_too_and_sequence_heads_cannot():
    x, y = _data()
    linear = fit_exact(_head("linear"), x, y, balanced_weights(y, 2), l2=0.3)
    assert _objective_gradient(linear, x, y, 0.3) < 1e-3
    gru = _head("gru")
    assert not can_fit_exactly(gru)
    with pytest.raises(ValueError, match="no summary"):
        ExactFit(gru, x, y, balanced_weights(y, 2))


def test_each_kind_of_column_is_scaled_as_one_so_a_still_column_is_not_blown_up():
    z = torch.cat([torch.randn(50, 4) * torch.tensor([1.0, 2.0, 1.0, 1e-4]), torch.full((50, 2), 3.0)], dim=1)
    scales = block_scales(z, [4, 2])
    # One scale for the block: the square root of its total variance (about 1 + 4 + 1 + 0 here).
    total = float(z[:, :4].var(dim=0, unbiased=False).sum().sqrt())
    assert torch.allclose(scales[:4], torch.full((4,), total)) and 2.0 < total < 3.0
    assert torch.equal(scales[4:], torch.ones(2))  # a block that does not vary stays as it is
    with pytest.raises(ValueError, match="do not add up"):
        block_scales(z, [4, 1])
    assert _head().summary_blocks() == [6, 6, 3, 6, 6, 3]  # means, then spreads: appearance, deltas, motion


def test_an_outlier_in_a_column_that_never_varied_does_not_decide_the_prediction():
    """A motion column that stood still in every training clip (scaled by its column's deviation it would weigh
    like the informative ones) moves once in a new video: the prediction stays."""
    x, y = _data()
    x[:, :, 8] = 0.5 + 1e-3 * torch.randn(x.shape[:2], generator=torch.Generator().manual_seed(2))
    head = fit_exact(_head(), x, y, balanced_weights(y, 2))
    moved = x.clone()
    moved[:, :, 8] = 2.0
    with torch.no_grad():
        assert (head(moved).argmax(1) == head(x).argmax(1)).float().mean() > 0.95


def test_a_constant_column_is_left_as_it_is_not_divided_by_zero():
    x, y = _data()
    x[:, :, 3] = 7.0  # no spread and the same mean in every sample
    head = fit_exact(_head(), x, y, balanced_weights(y, 2))
    assert torch.isfinite(head.out.weight).all() and torch.isfinite(head.out.bias).all()


# ---- the training job ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    p = import_motion_videos(tmp_path_factory.mktemp("exact"), ("left", "right", "left", "right"), first_length=100)
    tag_by_motion(p, CLIP_RANGES)
    yield p
    p.close()


_run = train_as_job


def test_the_default_head_is_fitted_exactly_and_kept_fitted_on_every_window(project):
    run, events = _run(project)
    assert run.status == "done", run.error
    m = run.metrics
    ck = read_checkpoint(R.run_dir(project, run.id) / "best.pt")
    config = ck["config"]
    assert (config["head"], config["solver"], config["l2"]) == ("stats", "exact", OPT.DEFAULT_L2)
    epochs = [e for e in events if e["type"] == "epoch"]
    assert [e["epoch"] for e in epochs] == list(range(1, m["epochs_run"] + 1)) and m["best_epoch"] == m["epochs_run"]
    assert epochs[-1]["train_loss"] <= epochs[0]["train_loss"]
    assert m["validation"] == "held_out" and m["refit"] is True
    logs = [e["message"] for e in events if e["type"] == "log"]
    assert any(s.startswith("exact fit: converged in") for s in logs)
    assert any(s.startswith("fitting the head on all") for s in logs)
    # The kept head is not the validated one: it also saw the validation clips. Both score the motion well.
    clips = L.list_clips(project)
    probs = clip_probabilities(project, R.run_dir(project, run.id) / "best.pt", clips)
    truth = np.array([c.class_id for c in clips])
    names = sorted({c.class_id for c in clips})
    assert np.mean(np.array(names)[probs.argmax(1)] == truth) == 1.0
    assert m["val_acc"] >= 0.8


def test_the_same_run_twice_and_another_seed_fit_the_same_head(project):
    a, _ = _run(project)
    b, _ = _run(project, seed=7)
    sa, sb = (read_checkpoint(R.run_dir(project, r.id) / "best.pt")["state_dict"] for r in (a, b))
    # Another seed draws another validation split, so the validated numbers may differ; the kept head, fitted on
    # every window, is the same solution.
    assert torch.allclose(sa["out.weight"], sb["out.weight"], atol=1e-3)


def test_stop_after_the_first_round_keeps_that_round(project):
    run, events = _run(project, on_ctx=stop_after_epoch(1))
    assert run.status == "stopped" and run.metrics["epochs_run"] == 1
    assert (R.run_dir(project, run.id) / "best.pt").exists()


def test_solver_choices_are_checked(project):
    run, _ = _run(project, head="gru", solver="exact")
    assert run.status == "failed" and "the gru head cannot be fitted exactly" in run.error
    run, _ = _run(project, solver="newton")
    assert run.status == "failed" and "unknown solver 'newton'" in run.error
    run, events = _run(project, solver="adamw", epochs=3)
    assert run.status == "done" and run.metrics["epochs_run"] == 3 and run.metrics["refit"] is False
    ck = read_checkpoint(R.run_dir(project, run.id) / "best.pt")
    assert ck["config"]["solver"] == "adamw"


def test_the_out_of_fold_models_use_the_runs_solver():
    x, y = _data()
    config = {"head": "stats", "feature_dim": 6, "num_classes": 2, "frames": 5, "seed": 0, "solver": "exact",
              "l2": 0.3, "head_kwargs": {"motion_dim": 3, "deltas": True}}  # fmt: skip
    got = fit_head(config, x, y, 1, torch.device("cpu"))
    want = fit_exact(_head(), x, y, balanced_weights(y, 2), l2=0.3)
    assert torch.allclose(got.out.weight, want.out.weight, atol=1e-5)

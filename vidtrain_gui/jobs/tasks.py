"""The jobs VidTrain runs, assembled once: each function records its Run (kind, config, parent run, classes) and
runs the ml work as that Run (:func:`~vidtrain_gui.jobs.runner.run_job`). The CLI calls these for every job
command, the window starts them through the CLI in a process of their own, and a benchmark or a test calling them
gets the same Run as a user would. The ml modules are imported inside the work: importing this module costs no torch.

What a training job knows about the model it made (its classes, its checkpoint) it records on its Run itself
(``ml.loop.finish_run``), so even a caller of ``ml.train.train`` through ``run_job`` leaves a complete Run.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, TextIO

from vidtrain_gui.core import options as OPT
from vidtrain_gui.core import runs as R
from vidtrain_gui.jobs.runner import run_distributed_job, run_job

# Left to each mode's own defaults (core/options.py MODE_DEFAULTS) unless given.
TUNED = tuple(OPT.MODE_DEFAULTS[OPT.DEFAULT_MODE])
FAST_ONLY = ("fps", "deltas", "motion")
FINETUNE_ONLY = ("unfreeze", "workers")


def train_config(options: dict[str, Any]) -> dict[str, Any]:
    """The training Run's config from the CLI's options (``mode``, ``backbone``, ``weights``, ``head``, ``frames``,
    ``seed``, ``device``, the mode's own options, and ``epochs``/``lr``/``batch_size``/``patience`` when given)."""
    config = {k: options[k] for k in ("mode", "backbone", "weights", "head", "frames", "seed", "device")}
    config.update({k: options[k] for k in TUNED if options.get(k) is not None})
    own = FINETUNE_ONLY if options["mode"] == "finetune" else FAST_ONLY
    config.update({k: options.get(k) for k in own})
    return config


def train_work(options: dict[str, Any], dist=None):
    """The training job's ``work``: fast mode (``ml.train``) or fine-tune mode (``ml.finetune``), on ``dist``
    (this process's place under torchrun; single-process when None)."""

    def work(ctx):
        from vidtrain_gui.ml.distributed import SINGLE

        tuned = {k: options[k] for k in TUNED if options.get(k) is not None}
        common = dict(backbone=options["backbone"], weights=options["weights"], head=options["head"],
                      frames=options["frames"], seed=options["seed"], device=options["device"], dist=dist or SINGLE,
                      **tuned)  # fmt: skip
        if options["mode"] == "finetune":
            from vidtrain_gui.ml.finetune import finetune

            common.update({k: options[k] for k in FINETUNE_ONLY if options.get(k) is not None})
            return finetune(ctx, **common)
        from vidtrain_gui.ml.train import train

        return train(ctx, sample_fps=options["fps"], deltas=options["deltas"], motion=options["motion"], **common)

    return work


def train_job(project, options: dict[str, Any], *, stdout: TextIO | None = None, **config_extra) -> R.RunInfo:
    """Train as one job in this process (``config_extra`` goes into the Run's config, e.g. ``predict_after``)."""
    return run_job(project, "train", {**train_config(options), **config_extra}, train_work(options), stdout=stdout)


def train_distributed_job(project, options: dict[str, Any], dist, *, stdout: TextIO | None = None):
    """This torchrun process's part of one training job (``runner.run_distributed_job``: rank 0 records the Run)."""
    config = {**train_config(options), "world_size": dist.world_size, "backend": dist.backend}
    return run_distributed_job(project, "train", config, train_work(options, dist), dist, stdout=stdout)


def predict_job(project, train_run: R.RunInfo, *, stride_s: float | None = None, video_ids=None,
                device: str = OPT.DEFAULT_DEVICE, postprocess: dict | None = None, folds: int = OPT.DEFAULT_FOLDS,
                stdout: TextIO | None = None) -> R.RunInfo:  # fmt: skip
    """Predict every video (or ``video_ids``) with ``train_run``; the Run's parent is that run, and its classes
    are the run's (predictions keep meaning what they meant when it was trained)."""
    post = dict(postprocess or {})
    config = {"train_run": train_run.id, "stride_s": stride_s, "video_ids": video_ids, "device": device,
              "folds": folds, "postprocess": post}  # fmt: skip

    def work(ctx):
        from vidtrain_gui.ml.predict import predict

        return predict(ctx, run_id=train_run.id, stride_s=stride_s, video_ids=video_ids, device=device,
                       postprocess=post, folds=folds)  # fmt: skip

    return run_job(project, "predict", config, work, stdout=stdout, parent_run_id=train_run.id,
                   classes=train_run.classes)  # fmt: skip


def export_job(project, train_run: R.RunInfo, out: str | Path, *, stdout: TextIO | None = None) -> R.RunInfo:
    """Write ``train_run``'s model bundle to ``out`` (ml/export.py)."""
    config = {"train_run": train_run.id, "out": str(Path(out).resolve())}

    def work(ctx):
        from vidtrain_gui.ml.export import export_model

        return export_model(ctx.project, train_run.id, out, log=ctx.log, emit=ctx.emit)

    return run_job(project, "export", config, work, stdout=stdout, parent_run_id=train_run.id,
                   classes=train_run.classes)  # fmt: skip


def features_job(project, *, backbone: str = OPT.DEFAULT_BACKBONE, weights: str = OPT.DEFAULT_WEIGHTS,
                 sample_fps: float = OPT.DEFAULT_FPS, device: str = OPT.DEFAULT_DEVICE,
                 batch_size: int = OPT.FEATURE_BATCH_SIZE, motion: bool = OPT.DEFAULT_MOTION,
                 stdout: TextIO | None = None) -> R.RunInfo:  # fmt: skip
    """Compute and cache every video's frozen-backbone features (and motion descriptors with ``motion``)."""
    config = {"backbone": backbone, "weights": weights, "sample_fps": sample_fps, "device": device,
              "batch_size": batch_size, "motion": motion}  # fmt: skip

    def work(ctx):
        from vidtrain_gui.ml.features import extract_features

        report = extract_features(ctx.project, backbone=backbone, weights=weights, sample_fps=sample_fps,
                                  device=device, batch_size=batch_size, should_stop=ctx.should_stop, emit=ctx.emit,
                                  motion=motion)  # fmt: skip
        return report.as_dict()

    return run_job(project, "features", config, work, stdout=stdout)


__all__ = ["export_job", "features_job", "predict_job", "train_config", "train_distributed_job", "train_job"]

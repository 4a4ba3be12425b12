"""``vidtrain`` commands that run jobs (jobs/tasks.py: features, train, predict, export model) or read their results
(segments, review, runs), and ``devices``. torch is imported only inside the jobs and ``devices``."""

from __future__ import annotations

import json
import os
import sys

from vidtrain_gui.cli.common import EXIT_ERROR, CliError, emit, event_output, exit_code, find_video, open_project
from vidtrain_gui.core import runs as R
from vidtrain_gui.core import videos as V


def cmd_features(args) -> int:
    from vidtrain_gui.jobs.tasks import features_job

    with open_project(args) as p:
        return exit_code(features_job(p, backbone=args.backbone, weights=args.weights, sample_fps=args.fps,
                                       device=args.device, batch_size=args.batch_size, motion=args.motion,
                                       stdout=event_output(args)))  # fmt: skip


def _train_options(args) -> dict:
    keys = ("mode", "backbone", "weights", "head", "frames", "seed", "device", "epochs", "lr", "batch_size",
            "patience", "fps", "deltas", "motion", "unfreeze", "workers")  # fmt: skip
    return {k: getattr(args, k, None) for k in keys}


def cmd_train(args) -> int:
    from vidtrain_gui.jobs.tasks import predict_job, train_job
    from vidtrain_gui.launch import launched_by_torchrun  # stdlib: torch is imported by the job

    if launched_by_torchrun():
        return _train_distributed(args)
    # With --predict, a window reattaching later knows a prediction run follows.
    extra = {"predict_after": True} if args.predict else {}
    with open_project(args) as p:
        run = train_job(p, _train_options(args), stdout=event_output(args), **extra)
        if run.status not in ("done", "stopped"):
            return EXIT_ERROR
        if not args.predict or not (R.run_dir(p, run.id) / "best.pt").is_file():
            return 0
        # The same process goes on to predict: the window's Train button shows predictions without a second
        # start of Python and torch (seconds on a laptop).
        return exit_code(predict_job(p, R.get_run(p, run.id), device=args.device, stdout=event_output(args)))


def _train_distributed(args) -> int:
    """One of torchrun's processes: rank 0 runs the job (Run row, events, stop and cancel), the others train
    alongside it quietly (jobs.runner.run_distributed_job)."""
    from vidtrain_gui.jobs.tasks import train_distributed_job
    from vidtrain_gui.ml.distributed import device_for, setup, teardown

    dist = setup(args.device)
    args.device = device_for(dist, args.device)
    try:
        if not dist.is_main:
            dist.barrier()  # rank 0 opens the project first: it may have to migrate the schema
        # Only rank 0 writes the database; the others only read it.
        with open_project(args, readonly=not dist.is_main) as p:
            if dist.is_main:
                dist.barrier()
            result = train_distributed_job(p, _train_options(args), dist, stdout=event_output(args))
    finally:
        teardown(dist)
    if isinstance(result, str):  # this rank failed; rank 0 records it in the run
        print(f"vidtrain: error: {result}", file=sys.stderr)
        code = EXIT_ERROR
    else:
        code = 0 if result is None else exit_code(result)
    # The job is over and recorded (project closed, events written): leave now, without the C++ destructors that
    # run at interpreter exit. Once in CI a rank that had finished aborted there ("terminate called without an
    # active exception", SIGABRT), and torchrun then failed the whole job although it had succeeded.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def _segment_settings(args) -> dict:
    """The segment settings given on the command line (core.segments.Postprocess fields)."""
    given = {k: v for k, v in (("smoothing", args.smoothing), ("min_segment_s", args.min_segment),
                               ("switch_penalty", args.switch_penalty)) if v is not None}  # fmt: skip
    if args.threshold:
        given["thresholds"] = dict(args.threshold)
    return given


def cmd_predict(args) -> int:
    from vidtrain_gui.jobs.tasks import predict_job

    with open_project(args) as p:
        train_run = R.resolve_train_run(p, args.run)  # a failed or cancelled run is refused before any job
        video_ids = [find_video(p, ref).id for ref in args.videos] if args.videos else None
        run = predict_job(p, train_run, stride_s=args.stride, video_ids=video_ids, device=args.device,
                          postprocess=_segment_settings(args), folds=args.folds, stdout=event_output(args))  # fmt: skip
        return exit_code(run)


def cmd_segments(args) -> int:
    from vidtrain_gui.core.segments import Postprocess, resegment

    with open_project(args) as p:
        run = R.resolve_prediction_run(p, args.run)
        base = Postprocess.from_dict((run.config or {}).get("postprocess")).to_dict()
        given = _segment_settings(args)
        post = Postprocess(**{**base, **given, "thresholds": {**base["thresholds"], **given.get("thresholds", {})}})
        count = resegment(p, run.id, post)
    emit(
        args,
        {"run_id": run.id, "segments": count, "postprocess": post.to_dict()},
        f"run {run.id}: {count} segment(s) with {json.dumps(post.to_dict())}",
    )
    return 0


def _review_item(item, names: list[str], videos: dict) -> dict:
    """One review-queue item as ``vidtrain review --json`` shows it (``scores``: the run's classes in its order)."""
    from vidtrain_gui.core.predictions import decode_probs

    pred = item.prediction
    probs = decode_probs(pred.probs)
    video = videos.get(pred.video_id)
    return {
        "prediction_id": pred.id, "kind": pred.kind, "clip_id": pred.clip_id, "video_id": pred.video_id,
        "video": video.name if video else None, "start_frame": pred.start_frame, "end_frame": pred.end_frame,
        "predicted": item.predicted, "confidence": item.top1, "margin": item.margin,
        "scores": None if probs is None else {n: float(s) for n, s in zip(names, probs)},
        "label": item.label, "origin": pred.origin,
    }  # fmt: skip


def cmd_review(args) -> int:
    from vidtrain_gui.core.review import pending_review

    kinds = ("clip",) if args.clips_only else ("clip", "window")
    with open_project(args, readonly=True) as p:
        run = R.resolve_prediction_run(p, args.run)
        items = pending_review(p, run.id, args.order, kinds=kinds)  # what the window's review panel lists
        videos = {v.id: v for v in V.list_videos(p)}
    total = len(items)
    rows = [_review_item(it, list(run.classes or []), videos) for it in items[: args.limit]]

    def line(r: dict) -> str:
        what = f"clip {r['clip_id']}" if r["kind"] == "clip" else r["kind"]
        scores = " ".join(f"{n}={s:.2f}" for n, s in (r["scores"] or {}).items())
        return (f"{r['prediction_id']}\t{what}\t{r['video_id']} {r['video']}\t{r['start_frame']}-{r['end_frame']}\t"
                f"{r['predicted']} {r['confidence']:.2f} (margin {r['margin']:.2f})\t{scores}\t"
                f"label: {r['label'] or '-'}")  # fmt: skip

    doc = {"run_id": run.id, "train_run_id": run.parent_run_id, "order": args.order, "kinds": list(kinds),
           "classes": list(run.classes or []), "total": total, "items": rows}  # fmt: skip
    emit(args, doc, "\n".join(map(line, rows)) or f"run {run.id}: nothing to review")
    return 0


def _export_model(args) -> int:
    from vidtrain_gui.jobs.tasks import export_job

    if not args.out:
        raise CliError("export model needs --out DIR (the bundle's folder)")
    with open_project(args) as p:
        return exit_code(export_job(p, R.resolve_train_run(p, args.run), args.out, stdout=event_output(args)))


def cmd_runs(args) -> int:
    from vidtrain_gui.jobs.runner import reap_stale_runs, request_cancel, request_stop

    with open_project(args, readonly=False) as p:
        if args.action == "list":
            reap_stale_runs(p)  # a job killed outright shows as failed, not as running forever
            rs = R.list_runs(p, kind=args.kind)
            emit(
                args,
                rs,
                "\n".join(f"{r.id}\t{r.kind}\t{r.status}\t{r.created_at:%Y-%m-%d %H:%M}\t{r.error or ''}" for r in rs)
                or "no runs",
            )
        elif args.action == "stop":
            request_stop(p, args.run_id)
            emit(args, {"run_id": args.run_id, "requested": "stop"}, f"asked run {args.run_id} to stop early")
        elif args.action == "cancel":
            if not request_cancel(p, args.run_id):
                raise CliError(f"run {args.run_id} is not running on this machine")
            emit(args, {"run_id": args.run_id, "requested": "cancel"}, f"cancelled run {args.run_id}")
    return 0


def cmd_devices(args) -> int:
    """What the Advanced training dialog offers: the devices here (the one "auto" picks first) and the backbones
    with whether their weights are on this machine."""
    from vidtrain_gui.buildinfo import gpu_memory_text
    from vidtrain_gui.ml.backbones import get_backbone, list_backbones  # torch: only in this command's process
    from vidtrain_gui.ml.device import DeviceUnavailableError, cpu_note, cuda_details, describe_device, pick_device

    def entry(choice: str, dev) -> dict:
        return {"id": choice, "name": describe_device(dev), **(cuda_details(dev) if dev.type == "cuda" else {})}

    auto = pick_device("auto")
    devices = [entry("auto", auto), {"id": "cpu", "name": "CPU"}]
    for choice in ["mps"] + [f"cuda:{i}" for i in range(_cuda_count())]:
        try:
            devices.append(entry(choice, pick_device(choice)))
        except (DeviceUnavailableError, ValueError):
            pass
    backbones = []
    for name in list_backbones():
        b = get_backbone(name)
        backbones.append({"name": name, "kind": b.kind, "description": b.description, "feature_dim": b.feature_dim,
                          "weights_available": b.has_default_weights()})  # fmt: skip
    out = {"devices": devices, "default": devices[0]["name"], "backbones": backbones, "cpu_note": cpu_note(auto)}
    lines = [f"{d['id']}\t{d['name']}" + (f", {gpu_memory_text(d)}" if gpu_memory_text(d) else "") for d in devices]
    emit(args, out, "\n".join(lines + [""] + [
        f"{b['name']}\t{b['kind']}\t{'weights here' if b['weights_available'] else 'weights not downloaded'}"
        for b in backbones] + ([f"\nnote: {out['cpu_note']}"] if out["cpu_note"] else [])))  # fmt: skip
    return 0


def _cuda_count() -> int:
    import torch

    return torch.cuda.device_count() if torch.cuda.is_available() else 0

"""Timeline benchmark: predictions along long videos of cameras the model never saw, against boundaries known by
construction.

1. **Leave-source-out timelines.** ``../shared/tools/build_timelines.py`` joins the clips of each fight-dev source
   (``group``) with both classes into one long video (19 videos, 71 true segments, about 5 minutes; neighbouring
   clips of one class merged). For each of them, the product's training job trains the default design on the clips
   of every *other* source (bench/train.py's project: the 185 clip files, tagged whole), then the run's own model
   scores windows along the held-out source's long video (``ml.model.TrainedModel.score`` on cached features, as the
   predict job does) at several strides, and out-of-fold models of the run's training clips (``ml.oof``, as the
   predict job makes them) give the per-class thresholds. ``--seeds`` trains every fold with other seeds (another
   validation split of the training sources): how much the result hangs on it.
2. **Post-processing.** Every candidate setting (stride, smoothing, switch penalty, minimum segment, thresholds from
   out-of-fold predictions or none) turns each fold's windows into segments with ``core.segments.segment_windows``,
   the product's own rule. Scored on every frame of the 19 videos: frame accuracy and macro-F1 from the windows
   (each span's argmax) and from the segments (unassigned frames count as wrong), segment F1 at IoU 0.5 (one-to-one
   matches of the same class), the number of segments against the truth, and the boundary error (each true boundary
   to the nearest predicted one, seconds). "before" is the first version's default (windows of a clip every half a
   clip, smoothing over 3 windows, segments at least a clip long, argmax). **Nested:** for each held-out video the
   setting is chosen on the other 18 videos only (best segment F1 + frame macro-F1 from segments) and scored on it:
   what choosing among the candidates is worth when the choice cannot see the video it is scored on.
3. **Footage.** The default trained on all fight-dev clips predicts ``../shared/data/footage`` long videos through
   the product's ``predict`` job: wall time (features included, then from the cache) and the track, one letter per
   second.

    .venv/bin/python bench/timeline.py [--seeds 1] [--quick] [--skip-footage]

Timelines go to bench/out/timelines, the project to bench/out/timeline (a copy of bench/out/fight-dev plus the long
videos; features cached once), fold results to bench/out/timeline_folds.json (``--reuse`` skips the training),
results to bench/out/timeline.md and bench/out/timeline.json.
"""

from __future__ import annotations

import argparse
import csv
import datetime as _dt
import itertools
import json
import shutil
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from benchutil import write_results  # noqa: E402
from train import DATA, OUT, _job, build_project, cpu_name  # noqa: E402

from vidtrain_gui.core import labels as L  # noqa: E402
from vidtrain_gui.core import videos as V  # noqa: E402
from vidtrain_gui.core.project import Project  # noqa: E402
from vidtrain_gui.core.segments import segment_windows  # noqa: E402
from vidtrain_gui.ml.trainset import read_training_set  # noqa: E402

TIMELINES = OUT / "timelines"
PROJECT = OUT / "timeline"
FOLDS_FILE = OUT / "timeline_folds.json"
FOOTAGE = ("vtest.avi", "m3v1mp4.mp4", "single_fly.mp4")


# ---- the project --------------------------------------------------------------------------------------------------


def build_timelines() -> list[dict]:
    truth = TIMELINES / "truth.csv"
    if not truth.is_file():
        tool = REPO / ".." / "shared" / "tools" / "build_timelines.py"
        subprocess.run([sys.executable, str(tool), str(DATA / "manifest.csv"), str(DATA), str(TIMELINES),
                        "--prefix", "fight-dev/"], check=True)  # fmt: skip
    with truth.open(newline="") as f:
        return list(csv.DictReader(f))


def open_project(truth: list[dict]) -> Project:
    """bench/out/fight-dev's database and cache copied, plus the long videos (each in its source's group)."""
    from vidtrain_gui.footage.ingest import import_paths
    from vidtrain_gui.ml.features import extract_features

    names = sorted({r["video"] for r in truth})
    if (PROJECT / "project.vidtrain").is_file():
        p = Project.open(PROJECT)
        if {v.name for v in V.list_videos(p)} >= set(names):
            return p
        p.close()
        shutil.rmtree(PROJECT)
    build_project(DATA, OUT / "fight-dev").close()
    PROJECT.mkdir(parents=True)
    shutil.copy2(OUT / "fight-dev" / "project.vidtrain", PROJECT / "project.vidtrain")
    shutil.copytree(OUT / "fight-dev" / "cache", PROJECT / "cache")
    p = Project.open(PROJECT)
    list(import_paths(p, [TIMELINES / n for n in names], thumbnails=False))
    group = {r["video"]: r["group"] for r in truth}
    for v in V.list_videos(p):
        if v.name in group:
            V.set_video_group(p, v.id, group[v.name])
    t = time.perf_counter()
    _job(p, "features", lambda ctx: extract_features(p, motion=True, device="cpu", emit=ctx.emit) and None)
    print(f"features of the long videos: {time.perf_counter() - t:.0f} s")
    return p


# ---- 1. the folds -------------------------------------------------------------------------------------------------


def run_folds(p: Project, truth: list[dict], seeds: list[int], window_lengths: list[float],
              quick: bool) -> list[dict]:  # fmt: skip
    """Per (seed, window length, long video): the run's windows at every stride and its out-of-fold clip
    probabilities. Window lengths are fractions of the median training clip (1: the first version's window)."""
    from vidtrain_gui.ml.model import load
    from vidtrain_gui.ml.oof import out_of_fold
    from vidtrain_gui.ml.predict import plan_windows
    from vidtrain_gui.ml.train import train

    videos = {v.name: v for v in V.list_videos(p)}
    group_of = {v.id: v.group_name for v in videos.values()}
    clip_group = {c.id: group_of[c.video_id] for c in L.list_clips(p)}
    long_names = sorted({r["video"] for r in truth})
    if quick:
        long_names = long_names[:4]
    out = []
    for seed, window, name in itertools.product(seeds, window_lengths, long_names):
        v = videos[name]
        train_ids = [cid for cid, g in clip_group.items() if g != v.group_name]
        median = read_training_set(p, train_ids).median_clip_s()
        kw = {"clip_ids": train_ids, "seed": seed, "device": "cpu", "window_s": round(window * median, 4)}
        run, wall = _job(p, "train", lambda ctx, kw=kw: train(ctx, **kw))
        model = load(p.runs_dir / run.id / "best.pt", "cpu")
        length_s = float(model.config["clip_length_s"])
        rows_of = model.prepare(p, [v], device="cpu")
        windows = {}
        sample = 1.0 / float(model.config["sample_fps"])
        for label, stride_s in (("half", length_s / 2), ("quarter", length_s / 4), ("sample", sample)):
            starts, ends = plan_windows(v.frame_count, v.fps, length_s, stride_s)
            probs = model.score(p, v, np.stack([starts, ends], axis=1), rows_of)
            windows[label] = {"starts": starts.tolist(), "ends": ends.tolist(), "probs": probs.round(5).tolist()}
        t = time.perf_counter()
        oof = out_of_fold(p, model.checkpoint, run.metrics, device="cpu")
        oof_s = time.perf_counter() - t
        label_of = {int(c): int(y) for c, y in run.metrics["train_clips"]}
        ids = sorted(oof.probs)
        out.append({
            "seed": seed, "window": window, "video": name, "group": v.group_name, "fps": v.fps, "frames": v.frame_count,
            "run": run.id, "train_s": round(wall, 1), "oof_s": round(oof_s, 1), "length_s": length_s,
            "val_bal": run.metrics.get("val_balanced_acc"), "classes": model.class_names, "windows": windows,
            "oof_probs": [oof.probs[i].round(5).tolist() for i in ids], "oof_labels": [label_of[i] for i in ids],
        })  # fmt: skip
        print(
            f"seed {seed} window {window:g} clip {name}: trained in {wall:.0f} s, out-of-fold {oof_s:.0f} s", flush=True
        )
    return out


# ---- 2. scoring ---------------------------------------------------------------------------------------------------


def truth_frames(truth: list[dict], name: str, n: int, classes: list[str]) -> np.ndarray:
    y = np.full(n, -1, dtype=np.int64)
    for r in truth:
        if r["video"] == name:
            y[int(r["start_frame"]) : int(r["end_frame"])] = classes.index(r["class"])
    return y


def as_segments(labels: np.ndarray) -> list[tuple[int, int, int]]:
    """Runs of equal labels ``(start, end, label)``, unassigned (-1) left out."""
    change = np.flatnonzero(np.diff(labels)) + 1
    bounds = [0, *change.tolist(), len(labels)]
    return [(a, b, int(labels[a])) for a, b in zip(bounds, bounds[1:]) if labels[a] >= 0]


def segment_matches(pred: list, true: list) -> int:
    """One-to-one matches of the same class with IoU >= 0.5 (at that IoU a match is unique)."""
    hits = 0
    for a, b, c in true:
        for s, e, k in pred:
            inter = min(b, e) - max(a, s)
            if k == c and inter > 0 and inter / (max(b, e) - min(a, s)) >= 0.5:
                hits += 1
                break
    return hits


def frame_scores(y: np.ndarray, pred: np.ndarray, n_classes: int) -> dict:
    keep = y >= 0
    y, pred = y[keep], pred[keep]
    f1 = []
    for c in range(n_classes):
        tp = np.sum((pred == c) & (y == c))
        denom = np.sum(pred == c) + np.sum(y == c)
        f1.append(2 * tp / denom if denom else 0.0)
    return {"acc": float(np.mean(pred == y)), "macro_f1": float(np.mean(f1)),
            "recall": [float(np.mean(pred[y == c] == c)) if np.any(y == c) else None
                       for c in range(n_classes)]}  # fmt: skip


def labels_from(segs, n: int) -> np.ndarray:
    out = np.full(n, -1, dtype=np.int64)
    for s in segs:
        out[s.start_frame : s.end_frame] = s.class_index
    return out


def postprocess(fold: dict, setting: dict, thresholds: dict | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Frame labels from the windows (argmax per span) and from the segments of ``setting``."""
    from vidtrain_gui.ml.oof import choose_thresholds

    w = fold["windows"][setting["stride"]]
    n, fps, length_s = fold["frames"], fold["fps"], fold["length_s"]
    windows = segment_windows(w["starts"], w["ends"], w["probs"], smoothing=1)
    stride_frames = w["starts"][1] - w["starts"][0] if len(w["starts"]) > 1 else 1
    smoothing = setting["smoothing"]
    if smoothing == "cover":  # every window that covers a frame: the window length over the stride
        smoothing = max(1, round(length_s * fps / stride_frames))
    th = None
    if setting.get("thresholds") == "oof":
        chosen = thresholds if thresholds is not None else choose_thresholds(
            np.array(fold["oof_probs"]), np.array(fold["oof_labels"]), fold["classes"])  # fmt: skip
        th = [chosen.get(c, 0.0) for c in fold["classes"]]
    segs = segment_windows(w["starts"], w["ends"], w["probs"], smoothing=int(smoothing), thresholds=th,
                           min_length=int(round(setting["min_clips"] * length_s * fps)),
                           switch_penalty=float(setting["penalty"]))  # fmt: skip
    return labels_from(windows, n), labels_from(segs, n)


def score_setting(folds: list[dict], truth: list[dict], setting: dict) -> dict:
    """Pooled over the ``folds`` of the setting's window length (every frame of their videos) and per video."""
    folds = [f for f in folds if f["window"] == setting["window"]]
    ys, win, seg = [], [], []
    hits = n_pred = n_true = 0
    boundary = []
    per_video = {}
    classes = folds[0]["classes"]
    for fold in folds:
        y = truth_frames(truth, fold["video"], fold["frames"], classes)
        w_labels, s_labels = postprocess(fold, setting)
        pred_segs, true_segs = as_segments(s_labels), as_segments(y)
        h = segment_matches(pred_segs, true_segs)
        hits, n_pred, n_true = hits + h, n_pred + len(pred_segs), n_true + len(true_segs)
        if len(pred_segs) > 1:
            pb = np.array([a for a, _, _ in pred_segs[1:]])
            boundary += [float(np.min(np.abs(pb - a))) / fold["fps"] for a, _, _ in true_segs[1:]]
        ys.append(y)
        win.append(w_labels)
        seg.append(s_labels)
        f = frame_scores(y, s_labels, len(classes))
        per_video[fold["video"]] = {"seg_f1": 2 * h / (len(pred_segs) + len(true_segs)), "frame_f1": f["macro_f1"],
                                    "segments": len(pred_segs), "true": len(true_segs)}  # fmt: skip
    y, win, seg = np.concatenate(ys), np.concatenate(win), np.concatenate(seg)
    fw, fs = frame_scores(y, win, len(classes)), frame_scores(y, seg, len(classes))
    worst = min(per_video.items(), key=lambda kv: kv[1]["frame_f1"])
    return {
        "windows_acc": fw["acc"], "windows_f1": fw["macro_f1"],
        "segments_acc": fs["acc"], "segments_f1": fs["macro_f1"],
        "recall": fs["recall"], "seg_f1": 2 * hits / max(1, n_pred + n_true), "segments": n_pred, "true": n_true,
        "boundary_s": float(np.median(boundary)) if boundary else None, "worst_video": worst[0],
        "worst_frame_f1": worst[1]["frame_f1"], "per_video": per_video,
    }  # fmt: skip


# The first version's default: windows of a clip every half a clip, smoothing over 3, segments at least a clip long.
BEFORE = {"window": 1.0, "stride": "half", "smoothing": 3, "penalty": 0.0, "min_clips": 1.0, "thresholds": None}


def candidates(windows: list[float], quick: bool) -> list[dict]:
    grid = itertools.product(
        windows, ("half", "quarter", "sample"), (1, "cover"), (0.0, 0.5, 1.0, 2.0, 4.0), (0.0, 0.5, 1.0, 1.5, 2.0),
        (None, "oof"),
    )  # fmt: skip
    keys = ("window", "stride", "smoothing", "penalty", "min_clips", "thresholds")
    out = [dict(zip(keys, values)) for values in grid]
    return out[:: 7 if quick else 1]


def nested(folds: list[dict], truth: list[dict], settings: list[dict]) -> dict:
    """For each seed and held-out video: the setting with the best mean (segment F1 + frame macro-F1 from
    segments) over the other videos, scored on that video; then pooled like :func:`score_setting`."""
    picks: Counter = Counter()
    out = {}
    for seed in sorted({f["seed"] for f in folds}):
        mine = [f for f in folds if f["seed"] == seed]
        per_video = [score_setting(mine, truth, st)["per_video"] for st in settings]
        chosen = {}
        for name in sorted(per_video[0]):

            def without(k: int, name=name) -> float:
                return float(np.mean([v["seg_f1"] + v["frame_f1"] for n, v in per_video[k].items() if n != name]))

            best = max(range(len(settings)), key=lambda k: (without(k), -k))
            chosen[name] = settings[best]
            picks[json.dumps(settings[best], sort_keys=True)] += 1
        # Score: each video's frames and segments under its own choice, pooled.
        pooled = [score_setting([f for f in mine if f["video"] == n], truth, st) for n, st in chosen.items()]
        out[seed] = pool(pooled)
    return {"by_seed": out, "picks": picks.most_common(6)}


def pool(results: list[dict]) -> dict:
    """Results of single videos (:func:`score_setting` on one fold each) pooled: segment counts summed, frame
    scores as the mean over videos (and the worst video)."""
    n_true = sum(r["true"] for r in results)
    n_pred = sum(r["segments"] for r in results)
    hits = sum(r["seg_f1"] * (r["segments"] + r["true"]) / 2 for r in results)
    per_video = {k: v for r in results for k, v in r["per_video"].items()}
    worst = min(per_video.items(), key=lambda kv: kv[1]["frame_f1"])
    return {"seg_f1": 2 * hits / max(1, n_pred + n_true), "segments": n_pred, "true": n_true,
            "frame_f1_mean": float(np.mean([v["frame_f1"] for v in per_video.values()])),
            "worst_video": worst[0], "worst_frame_f1": worst[1]["frame_f1"]}  # fmt: skip


def default_setting() -> dict:
    """The product's default (core/options.py) as a benchmark setting."""
    from vidtrain_gui.core import options as OPT

    stride = {0.5: "half", 0.25: "quarter"}.get(OPT.STRIDE_WINDOWS, "sample")
    return {"window": OPT.WINDOW_CLIPS, "stride": stride, "smoothing": "cover" if OPT.SMOOTHING_COVER else 1,
            "penalty": OPT.DEFAULT_SWITCH_PENALTY, "min_clips": OPT.MIN_SEGMENT_WINDOWS,
            "thresholds": "oof" if OPT.OOF_THRESHOLDS else None}  # fmt: skip


def _row(name: str, r: dict) -> str:
    recall = " / ".join(f"{x:.2f}" for x in r["recall"])
    return (f"| {name} | {r['windows_acc']:.3f} | {r['windows_f1']:.3f} | {r['segments_acc']:.3f} | "
            f"{r['segments_f1']:.3f} | {recall} | **{r['seg_f1']:.2f}** | {r['segments']} / {r['true']} | "
            f"{r['boundary_s']:.2f} | {r['worst_frame_f1']:.2f} ({r['worst_video']}) |")  # fmt: skip


def report(res: dict, folds: list[dict], truth: list[dict]) -> str:
    seeds = sorted({f["seed"] for f in folds})
    windows = sorted({f["window"] for f in folds})
    settings = candidates(windows, res.get("quick", False))
    lines = [
        f"# Timeline benchmark ({res['date']}, {res['machine']})", "",
        f"{len({f['video'] for f in folds})} long videos (one per fight-dev source with both classes), "
        f"{sum(1 for r in truth if r['video'] in {f['video'] for f in folds})} true segments; each video predicted by "
        "a run trained on the other sources' clips. Frame scores on every frame; segment F1 at IoU 0.5; boundary "
        "error: median over true boundaries, seconds; worst: the video with the lowest frame macro-F1 from segments.",
        "",
    ]  # fmt: skip
    head = ("| setting | frame acc (windows) | frame macro-F1 (windows) | frame acc (segments) | frame macro-F1 "
            "(segments) | recall per class (segments) | segment F1 @ IoU 0.5 | segments / truth | boundary error s "
            "| worst video frame F1 |")  # fmt: skip
    res["rows"] = {}
    for seed in seeds:
        mine = [f for f in folds if f["seed"] == seed]
        after = default_setting()
        rows = {"before (first version)": BEFORE, "after (the default)": after,
                "after, thresholds from out-of-fold": {**after, "thresholds": "oof"},
                "after, switch penalty 1": {**after, "penalty": 1.0}}  # fmt: skip
        for w in windows:
            rows[f"windows of {w:g} x the median clip, half stride, argmax"] = {
                "window": w,
                "stride": "half",
                "smoothing": 1,
                "penalty": 0.0,
                "min_clips": 0.0,
                "thresholds": None,
            }
        lines += [f"## Seed {seed} ({mine[0]['classes']})", "", head, "|" + "---|" * 10]
        for name, st in rows.items():
            r = score_setting(mine, truth, st)
            res["rows"][f"{seed}:{name}"] = {k: v for k, v in r.items() if k != "per_video"}
            lines.append(_row(name, r))
        lines.append("")
    nest = nested(folds, truth, settings)
    res["nested"] = nest
    lines += ["## Chosen on the other videos (nested)", "",
              "| seed | segment F1 @ IoU 0.5 | segments / truth | frame macro-F1 from segments, mean over videos "
              "| worst video |", "|---|---|---|---|---|"]  # fmt: skip
    for seed, r in nest["by_seed"].items():
        lines.append(f"| {seed} | {r['seg_f1']:.2f} | {r['segments']} / {r['true']} | {r['frame_f1_mean']:.3f} | "
                     f"{r['worst_frame_f1']:.2f} ({r['worst_video']}) |")  # fmt: skip
    lines += ["", "Settings chosen most often (count over seeds x held-out videos):", ""]
    lines += [f"- {n} x `{s}`" for s, n in nest["picks"]]
    return "\n".join(lines) + "\n"


# ---- 3. footage ---------------------------------------------------------------------------------------------------


def footage(quick: bool) -> list[dict]:
    """The default trained on every fight-dev clip predicts each long recording of ../shared/data/footage through the
    product's predict job: first with its features computed, then again from the cache."""
    from vidtrain_gui.core import options as OPT
    from vidtrain_gui.core import runs as R
    from vidtrain_gui.core.predictions import list_predictions
    from vidtrain_gui.footage.ingest import import_paths
    from vidtrain_gui.ml.featurecache import feature_paths
    from vidtrain_gui.ml.motion import MOTION_KEY
    from vidtrain_gui.ml.predict import predict
    from vidtrain_gui.ml.train import train

    p = Project.open(PROJECT)
    fight_clips = [c.id for c in L.list_clips(p)]
    run, _ = _job(p, "train", lambda ctx: train(ctx, clip_ids=fight_clips, device="cpu"))
    paths = [DATA / "footage" / n for n in FOOTAGE[: 1 if quick else None]]
    list(import_paths(p, paths, thumbnails=False))
    videos = {v.name: v for v in V.list_videos(p)}
    out = []
    for path in paths:
        v = videos[path.name]
        for key in (run.metrics["feature_key"], MOTION_KEY):  # the first prediction computes the features
            for f in feature_paths(p, v, key, OPT.DEFAULT_FPS):
                f.unlink(missing_ok=True)
        times = []
        for _ in range(2):
            pred, wall = _job(p, "predict", lambda ctx, v=v: predict(ctx, run_id=run.id, video_ids=[v.id],
                                                                     device="cpu"))  # fmt: skip
            times.append(wall)
        segs = list_predictions(p, pred.id, video_id=v.id, kind="segment")
        classes = R.get_run(p, pred.id).classes
        letters = ["."] * int(np.ceil(v.frame_count / v.fps))
        for sg in segs:
            for t in range(int(sg.start_frame / v.fps), int(np.ceil(sg.end_frame / v.fps))):
                letters[min(t, len(letters) - 1)] = classes[sg.class_index][0]
        out.append({"video": v.name, "seconds_of_video": round(v.frame_count / v.fps, 1), "first_s": times[0],
                    "cached_s": times[1], "segments": len(segs), "track": "".join(letters),
                    "windows": pred.metrics.get("windows")})  # fmt: skip
    p.close()
    return out


def footage_report(rows: list[dict]) -> str:
    lines = ["", "## Footage (../shared/data/footage): the default trained on all fight-dev clips", "",
             "| video | length s | predict job, features computed s | again, from the cache s | windows | segments |",
             "|---|---|---|---|---|---|"]  # fmt: skip
    for r in rows:
        lines.append(f"| {r['video']} | {r['seconds_of_video']} | {r['first_s']:.1f} | {r['cached_s']:.1f} | "
                     f"{r['windows']} | {r['segments']} |")  # fmt: skip
    lines += ["", "Tracks, one letter per second (the class's initial):", ""]
    lines += [f"    {r['video']:<16} {r['track']}" for r in rows]
    return "\n".join(lines) + "\n"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seeds", type=int, default=1)
    ap.add_argument("--windows", default="1,0.5,0.25", help="window lengths to train, in median clips")
    ap.add_argument("--quick", action="store_true", help="4 videos, a seventh of the settings: a smoke run")
    ap.add_argument("--reuse", action="store_true", help="score the fold results of the last run again")
    ap.add_argument("--skip-footage", action="store_true")
    args = ap.parse_args()
    if not (DATA / "manifest.csv").is_file():
        print(f"no footage at {DATA}: nothing to measure")
        return 0
    windows = [float(w) for w in args.windows.split(",")]
    truth = build_timelines()
    if args.reuse and FOLDS_FILE.is_file():
        folds = json.loads(FOLDS_FILE.read_text())
    else:
        p = open_project(truth)
        t = time.perf_counter()
        folds = run_folds(p, truth, list(range(args.seeds)), windows, args.quick)
        print(f"folds: {time.perf_counter() - t:.0f} s")
        FOLDS_FILE.write_text(json.dumps(folds))
        p.close()
    res = {"machine": cpu_name(), "date": _dt.date.today().isoformat(), "quick": args.quick}
    text = report(res, folds, truth)
    if not args.skip_footage:
        res["footage"] = footage(args.quick)
        text += footage_report(res["footage"])
    write_results(OUT, "timeline", res, text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

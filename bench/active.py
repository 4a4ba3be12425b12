"""Active-learning benchmark on ../shared/data/fight-dev: does labeling the review queue's top clips teach the model
faster than labeling clips picked at random?

A simulated user's loop on real footage (185 clips, fight / noFight, 26 sources; every clip exists in the project,
only some are tagged):

1. **Start.** ``--start-groups`` sources drawn at random (seeded, both classes among their clips) are the labeled
   set; every other clip is in the project untagged (the pool).
2. **A round.** Train fast mode with the product's defaults (``jobs.tasks.train_job``, what ``vidtrain train`` runs
   with no options), predict (``jobs.tasks.predict_job``, ``folds=2`` out-of-fold models instead of the product's 5,
   for speed; only the tagged clips' scores use them, and none are scored here), and score the run's clip
   predictions on every clip still in the pool: accuracy and balanced accuracy (mean of the per-class recalls).
3. **Labeling.** *queue*: the first ``--per-round`` clips of the review queue (``core.review.review_queue``, most
   uncertain first, clips only, as the window's review panel ranks them) that are in the pool are given their true
   class (from the manifest) as the user would in the panel: ``AcceptPrediction``, corrected where the model was
   wrong. *random*: as many pool clips drawn at random (seeded), tagged with their true class. Then the next round.

Both strategies start from the same labeled set in each repeat and label the same number of clips per round;
``--repeats`` repeats draw different starting sets. Each strategy's own pool shrinks differently (the queue takes
the hard clips out of its pool), so the report also scores both on the **common pool**: the clips still untagged
under both strategies at that round, the like-for-like comparison.

    .venv/bin/python bench/active.py [--rounds 8] [--per-round 10] [--repeats 8] [--start-groups 3] [--quick]

The project is bench/train.py's (bench/out/fight-dev, built and tagged on first use); this benchmark works on a copy
in bench/out/active/ (database and feature cache; the original is never changed). Results go to
bench/out/active.md and bench/out/active.json. Run it on an otherwise idle machine.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import io
import json
import os
import random
import shutil
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np
import torch
from sqlalchemy import delete

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from benchutil import write_results  # noqa: E402
from train import DATA, OUT, build_project, cpu_name, read_manifest  # noqa: E402

from vidtrain_gui.core import classes as CL  # noqa: E402
from vidtrain_gui.core import labels as L  # noqa: E402
from vidtrain_gui.core import options as OPT  # noqa: E402
from vidtrain_gui.core import videos as V  # noqa: E402
from vidtrain_gui.core.backups import copy_database  # noqa: E402
from vidtrain_gui.core.models import Run  # noqa: E402
from vidtrain_gui.core.predictions import list_predictions  # noqa: E402
from vidtrain_gui.core.project import DB_NAME, Project  # noqa: E402
from vidtrain_gui.core.review import accept_prediction, review_queue  # noqa: E402
from vidtrain_gui.jobs.tasks import TUNED, predict_job, train_job  # noqa: E402

SOURCE = OUT / "fight-dev"
WORK = OUT / "active"
TEMPLATE = WORK / "template"  # the source's database with every clip untagged
PROJECT = WORK / "project"  # a fresh copy of the template for each strategy of each repeat
STRATEGIES = ("queue", "random")
PREDICT_FOLDS = 2


def train_options(device: str, head: str = OPT.DEFAULT_HEAD) -> dict:
    """What ``vidtrain train PROJECT [--head HEAD]`` passes (the CLI's parser defaults, core/options.py)."""
    return {"mode": OPT.DEFAULT_MODE, "backbone": OPT.DEFAULT_BACKBONE, "weights": OPT.DEFAULT_WEIGHTS,
            "head": head, "frames": OPT.DEFAULT_FRAMES, "seed": OPT.DEFAULT_SEED, "device": device,
            "fps": OPT.DEFAULT_FPS, "deltas": OPT.DEFAULT_DELTAS, "motion": OPT.DEFAULT_MOTION, "unfreeze": None,
            **dict.fromkeys(TUNED)}  # fmt: skip


# ---- the projects ------------------------------------------------------------------------------------------------


def _remove_db(folder: Path) -> None:
    for suffix in ("", "-wal", "-shm"):
        (folder / (DB_NAME + suffix)).unlink(missing_ok=True)


def prepare(data: Path) -> dict:
    """The truth from the manifest, and the template (every clip untagged) next to a project folder holding a copy
    of the source's feature cache. Returns clip id -> (true class name, group)."""
    p = build_project(data, SOURCE)  # bench/train.py's project: built and tagged once, reused
    p.close()
    rows = {os.path.realpath(data / r["file"]): r for r in read_manifest(data)}
    WORK.mkdir(parents=True, exist_ok=True)
    for folder in (TEMPLATE, PROJECT):
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir()
    copy_database(SOURCE / DB_NAME, TEMPLATE / DB_NAME)
    for part in ("features", "index"):  # the warm cache: training and predicting decode nothing
        if (SOURCE / "cache" / part).is_dir():
            shutil.copytree(SOURCE / "cache" / part, PROJECT / "cache" / part)
    with Project.open(TEMPLATE) as t:
        videos = {v.id: v for v in V.list_videos(t)}
        truth = {}
        for c in L.list_clips(t):
            row = rows[os.path.realpath(videos[c.video_id].path)]
            truth[c.id] = (row["class"], row["group"])
            L.set_clip_class(t, c.id, None)
        with t.session() as session:  # the source's runs (their folders are not copied; one may be running)
            session.execute(delete(Run))
    return truth


def fresh_project(start: dict[int, int]) -> Project:
    """The template as a new project (no runs) with the clips of ``start`` (clip id -> class id) tagged."""
    _remove_db(PROJECT)
    shutil.rmtree(PROJECT / "runs", ignore_errors=True)
    shutil.rmtree(PROJECT / "backups", ignore_errors=True)
    copy_database(TEMPLATE / DB_NAME, PROJECT / DB_NAME)
    p = Project.open(PROJECT)
    for cid, class_id in sorted(start.items()):
        L.set_clip_class(p, cid, class_id)
    return p


def start_set(truth: dict, n_groups: int, rng: random.Random) -> list[str]:
    """``n_groups`` sources whose clips hold both classes."""
    groups = sorted({g for _, g in truth.values()})
    for _ in range(10000):
        chosen = rng.sample(groups, n_groups)
        if len({cls for cls, g in truth.values() if g in chosen}) > 1:
            return sorted(chosen)
    raise SystemExit(f"no {n_groups} sources hold both classes")


# ---- one strategy's loop -----------------------------------------------------------------------------------------


def _check(run, kind: str, out: io.StringIO):
    if run.status != "done":
        errors = [json.loads(x).get("message") for x in out.getvalue().splitlines() if '"error"' in x]
        raise SystemExit(f"{kind} run {run.id} {run.status}: {errors or run.error}")
    return run


def scores(y_true: list[int], y_pred: list[int], n_classes: int) -> dict:
    t, q = np.asarray(y_true), np.asarray(y_pred)
    recalls = [float(np.mean(q[t == k] == k)) for k in range(n_classes) if np.any(t == k)]
    return {"acc": float(np.mean(t == q)) if len(t) else float("nan"),
            "bacc": float(np.mean(recalls)) if recalls else float("nan")}  # fmt: skip


def round_robin(queue: list, key) -> list:
    """The queue taken one ``key(item)`` at a time: the first item of every key in queue order, then the second of
    every key, and so on."""
    seen: Counter = Counter()
    tiers = []
    for it in queue:
        tiers.append(seen[key(it)])
        seen[key(it)] += 1
    return [it for _, _, it in sorted(zip(tiers, range(len(queue)), queue), key=lambda t: t[:2])]


def spread_over_sources(p, queue: list) -> list:
    """The queue taken one source at a time (``--order spread``, tried and not adopted, docs/benchmarks.md): the most
    uncertain clip of every source in queue order, then the second of every source, and so on."""
    source = {v.id: v.group_name or f"video {v.id}" for v in V.list_videos(p)}
    return round_robin(queue, lambda it: source[it.prediction.video_id])


def alternate_classes(queue: list) -> list:
    """The queue taken one predicted class at a time (``--order classes``): the most uncertain clip predicted as each
    class, then the second of each, so a round's labels are not all of the class the model leans to."""
    return round_robin(queue, lambda it: it.predicted)


def run_strategy(strategy: str, start: dict[int, int], truth_id: dict[int, int], names: list[str],
                 class_ids: list[int], *, rounds: int, per_round: int, seed: int, device: str,
                 head: str = OPT.DEFAULT_HEAD, order: str = "uncertainty") -> dict:  # fmt: skip
    """One simulated user from the starting set: ``rounds`` of labeling ``per_round`` clips, scored before each.
    ``truth_id``: clip id -> true class as its position in ``names``; ``class_ids``: the project's class ids in that
    order."""
    rng = random.Random(seed)
    p = fresh_project(start)
    pool = set(truth_id) - set(start)
    out = {"strategy": strategy, "rounds": [], "predictions": []}
    try:
        for r in range(rounds + 1):
            t0 = time.perf_counter()
            log = io.StringIO()
            train_run = _check(train_job(p, train_options(device, head), stdout=log), "train", log)
            t1 = time.perf_counter()
            log = io.StringIO()
            pred_run = _check(predict_job(p, train_run, device=device, folds=PREDICT_FOLDS, stdout=log), "predict", log)
            t2 = time.perf_counter()
            run_names = list(pred_run.classes)
            position = {name: k for k, name in enumerate(names)}
            predicted = {pr.clip_id: position[run_names[pr.class_index]]
                         for pr in list_predictions(p, pred_run.id, kind="clip") if pr.clip_id in pool}  # fmt: skip
            missing = pool - set(predicted)
            if missing:
                raise SystemExit(f"prediction run {pred_run.id} has no prediction for clips {sorted(missing)[:5]}")
            ids = sorted(pool)
            s = scores([truth_id[c] for c in ids], [predicted[c] for c in ids], len(names))
            row = {"round": r, "labels": len(truth_id) - len(pool), "pool": len(pool), **s,
                   "val_acc": train_run.metrics.get("val_acc"), "train_s": t1 - t0, "predict_s": t2 - t1}  # fmt: skip
            out["predictions"].append(predicted)
            if r < rounds:
                if strategy == "queue":
                    queue = review_queue(p, pred_run.id, "uncertainty", kinds=("clip",))
                    if order == "spread":
                        queue = spread_over_sources(p, queue)
                    elif order == "classes":
                        queue = alternate_classes(queue)
                    picks = [it for it in queue if it.prediction.clip_id in pool][:per_round]
                    for it in picks:  # the user accepts it (Enter), or corrects it to the true class
                        true = truth_id[it.prediction.clip_id]
                        accept_prediction(p, it.prediction.id, None if names[true] == it.predicted else class_ids[true])
                    chosen = [it.prediction.clip_id for it in picks]
                    row["corrected"] = sum(names[truth_id[it.prediction.clip_id]] != it.predicted for it in picks)
                else:
                    chosen = rng.sample(sorted(pool), min(per_round, len(pool)))
                    for cid in chosen:
                        L.set_clip_class(p, cid, class_ids[truth_id[cid]])
                    row["corrected"] = sum(predicted[c] != truth_id[c] for c in chosen)
                pool -= set(chosen)
                row["chosen"] = chosen
                row["chosen_classes"] = dict(Counter(names[truth_id[c]] for c in chosen))
            out["rounds"].append(row)
            print(f"  {strategy:6s} round {r}: {row['labels']:3d} labels, pool {row['pool']:3d}: acc {s['acc']:.3f} "
                  f"bal. acc {s['bacc']:.3f} (train {t1 - t0:.1f}s, predict {t2 - t1:.1f}s)", flush=True)  # fmt: skip
    finally:
        p.close()
    return out


def common_pool(a: dict, b: dict, truth_id: dict[int, int], n_classes: int) -> list[dict]:
    """Both strategies scored, round by round, on the clips untagged under both."""
    rows = []
    for pa, pb in zip(a["predictions"], b["predictions"]):
        ids = sorted(set(pa) & set(pb))
        y = [truth_id[c] for c in ids]
        rows.append({"pool": len(ids), a["strategy"]: scores(y, [pa[c] for c in ids], n_classes),
                     b["strategy"]: scores(y, [pb[c] for c in ids], n_classes)})  # fmt: skip
    return rows


# ---- report ------------------------------------------------------------------------------------------------------


def summarise(res: dict) -> list[dict]:
    """Per round: each strategy's mean and worst over repeats (own pool and common pool), and queue minus random."""
    out = []
    for r in range(res["rounds"] + 1):
        row: dict = {"round": r, "added": r * res["per_round"]}
        reps = res["repeats_detail"]
        row["labels_mean"] = float(np.mean([rep["queue"]["rounds"][r]["labels"] for rep in reps]))
        for s in STRATEGIES:
            for m in ("acc", "bacc"):
                own = [rep[s]["rounds"][r][m] for rep in reps]
                common = [rep["common"][r][s][m] for rep in reps]
                row[f"{s}_{m}"] = {"mean": float(np.mean(own)), "worst": float(np.min(own))}
                row[f"{s}_common_{m}"] = {"mean": float(np.mean(common)), "worst": float(np.min(common))}
        for m in ("acc", "bacc"):
            diff = [rep["common"][r]["queue"][m] - rep["common"][r]["random"][m] for rep in reps]
            row[f"delta_common_{m}"] = {"mean": float(np.mean(diff)), "worst": float(np.min(diff))}
        row["common_pool_mean"] = float(np.mean([rep["common"][r]["pool"] for rep in reps]))
        out.append(row)
    return out


def _mw(d: dict) -> str:
    return f"{d['mean']:.3f} / {d['worst']:.3f}"


def write_report(res: dict) -> str:
    lines = [
        f"# bench/active.py — {res['date']}", "",
        f"Machine: {res['machine']}. Data: fight-dev, {res['n_clips']} clips, {res['n_groups']} sources. "
        f"{res['repeats']} repeat(s) (starting sets: {res['start_groups']} sources each, "
        f"{', '.join(str(rep['start_size']) for rep in res['repeats_detail'])} clips), {res['rounds']} round(s) of "
        f"{res['per_round']} labels. Training: the product's defaults (fast mode, {res['train']['head']} head"
        f"{', deltas' if res['train']['deltas'] else ''}{', motion' if res['train']['motion'] else ''}, seed "
        f"{res['train']['seed']}); prediction: the product's predict job with {res['predict_folds']} out-of-fold "
        f"models (the product's default is {OPT.DEFAULT_FOLDS}; they score only tagged clips, none of which count "
        "here). Wall time "
        f"{res['seconds']:.0f} s.", "",
        "Each cell: mean / worst over repeats. *queue*: the review queue's top clips (most uncertain first, clips "
        "only) from the untagged pool, accepted or corrected to their true class; *random*: as many untagged clips "
        "drawn at random.", "",
        "## On each strategy's own untagged pool", "",
        "| round | labels added | labels (mean) | queue acc | random acc | queue bal. acc | random bal. acc |",
        "|---|---|---|---|---|---|---|",
    ]  # fmt: skip
    for row in res["summary"]:
        lines.append(f"| {row['round']} | {row['added']} | {row['labels_mean']:.1f} | {_mw(row['queue_acc'])} | "
                     f"{_mw(row['random_acc'])} | {_mw(row['queue_bacc'])} | {_mw(row['random_bacc'])} |")  # fmt: skip
    lines += [
        "", "The queue takes the clips the model finds hardest out of its own pool, so its pool gets easier than "
        "random's by construction. Like for like:", "",
        "## On the common pool (clips untagged under both strategies at that round)", "",
        "| round | clips (mean) | queue acc | random acc | queue bal. acc | random bal. acc | "
        "bal. acc, queue − random |", "|---|---|---|---|---|---|---|",
    ]  # fmt: skip
    for row in res["summary"]:
        lines.append(f"| {row['round']} | {row['common_pool_mean']:.1f} | {_mw(row['queue_common_acc'])} | "
                     f"{_mw(row['random_common_acc'])} | {_mw(row['queue_common_bacc'])} | "
                     f"{_mw(row['random_common_bacc'])} | {_mw(row['delta_common_bacc'])} |")  # fmt: skip
    lines += ["", "## Per repeat", "", "| repeat | start sources | start clips | strategy | bal. acc by round "
              "(own pool) | classes labeled (fight / noFight) | predictions corrected |",
              "|---|---|---|---|---|---|---|"]  # fmt: skip
    for k, rep in enumerate(res["repeats_detail"]):
        for s in STRATEGIES:
            rs = rep[s]["rounds"]
            picked = Counter()
            for x in rs:
                picked.update(x.get("chosen_classes", {}))
            curve = " → ".join(format(x["bacc"], ".2f") for x in rs)
            corrected = sum(x.get("corrected", 0) for x in rs)
            lines.append(f"| {k} | {', '.join(rep['start_groups'])} | {rep['start_size']} | {s} | {curve} | "
                         f"{picked['fight']} / {picked['noFight']} | {corrected} |")  # fmt: skip
    return "\n".join(lines) + "\n"


def save(res: dict) -> str:
    return write_results(OUT, "active", res, write_report(res))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", type=Path, default=DATA)
    ap.add_argument("--rounds", type=int, default=8, help="labeling rounds (scored before each and after the last)")
    ap.add_argument("--per-round", type=int, default=10, help="clips labeled per round")
    ap.add_argument("--repeats", type=int, default=8, help="starting sets (seeds 0, 1, ...)")
    ap.add_argument("--start-groups", type=int, default=3, help="sources in the starting labeled set")
    ap.add_argument("--device", default=OPT.DEFAULT_DEVICE)
    ap.add_argument("--head", default=OPT.DEFAULT_HEAD, choices=OPT.HEADS, help="the head trained each round")
    ap.add_argument(
        "--order",
        default="uncertainty",
        choices=("uncertainty", "spread", "classes"),
        help="the order the simulated user labels in: the review queue's (most uncertain first), or that queue "
        "taken one source at a time, or one predicted class at a time",
    )
    ap.add_argument("--quick", action="store_true", help="smoke run: 1 repeat, 2 rounds")
    args = ap.parse_args()
    if not (args.data / "manifest.csv").exists():
        print(f"no data at {args.data} (needs ../shared/data/fight-dev); nothing to do")
        return 0
    if args.quick:
        args.repeats, args.rounds = 1, 2
    started = time.perf_counter()
    truth = prepare(args.data)
    with Project.open(TEMPLATE, readonly=True) as t:
        names = [c.name for c in CL.list_classes(t)]
        class_ids = {c.name: c.id for c in CL.list_classes(t)}
    position = {name: k for k, name in enumerate(names)}
    truth_pos = {cid: position[cls] for cid, (cls, _) in truth.items()}
    res: dict = {"date": _dt.datetime.now().isoformat(timespec="seconds"),
                 "machine": f"{cpu_name()}, {os.cpu_count()} cores, torch {torch.__version__}",
                 "n_clips": len(truth), "n_groups": len({g for _, g in truth.values()}), "classes": names,
                 "rounds": args.rounds, "per_round": args.per_round, "repeats": args.repeats,
                 "start_groups": args.start_groups, "predict_folds": PREDICT_FOLDS,
                 "train": train_options(args.device, args.head), "order": args.order, "repeats_detail": []}  # fmt: skip
    for k in range(args.repeats):
        groups = start_set(truth, args.start_groups, random.Random(k))
        start = {cid: class_ids[cls] for cid, (cls, g) in truth.items() if g in groups}
        print(f"repeat {k}: start {len(start)} clips from {', '.join(groups)}", flush=True)
        rep: dict = {"seed": k, "start_groups": groups, "start_size": len(start),
                     "start_classes": dict(Counter(truth[c][0] for c in start))}  # fmt: skip
        for s in STRATEGIES:
            rep[s] = run_strategy(s, start, truth_pos, names, [class_ids[n] for n in names], rounds=args.rounds,
                                  per_round=args.per_round, seed=1000 + k, device=args.device, order=args.order,
                                  head=args.head)  # fmt: skip
        rep["common"] = common_pool(rep["queue"], rep["random"], truth_pos, len(names))
        for s in STRATEGIES:
            del rep[s]["predictions"]  # per-clip predictions: used for the common pool only
        res["repeats_detail"].append(rep)
        res["seconds"] = time.perf_counter() - started
        res["summary"] = summarise(res)
        save(res)
    print(save(res))
    return 0


if __name__ == "__main__":
    sys.exit(main())

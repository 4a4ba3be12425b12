"""The fastest correct forward pass of a frozen backbone on this machine (feature extraction and prediction).

This module owns the choice of engine and the engine files:

- **CUDA / MPS**: eager PyTorch, BatchNorm folded, channels-last, autocast (fp16 on CUDA).
- **CPU, image backbones**: ONNX Runtime on the BatchNorm-folded network, exported once with ``torch.onnx`` and
  kept in the engine cache. On the 2-core development CPU EfficientNet-Lite0 ran at ~157 frames/s there against
  ~58 for the best eager path (fused, channels-last, inference mode): docs/benchmarks.md. Every exported file is
  checked against eager PyTorch on a random batch before it is kept; a file that disagrees, fails to export or
  fails to load falls back to eager with a warning. bfloat16 autocast is never used on the CPU: it is fast only on
  CPUs with AMX and 6-12x slower than fp32 on AVX2-only desktops.
- **The engine cache**: ``$VIDTRAIN_CACHE_DIR/engines`` or the user cache folder (``storage.engine_cache_dir``),
  one file per backbone key, torch and opset version, written under a temporary name and renamed. It holds derived
  copies of pinned weights, not project data, so projects share it (an export takes ~8 s).

``engine="torch"`` forces eager (the reference in benchmarks); ``"onnx"`` insists on ONNX Runtime (an error when
it is not installed or the backbone does not export).
"""

from __future__ import annotations

import contextlib
import io
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from torch import nn

from vidtrain_gui import fsutil
from vidtrain_gui.ml.backbones import Backbone, WeightsArg
from vidtrain_gui.ml.device import autocast_context
from vidtrain_gui.storage import engine_cache_dir  # the folder's rule; kept importable from here

ENGINES = ("auto", "torch", "onnx")
OPSET = 18
# Agreement an exported engine must show with eager fp32 on a random batch (features are O(1)-O(10)).
MAX_ABS_DIFF = 1e-3

Log = Callable[[str, str], None]


class EngineError(RuntimeError):
    """The requested engine cannot run this backbone here."""


def _onnxruntime():
    try:
        import onnxruntime
    except ImportError:
        return None
    return onnxruntime


def _eager_model(spec: Backbone, weights: WeightsArg, dev: torch.device) -> nn.Module:
    model = spec.build(weights).eval().requires_grad_(False)
    if hasattr(model, "fuse_for_inference"):
        model.fuse_for_inference()  # frozen: fold BatchNorm into the convolutions (1.5x on CPU here)
    model = model.to(dev)
    if spec.kind == "image":
        # channels-last runs the depthwise convolutions of EfficientNet/MobileNet ~1.4x faster on CPU, and is the
        # layout CUDA's tensor cores want too.
        model = model.to(memory_format=torch.channels_last)
    return model


class FrozenForward:
    """``forward(x)`` -> float32 numpy ``[N, feature_dim]`` for a preprocessed batch ``x`` (on :attr:`device`)."""

    def __init__(self, engine: str, device: torch.device, run: Callable[[torch.Tensor], np.ndarray]):
        self.engine = engine  # "onnxruntime" or "torch"
        self.device = device
        self._run = run

    def __call__(self, x: torch.Tensor) -> np.ndarray:
        return self._run(x)

    def describe(self) -> str:
        return "ONNX Runtime (CPU)" if self.engine == "onnxruntime" else f"PyTorch eager ({self.device.type})"


def _torch_runner(model: nn.Module, dev: torch.device) -> Callable[[torch.Tensor], np.ndarray]:
    def run(x: torch.Tensor) -> np.ndarray:
        if x.dim() == 4:
            x = x.contiguous(memory_format=torch.channels_last)
        with torch.inference_mode(), autocast_context(dev):
            return model(x).float().cpu().numpy()

    return run


def engine_path(spec: Backbone, weights: WeightsArg) -> Path:
    version = torch.__version__.split("+")[0]
    return engine_cache_dir() / f"{spec.key(weights)}-torch{version}-opset{OPSET}.onnx"


def _export(model: nn.Module, spec: Backbone, path: Path) -> None:
    h, w = spec.input_size
    example = torch.randn(2, 3, h, w)
    path.parent.mkdir(parents=True, exist_ok=True)
    fsutil.clean_temporaries(path.parent)  # exports a killed process left (an hour old: not one in progress)
    # The exporter takes a file name: a unique one per process and call, since every job on the machine shares the
    # engine cache; fsynced before its rename, so a crash never leaves a short engine file.
    with fsutil.atomic_path(path) as tmp:
        # The exporter prints progress and warnings: a job's stdout carries only JSON events.
        quiet = contextlib.ExitStack()
        quiet.enter_context(contextlib.redirect_stdout(io.StringIO()))
        quiet.enter_context(contextlib.redirect_stderr(io.StringIO()))
        quiet.enter_context(warnings.catch_warnings())
        with quiet:
            warnings.simplefilter("ignore")
            torch.onnx.export(
                model, (example,), str(tmp), dynamo=True, external_data=False, opset_version=OPSET,
                input_names=["x"], output_names=["features"],
                dynamic_shapes={"x": {0: torch.export.Dim("batch", min=1, max=4096)}},
            )  # fmt: skip


def _ort_session(ort, path: Path):
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = max(1, torch.get_num_threads())
    opts.inter_op_num_threads = 1
    # No busy-waiting between batches: the decoding thread needs those cycles.
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    opts.log_severity_level = 3
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


def _agrees(session, model: nn.Module, spec: Backbone) -> float:
    h, w = spec.input_size
    x = torch.randn(3, 3, h, w, generator=torch.Generator().manual_seed(0))
    with torch.inference_mode():
        ref = model(x).float().numpy()
    out = session.run(None, {"x": x.numpy()})[0]
    return float(np.abs(out - ref).max())


def _onnx_runner(spec: Backbone, weights: WeightsArg, model: nn.Module,
                 log: Log | None = None) -> Callable[[torch.Tensor], np.ndarray]:  # fmt: skip
    ort = _onnxruntime()
    if ort is None:
        raise EngineError("onnxruntime is not installed (pip install onnxruntime)")
    if spec.kind != "image":
        raise EngineError(f"{spec.name} is a video model; only image backbones run on ONNX Runtime")
    path = engine_path(spec, weights)
    fresh = not path.is_file()
    if fresh:
        if log is not None:  # the only slow step a user sees once per machine: say what it is
            log(f"preparing the ONNX Runtime engine for {spec.name} (once on this machine, ~10 s)", "info")
        try:
            _export(model, spec, path)
        except Exception as exc:  # noqa: BLE001 - any exporter failure means: use eager
            raise EngineError(f"{spec.name} did not export to ONNX ({type(exc).__name__}: {exc})") from exc
    try:
        session = _ort_session(ort, path)
        diff = _agrees(session, model, spec) if fresh else 0.0
    except Exception as exc:  # noqa: BLE001 - a corrupt or foreign file: remove it, export again next time
        path.unlink(missing_ok=True)
        raise EngineError(f"the ONNX engine file {path.name} did not load ({exc}); it was removed") from exc
    if diff > MAX_ABS_DIFF:
        path.unlink(missing_ok=True)
        raise EngineError(f"ONNX Runtime's output differs from PyTorch's by {diff:.2g}; using PyTorch")

    def run(x: torch.Tensor) -> np.ndarray:
        return session.run(None, {"x": np.ascontiguousarray(x.float().numpy())})[0]

    return run


def frozen_forward(
    spec: Backbone, weights: WeightsArg, device: torch.device, *, engine: str = "auto", log: Log | None = None
) -> FrozenForward:
    """The frozen ``spec`` network as a :class:`FrozenForward` on ``device``, using ``engine`` (see module doc)."""
    if engine not in ENGINES:
        raise ValueError(f"engine must be one of {', '.join(ENGINES)}, got {engine!r}")
    dev = torch.device(device)
    model = _eager_model(spec, weights, dev)
    want_onnx = engine == "onnx" or (engine == "auto" and dev.type == "cpu" and spec.kind == "image")
    if want_onnx:
        if dev.type != "cpu":
            raise EngineError("the ONNX Runtime engine runs on the CPU; pick --device cpu")
        try:
            return FrozenForward("onnxruntime", dev, _onnx_runner(spec, weights, model, log))
        except EngineError as exc:
            if engine == "onnx":
                raise
            if log is not None:
                log(f"{exc}; falling back to PyTorch eager (slower)", "warning")
    return FrozenForward("torch", dev, _torch_runner(model, dev))

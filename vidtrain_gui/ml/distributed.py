"""Training on several processes (``torchrun --nproc-per-node N``) with DistributedDataParallel.

This module owns the one place that knows whether the process is one of several:

- :func:`setup` reads torchrun's environment (``WORLD_SIZE``, ``RANK``, ``LOCAL_RANK``, ``MASTER_ADDR``...) and
  joins the process group: NCCL when the process trains on CUDA, gloo otherwise (CPU training, and the tests).
  Without torchrun it returns the single-process :data:`SINGLE` and touches nothing. ``torchrun --nproc-per-node 1``
  joins a group of one: the same DDP and collectives as on several GPUs, so one GPU can check the NCCL path.
- :class:`Dist` is what a training loop asks: ``is_main`` (rank 0 writes events, checkpoints and the database),
  ``shard`` (this rank's part of an epoch's sample order, every rank the same number of steps so no collective
  waits forever), ``wrap`` (DDP around a model), ``any`` (a flag any rank raised, e.g. "stop requested", so every
  rank leaves the loop at the same epoch), ``broadcast`` (an object from rank 0) and ``barrier``.

Every method is a no-op (or the identity) without a process group (:data:`SINGLE`), so training code calls them
unconditionally.
"""

from __future__ import annotations

import inspect
import os
from dataclasses import dataclass
from datetime import timedelta

import torch
import torch.distributed as tdist
from torch import nn

from vidtrain_gui.launch import launched_by_torchrun

# A collective waits this long: a rank with longer videos to compute features for can keep the others waiting
# for minutes. A rank that dies ends the wait sooner (torchrun tears the group down).
TIMEOUT = timedelta(minutes=60)


@dataclass(frozen=True)
class Dist:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    backend: str | None = None

    @property
    def enabled(self) -> bool:
        """Whether this process is in a process group (torchrun), also a group of one."""
        return self.backend is not None

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def describe(self) -> str:
        """For a job's first log line: " x 2 processes (nccl)", or "" without a process group."""
        if not self.enabled:
            return ""
        return f" x {self.world_size} process{'es' if self.world_size > 1 else ''} ({self.backend})"

    def barrier(self) -> None:
        if self.enabled:
            tdist.barrier()

    def any(self, flag: bool) -> bool:
        """True on every rank when ``flag`` is True on at least one."""
        if not self.enabled:
            return bool(flag)
        t = torch.tensor([1 if flag else 0], dtype=torch.int32, device=self._comm_device())
        tdist.all_reduce(t, op=tdist.ReduceOp.MAX)
        return bool(t.item())

    def broadcast(self, obj):
        """``obj`` as rank 0 has it, on every rank (any picklable object)."""
        if not self.enabled:
            return obj
        box = [obj if self.is_main else None]
        tdist.broadcast_object_list(box, src=0, device=self._comm_device() if self.backend == "nccl" else None)
        return box[0]

    def sum(self, values: list[float]) -> list[float]:
        """Element-wise sum of ``values`` over all ranks (e.g. loss totals and sample counts)."""
        if not self.enabled:
            return [float(v) for v in values]
        t = torch.tensor(values, dtype=torch.float64, device=self._comm_device())
        tdist.all_reduce(t, op=tdist.ReduceOp.SUM)
        return t.tolist()

    def shard(self, order: torch.Tensor | list[int]) -> torch.Tensor:
        """This rank's part of an epoch's sample order (the same ``order`` on every rank): every
        ``world_size``-th item starting at ``rank``, the order padded by wrapping around so each rank gets the
        same count (as ``DistributedSampler`` does)."""
        order = torch.as_tensor(order)
        if self.world_size <= 1 or len(order) == 0:
            return order
        per_rank = -(-len(order) // self.world_size)  # ceil
        total = per_rank * self.world_size
        if total > len(order):
            reps = -(-total // len(order))
            order = order.repeat(reps)[:total]
        return order[self.rank : total : self.world_size]

    def wrap(self, model: nn.Module, device: torch.device, *, find_unused: bool = True,
             sync_buffers: bool = True) -> nn.Module:  # fmt: skip
        """DDP around ``model`` (already on ``device``); the model itself when single-process. ``find_unused``:
        parameters that a forward pass may leave out (optional branches) must not hang DDP; a model that always
        uses every trainable parameter passes False and saves a walk of the autograd graph per step.
        ``sync_buffers=False``: the model's buffers never change in training (e.g. every BatchNorm frozen), so
        rank 0 need not send them before every forward pass (they are still made equal once, at wrapping)."""
        if not self.enabled:
            return model
        from torch.nn.parallel import DistributedDataParallel as DDP

        ids = [device.index if device.index is not None else self.local_rank] if device.type == "cuda" else None
        # Newer torch calls the per-forward sync forward_sync_buffers and deprecates broadcast_buffers.
        params = inspect.signature(DDP).parameters
        name = "forward_sync_buffers" if "forward_sync_buffers" in params else "broadcast_buffers"
        return DDP(model, device_ids=ids, find_unused_parameters=find_unused, **{name: sync_buffers})

    def _comm_device(self) -> torch.device:
        return torch.device("cuda", torch.cuda.current_device()) if self.backend == "nccl" else torch.device("cpu")


SINGLE = Dist()


def setup(device: str = "auto") -> Dist:
    """Join torchrun's process group (once) and return this process's :class:`Dist`; :data:`SINGLE` when the
    process was not started by torchrun. ``device``: the training device preference
    ("auto", "cpu", "cuda"...): NCCL only when this rank will train on CUDA, with ``LOCAL_RANK`` as its GPU."""
    if not launched_by_torchrun():
        return SINGLE
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local = int(os.environ.get("LOCAL_RANK", "0"))
    use_cuda = torch.cuda.is_available() and str(device).split(":")[0] in ("auto", "cuda")
    gpus, local_world = torch.cuda.device_count(), int(os.environ.get("LOCAL_WORLD_SIZE", "1"))
    if use_cuda and local_world > gpus:  # NCCL refuses two ranks on one GPU
        raise RuntimeError(
            f"torchrun started {local_world} processes on this machine, which has {gpus} GPU(s): NCCL needs one "
            f"GPU per process. Use --nproc-per-node {gpus}, or train on the CPU with --device cpu."
        )
    backend = "nccl" if use_cuda else "gloo"
    if use_cuda:
        torch.cuda.set_device(local)
    if not tdist.is_initialized():
        tdist.init_process_group(backend=backend, timeout=TIMEOUT)
    return Dist(rank=rank, world_size=world, local_rank=local, backend=backend)


def device_for(dist: Dist, device: str) -> str:
    """The device preference this rank should use: under torchrun on CUDA, its own GPU ``cuda:LOCAL_RANK``."""
    if dist.backend == "nccl":
        return f"cuda:{torch.cuda.current_device()}"
    if dist.enabled and str(device) == "auto":
        return "cpu"  # gloo ranks train on the CPU
    return device


def teardown(dist: Dist) -> None:
    if dist.enabled and tdist.is_initialized():
        tdist.destroy_process_group()

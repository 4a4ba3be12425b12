"""The heads' motion channel (frame-to-frame feature differences) and the textbook linear head."""

from __future__ import annotations

import pytest
import torch

from vidtrain_gui.ml.heads import HEADS, Deltas, make_head


def test_deltas_are_absolute_frame_to_frame_changes():
    x = torch.tensor([[[1.0, 2.0], [4.0, 2.0], [4.0, 0.0]]])  # [B=1, T=3, D=2]
    out = Deltas()(x)
    assert out.shape == (1, 3, 4)
    assert torch.equal(out[..., :2], x)
    assert torch.equal(out[0, :, 2:], torch.tensor([[0.0, 0.0], [3.0, 0.0], [0.0, 2.0]]))


def _clips(n: int, t: int, d: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Two classes with the same frames: every clip alternates between base + a and base - a, the "fast" class
    every frame, the "slow" one once, half-way. Both have the same mean, so only a head that sees change can tell
    them apart."""
    g = torch.Generator().manual_seed(seed)
    base, a = torch.randn(n, 1, d, generator=g), torch.randn(n, 1, d, generator=g)
    y = torch.arange(n) % 2
    fast = torch.tensor([1.0, -1.0] * (t // 2)).view(1, t, 1)
    slow = torch.tensor([1.0] * (t // 2) + [-1.0] * (t // 2)).view(1, t, 1)
    return base + a * torch.where(y.view(n, 1, 1) == 1, fast, slow), y


def _held_out_accuracy(head, t: int, d: int) -> float:
    torch.manual_seed(0)
    x, y = _clips(256, t, d, seed=1)
    opt = torch.optim.Adam(head.parameters(), lr=1e-2)
    for _ in range(100):
        loss = torch.nn.functional.cross_entropy(head(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    x, y = _clips(256, t, d, seed=2)
    with torch.no_grad():
        return float((head.eval()(x).argmax(1) == y).float().mean())


@pytest.mark.parametrize("name", ["linear", "mlp"])
def test_deltas_let_even_pooling_heads_tell_speed(name):
    t, d = 8, 6
    quiet = {"noise": 0.0, "input_dropout": 0.0}
    assert _held_out_accuracy(make_head(name, d, 2, t, deltas=True, **quiet), t, d) >= 0.85
    assert _held_out_accuracy(make_head(name, d, 2, t, **quiet), t, d) <= 0.7  # the mean alone cannot see it


@pytest.mark.parametrize("name", HEADS)
def test_every_head_takes_deltas(name):
    head = make_head(name, 6, 3, 5, deltas=True)
    assert head.eval()(torch.randn(2, 5, 6)).shape == (2, 3)

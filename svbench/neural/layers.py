"""Causal layers with an exact streaming mode: the building blocks of the encoders and decoders.

Every convolution pads on the left only, so output frame t depends on input up to t. Each layer can run
on chunks with a carried state (``step``; the last ``pad`` input samples, or the overlap a layer writes
past its chunk); chunked output equals offline output. Upsampling uses causal transposed convolutions
(kernel == stride, or 2 x stride with the overlap carried forward), so a decoder needs no look-ahead either.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F


def with_past(x: torch.Tensor, state: dict, key: object, pad: int) -> torch.Tensor:
    """Streaming left context: ``x`` preceded by the last ``pad`` samples of the previous chunk (zeros before
    the first), remembering this chunk's last ``pad`` samples under ``key``."""
    past = state.get(key)
    if past is None:
        past = x.new_zeros(x.shape[0], x.shape[1], pad)
    full = torch.cat([past, x], dim=-1)
    state[key] = full[..., full.shape[-1] - pad:] if pad else full[..., :0]
    return full


def carry_tail(y: torch.Tensor, n: int, state: dict, key: int) -> torch.Tensor:
    """Streaming overlap-add: ``y`` is a chunk's ``n`` output samples plus the overlap it writes past them.
    Adds the previous chunk's overlap to its start, keeps its own for the next chunk, returns the ``n``."""
    tail = state.get(key)
    if tail is not None:
        y[..., : tail.shape[-1]] += tail
    state[key] = y[..., n:]
    return y[..., :n]


class CausalConv1d(nn.Conv1d):
    """Conv1d padded on the left by ``(k-1)*d + 1 - s``; input length must be a multiple of the stride."""

    def __init__(self, cin: int, cout: int, kernel: int, stride: int = 1, dilation: int = 1, groups: int = 1):
        super().__init__(cin, cout, kernel, stride=stride, dilation=dilation, groups=groups)
        self.pad = (kernel - 1) * dilation + 1 - stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(F.pad(x, (self.pad, 0)))

    def step(self, x: torch.Tensor, state: dict) -> torch.Tensor:
        return super().forward(with_past(x, state, id(self), self.pad))


class Upsample(nn.ConvTranspose1d):
    """Causal transposed conv. With kernel == stride each input frame maps to its own ``stride`` outputs;
    with a longer kernel (overlap) frame t also writes into the first ``kernel - stride`` outputs of frame
    t + 1. Offline that tail is cut; streaming carries it into the next chunk (no look-ahead either way)."""

    def __init__(self, cin: int, cout: int, stride: int, kernel: int | None = None):
        super().__init__(cin, cout, kernel or stride, stride=stride)
        self.overlap = self.kernel_size[0] - stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x)[..., : x.shape[-1] * self.stride[0]]

    def step(self, x: torch.Tensor, state: dict) -> torch.Tensor:
        if not self.overlap:
            return self(x)
        y = F.conv_transpose1d(x, self.weight, None, self.stride)
        assert self.bias is not None
        return carry_tail(y, x.shape[-1] * self.stride[0], state, id(self)) + self.bias[:, None]


def leaky_relu(x: torch.Tensor) -> torch.Tensor:
    return F.leaky_relu(x, 0.1)


# elu: SEANet's (SoundStream's); leaky_relu: HiFi-GAN's (slope 0.1), which computes no exp
ACTIVATIONS = {"elu": F.elu, "leaky_relu": leaky_relu}


class Act(nn.Module):
    def __init__(self, name: str = "elu"):
        super().__init__()
        if name not in ACTIVATIONS:
            raise ValueError(f"unknown activation {name!r} ({' | '.join(ACTIVATIONS)})")
        self.fn = ACTIVATIONS[name]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fn(x)

    def step(self, x: torch.Tensor, state: dict) -> torch.Tensor:
        return self.fn(x)


class ResUnit(nn.Module):
    def __init__(self, ch: int, dilation: int, kernel: int = 3, activation: str = "elu"):
        super().__init__()
        self.act = Act(activation)
        self.conv1 = CausalConv1d(ch, ch // 2, kernel, dilation=dilation)
        self.conv2 = CausalConv1d(ch // 2, ch, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv2(self.act(self.conv1(self.act(x))))

    def step(self, x: torch.Tensor, state: dict) -> torch.Tensor:
        return x + self.conv2.step(self.act(self.conv1.step(self.act(x), state)), state)


class Stack(nn.Sequential):
    def step(self, x: torch.Tensor, state: dict) -> torch.Tensor:
        for layer in self:
            x = layer.step(x, state)
        return x

"""Discriminators: multi-period and multi-scale (HiFi-GAN) for SVCODEC, STFT + multi-scale (SoundStream).

Each discriminator returns a list of (logits, feature maps) pairs, one per sub-discriminator.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F
from torch.nn.utils.parametrizations import weight_norm


def _run_stack(convs: nn.ModuleList, out: nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """Conv + leaky ReLU layers, keeping every layer's output for the feature-matching loss."""
    feats = []
    for conv in convs:
        x = F.leaky_relu(conv(x), 0.1)
        feats.append(x)
    return out(x), feats


class PeriodD(nn.Module):
    def __init__(self, period: int, ch: int):
        super().__init__()
        self.period = period
        chans = [1, ch, ch * 4, ch * 8, ch * 8]
        self.convs = nn.ModuleList(
            weight_norm(nn.Conv2d(a, b, (5, 1), (3 if i < 3 else 1, 1), padding=(2, 0)))
            for i, (a, b) in enumerate(zip(chans[:-1], chans[1:], strict=True)))
        self.out = weight_norm(nn.Conv2d(chans[-1], 1, (3, 1), padding=(1, 0)))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        b, c, t = x.shape
        x = F.pad(x, (0, -t % self.period), mode="reflect")
        x = x.view(b, c, -1, self.period)
        return _run_stack(self.convs, self.out, x)


class ScaleD(nn.Module):
    def __init__(self, ch: int):
        super().__init__()
        spec = [(1, ch, 15, 1, 1), (ch, ch * 2, 41, 4, 4), (ch * 2, ch * 4, 41, 4, 16), (ch * 4, ch * 8, 41, 4, 16),
                (ch * 8, ch * 8, 5, 1, 1)]
        self.convs = nn.ModuleList(weight_norm(nn.Conv1d(a, b, k, s, padding=k // 2, groups=min(g, a)))
                                   for a, b, k, s, g in spec)
        self.out = weight_norm(nn.Conv1d(ch * 8, 1, 3, padding=1))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        return _run_stack(self.convs, self.out, x)


class STFTD(nn.Module):
    """SoundStream's STFT discriminator: 2-D convs over the complex STFT (real and imaginary channels)."""

    def __init__(self, ch: int, n_fft: int = 512, hop: int = 128):
        super().__init__()
        self.n_fft, self.hop = n_fft, hop
        self.register_buffer("window", torch.hann_window(n_fft), persistent=False)
        chans = [2, ch, ch * 2, ch * 4, ch * 4]
        self.convs = nn.ModuleList(
            weight_norm(nn.Conv2d(a, b, (3, 3), (1, 2) if i else (1, 1), padding=1))
            for i, (a, b) in enumerate(zip(chans[:-1], chans[1:], strict=True)))
        self.out = weight_norm(nn.Conv2d(chans[-1], 1, (3, 3), padding=1))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        spec = torch.stft(x.squeeze(1).float(), self.n_fft, self.hop, window=self.window, return_complex=True)
        h = torch.stack([spec.real, spec.imag], 1).transpose(2, 3)  # (B, 2, T, F)
        return _run_stack(self.convs, self.out, h)


class Discriminators(nn.Module):
    def __init__(self, kinds: list[str], channels: int = 16, periods: list[int] | None = None, scales: int = 3):
        super().__init__()
        self.subs = nn.ModuleList()
        self.pools: list[int] = []
        for kind in kinds:
            if kind == "mpd":
                for p in periods or [2, 3, 5, 7, 11]:
                    self.subs.append(PeriodD(p, channels))
                    self.pools.append(1)
            elif kind == "msd":
                for i in range(scales):
                    self.subs.append(ScaleD(channels))
                    self.pools.append(2 ** i)
            elif kind == "stft":
                self.subs.append(STFTD(channels))
                self.pools.append(1)
            else:
                raise ValueError(f"unknown discriminator {kind!r} (mpd | msd | stft)")

    def forward(self, x: torch.Tensor) -> list[tuple[torch.Tensor, list[torch.Tensor]]]:
        out = []
        for sub, pool in zip(self.subs, self.pools, strict=True):
            xi = F.avg_pool1d(x, pool * 2, pool, padding=pool // 2 * 1) if pool > 1 else x
            out.append(sub(xi))
        return out

"""The encoders and decoders: SEANet-style waveform stacks, the STFT-domain encoder and the low-rate
decoders with an inverse-STFT or source-filter head, and the shortcut (a linear frame transform summed with a
deep stack). All causal, all with an exact streaming ``step``."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from svbench.neural.heads import ISTFTHead, SourceFilterHead
from svbench.neural.layers import Act, CausalConv1d, ResUnit, Stack, Upsample, with_past


def encoder(channels: int, dim: int, strides: list[int], dilations: list[int], activation: str = "elu") -> Stack:
    layers: list[nn.Module] = [CausalConv1d(1, channels, 7)]
    ch = channels
    for s in strides:
        layers += [ResUnit(ch, d, activation=activation) for d in dilations]
        layers += [Act(activation), CausalConv1d(ch, ch * 2, 2 * s, stride=s)]
        ch *= 2
    layers += [Act(activation), CausalConv1d(ch, dim, 3)]
    return Stack(*layers)


def decoder(channels: int, dim: int, strides: list[int], dilations: list[int], up_overlap: bool = False,
            activation: str = "elu") -> Stack:
    ch = channels * 2 ** len(strides)
    layers: list[nn.Module] = [CausalConv1d(dim, ch, 7)]
    for s in reversed(strides):
        layers += [Act(activation), Upsample(ch, ch // 2, s, 2 * s if up_overlap else s)]
        ch //= 2
        layers += [ResUnit(ch, d, activation=activation) for d in dilations]
    layers += [Act(activation), CausalConv1d(ch, 1, 7)]
    return Stack(*layers)


class HarmonicDecoder(nn.Module):
    """``istft_decoder``'s body, then a ``SourceFilterHead`` driven by the f0 sent with each latent frame
    (held over the frame's head frames)."""

    def __init__(self, body: Stack, head: SourceFilterHead, up: int):
        super().__init__()
        self.body, self.head, self.up = body, head, up

    def forward(self, z: torch.Tensor, f0: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(z), f0.repeat_interleave(self.up, -1))

    def step(self, z: torch.Tensor, state: dict, f0: torch.Tensor) -> torch.Tensor:
        return self.head.step(self.body.step(z, state), f0.repeat_interleave(self.up, -1), state)


class STFTFrontend(nn.Module):
    """Causal STFT analysis: frame t is the Hann-windowed ``n_fft`` samples ending at sample (t+1)*hop, as
    power-law-compressed complex spectra (real and imaginary parts, |X|^0.3 with X's phase)."""

    def __init__(self, n_fft: int, hop: int):
        super().__init__()
        self.n_fft, self.hop, self.pad = n_fft, hop, n_fft - hop
        self.register_buffer("window", torch.hann_window(n_fft), persistent=False)

    def _features(self, x: torch.Tensor) -> torch.Tensor:
        frames = x[:, 0].unfold(-1, self.n_fft, self.hop) * self.window  # (B, F, n_fft)
        spec = torch.fft.rfft(frames, dim=-1)
        spec = spec * (spec.abs() + 1e-5) ** -0.7
        return torch.cat([spec.real, spec.imag], dim=-1).transpose(1, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._features(F.pad(x, (self.pad, 0)))

    def step(self, x: torch.Tensor, state: dict) -> torch.Tensor:
        return self._features(with_past(x, state, id(self), self.pad))


def _check_stft(n_fft: int, stft_hop: int, frame_hop: int) -> None:
    if frame_hop % stft_hop or n_fft % 2 or n_fft < stft_hop:
        raise ValueError(f"istft_fft {n_fft} / istft_hop {stft_hop}: the hop must divide the frame hop "
                         f"{frame_hop}, and the FFT size must be even and at least the hop")


def stft_encoder(channels: int, dim: int, hop: int, dilations: list[int], n_fft: int, front_hop: int,
                 activation: str = "elu") -> Stack:
    """The mirror of ``istft_decoder``: causal STFT frames, residual units at their rate, one strided
    down-sampling to the frame rate, residual units there."""
    _check_stft(n_fft, front_hop, hop)
    down, ch = hop // front_hop, channels // 2 if hop > front_hop else channels
    layers: list[nn.Module] = [STFTFrontend(n_fft, front_hop), CausalConv1d(n_fft + 2, ch, 3)]
    layers += [ResUnit(ch, d, activation=activation) for d in dilations]
    if down > 1:
        layers += [Act(activation), CausalConv1d(ch, ch * 2, 2 * down, stride=down)]
        ch *= 2
        layers += [ResUnit(ch, d, activation=activation) for d in dilations]
    layers += [Act(activation), CausalConv1d(ch, dim, 3)]
    return Stack(*layers)


def istft_decoder(channels: int, dim: int, hop: int, dilations: list[int], n_fft: int, head_hop: int,
                  activation: str = "elu", sample_rate: int = 0) -> Stack | HarmonicDecoder:
    """A decoder that works at low rates only: residual units at the frame rate and at the head's rate
    (one causal upsampling between), then ``ISTFTHead``. No layer runs at the waveform rate. With
    ``sample_rate``, a ``SourceFilterHead`` (harmonics up to 0.475 x sample_rate) instead: a
    ``HarmonicDecoder`` that takes the frames' f0 beside the latents."""
    _check_stft(n_fft, head_hop, hop)
    up, ch = hop // head_hop, channels
    layers: list[nn.Module] = [CausalConv1d(dim, ch, 7)]
    layers += [ResUnit(ch, d, activation=activation) for d in dilations]
    if up > 1:
        layers += [Act(activation), Upsample(ch, ch // 2, up, 2 * up)]
        ch //= 2
        layers += [ResUnit(ch, d, activation=activation) for d in dilations]
    if sample_rate:
        return HarmonicDecoder(Stack(*layers, Act(activation)),
                               SourceFilterHead(ch, n_fft, head_hop, sample_rate, 0.475 * sample_rate), up)
    layers += [Act(activation), CausalConv1d(ch, n_fft + 2, 3), ISTFTHead(n_fft, head_hop)]
    return Stack(*layers)


def frame_transform(dim: int, hop: int) -> tuple[CausalConv1d, Upsample]:
    """The linear layers of a ``Shortcut``: analysis over the current and the previous frame, overlapping
    synthesis."""
    return CausalConv1d(1, dim, 2 * hop, stride=hop), Upsample(dim, 1, hop, 2 * hop)


class Shortcut(nn.Module):
    """The shortcut: a deep stack plus a linear frame transform (``frame_transform``: a strided conv over two
    frames in the encoder, an overlapping transposed conv in the decoder), summed. The linear part costs < 1 %
    of the compute (why it is there: docs/decisions.md)."""

    def __init__(self, deep: nn.Module, linear: nn.Module):
        super().__init__()
        self.deep, self.linear = deep, linear

    def forward(self, x: torch.Tensor, *cond: torch.Tensor) -> torch.Tensor:
        return self.deep(x, *cond) + self.linear(x)

    def step(self, x: torch.Tensor, state: dict, *cond: torch.Tensor) -> torch.Tensor:
        return self.deep.step(x, state, *cond) + self.linear.step(x, state)

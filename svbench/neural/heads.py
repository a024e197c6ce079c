"""Output layers of the low-rate decoders: the inverse-STFT head and the source-filter head (with its
harmonic excitation). Both are causal and stream exactly: what a frame writes past its own hop is carried
into the next frames."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from svbench.neural.layers import CausalConv1d, carry_tail


class ISTFTHead(nn.Module):
    """Vocos-style output layer: per frame, log-magnitudes and phases of ``n_fft // 2 + 1`` bins ->
    inverse FFT -> Hann window -> overlap-add with hop ``hop``. Causal like ``Upsample`` with overlap: frame t
    writes samples [t*hop, t*hop + n_fft); the part past its own hop is carried into the next frames."""

    def __init__(self, n_fft: int, hop: int):
        super().__init__()
        self.n_fft, self.hop = n_fft, hop
        self.register_buffer("window", torch.hann_window(n_fft), persistent=False)
        self.register_buffer("eye", torch.eye(n_fft)[:, None, :], persistent=False)

    @staticmethod
    def spectrum(x: torch.Tensor) -> torch.Tensor:
        log_mag, phase = x.float().chunk(2, dim=1)
        return torch.polar(torch.exp(log_mag.clamp(max=8.0)), phase)

    def overlap_add(self, spec: torch.Tensor) -> torch.Tensor:
        """Complex spectra (B, n_fft // 2 + 1, F) -> every frame's samples overlap-added, tails included."""
        frames = torch.fft.irfft(spec, n=self.n_fft, dim=1) * self.window[:, None]
        return F.conv_transpose1d(frames, self.eye, stride=self.hop)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.overlap_add(self.spectrum(x))[..., : x.shape[-1] * self.hop]

    def step(self, x: torch.Tensor, state: dict) -> torch.Tensor:
        return carry_tail(self.overlap_add(self.spectrum(x)), x.shape[-1] * self.hop, state, id(self))


def harmonic_excitation(f0: torch.Tensor, phase0: torch.Tensor, n_fft: int, hop: int, sample_rate: int,
                        f_max: float) -> tuple[torch.Tensor, torch.Tensor]:
    """The source of ``SourceFilterHead``. Per frame t (``hop`` samples apart), the sum of unit cosines at
    every harmonic k * f0[t] below ``f_max``, run over the frame's ``n_fft`` samples with phase
    k * (phase[t] + 2 pi f0[t] n / sample_rate), phase[t] = phase0 + the fundamental's advance over the
    frames before (phase-continuous from frame to frame); Hann-windowed, FFT'd and divided by n_fft / 4, so
    a harmonic on a bin's centre has magnitude 1 there. f0 (B, F) in Hz, 0 where unvoiced (no excitation);
    phase0 (B,) float64. Returns the spectra (B, n_fft // 2 + 1, F) and the phase after the last frame (B,).
    The phase runs in float64 and wraps at 2 pi, so chunked and whole-signal calls agree."""
    two_pi = 2 * torch.pi
    f0 = f0.double()
    advance = two_pi * f0 * hop / sample_rate
    phase = (phase0[:, None] + torch.cumsum(advance, 1) - advance).remainder(two_pi)
    end = (phase[:, -1] + advance[:, -1]).remainder(two_pi) if f0.shape[1] else phase0
    n = torch.arange(n_fft, dtype=torch.float64, device=f0.device)
    phi = (phase[..., None] + two_pi * f0[..., None] * n / sample_rate).remainder(two_pi)  # (B, F, n_fft)
    count = torch.where(f0 > 0, torch.ceil(f_max / f0.clamp(min=1e-3)) - 1, 0.0)[..., None]  # k f0 < f_max
    half = torch.sin(phi / 2)
    # sum_{k=1}^{K} cos(k phi) = sin((K + 1/2) phi) / (2 sin(phi / 2)) - 1/2, and K where sin(phi / 2) = 0
    tiny = half.abs() < 1e-9
    wave = torch.where(tiny, count, torch.sin((count + 0.5) * phi) / (2 * torch.where(tiny, 1.0, half)) - 0.5)
    window = torch.hann_window(n_fft, dtype=torch.float64, device=f0.device)
    spec = torch.fft.rfft(wave * window, dim=-1) / (n_fft / 4)
    return spec.transpose(1, 2).to(torch.complex64), end


class SourceFilterHead(nn.Module):
    """An ``ISTFTHead`` whose spectrum is a noise part plus a harmonic part: per frame, the network's
    log-magnitudes and phases (as in ``ISTFTHead``), plus ``harmonic_excitation`` of the sent f0 times a
    per-bin gain that the network predicts. The harmonics' phases are coherent by construction; the network
    learns their magnitudes. The gain branch starts at exp(0) and the noise part 3 log-units down
    (docs/decisions.md says why). Streaming carries the excitation's phase and the overlap-add tail."""

    def __init__(self, channels: int, n_fft: int, hop: int, sample_rate: int, f_max: float):
        super().__init__()
        self.sample_rate, self.f_max = sample_rate, f_max
        self.noise = CausalConv1d(channels, n_fft + 2, 3)
        self.gain = CausalConv1d(channels, n_fft // 2 + 1, 3)
        self.istft = ISTFTHead(n_fft, hop)
        with torch.no_grad():
            self.noise.bias[: n_fft // 2 + 1] -= 3.0
            self.gain.weight.zero_()
            self.gain.bias.zero_()

    def _spectrum(self, noise: torch.Tensor, gain: torch.Tensor, f0: torch.Tensor, phase0: torch.Tensor
                  ) -> tuple[torch.Tensor, torch.Tensor]:
        source, end = harmonic_excitation(f0, phase0, self.istft.n_fft, self.istft.hop, self.sample_rate, self.f_max)
        return self.istft.spectrum(noise) + torch.exp(gain.float().clamp(max=8.0)) * source, end

    def forward(self, h: torch.Tensor, f0: torch.Tensor) -> torch.Tensor:
        """h (B, channels, F) features, f0 (B, F) Hz at the head's frame rate -> (B, 1, F * hop)."""
        phase0 = h.new_zeros(h.shape[0], dtype=torch.float64)
        spec, _ = self._spectrum(self.noise(h), self.gain(h), f0, phase0)
        return self.istft.overlap_add(spec)[..., : h.shape[-1] * self.istft.hop]

    def step(self, h: torch.Tensor, f0: torch.Tensor, state: dict) -> torch.Tensor:
        phase0 = state.get(id(self), h.new_zeros(h.shape[0], dtype=torch.float64))
        spec, state[id(self)] = self._spectrum(self.noise.step(h, state), self.gain.step(h, state), f0, phase0)
        return carry_tail(self.istft.overlap_add(spec), h.shape[-1] * self.istft.hop, state, id(self.istft))

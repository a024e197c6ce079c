"""Reconstruction, adversarial and feature-matching losses."""

from __future__ import annotations

import functools

import torch
from torch.nn import functional as F


def _stft_mag(x: torch.Tensor, n_fft: int, floor: float = 1e-5) -> torch.Tensor:
    """STFT magnitude floored at ``floor`` (-100 dB): below it a log-magnitude loss would chase noise."""
    window = torch.hann_window(n_fft, device=x.device)
    spec = torch.stft(x.float(), n_fft, n_fft // 4, window=window, return_complex=True)
    return spec.abs().clamp(min=floor)


def multi_resolution_stft(x: torch.Tensor, y: torch.Tensor, ffts: list[int]) -> torch.Tensor:
    """Spectral convergence + log-magnitude L1, averaged over resolutions. x, y: (B, T) output, target."""
    total = x.new_zeros(())
    for n in ffts:
        mx, my = _stft_mag(x, n), _stft_mag(y, n)
        sc = torch.linalg.norm(my - mx) / torch.linalg.norm(my).clamp(min=1e-7)
        total = total + sc + F.l1_loss(torch.log(mx), torch.log(my))
    return total / len(ffts)


@functools.lru_cache(maxsize=8)
def _lowpass_taps(sample_rate: int, cutoff_hz: float, taps: int = 63) -> torch.Tensor:
    from scipy.signal import firwin

    return torch.tensor(firwin(taps, cutoff_hz, fs=sample_rate), dtype=torch.float32)[None, None]


def waveform_l1(y: torch.Tensor, x: torch.Tensor, sample_rate: int, cutoff_hz: float = 0.0) -> torch.Tensor:
    """Mean absolute difference of output y and target x (B, T); with ``cutoff_hz``, of the difference
    low-passed there (a 63-tap linear-phase FIR), so that the loss pins the phase of that band only."""
    diff = y - x
    if cutoff_hz:
        fir = _lowpass_taps(sample_rate, cutoff_hz).to(diff.device)
        diff = F.conv1d(diff[:, None], fir, padding=fir.shape[-1] // 2)
    return diff.abs().mean()


@functools.lru_cache(maxsize=16)
def _mel_basis(sr: int, n_fft: int, n_mels: int) -> torch.Tensor:
    def hz2mel(f: torch.Tensor) -> torch.Tensor:
        return 2595 * torch.log10(1 + f / 700)

    mels = torch.linspace(0, float(hz2mel(torch.tensor(sr / 2))), n_mels + 2)
    hz = 700 * (10 ** (mels / 2595) - 1)
    bins = torch.linspace(0, sr / 2, n_fft // 2 + 1)
    lo, mid, hi = hz[:-2, None], hz[1:-1, None], hz[2:, None]
    return torch.clamp(torch.minimum((bins - lo) / (mid - lo), (hi - bins) / (hi - mid)), min=0)


def _mel_power(x: torch.Tensor, sr: int, n_fft: int, n_mels: int) -> torch.Tensor:
    """(B, T) -> mel-band power (B, n_mels, frames) of the floored STFT magnitude."""
    return _mel_basis(sr, n_fft, n_mels).to(x.device) @ _stft_mag(x, n_fft) ** 2


def multi_scale_mel(x: torch.Tensor, y: torch.Tensor, sr: int, ffts: list[int], n_mels: int = 64) -> torch.Tensor:
    """SoundStream's multi-scale spectral loss: L1 on mel energies + L2 on their log, scaled by sqrt(s/2)."""
    total = x.new_zeros(())
    for n in ffts:
        mx, my = _mel_power(x, sr, n, min(n_mels, n // 4)), _mel_power(y, sr, n, min(n_mels, n // 4))
        total = total + F.l1_loss(mx, my) + (n / 2) ** 0.5 * F.mse_loss(torch.log(mx + 1e-5), torch.log(my + 1e-5))
    return total / len(ffts)


def log_mel_l1(x: torch.Tensor, y: torch.Tensor, sr: int, n_fft: int = 256, n_mels: int = 32,
               floor: float = 1e-7) -> torch.Tensor:
    """L1 of log mel power (x output, y target, (B, T)) over 32 ms frames: the short-time envelope a
    recognizer's MFCCs are made from, with each frame's harmonic fine structure pooled away."""
    mx, my = _mel_power(x, sr, n_fft, n_mels), _mel_power(y, sr, n_fft, n_mels)
    return F.l1_loss(torch.log(mx + floor), torch.log(my + floor))


def d_loss(real: list, fake: list, kind: str) -> torch.Tensor:
    total = 0.0
    for (lr, _), (lf, _) in zip(real, fake, strict=True):
        if kind == "hinge":
            total = total + F.relu(1 - lr).mean() + F.relu(1 + lf).mean()
        else:  # least squares (HiFi-GAN)
            total = total + (1 - lr).pow(2).mean() + lf.pow(2).mean()
    return total / len(real)


def g_loss(fake: list, kind: str) -> torch.Tensor:
    total = 0.0
    for lf, _ in fake:
        total = total + (F.relu(1 - lf).mean() if kind == "hinge" else (1 - lf).pow(2).mean())
    return total / len(fake)


def feature_matching(real: list, fake: list) -> torch.Tensor:
    total, n = 0.0, 0
    for (_, fr), (_, ff) in zip(real, fake, strict=True):
        for a, b in zip(fr, ff, strict=True):
            total = total + F.l1_loss(b, a.detach()) / (a.detach().abs().mean() + 1e-5)
            n += 1
    return total / max(n, 1)

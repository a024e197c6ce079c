"""The codec model (encoder -> RVQ -> decoder) and its streaming wrappers."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
from torch import nn

from svbench.dsp.pitch import PitchCoder
from svbench.neural.config import ModelConfig
from svbench.neural.quantizer import RVQ
from svbench.neural.stacks import Shortcut, decoder, encoder, frame_transform, istft_decoder, stft_encoder


class NeuralCodec(nn.Module):
    def __init__(self, config: ModelConfig | Mapping[str, Any]):
        """``config``: a ModelConfig, or a mapping of options over the defaults (what a card's [model] gives)."""
        super().__init__()
        c = config if isinstance(config, ModelConfig) else ModelConfig.from_dict(config)
        self.config = c
        self.model_hash = c.hash()  # a loaded checkpoint keeps the hash it was exported with (checkpoint.load_export)
        self.sample_rate, self.hop, self.n_q = c.sample_rate, c.hop, c.n_q
        self.bits_per_code = int(math.log2(c.codebook_size))
        enc = (stft_encoder(c.head_channels, c.dim, self.hop, c.dilations, c.istft_fft, c.istft_hop, c.activation)
               if c.front == "stft" else encoder(c.channels, c.dim, c.strides, c.dilations, c.activation))
        self.quantizer = RVQ(c.dim, self.n_q, c.codebook_size, c.codebook, c.code_dim, c.temperature)
        self.f0_bits = c.f0_bits
        self.pitch = PitchCoder(self.sample_rate, self.hop, self.f0_bits) if self.f0_bits else None
        dec = (istft_decoder(c.head_channels, c.dim, self.hop, c.dilations, c.istft_fft, c.istft_hop, c.activation,
                             self.sample_rate if self.f0_bits else 0)
               if c.head == "istft" else
               decoder(c.channels, c.dim, c.strides, c.dilations, c.up_overlap, c.activation))
        self.encoder: nn.Module = enc
        self.decoder: nn.Module = dec
        if c.shortcut:
            analysis, synthesis = frame_transform(c.dim, self.hop)
            self.encoder, self.decoder = Shortcut(enc, analysis), Shortcut(dec, synthesis)

    @property
    def frame_rate(self) -> float:
        return self.sample_rate / self.hop

    def kbps(self, n_q: int) -> float:
        return self.config.bitrate_bps(n_q) / 1000

    def f0_hz(self, x: torch.Tensor) -> torch.Tensor:
        """The f0 the encoder sends, as the decoder reads it: x (B, 1, T) -> (B, T // hop) Hz, 0 unvoiced."""
        assert self.pitch is not None
        rows = [self.pitch.hz(self.pitch.indices(w)) for w in x[:, 0].detach().float().cpu().numpy()]
        return torch.from_numpy(np.stack(rows)).float().to(x.device)

    def forward(self, x: torch.Tensor, n_q: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, dict]:
        """x (B, 1, T) with T a multiple of hop; n_q (B,) -> (y, codes, quantizer losses)."""
        zq, codes, losses = self.quantizer(self.encoder(x), n_q)
        return self.decoder(zq, *self._f0(x)), codes, losses

    def _f0(self, x: torch.Tensor) -> list[torch.Tensor]:
        return [self.f0_hz(x)] if self.pitch else []

    @torch.no_grad()
    def encode(self, x: torch.Tensor, n_q: int) -> torch.Tensor:
        return self.quantizer.encode(self.encoder(x), n_q)

    def decoder_inputs(self, codes: np.ndarray) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """What ``encode_audio`` gives -> the decoder's inputs: the quantised latents (1, dim, F), and for a
        model that sends f0 a list holding the frames' f0 in Hz (1, F) (else an empty list)."""
        codes = np.asarray(codes, dtype=np.int64)
        cond: list[torch.Tensor] = []
        if self.pitch:
            cond, codes = [torch.from_numpy(self.pitch.hz(codes[:, 0])).float()[None]], codes[:, 1:]
        return self.quantizer.decode(torch.from_numpy(codes).t()[None]), cond

    def encode_audio(self, audio: np.ndarray, n_q: int) -> np.ndarray:
        """float32 mono at sample_rate -> codes (frames, n_q) int, after a column of f0 indices if the model
        sends f0 (f0_bits); the input is zero-padded to whole frames."""
        x = torch.from_numpy(np.ascontiguousarray(audio, dtype=np.float32))
        x = torch.nn.functional.pad(x, (0, -len(x) % self.hop))[None, None]
        codes = self.encode(x, n_q)[0].t().numpy()
        if self.pitch:
            codes = np.concatenate([self.pitch.indices(x[0, 0].numpy())[:, None], codes], 1)
        return codes

    @torch.no_grad()
    def decode_audio(self, codes: np.ndarray) -> np.ndarray:
        """What ``encode_audio`` gives -> float32 samples (whole frames)."""
        latents, cond = self.decoder_inputs(codes)
        return self.decoder(latents, *cond)[0, 0].numpy()


class StreamingEncoder:
    """Push 20 ms (``hop`` samples) at a time, get that frame's codes (n_q,) back, after its f0 index if the
    model sends f0: what ``encode_audio`` gives for that frame."""

    def __init__(self, model: NeuralCodec, n_q: int):
        self.model, self.n_q, self.state = model, n_q, {}
        self.pitch = model.pitch.fresh() if model.pitch else None

    @torch.no_grad()
    def push(self, frame: np.ndarray) -> np.ndarray:
        if len(frame) != self.model.hop:
            raise ValueError(f"streaming encoder takes frames of {self.model.hop} samples, got {len(frame)}")
        x = torch.from_numpy(np.asarray(frame, dtype=np.float32))[None, None]
        z = self.model.encoder.step(x, self.state)
        codes = self.model.quantizer.encode(z, self.n_q)[0, :, 0].numpy()
        return np.concatenate([[self.pitch.push(x[0, 0].numpy())], codes]) if self.pitch else codes


class StreamingDecoder:
    """Push one frame of codes (what ``StreamingEncoder.push`` gives), get ``hop`` samples (20 ms) back,
    through ``postfilter`` if given (an object whose ``push`` takes and returns samples, e.g. what
    ``postfilter.make_postfilter`` returns)."""

    def __init__(self, model: NeuralCodec, postfilter: Any = None):
        self.model, self.state, self.postfilter = model, {}, postfilter

    @torch.no_grad()
    def push(self, codes: np.ndarray) -> np.ndarray:
        latents, cond = self.model.decoder_inputs(np.asarray(codes)[None])
        out = self.model.decoder.step(latents, self.state, *cond)[0, 0].numpy()
        return self.postfilter.push(out) if self.postfilter else out

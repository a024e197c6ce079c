"""Residual vector quantizer: one stack of codebooks, any prefix of it selects a bitrate.

Two codebook kinds:
- ``factorized``: each stage projects the residual to a small space, L2-normalises it, and looks up the
  nearest code by cosine; codebooks learn by gradient (VQ-VAE's codebook term ``vq`` and the commitment
  loss ``commit``, straight-through).
- ``ema`` (SoundStream, and svcodec's cards): codebooks in the latent space updated by exponential moving
  averages (online k-means), commitment loss only.
Both kinds re-seed dead codes from recent residuals. Both can return the code-entropy loss ``code_entropy``
(SVCODEC's codebook loss): one minus the normalised entropy of the batch-average soft assignment
softmax(-d / (T * mean d)), where d are the squared distances to the codes; scaling by the mean distance
makes the temperature T mean the same in any latent scale. Its gradient moves the encoder's outputs (and,
for ``factorized``, the codes) so that more codes are used.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F


class Stage(nn.Module):
    def __init__(self, dim: int, size: int, kind: str, code_dim: int, decay: float = 0.99):
        super().__init__()
        self.kind, self.size, self.decay = kind, size, decay
        if kind == "factorized":
            self.proj_in = nn.Linear(dim, code_dim)
            self.proj_out = nn.Linear(code_dim, dim)
            self.codebook = nn.Parameter(torch.randn(size, code_dim))
        elif kind == "ema":
            self.register_buffer("codebook", torch.randn(size, dim) * 0.1)
            self.register_buffer("ema_sum", self.codebook.clone())
            self.register_buffer("ema_count", torch.ones(size))
        else:
            raise ValueError(f"unknown codebook kind {kind!r} (factorized | ema)")
        self.register_buffer("usage", torch.zeros(size))  # EMA of how often each code is picked

    def _space(self, r: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(vectors to quantize, codebook) in the lookup space. r: (N, dim)."""
        if self.kind == "factorized":
            return F.normalize(self.proj_in(r), dim=-1), F.normalize(self.codebook, dim=-1)
        return r, self.codebook

    def lookup(self, codes: torch.Tensor) -> torch.Tensor:
        """Codes (N,) -> latent vectors (N, dim)."""
        if self.kind == "factorized":
            return self.proj_out(F.normalize(self.codebook, dim=-1)[codes])
        return self.codebook[codes]

    def nearest(self, r: torch.Tensor) -> torch.Tensor:
        z, cb = self._space(r)
        dist = z.pow(2).sum(-1, keepdim=True) - 2 * z @ cb.t() + cb.pow(2).sum(-1)[None]
        return dist.argmin(-1)

    def forward(self, r: torch.Tensor, weight: torch.Tensor, temperature: float, code_entropy: bool = True) -> tuple:
        """r: (N, dim) residual; weight: (N,) 1 where this stage is in use. Returns (q, codes, losses);
        the code-entropy loss only with ``code_entropy``."""
        z, cb = self._space(r)
        if self.kind == "ema" and self.training:
            cb = cb.clone()  # the EMA update below changes the buffer before backward needs it
        dist = z.pow(2).sum(-1, keepdim=True) - 2 * z @ cb.t() + cb.pow(2).sum(-1)[None]
        codes = dist.argmin(-1)
        zq = cb[codes]
        denom = weight.sum().clamp(min=1.0)
        w = weight[:, None]
        losses = {"commit": ((z - zq.detach()).pow(2) * w).sum() / denom / z.shape[-1]}
        if code_entropy:
            scale = temperature * dist.detach().mean().clamp(min=1e-8)
            probs = (F.softmax(-dist / scale, dim=-1) * w).sum(0) / denom
            entropy = -(probs * torch.log(probs + 1e-10)).sum()
            losses["code_entropy"] = 1.0 - entropy / math.log(self.size)
        if self.kind == "factorized":
            losses["vq"] = ((zq - z.detach()).pow(2) * w).sum() / denom / z.shape[-1]
            zq = z + (zq - z).detach()
            q = self.proj_out(zq)
        else:
            q = r + (zq - r).detach()
            if self.training:
                self._ema_update(r.detach(), codes, weight)
        if self.training:
            with torch.no_grad():
                hits = torch.zeros(self.size, device=r.device).index_add_(0, codes, weight.float())
                self.usage.mul_(0.99).add_(hits, alpha=0.01)
        return q, codes, losses

    @torch.no_grad()
    def _ema_update(self, r: torch.Tensor, codes: torch.Tensor, weight: torch.Tensor) -> None:
        onehot = F.one_hot(codes, self.size).type(r.dtype) * weight[:, None]
        self.ema_count.mul_(self.decay).add_(onehot.sum(0), alpha=1 - self.decay)
        self.ema_sum.mul_(self.decay).add_(onehot.t() @ r, alpha=1 - self.decay)
        n = self.ema_count.sum()
        count = (self.ema_count + 1e-5) / (n + self.size * 1e-5) * n
        self.codebook.copy_(self.ema_sum / count[:, None])

    @torch.no_grad()
    def reseed_dead(self, r: torch.Tensor, threshold: float, generator: torch.Generator) -> int:
        """Replace codes used less than ``threshold`` (EMA hits per batch) by random residuals r (N, dim)."""
        dead = (self.usage < threshold).nonzero().squeeze(-1)
        if dead.numel() == 0 or r.shape[0] == 0:
            return 0
        pick = torch.randint(0, r.shape[0], (dead.numel(),), generator=generator).to(r.device)
        fresh = r[pick]
        if self.kind == "factorized":
            self.codebook.data[dead] = F.normalize(self.proj_in(fresh), dim=-1)
        else:
            self.codebook[dead] = fresh
            self.ema_sum[dead] = fresh
            self.ema_count[dead] = 1.0
        self.usage[dead] = threshold * 2  # give them time to be picked
        return int(dead.numel())


class RVQ(nn.Module):
    def __init__(self, dim: int, n_q: int, size: int, kind: str = "factorized", code_dim: int = 8,
                 temperature: float = 1.0):
        super().__init__()
        self.n_q, self.size, self.temperature = n_q, size, temperature
        self.code_entropy = True  # compute the code-entropy loss; a trainer that gives it no weight turns it off
        self.stages = nn.ModuleList(Stage(dim, size, kind, code_dim) for _ in range(n_q))
        self.last_residuals: list[torch.Tensor] = []

    def forward(self, z: torch.Tensor, n_q: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, dict]:
        """z: (B, dim, T); n_q: (B,) quantizers per example. Returns (zq, codes (B, n_q_max, T), losses)."""
        with torch.autocast(z.device.type, enabled=False):  # code search and EMA sums in bf16 pick wrong codes
            return self._forward(z.float(), n_q)

    def _forward(self, z: torch.Tensor, n_q: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, dict]:
        b, d, t = z.shape
        r = z.permute(0, 2, 1).reshape(b * t, d)
        per_row = n_q.repeat_interleave(t)
        out = torch.zeros_like(r)
        codes, totals = [], {}
        self.last_residuals = []
        for i, stage in enumerate(self.stages):
            weight = (per_row > i).to(r.dtype)
            if weight.sum() == 0:
                break
            self.last_residuals.append(r.detach()[weight > 0])
            q, c, losses = stage(r, weight, self.temperature, self.code_entropy)
            out = out + q * weight[:, None]
            r = r - q.detach() * weight[:, None] if stage.kind == "ema" else r - q * weight[:, None]
            codes.append(c.view(b, t))
            for k, v in losses.items():
                totals[k] = totals.get(k, 0.0) + v / self.n_q
        zq = out.view(b, t, d).permute(0, 2, 1)
        return zq, torch.stack(codes, 1), totals

    @torch.no_grad()
    def encode(self, z: torch.Tensor, n_q: int) -> torch.Tensor:
        b, d, t = z.shape
        r = z.permute(0, 2, 1).reshape(b * t, d)
        codes = []
        for stage in self.stages[:n_q]:
            c = stage.nearest(r)
            r = r - stage.lookup(c)
            codes.append(c.view(b, t))
        return torch.stack(codes, 1)

    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        """codes (B, n_q, T) -> zq (B, dim, T)."""
        b, n, t = codes.shape
        out = sum(self.stages[i].lookup(codes[:, i].reshape(-1)) for i in range(n))
        return out.view(b, t, -1).permute(0, 2, 1)

    @torch.no_grad()
    def reseed_dead(self, threshold: float, generator: torch.Generator) -> int:
        pairs = zip(self.stages, self.last_residuals, strict=False)
        return sum(s.reseed_dead(r, threshold, generator) for s, r in pairs)

    def usage_stats(self) -> list[float]:
        """Per stage: perplexity of recent code use / codebook size (1.0 = all codes used evenly)."""
        stats = []
        for s in self.stages:
            p = s.usage / s.usage.sum().clamp(min=1e-10)
            stats.append(float(torch.exp(-(p * torch.log(p + 1e-10)).sum()) / s.size))
        return stats

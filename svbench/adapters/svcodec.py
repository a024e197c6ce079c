"""SVCODEC and SoundStream: neural codecs that svbench trains itself (``svbench build``) and then runs.

The checkpoint is looked up in order: the card's ``[params] checkpoint``, the user's build folder
(``$SVBENCH_MODELS`` or ``~/.cache/svbench/models/CODEC/RECIPE``), the small checkpoint shipped in the
package (``svbench/neural/checkpoints/CODEC-RECIPE``). With none, the first encode/decode runs the build
step with the card's recipe (saying so), under a file lock so parallel workers build it once.

Bitstream: see ``svbench.neural.bitstream`` (24-byte header, then 10-bit codes bit-packed, after each
frame's f0 for a model that sends it).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import numpy as np

from svbench.adapters.base import CardCodec, CodecError
from svbench.bitrate import Bitrate
from svbench.dsp.postfilter import POSTFILTERS, make_postfilter


class NeuralCodecAdapter(CardCodec):
    requires_modules = ("torch", "safetensors")
    def __init__(self, card: Any):
        super().__init__(card)
        self.recipe = str(self.params.get("recipe", "tiny"))
        self.postfilter = str(self.params.get("postfilter", "none"))
        if self.postfilter not in POSTFILTERS:
            raise ValueError(f"codec card {self.name!r}: postfilter = {self.postfilter!r} "
                             f"({' | '.join(POSTFILTERS)})")
        self._model: Any = None
        self._model_id = 0

    # ------------------------------------------------------------ checkpoint
    def _want_model(self) -> Any:
        """The ModelConfig of the card's recipe."""
        from svbench.neural.config import recipe_config

        return recipe_config(self.card, self.recipe).model

    def checkpoint_path(self) -> Path | None:
        from svbench.neural import checkpoint

        explicit = self.params.get("checkpoint")
        if explicit:
            return Path(explicit).expanduser()
        for folder in (checkpoint.default_dir(self.name, self.recipe), checkpoint.shipped_dir(self.name, self.recipe)):
            if (folder / "model.safetensors").is_file():
                return folder / "model.safetensors"
        return None

    def identity(self) -> str:
        """Card plus the checkpoint's bytes: a rebuilt model never reuses decoded audio of the old one."""
        import hashlib

        path = self.checkpoint_path()
        weights = hashlib.sha256(path.read_bytes()).hexdigest() if path else "not built yet"
        return f"{self.card.sha256}:{weights}"

    def provenance(self) -> str | None:
        path = self.checkpoint_path()
        if path is None:
            return f"no {self.recipe} checkpoint yet: the build step runs first"
        from svbench.neural import checkpoint

        where = "shipped" if path.parent == checkpoint.shipped_dir(self.name, self.recipe) else "built"
        return f"uses the {where} {self.recipe} checkpoint {path} (sha256 {self.identity().split(':')[1][:16]})"

    def unavailable_reason(self) -> str | None:
        for module in ("torch", "safetensors"):
            try:
                __import__(module)
            except ImportError as err:
                return f"needs {module} ({err}); install: pip install 'svbench' (torch, safetensors)"
        return None

    def prepare(self, log: Any = None) -> Any:
        """Load the model, building it first (with the card's recipe) if no checkpoint exists."""
        if self._model is not None:
            return self._model
        from svbench.neural import checkpoint

        log = log or (lambda m: print(m, file=sys.stderr, flush=True))
        path = self.checkpoint_path()
        if path is None:
            import fcntl

            folder = checkpoint.default_dir(self.name, self.recipe)
            folder.mkdir(parents=True, exist_ok=True)
            with open(folder / ".build.lock", "w") as lock:
                fcntl.flock(lock, fcntl.LOCK_EX)  # another worker may be building it: wait for it
                path = self.checkpoint_path()
                if path is None:
                    from svbench.neural.build import build

                    log(f"{self.name}: no checkpoint for recipe {self.recipe!r}; running the build step first "
                        f"(`svbench build {self.name} --recipe {self.recipe}`), output in {folder}")
                    path = build(self.name, self.recipe, out=folder, log=log)
        try:
            model, config = checkpoint.load_export(path, self._want_model())
        except checkpoint.CheckpointError as err:
            raise CodecError(str(err)) from None
        self._model, self._model_id = model, int(model.model_hash[:8], 16)
        self.config = config
        return model

    @property
    def model(self) -> Any:
        return self.prepare()

    # ------------------------------------------------------------ codec
    def bitrates(self) -> list[Bitrate]:
        """1..n_q quantizers of the recipe's model, plus its f0 field if it sends one (so a recipe with f0
        lists 1k..4.5k where one without lists 0.5k..4k)."""
        m = self._want_model()
        return [Bitrate.parse(round(m.bitrate_bps(n))) for n in range(1, m.n_q + 1)]

    def unsupported_reason(self, bitrate: Bitrate) -> str | None:
        modes = self.bitrates()
        if bitrate not in modes:
            return (f"{self.name} (recipe {self.recipe}) has no {bitrate.label} mode "
                    f"(its modes: {', '.join(b.label for b in modes)})")
        return None

    def _n_q(self, bitrate: Bitrate) -> int:
        """The quantizers that fill the bitrate, beside the f0 field if the model sends one."""
        m = self.model
        per_q = m.bits_per_code * m.frame_rate
        n = (bitrate.bps - m.f0_bits * m.frame_rate) / per_q
        if n != int(n) or not 1 <= n <= m.n_q:
            f0 = f" after {m.f0_bits * m.frame_rate / 1000:g}k of f0" if m.f0_bits else ""
            raise CodecError(f"{self.name} codes {per_q / 1000:g}k per quantizer{f0}, from {m.kbps(1):g}k up to "
                             f"{m.kbps(m.n_q):g}k; {bitrate.label} is not one of its bitrates")
        return int(n)

    def encode(self, audio: np.ndarray, bitrate: Bitrate) -> bytes:
        from svbench.neural import bitstream

        n_q = self._n_q(bitrate)
        audio = np.asarray(audio, dtype=np.float32).reshape(-1)
        if audio.size == 0:
            raise CodecError("empty audio (0 samples)")
        codes = self.model.encode_audio(audio, n_q)  # zero-padded to whole 20 ms frames
        return bitstream.pack(codes, self.model.bits_per_code, self.sample_rate, len(audio), self._model_id,
                              self.model.f0_bits)

    def _parse(self, data: bytes) -> tuple[Any, np.ndarray]:
        from svbench.neural import bitstream

        m = self.model
        try:
            head, codes = bitstream.unpack(bytes(data), m.bits_per_code, m.f0_bits)
        except bitstream.BitstreamError as err:
            raise CodecError(str(err)) from None
        if head.sample_rate != self.sample_rate:
            raise CodecError(f"bitstream is for {head.sample_rate} Hz, {self.name} runs at {self.sample_rate} Hz")
        if head.model_id != self._model_id:
            raise CodecError(f"bitstream was made by another model (id {head.model_id:08x}, this checkpoint is "
                             f"{self._model_id:08x})")
        if not 1 <= head.n_q <= m.n_q:
            raise CodecError(f"bitstream has {head.n_q} quantizers; this model has 1..{m.n_q}")
        if not (head.frames - 1) * m.hop < head.samples <= head.frames * m.hop:
            raise CodecError(f"bitstream header inconsistent: {head.samples} samples in {head.frames} frames")
        return head, codes

    def _postfilter(self) -> Any:
        return make_postfilter(self.postfilter, self.sample_rate)

    def decode(self, bitstream: bytes) -> np.ndarray:
        head, codes = self._parse(bitstream)
        out = self.model.decode_audio(codes)[: head.samples].astype(np.float32)
        post = self._postfilter()
        return post.apply(out) if post else out

    def payload_bits(self, bitstream: bytes) -> int:
        head, _ = self._parse(bitstream)
        return head.frames * (head.n_q * self.model.bits_per_code + self.model.f0_bits)

    # ------------------------------------------------------------ streaming
    @property
    def algorithmic_latency_ms(self) -> float:
        """A frame must be complete before it is encoded; no look-ahead beyond it (all layers causal)."""
        return 1000 * self.model.hop / self.sample_rate

    def streaming_encoder(self, bitrate: Bitrate) -> Any:
        from svbench.neural.model import StreamingEncoder

        return StreamingEncoder(self.model, self._n_q(bitrate))

    def streaming_decoder(self) -> Any:
        from svbench.neural.model import StreamingDecoder

        return StreamingDecoder(self.model, self._postfilter())


class SVCodec(NeuralCodecAdapter):
    pass


class SoundStreamCodec(NeuralCodecAdapter):
    pass

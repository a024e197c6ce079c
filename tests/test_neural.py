"""SVCODEC / SoundStream: model shape and causality, bitstream, streaming, RVQ use, adapter errors.

Everything here uses tiny randomly initialised models so the file runs in seconds; training is in
tests/test_neural_train.py and real quality is a report (reports/svcodec-heldout.toml, docs/svcodec.md).
"""

from __future__ import annotations

import copy
import re
import tomllib
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("safetensors")

from svbench.adapters.base import CodecError  # noqa: E402
from svbench.adapters.svcodec import SoundStreamCodec, SVCodec  # noqa: E402
from svbench.bitrate import Bitrate  # noqa: E402
from svbench.cards import Card  # noqa: E402
from svbench.dsp.postfilter import make_postfilter  # noqa: E402
from svbench.neural import bitstream, checkpoint  # noqa: E402
from svbench.neural.config import TrainConfig, recipe_config  # noqa: E402
from svbench.neural.model import NeuralCodec, StreamingDecoder, StreamingEncoder  # noqa: E402
from svbench.neural.quantizer import RVQ  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SMALL = {"channels": 4, "dim": 16}
# what the svcodec card uses: overlapping upsampling, the shortcut, leaky ReLU (soundstream: the same with ELU)
CARD_ARCH = {"up_overlap": True, "shortcut": True, "activation": "leaky_relu"}
# the low-rate decoder with an inverse-STFT head (svcodec's tiny recipe)
ISTFT_ARCH = {**CARD_ARCH, "head": "istft", "front": "stft", "head_channels": 32}
# the same with each frame's f0 sent and a source-filter head (svcodec's tiny-sf recipe)
SF_ARCH = {**ISTFT_ARCH, "f0_bits": 10}
ARCHS = pytest.mark.parametrize("arch", [{}, CARD_ARCH, ISTFT_ARCH, SF_ARCH],
                                ids=["plain", "card", "istft", "source-filter"])


def speechlike(n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(n) / 8000
    f0 = 120 + 30 * np.sin(2 * np.pi * 2 * t)
    x = sum(np.sin(2 * np.pi * np.cumsum(f0) * k / 8000) / k for k in range(1, 8))
    return (0.2 * x * (0.6 + 0.4 * np.sin(2 * np.pi * 3 * t)) + 0.01 * rng.standard_normal(n)).astype(np.float32)


def model(kind: str = "factorized", seed: int = 0, arch: dict | None = None) -> NeuralCodec:
    torch.manual_seed(seed)
    return NeuralCodec({**SMALL, "codebook": kind, **(arch or {})}).eval()


def card_for(name: str, ckpt: Path, model_over: dict) -> Card:
    path = ROOT / "codecs" / f"{name}.toml"
    data = tomllib.loads(path.read_text())
    data = copy.deepcopy(data)
    data["model"] = {**data["model"], **model_over}
    data["params"] = {**data.get("params", {}), "checkpoint": str(ckpt)}
    return Card(name=name, kind="codecs", path=path, data=data, sha256="test")


@pytest.fixture(scope="module")
def adapter(tmp_path_factory: pytest.TempPathFactory) -> SVCodec:
    out = tmp_path_factory.mktemp("ckpt")
    cfg = recipe_config(card_for("svcodec", out, SMALL).data, "tiny")
    torch.manual_seed(0)
    checkpoint.export(NeuralCodec(cfg.model).eval(), cfg, out, {"step": 0})
    return SVCodec(card_for("svcodec", out / "model.safetensors", SMALL))


@pytest.mark.parametrize("kind", ["factorized", "ema"])
def test_shapes(kind: str) -> None:
    m = model(kind)
    x = torch.from_numpy(speechlike(1600))[None, None].repeat(2, 1, 1)
    y, codes, losses = m.train()(x, torch.tensor([3, 8]))
    assert y.shape == x.shape and codes.shape == (2, 8, 10)
    assert m.hop == 160 and m.frame_rate == 50 and m.kbps(8) == 4.0
    assert set(losses) >= {"commit"}
    c = m.eval().encode_audio(speechlike(1000), 6)
    assert c.shape == (7, 6) and c.max() < 1024  # 1000 samples -> 7 frames (zero-padded)
    assert m.decode_audio(c).shape == (7 * 160,)


def test_source_filter_model_sends_f0_beside_its_codes() -> None:
    m = model(arch=SF_ARCH)
    assert m.kbps(8) == 4.5 and m.kbps(5) == 3.0  # 10 bits of f0 per 20 ms frame: 0.5k
    c = m.encode_audio(speechlike(1000), 6)
    assert c.shape == (7, 7) and c.max() < 1024  # the f0 index, then 6 codes
    voiced = c[2:6, 0]  # speechlike() is voiced throughout (f0 90-150 Hz); the last frame is mostly padding
    assert (voiced > 0).all() and (np.abs(m.pitch.hz(voiced) - 120) <= 32).all()
    assert m.decode_audio(c).shape == (7 * 160,)
    with pytest.raises(ValueError, match="f0_bits needs head = 'istft'"):
        NeuralCodec({**SMALL, "f0_bits": 10})


@pytest.mark.parametrize("bad", [{"istft_fft": 161}, {"istft_hop": 48}, {"istft_fft": 20}])
def test_stft_stack_options_checked(bad: dict) -> None:
    """An odd FFT size, a hop that does not divide the 160-sample frame, or an FFT shorter than its hop
    cannot make a consistent STFT-domain stack: refused at construction, naming the options."""
    with pytest.raises(ValueError, match="istft_fft .* / istft_hop"):
        NeuralCodec({**SMALL, **ISTFT_ARCH, **bad})


@pytest.mark.parametrize("bad", [{"head": "stft"}, {"front": "istft"}])
def test_unknown_stack_kind_refused(bad: dict) -> None:
    with pytest.raises(ValueError, match="unknown model option (head|front)"):
        NeuralCodec({**SMALL, **bad})


@ARCHS
def test_causal(arch: dict) -> None:
    """Changing the input from sample t on leaves every output sample before t's frame unchanged."""
    m = model(arch=arch)
    x = speechlike(4000)
    x2 = x.copy()
    t = 2500
    x2[t:] = np.random.default_rng(1).standard_normal(len(x) - t) * 0.3
    for n_q in (1, 8):
        y, y2 = m.decode_audio(m.encode_audio(x, n_q)), m.decode_audio(m.encode_audio(x2, n_q))
        cut = t // m.hop * m.hop
        np.testing.assert_array_equal(y[:cut], y2[:cut])
        assert not np.allclose(y[cut:], y2[cut:])
    with torch.no_grad():  # and the unquantised path, sample by sample before t
        xs, xs2 = (torch.from_numpy(a)[None, None] for a in (x, x2))
        z, z2 = m.encoder(xs), m.encoder(xs2)
        assert torch.equal(z[..., : t // m.hop], z2[..., : t // m.hop])


def test_waveform_l1_low_band_only() -> None:
    """With a cutoff the time-domain L1 ignores an error above it and sees one below it whole (both against
    plain L1, which is what it must equal with no cutoff)."""
    from svbench.neural.losses import waveform_l1

    t = torch.arange(8000) / 8000
    target = 0.3 * torch.sin(2 * torch.pi * 200 * t)[None]
    for f_err, ratio in ((300.0, (0.95, 1.05)), (3000.0, (0.0, 0.01))):
        out = target + 0.1 * torch.sin(2 * torch.pi * f_err * t)[None]
        plain = torch.nn.functional.l1_loss(out, target)
        assert waveform_l1(out, target, 8000) == plain
        r = (waveform_l1(out, target, 8000, 1200) / plain).item()
        assert ratio[0] < r < ratio[1], (f_err, r)


def test_log_mel_l1_measures_envelope_gain() -> None:
    """A gain g on the output changes every mel power by g^2, so the loss is |ln g^2| wherever the power is
    well above the floor (loud noise here): 6.02 dB gives ln 4. Identical signals give 0."""
    from svbench.neural.losses import log_mel_l1

    target = 0.3 * torch.randn(2, 8000, generator=torch.Generator().manual_seed(0))
    assert log_mel_l1(target, target, 8000).item() == 0.0
    for gain in (2.0, 0.5):
        loss = log_mel_l1(gain * target, target, 8000).item()
        assert abs(loss - np.log(4.0)) < 1e-3, (gain, loss)


def test_bitstream_round_trip_bit_exact() -> None:
    rng = np.random.default_rng(0)
    for frames, n_q in ((1, 1), (7, 3), (50, 8)):
        codes = rng.integers(0, 1024, (frames, n_q))
        data = bitstream.pack(codes, 10, 8000, frames * 160 - 5, 0xABCD1234)
        assert len(data) == bitstream.HEADER.size + (frames * n_q * 10 + 7) // 8
        head, back = bitstream.unpack(data, 10)
        np.testing.assert_array_equal(back, codes)
        assert (head.n_q, head.frames, head.samples, head.model_id, head.sample_rate) == (
            n_q, frames, frames * 160 - 5, 0xABCD1234, 8000)
        assert bitstream.pack(back, 10, 8000, frames * 160 - 5, 0xABCD1234) == data


def test_bitstream_with_f0_round_trip_bit_exact() -> None:
    """Each frame's f0 index (here 7 bits) before its codes: payload sizes follow, values round-trip."""
    rng = np.random.default_rng(1)
    for frames, n_q in ((1, 1), (9, 4)):
        codes = np.concatenate([rng.integers(0, 128, (frames, 1)), rng.integers(0, 1024, (frames, n_q))], 1)
        data = bitstream.pack(codes, 10, 8000, frames * 160, 7, f0_bits=7)
        assert len(data) == bitstream.HEADER.size + (frames * (n_q * 10 + 7) + 7) // 8
        head, back = bitstream.unpack(data, 10, f0_bits=7)
        assert head.n_q == n_q
        np.testing.assert_array_equal(back, codes)
        with pytest.raises(bitstream.BitstreamError, match="truncated .* 7-bit f0"):
            bitstream.unpack(data[:-1], 10, f0_bits=7)
    codes[0, 0] = 128
    with pytest.raises(bitstream.BitstreamError, match="out of range for 7 bits"):
        bitstream.pack(codes, 10, 8000, 160, 7, f0_bits=7)


@pytest.fixture(scope="module")
def sf_adapter(tmp_path_factory: pytest.TempPathFactory) -> SVCodec:
    """svcodec with the tiny-sf recipe (f0 sent in 10 bits), small and untrained."""
    out = tmp_path_factory.mktemp("ckpt_sf")
    small = {**SMALL, "head_channels": 32}
    card = card_for("svcodec", out, small)
    card.data["params"]["recipe"] = "tiny-sf"
    cfg = recipe_config(card.data, "tiny-sf")
    torch.manual_seed(0)
    checkpoint.export(NeuralCodec(cfg.model).eval(), cfg, out, {"step": 0})
    card = card_for("svcodec", out / "model.safetensors", small)
    card.data["params"]["recipe"] = "tiny-sf"
    return SVCodec(card)


def test_source_filter_adapter_counts_f0_in_the_bitrate(sf_adapter: SVCodec) -> None:
    """With 10 bits of f0 per frame, 3k is 5 codes + f0; the measured bitrate is the nominal one."""
    assert [b.label for b in sf_adapter.bitrates()] == [f"{k / 2:g}k" for k in range(2, 10)]
    x = speechlike(8000 * 2 + 37)
    b = Bitrate.parse("3k")
    data = sf_adapter.encode(x, b)
    assert bitstream.unpack(data, 10, 10)[0].n_q == 5
    assert sf_adapter.decode(data).shape == x.shape
    measured = sf_adapter.payload_bits(data) / (len(x) / 8000)
    assert b.bps <= measured <= b.bps * (1 + 160 / len(x))
    assert sf_adapter.unsupported_reason(Bitrate.parse("0.5k")) is not None
    with pytest.raises(CodecError, match="0.5k is not one of its bitrates"):
        sf_adapter.encode(x, Bitrate.parse("0.5k"))
    enc, dec = sf_adapter.streaming_encoder(b), sf_adapter.streaming_decoder()
    streamed = np.concatenate([dec.push(enc.push(x[i: i + 160])) for i in range(0, len(x) - 37, 160)])
    np.testing.assert_allclose(streamed, sf_adapter.decode(data)[: len(streamed)], atol=1e-5, rtol=0)


def test_adapter_encode_decode(adapter: SVCodec) -> None:
    x = speechlike(8000 * 2 + 37)
    for kbps in ("0.5k", "3k", "4k"):
        b = Bitrate.parse(kbps)
        data = adapter.encode(x, b)
        assert adapter.encode(x, b) == data  # deterministic
        y = adapter.decode(data)
        assert y.dtype == np.float32 and y.shape == x.shape
        n_q = b.bps // 500
        raw = adapter.model.decode_audio(adapter.model.encode_audio(x, n_q))[: len(x)]
        np.testing.assert_allclose(y, make_postfilter("pitch+formant", 8000).apply(raw))  # the card's postfilter
        measured = adapter.payload_bits(data) / (len(x) / 8000)
        assert b.bps <= measured <= b.bps * (1 + 160 / len(x))  # only the padded last frame on top
    assert [r.label for r in adapter.bitrates()] == [f"{k / 2:g}k" for k in range(1, 9)]
    assert adapter.algorithmic_latency_ms == 20.0


def test_adapter_streaming_equals_its_decode(adapter: SVCodec) -> None:
    """The adapter's streaming decoder, postfilter included, gives what its offline decode gives."""
    x = speechlike(160 * 30)
    data = adapter.encode(x, Bitrate.parse("2k"))
    enc, dec = adapter.streaming_encoder(Bitrate.parse("2k")), adapter.streaming_decoder()
    streamed = np.concatenate([dec.push(enc.push(x[i: i + 160])) for i in range(0, len(x), 160)])
    np.testing.assert_allclose(streamed, adapter.decode(data), atol=1e-5, rtol=0)


def test_postfilter_none_gives_the_network_output_and_unknown_is_refused(adapter: SVCodec) -> None:
    card = copy.deepcopy(adapter.card)
    card.data["params"]["postfilter"] = "none"
    raw = SVCodec(card)
    x = speechlike(8000)
    y = raw.decode(raw.encode(x, Bitrate.parse("3k")))
    np.testing.assert_array_equal(y, raw.model.decode_audio(raw.model.encode_audio(x, 6))[: len(x)])
    card.data["params"]["postfilter"] = "comb"
    with pytest.raises(ValueError, match=re.escape("postfilter = 'comb' (none | pitch | pitch+formant)")):
        SVCodec(card)


def test_adapter_bad_input(adapter: SVCodec) -> None:
    short = speechlike(37)
    assert adapter.decode(adapter.encode(short, Bitrate.parse("2k"))).shape == (37,)  # padded, trimmed back
    with pytest.raises(CodecError, match="not one of its bitrates"):
        adapter.encode(speechlike(800), Bitrate.parse("3.2k"))
    with pytest.raises(CodecError, match="empty"):
        adapter.encode(np.zeros(0, np.float32), Bitrate.parse("2k"))
    good = adapter.encode(speechlike(8000), Bitrate.parse("2k"))
    with pytest.raises(CodecError, match="truncated"):
        adapter.decode(good[:-3])
    with pytest.raises(CodecError, match="truncated"):
        adapter.decode(good[:10])
    with pytest.raises(CodecError, match="magic"):
        adapter.decode(b"XXXX" + good[4:])
    flipped = bytearray(good)
    flipped[-5] ^= 0x10
    with pytest.raises(CodecError, match="CRC"):
        adapter.decode(bytes(flipped))
    codes = adapter.model.encode_audio(speechlike(800), 2)
    other = bitstream.pack(codes, 10, 8000, 800, adapter._model_id ^ 1)
    with pytest.raises(CodecError, match="another model"):
        adapter.decode(other)
    wrong_sr = bitstream.pack(codes, 10, 16000, 800, adapter._model_id)
    with pytest.raises(CodecError, match="16000 Hz"):
        adapter.decode(wrong_sr)


def test_checkpoint_from_another_config_refused(tmp_path: Path) -> None:
    cfg = recipe_config(card_for("svcodec", tmp_path, SMALL).data, "tiny")
    checkpoint.export(NeuralCodec(cfg.model), cfg, tmp_path, {"step": 0})
    codec = SVCodec(card_for("svcodec", tmp_path / "model.safetensors", {"channels": 8, "dim": 16}))
    with pytest.raises(CodecError, match="another model config.*channels: checkpoint 4 vs card 8"):
        codec.encode(speechlike(800), Bitrate.parse("1k"))
    ss = SoundStreamCodec(card_for("soundstream", tmp_path / "model.safetensors", SMALL))
    # an svcodec checkpoint under the soundstream card
    with pytest.raises(CodecError, match="activation: checkpoint 'leaky_relu' vs card 'elu'"):
        ss.prepare()


def test_checkpoint_older_than_an_option_takes_its_default(tmp_path: Path) -> None:
    # A checkpoint written before a model option existed has no value for it; it was built with the default.
    cfg = recipe_config(card_for("svcodec", tmp_path, SMALL).data, "tiny").to_dict()  # as stored
    del cfg["model"]["activation"]
    checkpoint.export(NeuralCodec(cfg["model"]), cfg, tmp_path, {"step": 0})
    old = cfg["model"] | {"activation": "elu"}
    model_, _ = checkpoint.load_export(tmp_path, want_model=old)
    assert model_.config.activation == "elu"
    with pytest.raises(checkpoint.CheckpointError, match="activation: checkpoint 'elu' vs card 'leaky_relu'"):
        checkpoint.load_export(tmp_path, want_model=old | {"activation": "leaky_relu"})


@ARCHS
@pytest.mark.parametrize("kind", ["factorized", "ema"])
def test_streaming_equals_offline(kind: str, arch: dict) -> None:
    m = model(kind, arch=arch)
    x = speechlike(160 * 40)
    for n_q in (1, 5, 8):
        codes = m.encode_audio(x, n_q)
        offline = m.decode_audio(codes)
        enc, dec = StreamingEncoder(m, n_q), StreamingDecoder(m)
        s_codes, s_out = [], []
        for i in range(0, len(x), m.hop):
            c = enc.push(x[i: i + m.hop])
            s_codes.append(c)
            s_out.append(dec.push(c))
        np.testing.assert_array_equal(np.stack(s_codes), codes)
        np.testing.assert_allclose(np.concatenate(s_out), offline, atol=1e-5, rtol=0)
    with pytest.raises(ValueError, match="160 samples"):
        StreamingEncoder(m, 1).push(x[:100])


@pytest.mark.parametrize("kind", ["factorized", "ema"])
def test_rvq_codebook_use(kind: str) -> None:
    """Trained on clustered data, re-seeding and (for factorized) the usage loss put most codes to use."""
    torch.manual_seed(0)
    size, dim = 64, 16
    rvq = RVQ(dim, 2, size, kind, code_dim=8)
    centers = torch.randn(256, dim)
    opt = torch.optim.Adam(rvq.parameters(), 1e-2) if kind == "factorized" else None
    gen = torch.Generator().manual_seed(0)
    first_err = None
    for step in range(1, 121):
        z = (centers[torch.randint(0, 256, (512,), generator=gen)] + 0.05 * torch.randn(512, dim, generator=gen))
        z = z.T[None]  # (1, dim, 512)
        zq, codes, losses = rvq(z, torch.tensor([2]))
        err = (zq - z).pow(2).mean()
        first_err = first_err or err.item()
        if opt:
            opt.zero_grad()
            (err + losses["commit"] + losses["vq"] + 0.1 * losses["code_entropy"]).backward()
            opt.step()
        if step % 20 == 0:
            rvq.reseed_dead(0.05, gen)
    used = rvq.usage_stats()
    assert used[0] > 0.5, used  # perplexity above half the codebook
    assert err.item() < 0.5 * first_err
    assert len(torch.unique(codes[0, 0])) > size // 2


def test_rvq_picks_the_same_codes_under_bf16_autocast() -> None:
    """Mixed precision (GPU training) must not change which code is nearest: in bf16 the distances to
    1024 codes round enough to flip about 5 % of the picks, so the quantizer turns autocast off."""
    torch.manual_seed(0)
    rvq = RVQ(64, 8, 1024, "ema").eval()
    z, n_q = 0.1 * torch.randn(4, 64, 50), torch.full((4,), 8)
    with torch.no_grad():
        zq, codes, _ = rvq(z, n_q)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            zq_amp, codes_amp, _ = rvq(z, n_q)
    assert torch.equal(codes_amp, codes) and zq_amp.dtype == torch.float32


def test_code_entropy_loss_measures_and_raises_codebook_use() -> None:
    """The code-entropy loss (SVCODEC's codebook loss) is 1 - H(average soft assignment) / log K: near 1 when
    every vector sits on one code, near 0 when each code is hit once (a uniform average); its gradient alone,
    on the encoder's output (the input here), spreads the vectors over more codes. EMA codebooks (svcodec's),
    whose codes are latent vectors themselves, so "sits on a code" is exact."""
    torch.manual_seed(0)
    size, dim = 64, 16
    stage = RVQ(dim, 1, size, "ema", temperature=0.1).stages[0].eval()
    codes = stage.lookup(torch.arange(size)).detach()
    one = torch.ones(size)
    assert stage(codes[:1].repeat(size, 1), one, 0.1)[2]["code_entropy"] > 0.8
    assert stage(codes, one, 0.1)[2]["code_entropy"] < 0.1
    z = (codes[:2].repeat(size // 2, 1) + 0.01 * torch.randn(size, dim)).requires_grad_()
    before = len(torch.unique(stage.nearest(z)))
    opt = torch.optim.SGD([z], lr=1.0)
    for _ in range(50):
        opt.zero_grad()
        stage(z, one, 0.1)[2]["code_entropy"].backward()
        opt.step()
    assert before <= 2 and len(torch.unique(stage.nearest(z))) > 8


def _export_card_model(folder: Path, codec: str = "svcodec") -> None:
    """A randomly initialised model with the card's own recipe config (what a build would write)."""
    card = tomllib.loads((ROOT / "codecs" / f"{codec}.toml").read_text())
    cfg = recipe_config(card, card["params"]["recipe"])
    torch.manual_seed(0)
    checkpoint.export(NeuralCodec(cfg.model), cfg, folder, {"step": 0})


def test_run_uses_the_built_checkpoint(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`svbench run --codec svcodec --bitrate 3k` goes through the engine like any codec."""
    import json

    import soundfile as sf

    from svbench import cli

    monkeypatch.setenv("SVBENCH_MODELS", str(tmp_path / "models"))
    _export_card_model(tmp_path / "models" / "svcodec" / "tiny")
    sf.write(tmp_path / "a.wav", speechlike(16000 * 2) * 0.5, 16000)  # 16 kHz: resampled to 8 kHz with a note
    (tmp_path / "m.csv").write_text("id,path\na,a.wav\n")
    code = cli.main(["run", "--codec", "svcodec", "--bitrate", "3k,0.5k", "--dataset", str(tmp_path / "m.csv"),
                     "--workspace", str(tmp_path / "ws"), "--workers", "1", "--quiet"])
    assert code in (0, 1)  # 1 = a metric had no value (random weights may give unscorable output)
    import pandas as pd

    runs = list((tmp_path / "ws" / "runs").iterdir())
    res = pd.read_csv(runs[0] / "results.csv")
    assert set(res.status) == {"ok"}, res.to_dict("records")
    by = dict(zip(res.bitrate, res.measured_bps, strict=True))
    assert 3000 <= by["3k"] <= 3000 * 1.01 and 500 <= by["0.5k"] <= 505
    assert "resampled 16000->8000" in json.dumps(res.notes.tolist())


def test_missing_checkpoint_runs_the_build_step_first(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import svbench.neural.build as build_mod
    from svbench.cards import get_card

    monkeypatch.setenv("SVBENCH_MODELS", str(tmp_path / "models"))
    monkeypatch.setattr(checkpoint, "SHIPPED", tmp_path / "nothing-shipped")
    calls = []

    def fake_build(codec: str, recipe: str, out: Path, log: object) -> Path:  # the real one trains for ~30 min
        calls.append((codec, recipe))
        _export_card_model(out, codec)
        return out / "model.safetensors"

    monkeypatch.setattr(build_mod, "build", fake_build)
    said: list[str] = []
    codec = SVCodec(get_card("codecs", "svcodec"))
    assert codec.checkpoint_path() is None
    codec.prepare(log=said.append)
    assert calls == [("svcodec", "tiny")] and "running the build step first" in said[0]
    assert codec.checkpoint_path() == tmp_path / "models" / "svcodec" / "tiny" / "model.safetensors"
    assert codec.decode(codec.encode(speechlike(800), Bitrate.parse("1k"))).shape == (800,)


@pytest.mark.parametrize("codec", ["svcodec", "soundstream"])
def test_shipped_checkpoint_matches_its_card(codec: str) -> None:
    """The small checkpoints in the package: same config as the card's recipe, provenance beside them."""
    import json

    folder = checkpoint.shipped_dir(codec, "tiny")
    if not (folder / "model.safetensors").is_file():
        pytest.skip(f"no shipped {codec} checkpoint in this checkout")
    size = sum(p.stat().st_size for p in folder.parent.rglob("*") if p.is_file())
    assert size < 10_000_000
    card = tomllib.loads((ROOT / "codecs" / f"{codec}.toml").read_text())
    recipe = recipe_config(card, "tiny")
    model, got = checkpoint.load_export(folder, recipe.model)
    info = json.loads((folder / "config.json").read_text())
    cfg, got, TRAIN_DEFAULTS = recipe.to_dict(), got.to_dict(), TrainConfig().to_dict()  # the stored forms

    want = {**TRAIN_DEFAULTS, **cfg["train"]}
    # an option added after the checkpoint was made had its default's behaviour then
    assert {**TRAIN_DEFAULTS, **got["train"]} == want, \
        "the card's tiny recipe no longer describes the shipped checkpoint"
    assert info["step"] == cfg["train"]["steps"] and info["seed"] == cfg["train"]["seed"]
    assert len(info["train_manifest_sha256"]) == 64
    assert (folder / "train_log.csv").is_file() and (folder / "valid.csv").is_file()
    x = speechlike(8000)
    assert np.isfinite(model.decode_audio(model.encode_audio(x, 6))).all()


def test_codec_identity_follows_the_checkpoint(tmp_path):
    """The decoded-audio cache and run id key on identity(): another checkpoint must give another key."""
    import dataclasses
    import shutil

    from svbench.cards import get_card
    from svbench.engine import make_codec

    card = get_card("codecs", "svcodec")
    shipped = make_codec(card).checkpoint_path()
    assert shipped is not None
    copy = tmp_path / "model.safetensors"
    shutil.copy(shipped, copy)

    def with_checkpoint(path):
        data = {**card.data, "params": {**card.params, "checkpoint": str(path)}}
        return make_codec(dataclasses.replace(card, data=data)).identity()

    assert with_checkpoint(copy) == with_checkpoint(shipped)
    copy.write_bytes(copy.read_bytes() + b"\0")  # another file: another model as far as the cache can tell
    assert with_checkpoint(copy) != with_checkpoint(shipped)

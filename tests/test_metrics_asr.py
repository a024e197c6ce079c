"""Intelligibility by recognition (``wer``, ``cer``): PocketSphinx on real read English stays near its
published error rate, identity adds no error, heavier coding adds more, text normalization follows
its documented rules, and every input without a meaningful rate says why (never a crash, never a 0).

PocketSphinx decodes about 3 s of audio per CPU second here, so the module decodes each clip once
(module-scoped fixtures) and uses the 10 LibriSpeech test-clean references of the svcodec-demo set.
"""

from __future__ import annotations

from importlib.metadata import EntryPoint, version
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from svbench import audio, cards, engine
from svbench import manifest as manifest_mod
from svbench.bitrate import Bitrate
from svbench.cards import get_card
from svbench.manifest import Utterance
from svbench.metrics import shared
from svbench.metrics.asr import PocketSphinx, RecognizerMetric
from svbench.metrics.base import MetricUnavailable, load_metric, load_metrics, metric_status
from svbench.metrics.text import normalize
from tests.conftest import DEMO, SPEECH, need

# Picovoice/speech-to-text-benchmark README (commit 74207b4, 2020-01-14), "Results": CMU PocketSphinx
# 0.1.15 (the same en-us acoustic model and language model the pocketsphinx 5 wheel ships) has a word
# error rate of 31.82 % on LibriSpeech test-clean.
PUBLISHED_WER = 0.3182
# Our sample is 10 test-clean utterances (~200 words). PocketSphinx's per-utterance WER spreads by about
# 15 points on read speech, so the mean of 10 has a standard error near 5 points: accept 3 of them.
WER_RANGE = (PUBLISHED_WER - 0.15, PUBLISHED_WER + 0.15)


@pytest.fixture(scope="module")
def clips() -> list[tuple[Utterance, np.ndarray]]:
    """The svcodec-demo references (LibriSpeech test-clean, 16 kHz) with their transcripts."""
    paths = sorted(need(DEMO / "reference" / "org").rglob("*.flac"))
    assert len(paths) == 10
    out = []
    for p in paths:
        clip = audio.read(p)
        assert clip.sr == 16000
        out.append((Utterance(p.stem, p, text=(p.parent / "text.txt").read_text().strip()), clip.samples))
    return out


@pytest.fixture(scope="module")
def wer_cer():
    return load_metrics(["wer", "cer"])


@pytest.fixture(scope="module")
def identity_rows(clips, wer_cer):
    """engine.score of every reference against itself, at 16 kHz (one decode per clip: wer and cer share it)."""
    return [{key: value for _, key, value, *_ in engine.score(wer_cer, x, x.copy(), 16000, utt)} for utt, x in clips]


def test_pocketsphinx_wer_on_librispeech_test_clean_is_near_the_published_rate(identity_rows):
    mean_wer = np.mean([row["wer_ref"] for row in identity_rows])
    assert WER_RANGE[0] <= mean_wer <= WER_RANGE[1], f"{mean_wer:.3f} outside {WER_RANGE}"


def test_identity_adds_no_error(identity_rows):
    for row in identity_rows:
        assert row["wer_delta"] == 0.0 and row["cer_delta"] == 0.0
        assert row["wer"] == row["wer_ref"] and row["cer"] == row["cer_ref"]


def test_a_transcript_does_not_depend_on_what_the_worker_decoded_before(clips, wer_cer, identity_rows):
    i = min(range(len(clips)), key=lambda k: len(clips[k][1]))  # the shortest clip, decoded 6th in the fixture
    utt, x = clips[i]
    shared.clear()  # no memoised transcript: PocketSphinx decodes it again, after all the others
    row = {key: value for _, key, value, *_ in engine.score(wer_cer, x, x.copy(), 16000, utt)}
    assert row == identity_rows[i]


def test_heavier_coding_gives_more_word_errors_and_lower_speaker_similarity(clips, tmp_path):
    """Codec 2 700C against Opus at 16 kbit/s, through the real adapters and the engine's unit of work,
    on the two shortest clips, compared at 8 kHz (both codecs' rate)."""
    shortest = sorted(clips, key=lambda c: len(c[1]))[:2]
    metric_cards = tuple(m.card for m in load_metrics(["wer", "spk-sim"]))
    ctx = engine.WorkerContext(metric_cards, str(tmp_path / "cache"), 8000, "envelope", False)
    got: dict[str, dict[str, list[float]]] = {"codec2": {}, "opus": {}}
    for codec, rate in (("codec2", "0.7k"), ("opus", "16k")):
        for utt, _ in shortest:
            result = engine.evaluate(engine.Task(ctx, utt, codec, get_card("codecs", codec), Bitrate.parse(rate)))
            assert result.status == "ok", result.error
            for _, key, value, reason, *_ in result.scores:
                assert value is not None, reason
                got[codec].setdefault(key, []).append(value)
    mean = {codec: {key: np.mean(v) for key, v in keys.items()} for codec, keys in got.items()}
    # PocketSphinx's noise is ~10 points (experiments/svcodec/asr.py): ask for more than that
    for key in ("wer_from8k", "wer_delta_from8k"):
        assert mean["codec2"][key] > mean["opus"][key] + 0.10, mean
    assert mean["codec2"]["spk_sim_from8k"] < mean["opus"]["spk_sim_from8k"] - 0.02, mean


# ---------------------------------------------------------------- text normalization (docs/metrics.md rules)


@pytest.mark.parametrize(("text", "expected"), [
    ("Hello, World!", "hello world"),  # case, punctuation
    ("He said: \u201cI\u2019m 21 on the 15th.\u201d", "he said i'm twenty one on the fifteenth"),  # numbers, ordinals
    ("1,000 men & 3.05%", "one thousand men and three point zero five percent"),
    ("twenty-one 'quoted'", "twenty one quoted"),  # hyphen = space; quotes are not apostrophes
    ("<sil> the(2) [NOISE] cat", "the cat"),  # PocketSphinx markup
    ("", ""),
])
def test_text_normalization_follows_the_documented_rules(text, expected):
    assert normalize(text) == expected


def test_numbers_written_either_way_are_the_same_words():
    assert normalize("Saturday, August 15th") == normalize("saturday august fifteenth")
    assert normalize("chapter 21") == normalize("Chapter Twenty-One")


# ---------------------------------------------------------------- bad input


@pytest.fixture(scope="module")
def short_clip(clips) -> np.ndarray:
    """1.5 s of real speech at 8 kHz (the start of the shortest clip)."""
    return audio.resample(audio.Audio(sorted(clips, key=lambda c: len(c[1]))[0][1][:24000], 16000), 8000).samples


def reasons(metric_names, ref, deg, sr, utt):
    return {key: (value, reason) for _, key, value, reason, *_ in engine.score(load_metrics(metric_names), ref, deg,
                                                                               sr, utt)}


def test_no_transcript_is_not_defined(short_clip):
    for utt in (Utterance("x", Path("x.wav")), Utterance("x", Path("x.wav"), text="  "), None):
        assert reasons(["wer", "cer"], short_clip, short_clip, 8000, utt) == {
            "wer": (None, "not defined: no transcript"), "cer": (None, "not defined: no transcript")}


def test_aishell1_is_not_defined_because_the_recognizer_is_english_only(short_clip):
    table = manifest_mod.load(need(SPEECH / "aishell1" / "manifest.csv"))
    with_text = [u for u in table.utterances if u.text]
    assert with_text, "AISHELL-1 manifest has transcripts"
    for utt in with_text:
        [(value, reason)] = reasons(["wer"], short_clip, short_clip, 8000, utt).values()
        assert value is None and reason.startswith("not defined: recognizer is English-only"), reason


def test_a_manifest_language_column_decides_first(tmp_path, short_clip):
    (tmp_path / "m.csv").write_text("id,path,text,language\na,a.wav,hello there,zh-CN\nb,b.wav,hello there,en-US\n")
    zh, en = manifest_mod.load(tmp_path / "m.csv").utterances
    assert reasons(["wer"], short_clip, short_clip, 8000, zh)["wer"] == (
        None, "not defined: recognizer is English-only (the manifest says language 'zh-cn')")
    assert reasons(["wer"], short_clip, short_clip, 8000, en)["wer_from8k"][0] is not None


def test_silent_decoded_and_too_short_clips_are_not_defined(short_clip):
    utt = Utterance("x", Path("x.wav"), text="hello")
    got = reasons(["wer"], short_clip, np.zeros_like(short_clip), 8000, utt)
    assert got["wer"][0] is None and got["wer"][1].startswith("not defined: decoded audio is silent")
    tiny = short_clip[:800]  # 0.1 s
    assert reasons(["wer"], tiny, tiny, 8000, utt)["wer"] == (None, "not defined: clip too short: 0.100 s < 0.2 s")


# ---------------------------------------------------------------- a recognizer of one's own; provenance


class LocalSphinx(RecognizerMetric):
    """A third-party recognizer metric, as docs/metrics.md shows for Whisper; here PocketSphinx loaded from a
    local folder, because no other recognizer's model is on this machine."""

    requires = ("jiwer", "num2words", "pocketsphinx")
    defaults = {**RecognizerMetric.defaults, "model_path": ""}

    def model_files(self):
        root = Path(str(self.params["model_path"])).expanduser()
        return [root / "en-us", root / "en-us.lm.bin", root / "cmudict-en-us.dict"]

    def load_recognizer(self):
        acoustic, lm, dictionary = self.model_files()
        return PocketSphinx(acoustic, lm, dictionary, cmn="batch")


@pytest.fixture
def plugin(tmp_path, monkeypatch):
    real = cards.entry_points

    def with_plugin(group):
        found = list(real(group=group))
        if group == "svbench.metrics":
            found.append(EntryPoint("local-sphinx", f"{__name__}:LocalSphinx", "svbench.metrics"))
        return found

    monkeypatch.setattr(cards, "entry_points", with_plugin)
    (tmp_path / "metrics").mkdir()
    monkeypatch.chdir(tmp_path)

    def card(name: str, model_path: Path) -> None:
        (tmp_path / "metrics" / f"{name}.toml").write_text(
            f'name = "{name}"\nimpl = "local-sphinx"\ndescription = "d"\nreference = "r"\n'
            f'[params]\nmodel_path = "{model_path}"\n')

    return card


def test_a_missing_local_model_is_not_computed_and_nothing_is_downloaded(plugin, tmp_path):
    missing = tmp_path / "no-such-model"
    plugin("wer-local", missing)
    with pytest.raises(MetricUnavailable, match=f"not computed: no model at {missing}"):
        load_metrics(["wer-local"])
    listed = {name: (status, text) for name, status, text in metric_status()}
    assert listed["wer-local"] == ("unavailable", f"not computed: no model at {missing / 'en-us'}")


def test_a_recognizer_from_a_local_model_folder_plugs_in(plugin, tmp_path, clips, identity_rows):
    from pocketsphinx import get_model_path

    folder = tmp_path / "my-model"
    folder.mkdir()
    for name in ("en-us", "en-us.lm.bin", "cmudict-en-us.dict"):
        (folder / name).symlink_to(Path(get_model_path()) / "en-us" / name)
    plugin("wer-local", folder)
    [mine] = load_metrics(["wer-local"])
    i = min(range(len(clips)), key=lambda k: len(clips[k][1]))
    utt, x = clips[i]
    got = {key: value for _, key, value, *_ in engine.score([mine], x, x, 16000, utt)}
    assert got == {"wer_local": identity_rows[i]["wer"], "wer_local_ref": identity_rows[i]["wer_ref"],
                   "wer_local_delta": 0.0}  # the shipped model, loaded from the user's folder, under the card's name


def test_list_metrics_shows_the_models_provenance():
    listed = {name: text for name, _, text in metric_status()}
    for name in ("wer", "cer"):
        assert f"(pocketsphinx {version('pocketsphinx')}, sha256 " in listed[name]
    model = load_metric("wer").describe()["model"]  # recorded with every run that uses the metric
    assert model["package"] == "pocketsphinx" and len(model["sha256"]) == 64
    assert model == load_metric("cer").describe()["model"]  # one recognizer, one model
    assert "model" not in load_metric("pesq").describe()  # metrics without a model keep their run identity


def test_svbench_run_stores_wer_from_the_manifest_text_and_the_table3_variant_shows_it(tmp_path, clips):
    utt, _ = sorted(clips, key=lambda c: len(c[1]))[0]
    pd.DataFrame([{"id": utt.id, "path": str(utt.path), "text": utt.text}]).to_csv(tmp_path / "m.csv", index=False)
    from svbench.cli import main
    from svbench.executor import SerialExecutor

    spec = engine.RunSpec(dataset=str(tmp_path / "m.csv"), codecs=("opus",), bitrates=("16k",), metrics=("wer",),
                          workspace=str(tmp_path / "work"))
    out = engine.execute(spec, SerialExecutor())
    from svbench.store import Store

    store = Store(out.store_path)
    try:
        scores = store.frame("scores", out.run_id)
    finally:
        store.close()
    assert set(scores.key) == {"wer_from8k", "wer_ref_from8k", "wer_delta_from8k"}
    assert scores.value.notna().all()
    assert main(["report", "table3-asr", "--workspace", str(tmp_path / "work"), "-o", str(tmp_path / "out")]) == 0
    table = pd.read_csv(tmp_path / "out" / "table3-asr.csv")
    [delta] = scores.value[scores.key == "wer_delta_from8k"]
    assert table.wer_delta_mean.tolist() == [pytest.approx(delta)] and table.wer_delta_n.tolist() == [1]


def test_paper_plus_asr_is_an_opt_in_named_set():
    from svbench.cli import _metric_names

    beyond = ("wer", "cer", "spk-sim", "plcmos")
    assert _metric_names("paper+asr") == (*_metric_names("paper"), *beyond)
    assert not set(beyond) & set(_metric_names("paper")) and engine.RunSpec("d.csv", ("opus",)).metrics == (
        "pesq", "stoi")  # neither the paper set nor the default gets slower
    assert [m.name for m in load_metrics(list(_metric_names("paper+asr")))][-4:] == list(beyond)

"""The project's own regression check (run by `.ci/run` with the rest of the suite): a small fixed grid on
real LibriSpeech clips against the committed baseline `reports/baselines/ci.jsonl`.

The set (docs/check.md says why): the 12 shortest clips of ../shared/data/speech/librispeech; Opus 6k/8k,
Codec 2 1.2k/3.2k, SVCODEC 1k/3k (its shipped tiny checkpoint); PESQ, STOI, LSD, F0RMSE, SaRMSE (five of
the paper's eight: ViSQOL, MCD and DNSMOS would multiply the test's time, see docs/check.md).

After a deliberate change of those numbers, make the baseline again (and say why in the commit):

    .venv/bin/python tests/test_check_ci.py --update
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from pathlib import Path

import pandas as pd
import pytest

REPO = Path(__file__).resolve().parents[1]
BASELINE = REPO / "reports" / "baselines" / "ci.jsonl"
N_CLIPS = 12
GRID = ["--grid", "opus=6k,8k", "--grid", "codec2=1.2k,3.2k", "--grid", "svcodec=1k,3k"]
METRICS = "pesq,stoi,lsd,f0rmse,sarmse"


def ci_manifest(speech: Path, out: Path) -> Path:
    """The fixed CI set: the N_CLIPS shortest clips of the shared LibriSpeech manifest (ties by id)."""
    root = speech / "librispeech"
    table = pd.read_csv(root / "manifest.csv", dtype={"id": str})
    table = table.sort_values(["duration_s", "id"]).head(N_CLIPS)[["id", "path"]].copy()
    table["path"] = [str(root / p) for p in table.path]
    table.to_csv(out, index=False)
    return out


def ci_run(manifest: Path, workspace: Path, *grid: str) -> int:
    from svbench.cli import main

    return main(["run", *(grid or GRID), "--dataset", str(manifest), "--metrics", METRICS, "--workers", "2",
                 "--quiet", "--workspace", str(workspace)])


@pytest.fixture(scope="module")
def ci_workspace(tmp_path_factory):
    from .conftest import SPEECH, need

    need(SPEECH / "librispeech")
    tmp = tmp_path_factory.mktemp("ci")
    mp = pytest.MonkeyPatch()
    mp.setenv("SVBENCH_MODELS", str(tmp / "no-models"))  # the shipped checkpoint, never a developer's own build
    mp.chdir(tmp)  # cards from the project, not from a ./codecs of wherever pytest was started
    manifest = ci_manifest(SPEECH, tmp / "ci.csv")
    code = ci_run(manifest, tmp / "ws")
    assert code in (0, 1)  # 1: F0RMSE/SaRMSE are undefined on a few SVCODEC clips (no frame voiced in both)
    yield tmp, manifest
    mp.undo()


def test_the_unchanged_tree_matches_the_committed_baseline(ci_workspace, capsys):
    from svbench.cli import main

    tmp, _ = ci_workspace
    capsys.readouterr()
    code = main(["check", "--baseline", str(BASELINE), "--workspace", str(tmp / "ws")])
    err = capsys.readouterr().err
    assert code == 0, err
    assert "\n0 regressed, 0 missing, 0 improved, 0 new, 42 unchanged" in err


def test_a_really_worse_codec_fails_the_check(ci_workspace, tmp_path, monkeypatch, capsys):
    """A ./codecs/opus.toml beside the run, named like the baseline's codec, that puts libopus in its
    low-delay (CELT-only) application: at 6-8 kbit/s CELT cannot code speech as well as SILK does."""
    from svbench.cli import main

    src, manifest = ci_workspace
    shutil.copytree(src / "ws", tmp_path / "ws")
    (tmp_path / "codecs").mkdir()
    card = (REPO / "codecs" / "opus.toml").read_text()
    assert 'application = "voip"' in card
    (tmp_path / "codecs" / "opus.toml").write_text(card.replace('application = "voip"', 'application = "lowdelay"'))
    monkeypatch.chdir(tmp_path)  # ./codecs is looked up first (svbench/cards.py)
    assert ci_run(manifest, tmp_path / "ws", "--grid", "opus=6k,8k") in (0, 1)  # only Opus is run again
    capsys.readouterr()
    code = main(["check", "--baseline", str(BASELINE), "--workspace", str(tmp_path / "ws"),
                 "--junit", str(tmp_path / "junit.xml")])
    err = capsys.readouterr().err
    assert code == 1, err
    regressed = {line.split(":")[0].split(" ", 1)[1] for line in err.splitlines() if line.startswith("regressed ")}
    assert {"opus@6k pesq_nb", "opus@8k pesq_nb"} <= regressed, err
    assert all(name.startswith("opus@") for name in regressed), err  # the other codecs did not move
    assert "codec opus: changed since the baseline" in err
    assert 'type="regressed"' in (tmp_path / "junit.xml").read_text()


def _update() -> None:
    """Make the committed baseline from a fresh run of the CI set (see the module docstring)."""
    sys.path.insert(0, str(REPO))
    from svbench.cli import main
    from tests.conftest import SPEECH

    with tempfile.TemporaryDirectory() as tmp:
        import os

        os.environ["SVBENCH_MODELS"] = str(Path(tmp) / "no-models")
        os.chdir(tmp)
        manifest = ci_manifest(SPEECH, Path(tmp) / "ci.csv")
        print("run exit code", ci_run(manifest, Path(tmp) / "ws"))
        sys.exit(main(["check", "--baseline", str(BASELINE), "--workspace", str(Path(tmp) / "ws"), "--update"]))


if __name__ == "__main__":
    if sys.argv[1:] != ["--update"]:
        sys.exit(__doc__)
    _update()

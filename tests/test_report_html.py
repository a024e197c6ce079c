"""The listening page in a real browser (Debian's chromium through its chromium-driver and Selenium):
it loads without console errors, every audio element's file exists and decodes (its duration is known),
and a screenshot is kept in the test's output folder."""

from __future__ import annotations

import shutil
import socket
import threading
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pandas as pd
import pytest
import soundfile as sf

from svbench.cli import main

from .conftest import SPEECH, need

CHROMIUM, DRIVER = shutil.which("chromium"), shutil.which("chromedriver")


@pytest.fixture(scope="module")
def workspace(tmp_path_factory) -> Path:
    """One real run: Opus 6k and Codec 2 1.2k on the two shortest LibriSpeech clips, PESQ."""
    root = need(SPEECH / "librispeech")
    tmp = tmp_path_factory.mktemp("html")
    table = pd.read_csv(root / "manifest.csv", dtype={"id": str})
    table = table[table.duration_s <= 8].sort_values(["duration_s", "id"]).head(2)[["id", "path"]].copy()
    table["path"] = [str(root / p) for p in table.path]
    table.to_csv(tmp / "clips.csv", index=False)
    code = main(["run", "--grid", "opus=6k", "--grid", "codec2=1.2k", "--dataset", str(tmp / "clips.csv"),
                 "--metrics", "pesq", "--workers", "1", "--quiet", "--workspace", str(tmp / "ws")])
    assert code == 0
    return tmp / "ws"


def test_page_folder_is_self_contained(workspace, tmp_path):
    out = tmp_path / "page"
    assert main(["report", "html", "--workspace", str(workspace), "-o", str(out)]) == 0
    page = (out / "index.html").read_text()
    sounds = sorted(out.rglob("*.wav"))
    assert len(sounds) == 2 * 3  # per utterance: the reference, opus@6k, codec2@1.2k
    for path in sounds:
        assert f'src="{path.relative_to(out).as_posix()}"' in page  # relative links only
        info = sf.info(path)
        assert info.frames > 0 and info.samplerate in (8000, 16000)
    assert str(workspace) not in page and "/work/" not in page
    assert (out / "table3.csv").is_file() and (out / "fig-bitrate.png").is_file()


def test_a_clip_whose_cache_entry_is_gone_says_so(workspace, tmp_path):
    ws = tmp_path / "ws"
    shutil.copytree(workspace, ws, ignore=shutil.ignore_patterns("cache"))
    out = tmp_path / "page"
    assert main(["report", "html", "--workspace", str(ws), "-o", str(out)]) == 0
    page = (out / "index.html").read_text()
    assert page.count("decoded audio not in") == 4 and len(list(out.rglob("*.wav"))) == 2  # references only


@pytest.mark.skipif(not (CHROMIUM and DRIVER), reason="needs Debian's chromium and chromium-driver "
                    "(scripts/setup.sh installs them: apt-get install chromium chromium-driver)")
def test_page_plays_in_a_real_browser(workspace, tmp_path):
    webdriver = pytest.importorskip("selenium.webdriver")
    out = tmp_path / "page"
    assert main(["report", "html", "--workspace", str(workspace), "-o", str(out)]) == 0
    server = ThreadingHTTPServer(("127.0.0.1", _free_port()), partial(_Quiet, directory=str(out)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run", "--window-size=1400,1800",
                 f"--user-data-dir={tmp_path / 'profile'}"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(options=options, service=webdriver.ChromeService(executable_path=DRIVER))
    try:
        driver.set_script_timeout(60)
        driver.get(f"http://127.0.0.1:{server.server_port}/index.html")
        found = driver.execute_async_script("""
            const done = arguments[arguments.length - 1];
            const players = Array.from(document.querySelectorAll('audio'));
            Promise.all(players.map(a => new Promise(ok => {
                if (a.readyState >= 1 || a.error) return ok();
                a.addEventListener('loadedmetadata', ok); a.addEventListener('error', ok); a.load();
            }))).then(() => done(players.map(a => ({src: a.currentSrc, duration: a.duration,
                                                     error: a.error ? a.error.code : null}))));
        """)
        driver.save_screenshot(str(tmp_path / "listening-page.png"))
        severe = [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]
    finally:
        driver.quit()
        server.shutdown()
    assert len(found) == 6
    for player in found:
        assert player["error"] is None and player["duration"] > 0, player
    assert severe == []
    assert (tmp_path / "listening-page.png").stat().st_size > 10_000


class _Quiet(SimpleHTTPRequestHandler):
    def log_message(self, *args: object) -> None:  # keep pytest's output clean
        pass


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]

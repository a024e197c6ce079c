#!/usr/bin/env bash
# Set up svbench on a fresh Debian machine with Python 3.11: system tools, a virtual environment in
# .venv, svbench (editable) with its test tools. Idempotent: a second run installs nothing new.
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
command -v ffmpeg >/dev/null || need_apt+=(ffmpeg)          # Debian's ffmpeg has libspeex and libcodec2
command -v espeak-ng >/dev/null || need_apt+=(espeak-ng)    # synthesizes the embedded demo sentences
command -v c2enc >/dev/null || need_apt+=(codec2)           # Codec 2's reference programs (tests compare with them)
command -v sox >/dev/null || need_apt+=(sox)
ldconfig -p 2>/dev/null | grep -q libsndfile.so.1 || need_apt+=(libsndfile1)
command -v chromium >/dev/null || need_apt+=(chromium)      # the listening page's test drives a real browser
command -v chromedriver >/dev/null || need_apt+=(chromium-driver)
if ((${#need_apt[@]})); then
    if [ "$(id -u)" = 0 ]; then
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}" >/dev/null
    else
        echo "svbench setup: please run: sudo apt-get install ${need_apt[*]}" >&2
        exit 1
    fi
fi

PYTHON=${PYTHON:-python3.11}
command -v "$PYTHON" >/dev/null || PYTHON=python3
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
# torch is pinned to the CPU build on this disk (a newer one would download gigabytes);
# setuptools<81 keeps pkg_resources, which pysptk and pyworld import. Their sdists are built here without
# build isolation (an isolated build would take the newest setuptools), so their build needs (numpy,
# Cython, scipy) go in first.
pip_install() {  # quiet, but a failure still fails the set-up
    .venv/bin/python -m pip install -q --disable-pip-version-check "$@" 2>&1 | { grep -v '^WARNING: Location' || true; }
    return "${PIPESTATUS[0]}"
}
pip_install 'setuptools<81' wheel hatchling editables 'numpy>=1.26' 'cython>=0.29' 'scipy>=1.11'
pip_install --no-build-isolation -e '.[dev]'
.venv/bin/python -c "import svbench, pysptk, pesq, pystoi, av, pycodec2" 

#!/usr/bin/env bash
# Build the 3GPP EVS reference programs (EVS_cod, EVS_dec; TS 26.443 floating point) into svbench's
# cache, never into the repository (EVS has declared essential patents: evaluate with it, don't ship it).
#   scripts/build_evs.sh [evs-26443-h00.tar.gz]   (default: ../shared/tools/evs/ beside the checkout)
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
src="${1:-$here/../shared/tools/evs/evs-26443-h00.tar.gz}"
dest="${SVBENCH_CACHE:-$HOME/.cache/svbench}/evs"
if [ -x "$dest/bin/EVS_cod" ] && [ -x "$dest/bin/EVS_dec" ]; then
    echo "EVS programs already built in $dest/bin"; exit 0
fi
[ -f "$src" ] || { echo "EVS source not found: $src" >&2; exit 1; }
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
tar xzf "$src" -C "$work"
make -C "$work"/evs-* -j"$(nproc)" OPTIM=2 DEBUG=0 >"$work/build.log" 2>&1 || { tail -20 "$work/build.log" >&2; exit 1; }
mkdir -p "$dest/bin"
cp "$work"/evs-*/EVS_cod "$work"/evs-*/EVS_dec "$dest/bin/"
echo "built EVS_cod and EVS_dec into $dest/bin"

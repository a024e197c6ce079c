"""``svbench build CODEC``: train a neural codec's checkpoint (the adapter's build step)."""

from __future__ import annotations

import argparse
from typing import Any


def add_build_parser(sub: Any) -> None:
    b = sub.add_parser("build", help="train a neural codec (svcodec, soundstream) and write its checkpoint")
    b.add_argument("codec", help="codec card name (svcodec, soundstream)")
    b.add_argument("--data", help="training manifest CSV (default: the recipe's corpora under the shared data)")
    b.add_argument("--valid", help="validation manifest CSV (default: the recipe's held-out speakers)")
    b.add_argument("--recipe", help="recipe in the codec card (default: the card's [params] recipe)")
    b.add_argument("--steps", type=int, help="train to this many steps (default: the recipe's)")
    b.add_argument("--out", help="output folder (default: $SVBENCH_MODELS or ~/.cache/svbench/models/CODEC/RECIPE); "
                   "a folder holding last.pt resumes from it")
    b.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE", dest="overrides",
                   help="change one recipe option for an experiment, e.g. --set train.lr=1e-3 --set model.dim=32 "
                   "(TOML values; needs --out)")
    b.add_argument("--quiet", action="store_true", help="no progress bar")


def cmd_build(args: argparse.Namespace, console: Any) -> int:
    from svbench.neural.build import build
    from svbench.neural.checkpoint import CheckpointError

    try:
        path = build(args.codec, args.recipe, args.data, args.valid, args.steps, args.out,
                     log=lambda m: console.print(m), progress=not args.quiet, overrides=args.overrides)
    except (CheckpointError, ValueError) as err:
        console.print(f"[red]svbench build: {err}[/red]")
        return 2
    console.print(f"checkpoint: {path}")
    return 0

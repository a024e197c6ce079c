"""Declarative cards (TOML) for codecs, metrics and reports.

Cards are looked up in the working directory first (``./codecs/*.toml``), so a user adds a codec by
dropping a file, then in the project tree (editable install) and in the wheel (``svbench/_cards``).
Entry points (``svbench.codecs``, ``svbench.metrics``) name the Python classes that cards choose.
"""

from __future__ import annotations

import hashlib
import tomllib
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

_PACKAGE = Path(__file__).resolve().parent


def card_dirs(kind: str) -> list[Path]:
    candidates = [Path.cwd() / kind, _PACKAGE.parent / kind, _PACKAGE / "_cards" / kind]
    seen: list[Path] = []
    for folder in candidates:
        if folder.is_dir() and folder.resolve() not in seen:
            seen.append(folder.resolve())
    return seen


@dataclass
class Card:
    name: str
    kind: str
    path: Path
    data: dict[str, Any]
    sha256: str = field(default="")

    @property
    def params(self) -> dict[str, Any]:
        return dict(self.data.get("params", {}))


def load_card(path: Path, kind: str) -> Card:
    raw = path.read_bytes()
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as err:
        raise ValueError(f"{path}: not a valid TOML card ({err})") from None
    name = data.get("name", path.stem)
    return Card(name=name, kind=kind, path=path, data=data, sha256=hashlib.sha256(raw).hexdigest())


def all_cards(kind: str) -> dict[str, Card]:
    """Every card of a kind by name; the first folder in ``card_dirs`` wins a name clash."""
    cards: dict[str, Card] = {}
    for folder in card_dirs(kind):
        for path in sorted(folder.glob("*.toml")):
            card = load_card(path, kind)
            cards.setdefault(card.name, card)
    return cards


def get_card(kind: str, name: str) -> Card:
    cards = all_cards(kind)
    if name not in cards:
        import difflib

        close = difflib.get_close_matches(name, cards, n=3, cutoff=0.6)
        hint = f"; did you mean {' or '.join(close)}?" if close else ""
        known = ", ".join(sorted(cards)) or "none"
        raise KeyError(f"no {kind[:-1]} card named {name!r}{hint} (known: {known})")
    return cards[name]


def load_entry_point(group: str, name: str) -> Any:
    for ep in entry_points(group=group):
        if ep.name == name:
            return ep.load()
    raise KeyError(f"no entry point {name!r} in group {group!r}; is the plug-in installed?")

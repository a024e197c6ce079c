"""Bitrates as users write them ("3k", "0.5k", "9.6k", "6000", "0k5"), parsed once into one type."""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

_KILO = re.compile(r"^(\d+)k(\d+)$")  # "0k5", "1k2": the folder style of many demo pages


@dataclass(frozen=True, order=True)
class Bitrate:
    bps: int

    @classmethod
    def parse(cls, text: str | int | float) -> Bitrate:
        if isinstance(text, Bitrate):
            return text
        if isinstance(text, (int, float)):
            return cls._checked(Decimal(str(text)), str(text))
        raw = str(text).strip().lower().removesuffix("bps").removesuffix("bit/s").strip()
        match = _KILO.match(raw)
        if match:
            raw = f"{match.group(1)}.{match.group(2)}k"
        scale = Decimal(1)
        if raw.endswith("k"):
            raw, scale = raw[:-1], Decimal(1000)
        try:
            value = Decimal(raw) * scale
        except InvalidOperation:
            raise ValueError(f"not a bitrate: {text!r} (write e.g. 3k, 0.5k, 9.6k or 6000)") from None
        return cls._checked(value, text)

    @classmethod
    def _checked(cls, value: Decimal, text: object) -> Bitrate:
        if value <= 0 or value != value.to_integral_value():
            raise ValueError(f"not a bitrate: {text!r} (must be a positive whole number of bit/s)")
        return cls(int(value))

    @property
    def label(self) -> str:
        """Canonical short form: 3k, 0.5k, 1.2k, 6000 -> 6k, 2150 -> 2.15k."""
        return f"{Decimal(self.bps) / 1000:f}".rstrip("0").rstrip(".") + "k"

    def __str__(self) -> str:
        return self.label


def parse_list(text: str) -> list[Bitrate]:
    return [Bitrate.parse(part) for part in text.split(",") if part.strip()]

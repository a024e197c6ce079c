"""The metric protocol, the base class the built-in metrics share, and loading by card."""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

import numpy as np

from svbench.cards import Card, all_cards, get_card, load_entry_point


class MetricUndefined(Exception):
    """The metric has no value for this input (too short, silent, unvoiced); the message says why."""


class MetricUnavailable(Exception):
    """The metric's library cannot be imported on this machine."""


@runtime_checkable
class Metric(Protocol):
    name: str
    needs_reference: bool
    sample_rate: int | None
    higher_is_better: bool

    def __call__(self, ref: np.ndarray | None, deg: np.ndarray, sr: int) -> dict[str, float]: ...


class BaseMetric:
    """Metadata comes from the card (``[meta]`` may override the class defaults); parameters from ``[params]``."""

    needs_reference = True
    sample_rate: int | None = None  # None: computed at the evaluation rate
    higher_is_better = True
    min_seconds = 0.0
    value_range: tuple[float, float] | None = None
    requires: tuple[str, ...] = ()  # importable modules the metric needs

    def __init__(self, card: Card):
        self.card = card
        self.name = card.name
        self.params: dict[str, Any] = card.params
        for key, value in card.data.get("meta", {}).items():
            setattr(self, key, tuple(value) if isinstance(value, list) else value)

    def unavailable_reason(self) -> str | None:
        import importlib

        for module in self.requires:
            try:
                importlib.import_module(module)
            except Exception as err:  # any import failure (e.g. missing pkg_resources) makes it unusable
                return f"cannot import {module}: {type(err).__name__}: {err}"
        return None

    def __call__(self, ref: np.ndarray | None, deg: np.ndarray, sr: int) -> dict[str, float]:
        raise NotImplementedError


def load_metric(name: str) -> BaseMetric:
    return metric_from_card(get_card("metrics", name))


def metric_from_card(card: Card) -> BaseMetric:
    cls = load_entry_point("svbench.metrics", card.data.get("impl", card.name))
    metric: BaseMetric = cls(card)
    return metric


def load_metrics(names: list[str]) -> list[BaseMetric]:
    """Load and check every requested metric; raise before any work if one cannot run."""
    metrics, problems = [], []
    for name in names:
        try:
            metric = load_metric(name)
        except (KeyError, ImportError) as err:
            problems.append(f"{name}: {err}")
            continue
        reason = metric.unavailable_reason()
        if reason:
            problems.append(f"{name}: {reason}")
        metrics.append(metric)
    if problems:
        raise MetricUnavailable("; ".join(problems))
    return metrics


def metric_status() -> list[tuple[str, str, str]]:
    """(name, 'ok' or 'unavailable', description or reason) for every metric card."""
    rows = []
    for name, card in sorted(all_cards("metrics").items()):
        try:
            reason = load_metric(name).unavailable_reason()
        except (KeyError, ImportError) as err:
            reason = str(err)
        rows.append((name, "unavailable" if reason else "ok", reason or card.data.get("description", "")))
    return rows

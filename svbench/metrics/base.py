"""The metric protocol, the base class the built-in metrics share, and loading by card.

A metric is a small object built from a card (``metrics/<name>.toml``): ``impl`` names a class
registered under the ``svbench.metrics`` entry-point group, ``[params]`` sets its parameters and
``[meta]`` may override its declared metadata. The engine calls it on one aligned, float32 mono
(ref, deg) pair at the evaluation rate ``sr`` and stores every returned ``{key: value}``.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

import numpy as np

from svbench.audio import SILENCE_DBFS, rms_dbfs
from svbench.cards import Card, all_cards, get_card, load_entry_point

SILENT_REFERENCE_DBFS = SILENCE_DBFS  # the threshold svbench.audio uses for silent files


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
    """Metadata comes from the card (``[meta]`` may override the class defaults); parameters from ``[params]``.

    Declared metadata (all recorded by :meth:`describe`):

    - ``needs_reference``: intrusive (True) or not.
    - ``needs_text``: the engine also passes the utterance (``utt``: transcript, language) to :meth:`compute`.
    - ``sample_rate``: the engine resamples to this rate before calling; None = the evaluation rate.
    - ``native_sr``: the rate the algorithm is defined at, when the metric resamples by itself (and
      says so in its value keys, see :meth:`rate_for`); None = works at any rate.
    - ``higher_is_better``, ``value_range`` (per value), ``min_seconds`` (checked by the engine).

    Subclasses implement :meth:`compute`; ``__call__`` first refuses input no metric can score
    (empty, NaN/inf samples, silent reference) with :class:`MetricUndefined`.
    """

    needs_reference = True
    needs_text = False
    sample_rate: int | None = None  # None: computed at the evaluation rate
    native_sr: int | None = None
    higher_is_better = True
    min_seconds = 0.0
    value_range: tuple[float, float] | None = None
    requires: tuple[str, ...] = ()  # importable modules the metric needs
    defaults: dict[str, Any] = {}  # every parameter the class reads, with its default
    upsample_suffix = False  # add "_from<rate>" to value keys when native_sr > evaluation rate

    def __init__(self, card: Card):
        self.card = card
        self.name = card.name
        given = card.params
        unknown = sorted(set(given) - set(self.defaults)) if self.defaults else []
        if unknown:
            raise ValueError(f"metric card {card.name!r}: unknown parameter(s) {', '.join(unknown)} "
                             f"for {type(self).__name__} (known: {', '.join(sorted(self.defaults))})")
        self.params: dict[str, Any] = {**self.defaults, **given}
        for key, value in card.data.get("meta", {}).items():
            setattr(self, key, tuple(value) if isinstance(value, list) else value)

    # ------------------------------------------------------------- availability and description

    def unavailable_reason(self) -> str | None:
        import importlib

        for module in self.requires:
            try:
                importlib.import_module(module)
            except Exception as err:  # any import failure (e.g. missing pkg_resources) makes it unusable
                return f"cannot import {module}: {type(err).__name__}: {err}"
        return None

    def provenance(self) -> dict[str, Any] | None:
        """The model behind the values (package, version, model file hash: svbench.metrics.provenance); None if none."""
        return None

    def describe(self) -> dict[str, Any]:
        """Everything that defines this metric's numbers: implementation, metadata, resolved parameters."""
        cls = type(self)
        return {
            "name": self.name,
            "impl": f"{cls.__module__}:{cls.__qualname__}",
            "card_sha256": self.card.sha256,
            "needs_reference": self.needs_reference,
            # what the metric is computed on (a non-intrusive metric once scored svbench's aligned crop)
            "input": "aligned pair" if self.needs_reference else "whole decoded; reference at its rate as _ref",
            **({"needs_text": True} if self.needs_text else {}),  # only when set: older run ids stay as they were
            **({"model": model} if (model := self.provenance()) else {}),
            "sample_rate": self.sample_rate,
            "native_sr": self.native_sr,
            "higher_is_better": self.higher_is_better,
            "value_range": list(self.value_range) if self.value_range else None,
            "min_seconds": self.min_seconds,
            "params": dict(self.params),
        }

    # ------------------------------------------------------------- helpers for implementations

    @property
    def key_prefix(self) -> str:
        """Value keys start with this (card ``[meta] key_prefix``, else the card name with ``_``)."""
        return str(getattr(self, "_key_prefix", None) or self.name.replace("-", "_"))

    @key_prefix.setter
    def key_prefix(self, value: str) -> None:
        self._key_prefix = value

    def rate_for(self, sr: int) -> tuple[int, str]:
        """(analysis rate, key suffix) for an evaluation rate: a metric with ``native_sr`` analyses there;
        when that means upsampling band-limited audio the values are named ``..._from8k`` so a table
        never mixes them with values computed on wideband input."""
        native = int(self.native_sr or sr)
        suffix = f"_from{sr / 1000:g}k" if self.upsample_suffix and native > sr else ""
        return native, suffix

    # ------------------------------------------------------------- calling

    def __call__(self, ref: np.ndarray | None, deg: np.ndarray, sr: int, utt: Any = None) -> dict[str, float]:
        check_input(deg, "decoded", sr)
        if self.needs_reference:
            if ref is None:
                raise MetricUndefined(f"{self.name} needs a reference signal")
            check_input(ref, "reference", sr)
            level = rms_dbfs(ref)
            if level < SILENT_REFERENCE_DBFS:
                raise MetricUndefined(f"reference is silent ({level:.1f} dBFS < {SILENT_REFERENCE_DBFS} dBFS)")
        if self.needs_text:
            return self.compute(ref, deg, sr, utt=utt)  # type: ignore[call-arg]
        return self.compute(ref, deg, sr)

    def compute(self, ref: np.ndarray | None, deg: np.ndarray, sr: int) -> dict[str, float]:
        raise NotImplementedError


def check_input(x: np.ndarray, what: str, sr: int) -> None:
    if x.ndim != 1:
        raise MetricUndefined(f"{what} signal must be mono (1-D), got shape {x.shape}")
    if x.size == 0:
        raise MetricUndefined(f"{what} signal is empty")
    bad = np.count_nonzero(~np.isfinite(x))
    if bad:
        raise MetricUndefined(f"{what} signal has {bad} NaN/inf samples (of {x.size})")


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
        except (KeyError, ImportError, ValueError) as err:
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
    """(name, 'ok' or 'unavailable', description or reason) for every metric card; a metric with a model
    adds its provenance (package, version, model file hash)."""
    from svbench.metrics.provenance import describe_provenance

    rows = []
    for name, card in sorted(all_cards("metrics").items()):
        text = card.data.get("description", "")
        try:
            metric = load_metric(name)
            reason = metric.unavailable_reason()
            model = None if reason else metric.provenance()
            text = f"{text}; {describe_provenance(model)}" if model else text
        except (KeyError, ImportError, ValueError) as err:
            reason = str(err)
        rows.append((name, "unavailable" if reason else "ok", reason or text))
    return rows

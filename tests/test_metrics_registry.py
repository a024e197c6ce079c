"""The metric registry: every card loads and declares its metadata; third parties plug in through the
``svbench.metrics`` entry-point group; a metric whose library is missing stops a run before any work."""

from __future__ import annotations

from importlib.metadata import EntryPoint

import numpy as np
import pytest

from svbench import cards, engine
from svbench.cards import all_cards
from svbench.metrics.base import BaseMetric, MetricUnavailable, load_metric, load_metrics, metric_status

PAPER_METRICS = ["pesq", "stoi", "visqol", "dnsmos", "f0rmse", "sarmse", "lsd", "mcd"]


def test_the_papers_eight_metrics_and_the_conventions_are_registered():
    names = set(all_cards("metrics"))
    assert set(PAPER_METRICS) <= names
    assert {"pesq-nb", "pesq-wb", "estoi", "f0rmse-harvest", "mcd-dtw", "mcd-versa", "mcd-versa-dtw", "mcd-espnet",
            "dnsmos-versa"} <= names


@pytest.mark.parametrize("name", sorted(all_cards("metrics")))
def test_every_card_declares_what_a_user_needs_to_know(name):
    metric = load_metric(name)
    card = metric.card.data
    assert card.get("description") and card.get("reference"), "cards document their definition and source"
    info = metric.describe()
    assert isinstance(info["needs_reference"], bool)
    assert isinstance(info["higher_is_better"], bool)
    assert info["value_range"] is not None and info["value_range"][0] < info["value_range"][1]
    assert info["min_seconds"] >= 0
    assert metric.unavailable_reason() is None  # everything is installed in the dev environment
    assert set(metric.card.params) <= set(info["params"])  # the card's parameters are the ones recorded


def test_declared_metadata():
    dnsmos, mcd, pesq = load_metric("dnsmos"), load_metric("mcd"), load_metric("pesq")
    assert not dnsmos.needs_reference and dnsmos.native_sr == 16000 and dnsmos.higher_is_better
    assert mcd.needs_reference and mcd.native_sr == 16000 and not mcd.higher_is_better
    assert mcd.describe()["params"]["include_c0"] is False and mcd.describe()["params"]["order"] == 24
    assert pesq.min_seconds == 0.25


def test_an_unknown_card_parameter_is_refused(tmp_path, monkeypatch):
    (tmp_path / "metrics").mkdir()
    (tmp_path / "metrics" / "mcd-typo.toml").write_text('name = "mcd-typo"\nimpl = "mcd"\n[params]\norder_ = 30\n')
    monkeypatch.chdir(tmp_path)
    with pytest.raises(MetricUnavailable, match="unknown parameter.*order_"):
        load_metrics(["mcd-typo"])


class ToyLoudness(BaseMetric):
    """A third-party metric: RMS level of the decoded signal in dBFS (non-intrusive)."""

    needs_reference = False
    value_range = (-120.0, 0.0)

    def compute(self, ref, deg, sr):
        return {"toy_dbfs": float(20 * np.log10(np.sqrt(np.mean(deg.astype(np.float64) ** 2))))}


def test_a_third_party_metric_plugs_in_through_the_entry_point_group(tmp_path, monkeypatch):
    real = cards.entry_points

    def with_plugin(group):
        found = list(real(group=group))
        if group == "svbench.metrics":
            found.append(EntryPoint("toy", f"{__name__}:ToyLoudness", "svbench.metrics"))
        return found

    monkeypatch.setattr(cards, "entry_points", with_plugin)
    (tmp_path / "metrics").mkdir()
    (tmp_path / "metrics" / "toy.toml").write_text('name = "toy"\nimpl = "toy"\ndescription = "toy"\n')
    monkeypatch.chdir(tmp_path)
    [metric] = load_metrics(["toy"])
    x = np.full(8000, 0.1, np.float32)
    rows = engine.score([metric], x, x, 8000)
    assert rows[0][:3] == ("toy", "toy_dbfs", pytest.approx(-20.0))


def test_a_missing_dependency_stops_the_run_before_any_work_and_is_listed(tmp_path, monkeypatch):
    (tmp_path / "metrics").mkdir()
    (tmp_path / "metrics" / "needs-nothing-there.toml").write_text(
        'name = "needs-nothing-there"\nimpl = "lsd"\ndescription = "x"\n'
        '[meta]\nrequires = ["svbench_no_such_module"]\n')
    monkeypatch.chdir(tmp_path)
    with pytest.raises(MetricUnavailable, match="needs-nothing-there: cannot import svbench_no_such_module"):
        load_metrics(["lsd", "needs-nothing-there"])
    status = {name: (state, text) for name, state, text in metric_status()}
    assert status["needs-nothing-there"][0] == "unavailable"
    assert "svbench_no_such_module" in status["needs-nothing-there"][1]
    assert status["lsd"][0] == "ok"

"""Metric registry: cards under ``metrics/`` choose an implementation registered under the
``svbench.metrics`` entry-point group and set its parameters."""

from svbench.metrics.base import BaseMetric, Metric, MetricUndefined, load_metric, load_metrics, metric_status

__all__ = ["BaseMetric", "Metric", "MetricUndefined", "load_metric", "load_metrics", "metric_status"]

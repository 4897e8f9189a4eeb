"""GET /metrics: ingest, decode and write counters and latencies in Prometheus text format."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from fastapi import APIRouter, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from api.auth import require_scope

__all__ = ["registry_for", "router"]

router = APIRouter(tags=["health"], dependencies=[require_scope("read")])


@router.get("/metrics", response_class=Response)
def metrics(request: Request) -> Response:
    """Counters and histograms for alerting (Prometheus exposition format, text 0.0.4)."""
    return Response(generate_latest(request.app.state.metrics), media_type=CONTENT_TYPE_LATEST)


class _Live(Collector):
    """Gauges read at scrape time, plus the ingest service's own counters and histograms."""

    def __init__(self, ingest: Any) -> None:
        self.ingest = ingest

    def describe(self) -> Iterable[Metric]:
        return []  # collected live; nothing to check up front

    def collect(self) -> Iterable[Metric]:
        ingest = self.ingest
        yield GaugeMetricFamily("lorameter_ingest_running", "1 when this process ingests", 1)
        writer, mqtt = ingest.writer, ingest.mqtt
        yield GaugeMetricFamily("lorameter_queue_depth", "messages waiting to be written",
                                writer.depth)  # fmt: skip
        yield GaugeMetricFamily(
            "lorameter_oldest_unwritten_age_seconds",
            "how long the oldest message not yet stored has waited",
            writer.oldest_age_s(),
        )
        yield GaugeMetricFamily("lorameter_mqtt_connected", "1 when connected to the broker",
                                int(mqtt.connected.is_set()))  # fmt: skip
        alive = GaugeMetricFamily("lorameter_thread_alive", "1 when the thread runs",
                                  labels=["thread"])  # fmt: skip
        alive.add_metric(["mqtt"], int(mqtt.alive))
        alive.add_metric(["writer"], int(writer.worker.alive))
        yield alive
        yield GaugeMetricFamily("lorameter_ingest_healthy", "1 when /health has no ingest problem",
                                int(not ingest.problems()))  # fmt: skip
        yield from ingest.stats.registry.collect()


def registry_for(ingest: Any) -> CollectorRegistry:
    """A registry of this app alone (never the process-global one)."""
    registry = CollectorRegistry(auto_describe=False)
    if ingest is not None:
        registry.register(_Live(ingest))
    return registry

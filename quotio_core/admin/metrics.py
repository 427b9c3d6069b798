"""`GET /metrics`: the gateway's state in Prometheus text format.

Counters and histograms are fed as requests are recorded and live in a
registry of their own (never prometheus_client's global one, so two gateways
in one process do not share numbers); gauges for credentials, cooldowns,
breakers and quotas are read from the gateway at scrape time.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, ProcessCollector, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from ..records import Record
from .usage_report import CANCELLED, is_error

__all__ = ["Metrics"]

_LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)
_BREAKER_STATES = {"closed": 0, "half-open": 1, "open": 2}


class _StateCollector(Collector):
    def __init__(self) -> None:
        self.gateway: Any = None

    def collect(self):
        gw = self.gateway
        if gw is None:
            return
        now = time.time()
        up = GaugeMetricFamily(
            "quotio_credential_up", "1 when the credential can take requests", labels=["credential", "provider", "status"]
        )
        for c in gw.credentials():
            up.add_metric([c.id, c.provider, c.status], 1.0 if c.status == "ready" else 0.0)
        yield up
        cool = GaugeMetricFamily(
            "quotio_cooldown_seconds", "Seconds until a cooling credential is used again",
            labels=["credential", "model", "scope", "reason"],
        )
        for cd in gw.cooldowns.entries():
            cool.add_metric([cd.cred_id, cd.model, cd.scope, cd.reason], round(cd.remaining(now), 3))
        yield cool
        breaker = GaugeMetricFamily(
            "quotio_breaker_state", "Circuit breaker: 0 closed, 1 half-open, 2 open", labels=["key"]
        )
        for key, snap in gw.breakers.snapshot().items():
            breaker.add_metric([key], float(_BREAKER_STATES.get(snap.get("state"), 0)))
        yield breaker
        quota = GaugeMetricFamily(
            "quotio_quota_remaining_percent", "What a quota window has left, in percent",
            labels=["credential", "provider", "window"],
        )
        fetched = GaugeMetricFamily(
            "quotio_quota_fetched_timestamp_seconds", "When the quota was last fetched", labels=["credential", "status"]
        )
        by_id = {c.id: c for c in gw.credentials()}
        for cred_id, report in list(gw.quotas.reports.items()):
            cred = by_id.get(cred_id)
            provider = cred.provider if cred else ""
            fetched.add_metric([cred_id, report.status], report.fetched_at)
            for w in report.windows:
                if w.remaining_pct is not None:
                    quota.add_metric([cred_id, provider, w.name], w.remaining_pct)
        yield quota
        yield fetched
        yield from _process()


def _process():
    """The gateway process itself: tasks, memory and descriptors (soaks watch them return to rest)."""
    try:
        tasks = len(asyncio.all_tasks())
    except RuntimeError:  # rendered off the event loop (tests)
        return
    yield GaugeMetricFamily("quotio_asyncio_tasks", "asyncio tasks alive in the gateway process", value=tasks)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "quotio_requests", "Client requests by final status class",
            ["provider", "model", "status_class"], registry=self.registry,
        )
        self.attempts = Counter(
            "quotio_upstream_attempts", "Upstream attempts (failover included)",
            ["provider", "status_class"], registry=self.registry,
        )
        self.errors = Counter(
            "quotio_errors", "Requests answered with an error status", ["provider", "status"], registry=self.registry
        )
        self.cancelled = Counter(
            "quotio_cancelled", "Requests the client hung up on (recorded as 499)", ["provider"],
            registry=self.registry,
        )
        self.tokens = Counter(
            "quotio_tokens", "Tokens by kind", ["provider", "model", "kind"], registry=self.registry
        )
        self.latency = Histogram(
            "quotio_request_latency_seconds", "Whole request latency", ["provider"],
            buckets=_LATENCY_BUCKETS, registry=self.registry,
        )
        self.ttfb = Histogram(
            "quotio_time_to_first_byte_seconds", "Time to the upstream's first byte", ["provider"],
            buckets=_LATENCY_BUCKETS, registry=self.registry,
        )
        self._state = _StateCollector()
        self.registry.register(self._state)
        # process_resident_memory_bytes, process_open_fds, ... (Linux).
        ProcessCollector(registry=self.registry)

    def observe(self, record: Record, final: bool = True) -> None:
        provider = record.provider or "gateway"
        status_class = f"{record.status // 100}xx" if record.status else "error"
        self.attempts.labels(provider, status_class).inc()
        if record.status == CANCELLED:
            self.cancelled.labels(provider).inc()
        elif is_error(record.status):
            self.errors.labels(provider, str(record.status)).inc()
        if not final:
            return  # an attempt failed over from: the client's request is counted once, at its end
        model = record.model_requested or "-"
        self.requests.labels(provider, model, status_class).inc()
        self.latency.labels(provider).observe(record.latency_ms / 1000)
        if record.ttfb_ms is not None:
            self.ttfb.labels(provider).observe(record.ttfb_ms / 1000)
        for kind in ("input", "output", "cached", "reasoning"):
            if n := getattr(record, f"{kind}_tokens"):
                self.tokens.labels(provider, model, kind).inc(n)

    def render(self, gateway: Any) -> bytes:
        self._state.gateway = gateway
        try:
            return generate_latest(self.registry)
        finally:
            self._state.gateway = None

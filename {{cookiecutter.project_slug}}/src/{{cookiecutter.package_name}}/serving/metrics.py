"""Prometheus metrics in the text exposition format, kept by hand (no client library, nothing on disk).

Every series carries the ``model_version`` label. Endpoints are the server's known routes (``other`` for the rest),
so the number of series stays bounded whatever clients send.
"""

from __future__ import annotations

import bisect
from collections import defaultdict

BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0)
"""Upper bounds of the latency histogram, in seconds."""


def _escape(value: str) -> str:
    """A label value as the exposition format quotes it."""
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


class Metrics:
    """Counters and a latency histogram for one model version."""

    def __init__(self, model_version: str) -> None:
        """Start every series at zero."""
        self.version = _escape(model_version)
        self.requests: defaultdict[tuple[str, int], int] = defaultdict(int)
        self.errors: defaultdict[tuple[str, str], int] = defaultdict(int)
        self.buckets: defaultdict[str, list[int]] = defaultdict(lambda: [0] * (len(BUCKETS) + 1))
        self.latency_sum: defaultdict[str, float] = defaultdict(float)
        self.instances = 0
        self.unknown_categories: defaultdict[str, int] = defaultdict(int)

    def observe(self, endpoint: str, status: int, seconds: float) -> None:
        """Count one answered request and its latency."""
        self.requests[endpoint, status] += 1
        self.buckets[endpoint][bisect.bisect_left(BUCKETS, seconds)] += 1
        self.latency_sum[endpoint] += seconds

    def error(self, endpoint: str, kind: str) -> None:
        """Count a refused or failed request by kind (``client`` for 4xx, ``server`` for 5xx, ``not_ready``)."""
        self.errors[endpoint, kind] += 1

    def predicted(self, instances: int, unknown: dict[str, int]) -> None:
        """Count predicted instances and the unknown categories they held, by feature."""
        self.instances += instances
        for feature, count in unknown.items():
            self.unknown_categories[_escape(feature)] += count

    def render(self) -> str:
        """The exposition text for ``GET /metrics``."""
        version = f'model_version="{self.version}"'

        def series(name: str, labels: str, value: float) -> str:
            return name + "{" + version + labels + "} " + repr(value)

        lines = [
            "# HELP model_requests_total HTTP requests answered, by endpoint and status.",
            "# TYPE model_requests_total counter",
        ]
        for (endpoint, status), count in sorted(self.requests.items()):
            lines.append(series("model_requests_total", f',endpoint="{endpoint}",status="{status}"', count))
        lines += [
            "# HELP model_errors_total Requests refused (client) or failed (server, not_ready), by endpoint.",
            "# TYPE model_errors_total counter",
        ]
        for (endpoint, kind), count in sorted(self.errors.items()):
            lines.append(series("model_errors_total", f',endpoint="{endpoint}",kind="{kind}"', count))
        lines += [
            "# HELP model_request_duration_seconds Time from the complete request to the response, by endpoint.",
            "# TYPE model_request_duration_seconds histogram",
        ]
        for endpoint, counts in sorted(self.buckets.items()):
            labels = f',endpoint="{endpoint}"'
            total = 0
            for bound, count in zip((*map(repr, BUCKETS), "+Inf"), counts, strict=True):
                total += count
                lines.append(series("model_request_duration_seconds_bucket", f'{labels},le="{bound}"', total))
            lines.append(series("model_request_duration_seconds_sum", labels, self.latency_sum[endpoint]))
            lines.append(series("model_request_duration_seconds_count", labels, total))
        lines += [
            "# HELP model_instances_total Instances predicted.",
            "# TYPE model_instances_total counter",
            series("model_instances_total", "", self.instances),
            "# HELP model_unknown_categories_total Category values the model was not trained on, by feature.",
            "# TYPE model_unknown_categories_total counter",
        ]
        for feature, count in sorted(self.unknown_categories.items()):
            lines.append(series("model_unknown_categories_total", f',feature="{feature}"', count))
        return "\n".join(lines) + "\n"

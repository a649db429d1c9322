"""Prometheus metrics in the text exposition format, kept by hand (no client library, nothing on disk).

Every request series carries the ``model_version`` that answered it, so a champion and a challenger (A/B) or a
version before and after a switch can be compared side by side; shadow scoring has its own series. Endpoints are
the server's routes (``other`` for the rest), so the number of series stays bounded whatever clients send. The
prediction log's counters (``PREDICTION_LOG_DIR``) have no labels and stay at zero while it is off.
"""

from __future__ import annotations

import bisect
from collections import defaultdict
from collections.abc import Iterable, Mapping

BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0)
"""Upper bounds of the latency histogram, in seconds."""
PREDICTION_LOG_FAMILIES = (
    ("records", "prediction_log_records_total", "Prediction log lines written (one per logged instance)."),
    (
        "dropped",
        "prediction_log_dropped_total",
        "Prediction log lines not written: too many waited for the disk, or their write failed.",
    ),
    (
        "write_errors",
        "prediction_log_write_errors_total",
        "Failed file operations of the prediction log (create, write, close); serving went on.",
    ),
)


def _escape(value: str) -> str:
    """A label value as the exposition format quotes it."""
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _labels(names: Iterable[str], values: Iterable[object]) -> str:
    return ",".join(f'{name}="{_escape(str(value))}"' for name, value in zip(names, values, strict=True))


def _series(name: str, labels: str, value: float) -> str:
    """One sample line: ``name{labels} value``."""
    return name + "{" + labels + "} " + repr(value)


class Metrics:
    """Counters and latency histograms by model version, endpoint and status."""

    def __init__(self) -> None:
        """Start every series at zero."""
        self.requests: defaultdict[tuple[str, str, int], int] = defaultdict(int)
        self.errors: defaultdict[tuple[str, str, str], int] = defaultdict(int)
        self.buckets: defaultdict[tuple[str, str], list[int]] = defaultdict(lambda: [0] * (len(BUCKETS) + 1))
        self.latency_sum: defaultdict[tuple[str, str], float] = defaultdict(float)
        self.instances: defaultdict[str, int] = defaultdict(int)
        self.unknown_categories: defaultdict[tuple[str, str], int] = defaultdict(int)
        self.shadow: defaultdict[tuple[str, str, str], int] = defaultdict(int)
        self.shadow_seconds: defaultdict[str, float] = defaultdict(float)
        self.roles: dict[str, str] = {}
        self.prediction_log = {"records": 0, "dropped": 0, "write_errors": 0}

    def observe(self, version: str, endpoint: str, status: int, seconds: float) -> None:
        """Count one answered request and its latency."""
        self.requests[version, endpoint, status] += 1
        key = (version, endpoint)
        self.buckets[key][bisect.bisect_left(BUCKETS, seconds)] += 1
        self.latency_sum[key] += seconds

    def error(self, version: str, endpoint: str, kind: str) -> None:
        """Count a refused or failed request by kind (``client`` for 4xx, ``server`` for 5xx, ``not_ready``)."""
        self.errors[version, endpoint, kind] += 1

    def predicted(self, version: str, instances: int, unknown: Mapping[str, int]) -> None:
        """Count predicted instances and the unknown categories they held, by feature."""
        self.instances[version] += instances
        for feature, count in unknown.items():
            self.unknown_categories[version, feature] += count

    def shadowed(self, champion: str, challenger: str, outcome: str, seconds: float) -> None:
        """Count one shadow scoring: ``agree``/``disagree`` (labels or values), or ``error``."""
        self.shadow[champion, challenger, outcome] += 1
        self.shadow_seconds[challenger] += seconds

    def render(self) -> str:
        """The exposition text for ``GET /metrics``."""
        lines: list[str] = []

        def family(name: str, kind: str, doc: str, series: Iterable[tuple[str, float]]) -> None:
            lines.extend((f"# HELP {name} {doc}", f"# TYPE {name} {kind}"))
            lines.extend(_series(name, labels, value) for labels, value in series)

        family(
            "model_info",
            "gauge",
            "The models being served, by role (champion, challenger, previous).",
            ((_labels(("model_version", "role"), (v, r)), 1) for r, v in sorted(self.roles.items())),
        )
        family(
            "model_requests_total",
            "counter",
            "HTTP requests answered, by the model version that answered, endpoint and status.",
            ((_labels(("model_version", "endpoint", "status"), k), n) for k, n in sorted(self.requests.items())),
        )
        family(
            "model_errors_total",
            "counter",
            "Requests refused (client) or failed (server, not_ready), by model version and endpoint.",
            ((_labels(("model_version", "endpoint", "kind"), k), n) for k, n in sorted(self.errors.items())),
        )
        lines.extend(
            (
                "# HELP model_request_duration_seconds Time from the complete request to the response.",
                "# TYPE model_request_duration_seconds histogram",
            )
        )
        for (version, endpoint), counts in sorted(self.buckets.items()):
            base = _labels(("model_version", "endpoint"), (version, endpoint))
            total = 0
            for bound, count in zip((*map(repr, BUCKETS), "+Inf"), counts, strict=True):
                total += count
                lines.append(_series("model_request_duration_seconds_bucket", f'{base},le="{bound}"', total))
            lines.append(_series("model_request_duration_seconds_sum", base, self.latency_sum[version, endpoint]))
            lines.append(_series("model_request_duration_seconds_count", base, total))
        family(
            "model_instances_total",
            "counter",
            "Instances predicted, by the model version that answered.",
            ((_labels(("model_version",), (v,)), n) for v, n in sorted(self.instances.items())),
        )
        family(
            "model_unknown_categories_total",
            "counter",
            "Category values the model was not trained on, by model version and feature.",
            ((_labels(("model_version", "feature"), k), n) for k, n in sorted(self.unknown_categories.items())),
        )
        family(
            "model_shadow_predictions_total",
            "counter",
            "Requests the challenger scored in shadow mode, by whether it agreed with the champion's answer.",
            ((_labels(("champion", "challenger", "outcome"), k), n) for k, n in sorted(self.shadow.items())),
        )
        family(
            "model_shadow_seconds_total",
            "counter",
            "Time the challenger spent scoring in shadow mode.",
            ((_labels(("challenger",), (v,)), s) for v, s in sorted(self.shadow_seconds.items())),
        )
        for key, name, doc in PREDICTION_LOG_FAMILIES:
            lines.extend((f"# HELP {name} {doc}", f"# TYPE {name} counter", f"{name} {self.prediction_log[key]}"))
        return "\n".join(lines) + "\n"

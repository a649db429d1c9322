"""What one client may make the server hold: sizes, counts and time, read from the settings once."""

from __future__ import annotations

from dataclasses import dataclass

from {{ cookiecutter.package_name }}.serving.settings import Settings


@dataclass(frozen=True)
class Limits:
    """The bounds every connection is held to (see ``settings`` for each variable)."""

    max_body_bytes: int
    max_url_bytes: int
    max_header_bytes: int
    max_headers: int
    max_connections: int
    header_timeout: float
    body_timeout: float
    keepalive_timeout: float

    @classmethod
    def of(cls, settings: Settings) -> Limits:
        """The limits ``settings`` sets."""
        return cls(
            settings.max_body_bytes,
            settings.max_url_bytes,
            settings.max_header_bytes,
            settings.max_headers,
            settings.max_connections,
            settings.header_timeout,
            settings.body_timeout,
            settings.keepalive_timeout,
        )

    @property
    def tick(self) -> float:
        """How often deadlines are checked: a quarter of the shortest timeout, between 50 ms and 1 s."""
        return min(max(min(self.header_timeout, self.body_timeout, self.keepalive_timeout) / 4, 0.05), 1.0)

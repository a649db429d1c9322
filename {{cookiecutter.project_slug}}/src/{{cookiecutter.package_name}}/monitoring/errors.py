"""The monitor's one error: a usage or input problem, which the command reports in one line and exits 2 for."""

from __future__ import annotations

from {{ cookiecutter.package_name }}.contracts.errors import ProjectError


class MonitorError(ProjectError, ValueError):
    """A usage or input problem (missing directory, no reference profile, bad time): the command exits 2."""

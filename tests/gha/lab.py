"""A baked project published on the lab's github.com, and runs of its workflows there (``tests/gha``).

``Lab.origin`` is the developer's clone: baked, set up, pipeline run, artifacts pushed to its DVC remote (a folder
beside it, which every job's checkout reaches at the same relative path), committed, and published as ``main``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .platform import GitHub
from .runner import JobResult, WorkflowRun, describe

PACKAGE = "churn_model"


class Lab:
    """The origin, the lab's github.com, and the environment every job runs in."""

    def __init__(
        self, root: Path, base_env: dict[str, str], repository: str = "your-org/churn-model", **settings: Any
    ) -> None:
        self.root = root
        self.origin = root / "churn-model"
        self.github = GitHub(root, repository, serve=f"uv run --frozen {PACKAGE} serve", settings=settings)
        self.env = self.github.env(base_env)
        self.runs: list[WorkflowRun] = []

    def workflow(self, name: str, event_name: str, **kwargs: Any) -> WorkflowRun:
        """A run of workflow ``name`` as it is on github.com's main (not on the developer's disk)."""
        path = self.root / "workflows" / f"{len(self.runs)}-{name}"
        path.parent.mkdir(exist_ok=True)
        path.write_text(self.github.show(f".github/workflows/{name}"))
        run = WorkflowRun(self.github, path, dict(self.env), event_name, **kwargs)
        self.runs.append(run)
        return run

    def run(self, name: str, event_name: str, **kwargs: Any) -> dict[str, JobResult]:
        return self.workflow(name, event_name, **kwargs).run()


def ok(results: dict[str, JobResult], *jobs: str) -> None:
    """Every one of ``jobs`` ran and succeeded, and no other job ran."""
    ran = [name for name, result in results.items() if not result.skipped]
    assert ran == list(jobs), f"ran {ran}, expected {list(jobs)}: {describe(results)}"
    assert not any(r.failed for r in results.values()), describe(results)


def job_annotations(result: JobResult, level: str) -> list[str]:
    return [text for kind, text in result.annotations if kind == level]

"""GitHub's concurrency rules, played over time for several runs of one workflow: what runs, what waits, what is
cancelled. Nothing is executed; the workflow's jobs, ``needs:``, ``concurrency:`` (workflow and job level) and
``environment:`` are read from the file.

The rules, as GitHub documents them: in a concurrency group at most one run or job is in progress and at most one is
pending; a newly queued one makes the group's pending one cancelled and takes its place (``cancel-in-progress: true``
would cancel the one in progress too). A job that waits for an environment's reviewers is modelled as holding its
group while it waits (the case that matters: nothing else of that group can run meanwhile). Each job takes one tick.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .expressions import interpolate


@dataclass
class Job:
    run: int
    name: str
    needs: list[str]
    group: str | None
    environment: str | None
    state: str = "waiting-needs"  # -> pending | in-progress | awaiting-review | done | cancelled | skipped
    finished_at: int | None = None


@dataclass
class Simulation:
    """Runs of ``workflow`` triggered at given ticks; ``reviewed`` lists the environments whose reviewers never
    approve within the simulated time (their jobs stay awaiting review).
    """

    workflow: Path
    reviewed: tuple[str, ...] = ("prod",)
    context: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.data = yaml.safe_load(self.workflow.read_text())
        self.jobs: list[Job] = []
        self.runs: dict[int, str] = {}  # run -> queued | in-progress | cancelled | done
        self.holders: dict[str, list[Any]] = {}  # group -> [in progress, pending]

    def _group(self, block: Any) -> str | None:
        if not block:
            return None
        group = block if isinstance(block, str) else block["group"]
        return interpolate(group, self.context).lower()

    def trigger(self, run: int) -> None:
        self.runs[run] = "queued"
        for name, job in self.data["jobs"].items():
            needs = job.get("needs") or []
            self.jobs.append(
                Job(
                    run,
                    name,
                    [needs] if isinstance(needs, str) else needs,
                    self._group(job.get("concurrency")),
                    job.get("environment"),
                )
            )
        self._enter(self._group(self.data.get("concurrency")), ("run", run))

    def _enter(self, group: str | None, who: Any) -> None:
        """Queue ``who`` in ``group``: in progress if free, else pending (replacing and cancelling the pending one)."""
        if group is None:
            self._start(who)
            return
        holder = self.holders.setdefault(group, [None, None])
        if holder[0] is None:
            holder[0] = who
            self._start(who)
            return
        if holder[1] is not None:
            self._cancel(holder[1])
        holder[1] = who
        self._pend(who)

    def _leave(self, group: str | None, who: Any) -> None:
        if group is None:
            return
        holder = self.holders[group]
        if holder[0] == who:
            holder[0], holder[1] = holder[1], None
            if holder[0] is not None:
                self._start(holder[0])

    def _job(self, who: Any) -> Job:
        return next(j for j in self.jobs if (j.run, j.name) == who[1:])

    def _start(self, who: Any) -> None:
        if who[0] == "run":
            self.runs[who[1]] = "in-progress"
        else:
            job = self._job(who)
            job.state = "awaiting-review" if job.environment in self.reviewed else "in-progress"

    def _pend(self, who: Any) -> None:
        if who[0] == "job":
            self._job(who).state = "pending"

    def _cancel(self, who: Any) -> None:
        if who[0] == "run":
            self.runs[who[1]] = "cancelled"
            for job in self.jobs:
                if job.run == who[1] and job.state not in ("done", "skipped"):
                    job.state = "cancelled"
        else:
            self._job(who).state = "cancelled"

    def tick(self, now: int) -> None:
        """One unit of time: jobs in progress finish, and jobs whose needs are met queue for their groups."""
        for job in self.jobs:
            if job.state == "in-progress":
                job.state, job.finished_at = "done", now
                self._leave(job.group, ("job", job.run, job.name))
        for run, state in list(self.runs.items()):
            jobs = [j for j in self.jobs if j.run == run]
            if state != "in-progress":
                continue
            for job in jobs:
                if job.state != "waiting-needs":
                    continue
                needed = [j for j in jobs if j.name in job.needs]
                if any(j.state in ("cancelled", "skipped") for j in needed):
                    job.state = "skipped"
                elif all(j.state == "done" for j in needed):
                    self._enter(job.group, ("job", run, job.name))
            if all(j.state in ("done", "cancelled", "skipped") for j in jobs):
                self.runs[run] = "done"
                self._leave(self._group(self.data.get("concurrency")), ("run", run))

    def play(self, triggers: dict[int, int], until: int) -> dict[int, dict[str, str]]:
        """Trigger run ``r`` at tick ``t`` for each ``{r: t}``; the state of every job of every run at ``until``."""
        for now in range(until):
            for run, at in sorted(triggers.items()):
                if at == now:
                    self.trigger(run)
            self.tick(now)
        return {run: {j.name: j.state for j in self.jobs if j.run == run} for run in self.runs}

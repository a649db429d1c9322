"""Fail when dvc.lock does not match the code and params, the check CI runs on every pull request and push.

``dvc status`` compares every stage's dependencies with what dvc.lock recorded. A fresh clone has no data or
pipeline outputs until ``make pull``, so a file DVC manages that is absent ("deleted") is not a mismatch; any change of
a file git tracks (code, params.yaml, schema), a changed parameter, a changed command or a stage missing from dvc.lock
is. Fix: ``make repro`` and commit dvc.lock. ``make check-lock`` runs it.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path


def tracked(path: str) -> bool:
    """Whether git tracks ``path`` (a file or anything under a folder)."""
    result = subprocess.run(["git", "ls-files", "--error-unmatch", "--", path], capture_output=True, check=False)
    return result.returncode == 0


def mismatches(status: dict[str, object]) -> list[str]:
    """What in ``dvc status --json`` means dvc.lock is stale."""
    found = []
    for stage, changes in status.items():
        for change in changes if isinstance(changes, list) else [changes]:
            if change == "always changed":
                continue  # a stage that runs on every `dvc repro` by design (tracking-target): nothing to be stale
            if isinstance(change, str):  # "changed checksum", ...
                found.append(f"{stage}: {change}")
                continue
            if not isinstance(change, dict):
                continue
            for kind, detail in change.items():
                if kind == "changed outs":
                    continue  # outputs are checked by `dvc repro`, and are absent before `make pull`
                if kind == "changed deps" and isinstance(detail, dict):
                    for path, state in detail.items():
                        if isinstance(state, dict):  # params.yaml: {"train.seed": "modified"}
                            found += [f"{stage}: param {key} {value}" for key, value in state.items()]
                        elif state == "deleted" and not tracked(path):
                            continue  # managed by DVC, not pulled yet
                        else:
                            found.append(f"{stage}: {path} {state}")
                else:
                    found.append(f"{stage}: {kind} {detail}")
    return found


def main() -> int:
    """Exit 0 when dvc.lock matches, 1 (listing what differs) when it does not."""
    if not Path("dvc.lock").is_file():
        print("error: dvc.lock is missing: run `make repro` and commit dvc.lock", file=sys.stderr)
        return 1
    result = subprocess.run(["dvc", "status", "--json"], capture_output=True, text=True, check=False)
    if result.returncode != 0:
        print(result.stderr, file=sys.stderr)
        return 1
    found = mismatches(json.loads(result.stdout or "{}"))
    if found:
        print("error: dvc.lock does not match code and params (make repro, commit dvc.lock):", file=sys.stderr)
        for line in found:
            print(f"  {line}", file=sys.stderr)
        return 1
    print("dvc.lock matches the code and params")
    return 0


if __name__ == "__main__":
    sys.exit(main())

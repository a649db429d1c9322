"""Refresh the generated project's ``uv.lock`` after changing its ``pyproject.toml`` dependencies.

Bakes the default project, locks it with uv (starting from the current lock, so unrelated pins stay), then writes
the lock back into the template with the project name templated. Usage: ``python -m tools.relock [--upgrade]``.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from tools.bake import TEMPLATE, bake

LOCK = TEMPLATE / "{{cookiecutter.project_slug}}" / "uv.lock"


def main(argv: list[str]) -> int:
    """Relock and write the templated lock file."""
    with tempfile.TemporaryDirectory() as tmp:
        project = bake(Path(tmp))
        slug = project.name
        if LOCK.exists():
            shutil.copyfile(LOCK, project / "uv.lock")
            text = (project / "uv.lock").read_text().replace("{{ cookiecutter.project_slug }}", slug)
            (project / "uv.lock").write_text(text)
        subprocess.run(["uv", "lock", *argv], cwd=project, check=True)
        locked = (project / "uv.lock").read_text()
    marker = f'name = "{slug}"'
    if locked.count(marker) != 1:
        raise SystemExit(f"error: expected exactly one {marker!r} in the lock")
    LOCK.write_text(locked.replace(marker, 'name = "{{ cookiecutter.project_slug }}"'))
    print(f"wrote {LOCK.relative_to(TEMPLATE)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

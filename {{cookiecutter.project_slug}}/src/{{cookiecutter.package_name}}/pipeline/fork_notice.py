"""The report of a fork's pull request, which CI does not train: what was skipped, and how a maintainer runs it.

A pull request from a fork gets no cloud credentials and no OIDC id token (GitHub gives none to a fork's run, and
pr-training asks for none there), so it cannot pull the private data from the DVC remote. Its job writes this notice
where the training job writes the report, so pr-comment posts it the same way, and then fails: nothing was judged.
"""

from __future__ import annotations

import re
from pathlib import Path

from {{ cookiecutter.package_name }}.contracts.errors import ProjectError

REPOSITORY = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})/[A-Za-z0-9._-]{1,100}$")


def text(pr: int, head_repository: str, repository: str) -> str:
    """The notice, in Markdown, for pull request ``pr`` of ``repository`` from the fork ``head_repository``."""
    for name, value in (("head repository", head_repository), ("repository", repository)):
        if not REPOSITORY.match(value):
            raise ProjectError(f"the {name} {value!r} is not owner/name")
    if pr < 1:
        raise ProjectError(f"the pull request number {pr} is not a positive number")
    branch = f"fork-pr-{pr}"
    return f"""# Not trained: this pull request comes from a fork

Pull request #{pr} comes from **{head_repository}**, a fork of **{repository}**. The data this project trains on is
private, and GitHub gives a fork's workflow run no cloud credentials and no OIDC id token; this workflow asks for
none, so none of the fork's code runs with access to the data.

**Skipped:** pulling the data and artifacts from the DVC remote, the pipeline (`make pr`: reproduce, judge against
`main`, report) and the gate. Nothing was judged, so this check fails until a maintainer trains the change.

**For a maintainer:** read the change first (its code would run with the read-only data credentials), then push it to
a branch of this repository and open a pull request from that branch; pr-training trains it there as the read-only
data identity and posts the report:

```bash
git fetch origin pull/{pr}/head:{branch}
git push origin {branch}
gh pr create --head {branch} --base main --fill
```

Merge that pull request (it keeps the contributor's commits) and close this one with a link to it.
"""


def write(path: Path, pr: int, head_repository: str, repository: str) -> Path:
    """Write the notice to ``path`` (the report's place, which ``make pr-handover`` hands over); return it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text(pr, head_repository, repository), encoding="utf-8")
    return path

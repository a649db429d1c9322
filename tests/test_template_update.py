"""Generated repos keep up with their template: the bake records it in ``.cruft.json``, ``make template-check`` says
whether it moved, ``make template-update`` (cruft update) applies its changes, keeping the team's own, and a conflict
leaves ``.rej`` files and a clear message with nothing committed.

The "old" and "new" templates are two commits of a git repository the test makes from this template's files, so the
test does not depend on this repository's history.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
from conftest import PROJECT_TEMPLATE, bake_into, project_env, run, write_multiclass_csv
from cookiecutter.main import cookiecutter
from gha.lab import Lab, job_annotations, ok
from test_workflow_runs import APP, APP_SECRETS

from tools.bake import TEMPLATE

# What cookiecutter reads of the template (the rest of this repository is the template's own tooling).
TEMPLATE_FILES = ("cookiecutter.json", "answer_guard.py", "hooks", "templates", PROJECT_TEMPLATE.name)
TEMPLATE_LINE = "A line the template's newer commit adds under the title."
TEAM_LINE = "# Tuned by the team after the bake."


def git(cwd: Path, *args: str) -> str:
    return run(["git", *args], cwd).stdout.strip()


def template_repo(root: Path) -> Path:
    """A git repository holding this template's files, one commit ("old")."""
    repo = root / "template"
    repo.mkdir(parents=True)
    for name in TEMPLATE_FILES:
        source = TEMPLATE / name
        if source.is_dir():
            shutil.copytree(source, repo / name, ignore=shutil.ignore_patterns("__pycache__", ".venv", "*.pyc"))
        else:
            shutil.copy2(source, repo / name)
    git(repo, "init", "--quiet", "--initial-branch=main")
    git(repo, "add", "--all")
    git(repo, "commit", "--quiet", "-m", "old")
    return repo


def advance(repo: Path) -> str:
    """Commit a newer template: a line in the README under the title, a new file, a line in the .gitignore."""
    project = repo / PROJECT_TEMPLATE.name
    readme = project / "README.md"
    lines = readme.read_text().splitlines(keepends=True)
    readme.write_text("".join([*lines[:3], TEMPLATE_LINE + "\n", *lines[3:]]))
    (project / "TEMPLATE-NEWS.md").write_text("# Added by the newer template\n")
    gitignore = project / ".gitignore"
    gitignore.write_text(gitignore.read_text() + "# newer template\n.template-scratch/\n")
    git(repo, "add", "--all")
    git(repo, "commit", "--quiet", "-m", "new")
    return git(repo, "rev-parse", "HEAD")


def bake_from(template: Path, output: Path, **answers: str) -> Path:
    """Bake ``template`` (a folder) with ``answers``; the project is committed as a team would."""
    project = Path(
        cookiecutter(str(template), no_input=True, extra_context=answers, output_dir=str(output), accept_hooks=True)
    )
    git(project, "add", "--all")
    git(project, "commit", "--quiet", "-m", "Baked from the template")
    return project


def make(project: Path, target: str) -> subprocess.CompletedProcess[str]:
    return run(["make", "--no-print-directory", target], project, check=False, timeout=600)


def test_plain_bake_records_its_template_and_is_up_to_date(tmp_path: Path) -> None:
    project = bake_into(tmp_path)
    state = json.loads((project / ".cruft.json").read_text())
    head = git(TEMPLATE, "rev-parse", "HEAD")
    assert state["template"] == str(TEMPLATE)
    assert state["commit"] == head
    answers = state["context"]["cookiecutter"]
    # Computed defaults are recorded as answers, so a re-render gives the same project.
    assert answers["project_slug"] == project.name
    assert answers["cloud"] == "none"
    assert answers["_commit"] == head
    assert {"data", "dvc.lock"} <= set(state["skip"])
    checked = make(project, "template-check")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "up to date" in checked.stdout


@pytest.mark.slow
def test_update_keeps_the_teams_changes_and_the_tests_pass(tmp_path: Path) -> None:
    template = template_repo(tmp_path)
    old = git(template, "rev-parse", "HEAD")
    project = bake_from(template, tmp_path / "out")
    assert json.loads((project / ".cruft.json").read_text())["commit"] == old
    # The team's changes: a tuned value in params.yaml, a line of its own at the README's end, a file of its own.
    params = project / "params.yaml"
    params.write_text(TEAM_LINE + "\n" + params.read_text())
    readme = project / "README.md"
    readme.write_text(readme.read_text() + "\nOur team's runbook is in RUNBOOK.md.\n")
    (project / "RUNBOOK.md").write_text("# Runbook\n")
    git(project, "commit", "--quiet", "--all", "-m", "Team changes")
    git(project, "add", "RUNBOOK.md")
    git(project, "commit", "--quiet", "-m", "Runbook")
    assert make(project, "template-check").returncode == 0

    new = advance(template)
    behind = make(project, "template-check")
    assert behind.returncode != 0
    assert "out of date" in behind.stdout
    updated = make(project, "template-update")
    assert updated.returncode == 0, updated.stdout + updated.stderr
    assert f"updated to the template's {new[:12]}" in updated.stdout
    assert not list(project.rglob("*.rej"))
    assert TEMPLATE_LINE in readme.read_text()
    assert "Our team's runbook is in RUNBOOK.md." in readme.read_text()
    assert params.read_text().startswith(TEAM_LINE)
    assert (project / "TEMPLATE-NEWS.md").read_text() == "# Added by the newer template\n"
    assert ".template-scratch/" in (project / ".gitignore").read_text()
    state = json.loads((project / ".cruft.json").read_text())
    assert state["commit"] == new
    assert "_repo_dir" not in state["context"]["cookiecutter"]
    assert state["context"]["cookiecutter"]["project_slug"] == project.name
    git(project, "add", "--all")
    git(project, "commit", "--quiet", "-m", "Update from the template")
    assert make(project, "template-check").returncode == 0
    # The updated project installs and its quick tests pass.
    run(["uv", "sync", "--frozen", "--quiet"], project, timeout=900)
    run(["uv", "run", "--frozen", "pytest", "-q", "-p", "no:cacheprovider", "tests/contracts"], project)


def test_conflicting_update_leaves_rej_files_and_commits_nothing(tmp_path: Path) -> None:
    template = template_repo(tmp_path)
    project = bake_from(template, tmp_path / "out")
    readme = project / "README.md"
    lines = readme.read_text().splitlines(keepends=True)
    readme.write_text("".join([*lines[:2], "Our own description, where the template adds its line.\n", *lines[3:]]))
    git(project, "commit", "--quiet", "--all", "-m", "Team's description")
    team_readme = readme.read_text()
    advance(template)

    # A dirty tree is refused before anything is applied.
    (project / "params.yaml").write_text((project / "params.yaml").read_text() + "# uncommitted\n")
    dirty = make(project, "template-update")
    assert dirty.returncode != 0
    assert "the working tree has changes" in dirty.stderr
    git(project, "checkout", "--", "params.yaml")

    # The pull-request path (as the template-update workflow runs it): it fails before committing or pushing.
    main = git(project, "rev-parse", "HEAD")
    opened = run(["bash", "scripts/template-pr.sh"], project, check=False, timeout=600, env=project_env())
    assert opened.returncode != 0
    assert "conflicts with this project's changes" in opened.stderr
    assert "README.md.rej" in opened.stderr
    assert "::error::The template's update does not apply cleanly" in opened.stdout
    assert git(project, "rev-parse", "HEAD") == main  # nothing committed on template/update
    assert git(project, "branch", "--show-current") == "template/update"
    assert (project / "README.md.rej").is_file()
    assert TEMPLATE_LINE in (project / "README.md.rej").read_text()
    assert readme.read_text() == team_readme  # the conflicting file is left as the team wrote it
    assert (project / "TEMPLATE-NEWS.md").is_file()  # what applied cleanly is in the working tree, for review


def test_a_project_of_your_own_csv_updates_without_the_csv(tmp_path: Path) -> None:
    template = template_repo(tmp_path)
    csv = write_multiclass_csv(tmp_path / "plants.csv")
    project = bake_from(template, tmp_path / "out", dataset=str(csv), target_column="species", task="classification")
    schema = (project / "data" / "schema.yaml").read_text()
    csv.unlink()  # the update runs elsewhere (CI): the bake's file is not there
    new = advance(template)
    updated = make(project, "template-update")
    assert updated.returncode == 0, updated.stdout + updated.stderr
    assert TEMPLATE_LINE in (project / "README.md").read_text()
    assert (project / "data" / "schema.yaml").read_text() == schema  # the data contract is the team's (skip)
    state = json.loads((project / ".cruft.json").read_text())
    assert state["commit"] == new
    assert state["context"]["cookiecutter"]["dataset"] == str(csv)
    assert state["context"]["cookiecutter"]["target_column"] == "species"


@pytest.mark.slow
def test_template_update_workflow_opens_then_updates_one_pull_request(tmp_path: Path) -> None:
    template = template_repo(tmp_path / "upstream")
    project = bake_from(template, tmp_path)
    lab = Lab(tmp_path, project_env())
    assert project == lab.origin
    lab.github.publish(project)
    app = {"vars": APP, "secrets": APP_SECRETS}

    idle = lab.run("template-update.yml", "schedule", **app)
    ok(idle, "template-update")
    assert "no template-update pull request" in " ".join(job_annotations(idle["template-update"], "notice"))
    assert not lab.github.read()["pulls"]

    new = advance(template)
    opened = lab.run("template-update.yml", "schedule", **app)
    ok(opened, "template-update")
    (pull,) = lab.github.read()["pulls"]
    assert pull["head"]["ref"] == "template/update"
    assert "template-update" in pull["labels"]
    assert new[:12] in pull["body"]
    assert TEMPLATE_LINE in lab.github.show("README.md", "template/update")
    assert json.loads(lab.github.show(".cruft.json", "template/update"))["commit"] == new
    assert TEMPLATE_LINE not in lab.github.show("README.md", "main")

    # The template moves again: the same pull request is updated, its branch is main plus the newest template.
    readme = template / PROJECT_TEMPLATE.name / "README.md"
    readme.write_text(readme.read_text() + "\nAnd a later line.\n")
    git(template, "commit", "--quiet", "--all", "-m", "newer")
    newer = git(template, "rev-parse", "HEAD")
    updated = lab.run("template-update.yml", "schedule", **app)
    ok(updated, "template-update")
    (pull,) = lab.github.read()["pulls"]
    assert json.loads(lab.github.show(".cruft.json", "template/update"))["commit"] == newer
    assert "And a later line." in lab.github.show("README.md", "template/update")
    assert newer[:12] in pull["body"]

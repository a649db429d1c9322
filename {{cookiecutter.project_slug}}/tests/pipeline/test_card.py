"""Stage ``card``: the model card holds every section of the layout, takes its facts from the artifacts it is given,
includes the team's sentences and names the sections the team has not written yet."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
from conftest import PROJECT, Workspace

from {{ cookiecutter.package_name }}.pipeline import card

HEADINGS = [
    "## Model details",
    "## Intended use",
    "### Out-of-scope use",
    "## Training data",
    "## Evaluation",
    "## Gate verdict",
    "## Limitations",
    "## Ethical considerations",
    "## How to call it",
]


@pytest.fixture
def carded(trained: Workspace, tmp_path: Path) -> Workspace:
    """A copy of the trained workspace with the team's file as the project ships it."""
    ws = trained.copy(tmp_path / "ws")
    text = ws.root / ws.params.paths.card_text
    text.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(PROJECT / ws.params.paths.card_text, text)
    return ws


def write_card(ws: Workspace) -> str:
    ws.ok("card")
    return ws.path("card").read_text()


def test_the_card_holds_every_section_in_order(carded: Workspace) -> None:
    text = write_card(carded)

    found = re.findall(r"^#{2,3} .*$", text, re.MULTILINE)
    assert [h for h in found if h in HEADINGS] == HEADINGS
    assert text == write_card(carded), "the same artifacts must give the same card"


def test_the_shipped_placeholders_are_named_as_not_written(carded: Workspace) -> None:
    text = write_card(carded)
    source = carded.params.paths.card_text.as_posix()

    for section in card.TEAM_SECTIONS:
        assert f"_Not written yet: edit `{source}` (section “{section}”)._" in text, section
    assert f"**Not written yet:** {', '.join(card.TEAM_SECTIONS)}: edit `{source}`." in text
    assert "<!--" not in text, "a placeholder comment leaked into the card"


def test_the_team_sentences_are_included_and_only_the_rest_named_missing(carded: Workspace) -> None:
    source = carded.root / carded.params.paths.card_text
    source.write_text(
        "# Our card\n\n## Intended use\n\nRank customers for the weekly retention calls.\n\n"
        "## Limitations\n\n<!-- still to do -->\n\n## Contact\n\nml-team@example.com\n"
    )
    text = write_card(carded)

    assert "## Intended use\n\nRank customers for the weekly retention calls." in text
    assert "## Contact\n\nml-team@example.com" in text, "a section of the team's own is included"
    missing = [s for s in card.TEAM_SECTIONS if s != "Intended use"]
    assert f"**Not written yet:** {', '.join(missing)}" in text
    assert "(section “Intended use”)" not in text
    assert "(section “Limitations”)" in text, "a section holding only its comment is not written"


def test_a_missing_team_file_is_named_not_a_crash(carded: Workspace) -> None:
    (carded.root / carded.params.paths.card_text).unlink()

    text = write_card(carded)

    assert f"**Not written yet:** {', '.join(card.TEAM_SECTIONS)}" in text


def test_the_facts_come_from_the_artifacts(carded: Workspace) -> None:
    """Each fact is changed in its artifact to a value no model would produce, and the card must show it."""
    metadata = carded.read_json("metadata")
    metadata["version"] = "feedc0ffee42"
    metadata["lineage"]["data.raw.dvc_md5"] = "0123456789abcdef0123456789abcdef"
    carded.path("metadata").write_text(json.dumps(metadata))
    metrics = carded.read_json("metrics")
    name = next(iter(metrics["bootstrap"]["intervals"]))
    metrics["model"][name] = 0.4321
    metrics["bootstrap"]["intervals"][name] = {"low": 0.1234, "high": 0.5678, "defined": 1000}
    carded.path("metrics").write_text(json.dumps(metrics))
    verdict = carded.read_json("verdict")
    verdict["checks"][0]["name"] = "a check named only here"
    carded.path("verdict").write_text(json.dumps(verdict))
    profile = carded.read_json("data_profile")

    text = write_card(carded)

    assert "| version | `feedc0ffee42` |" in text
    assert "| data (DVC md5) | `0123456789abcdef0123456789abcdef` |" in text
    assert f"| {name} | 0.4321 (0.1234–0.5678) |" in text
    assert "| a check named only here |" in text
    assert f"{profile['rows']['raw']:,} rows" in text
    for spec in metadata["inputs"]:
        assert f"| `{spec['name']}` | {spec['type']} |" in text
    for column, groups in carded.read_json("slices").items():
        assert f"**Slices by `{column}`**" in text
        for category, group in groups.items():
            assert f"| `{category}` | {group['n']} |" in text


def test_the_call_examples_send_a_golden_sample(carded: Workspace) -> None:
    text = write_card(carded)
    golden = carded.read_json("metadata")["golden"][0]

    predict = re.search(r"curl -s localhost:8080/predict -d '(.*?)'\n", text, re.DOTALL)
    assert predict is not None
    sent = json.loads(predict.group(1))["instances"][0]
    assert sent.keys() == golden["inputs"].keys()
    for key, value in golden["inputs"].items():
        assert sent[key] == value, key  # 19 for 19.0: integer features are sent as whole numbers
    assert json.dumps(golden["expected"]) in text
    v2 = re.search(r"/v2/models/(\w+)/infer -d '(.*?)'\n", text, re.DOTALL)
    assert v2 is not None
    tensors = {t["name"]: t["data"][0] for t in json.loads(v2.group(2))["inputs"]}
    assert tensors == {k: sent[k] for k in tensors}
    assert set(tensors) == set(golden["inputs"])

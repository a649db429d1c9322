"""Stage ``card``: the model card (``paths.card``), laid out like Hugging Face's model-card template.

Facts come from the pipeline's artifacts: the model metadata (version, task, inputs, opset, producers, lineage, golden
samples), the metrics with their bootstrap intervals, the slices, the gate's verdict and the data profile. The
sentences only the team can write (intended use, out-of-scope use, limitations, ethical considerations) come from
``paths.card_text`` (``docs/model-card.md``), one ``## `` section each; a section that is absent or still holds only
its HTML-comment placeholder is named in the card as not written yet. Other sections of that file are included too.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from {{ cookiecutter.package_name }}.contracts import evaluation
from {{ cookiecutter.package_name }}.contracts import metadata as model_metadata
from {{ cookiecutter.package_name }}.contracts.git import git_or_none
from {{ cookiecutter.package_name }}.contracts.io import read_json, write_text
from {{ cookiecutter.package_name }}.contracts.markdown import FAILED, PASSED, cell, estimate, table
from {{ cookiecutter.package_name }}.contracts.rules import FeatureSpec
from {{ cookiecutter.package_name }}.contracts.verdict import Verdict
from {{ cookiecutter.package_name }}.contracts.verdict import read as read_verdict
from {{ cookiecutter.package_name }}.pipeline.config import Params

TEAM_SECTIONS = ("Intended use", "Out-of-scope use", "Limitations", "Ethical considerations")
"""The sections the team writes in ``paths.card_text``, by their ``## `` heading."""
SLICE_COLUMNS = ("accuracy", "f1_macro", "roc_auc", "rmse", "mae", "r2")
MODEL_NAME = __name__.split(".", 1)[0]  # the name the server gives the model on its v2 routes
V2_TYPES = {"category": "BYTES", "integer": "INT64", "number": "FP32"}
COMMENT = re.compile(r"<!--.*?-->", re.DOTALL)


def team_sections(text: str | None) -> dict[str, str]:
    """The ``## `` sections of the team's file, heading -> text; a section holding only comments is left out."""
    found: dict[str, str] = {}
    heading = None
    lines: list[str] = []
    for line in [*(text or "").splitlines(), "## "]:
        if line.startswith("## "):
            body = COMMENT.sub("", "\n".join(lines)).strip()
            if heading and body:
                found[heading] = body
            heading, lines = line[3:].strip(), []
        elif heading is not None:
            lines.append(line)
    return found


def missing(source: Path, section: str) -> str:
    """What the card says of a section the team has not written."""
    return f"_Not written yet: edit `{source.as_posix()}` (section “{section}”)._"


def details(params: Params, meta: model_metadata.Metadata) -> str:
    """Model details: what the model is, what made it, from which commit and data."""
    commit = meta["lineage"].get("git_commit")
    date = git_or_none("show", "-s", "--format=%cs", commit) if commit else None
    task: str = meta["task"]
    if task == "classification":
        positive = f", positive class `{meta['positive']}`" if meta["positive"] else ""
        task += f" of `{meta['target']}` into {', '.join(f'`{c}`' for c in meta['classes'])}{positive}"
    else:
        task += f" of `{meta['target']}`"
    producer = meta["producer"]
    rows = [
        ["name", params.mlflow.registered_model],
        ["version", f"`{meta['version']}`"],
        ["task", task],
        ["model family", f"`{params.train.model}` (scikit-learn {producer.get('scikit-learn', '?')})"],
        [
            "framework",
            f"ONNX, converted by skl2onnx {producer.get('skl2onnx', '?')}, run by onnxruntime "
            f"{producer.get('onnxruntime', '?')}",
        ],
        ["ONNX opset", ", ".join(f"{domain} {version}" for domain, version in sorted(meta["opset"].items()))],
        ["date", date or "not committed yet (the date of the commit the model was exported from)"],
        ["git commit", f"`{commit}`" if commit else "not committed yet"],
        ["data (DVC md5)", f"`{meta['lineage'].get('data.raw.dvc_md5') or meta['lineage'].get('data.raw.md5')}`"],
    ]
    return "## Model details\n\n" + table(["", ""], rows)


def _values(spec: FeatureSpec) -> str:
    """The values a feature takes: its categories, or its range."""
    if spec["categories"]:
        return ", ".join(f"`{c}`" for c in spec["categories"])
    low, high = spec["min"], spec["max"]
    if low is not None and high is not None:
        return f"{cell(float(low))} to {cell(float(high))}"
    if low is not None:
        return f"≥ {cell(float(low))}"
    return "any number" if high is None else f"≤ {cell(float(high))}"


def training_data(profile: dict[str, Any], meta: model_metadata.Metadata, raw: Path) -> str:
    """Rows, label balance and the features the model reads, with their types."""
    rows = profile["rows"]
    parts = [
        "## Training data",
        f"`{raw.as_posix()}` (DVC md5 `{profile['raw_md5']}`): {rows['raw']:,} rows, split into {rows['train']:,} "
        f"for training and {rows['test']:,} for the test set"
        + (f"; {rows['unlabelled']:,} without a label were left out." if rows.get("unlabelled") else "."),
    ]
    labels = profile.get("labels") or {}
    if labels:
        total = sum(labels.values())
        parts += [
            "**Label balance**",
            table(
                ["label", "rows", "share"],
                [[f"`{label}`", count, format(count / total, ".1%")] for label, count in labels.items()],
            ),
        ]
    features = [
        [f"`{spec['name']}`", spec["type"], "yes" if spec["nullable"] else "no", _values(spec)]
        for spec in meta["inputs"]
    ]
    parts += ["**Features**", table(["feature", "type", "may be missing", "values"], features)]
    return "\n\n".join(parts)


def evaluation_section(scores: evaluation.Evaluation, slices: dict[str, Any], min_size: int) -> str:
    """Test-set metrics with their intervals beside the naive baseline's, and each slice's headline metrics."""
    naive, ci = scores["naive_baseline"], scores["bootstrap"]
    rows = [
        [name, estimate(value, evaluation.bounds(ci, name)), naive["metrics"].get(name)]
        for name, value in sorted(scores["model"].items())
    ]
    parts = [
        "## Evaluation",
        table(["metric", f"test set ({ci['confidence'] * 100:g}% interval)", "naive baseline"], rows),
        " ".join(evaluation.interval_notes(ci))
        + f" Naive baseline: `{naive['estimator']}`, fitted on the training split, ignores the features.",
    ]
    for column, groups in slices.items():
        names = [n for n in SLICE_COLUMNS if any(n in g for g in groups.values())]
        rows = [[f"`{c}`", g["n"], *(g.get(n) for n in names)] for c, g in groups.items()]
        parts += [f"**Slices by `{column}`**", table(["category", "test rows", *names], rows)]
    if slices:
        parts.append(f"Slices with fewer than {min_size} test rows are shown but not gated.")
    return "\n\n".join(parts)


def verdict_section(verdict: Verdict) -> str:
    """The gate's verdict and each of its checks."""
    head = f"{PASSED} The gate passed." if verdict["passed"] else f"{FAILED} **The gate failed.**"
    rows = [[c["name"], c["status"], c["value"], c["limit"], c["detail"]] for c in verdict["checks"]]
    return f"## Gate verdict\n\n{head}\n\n" + table(["check", "result", "measured", "limit", "detail"], rows)


def usage(meta: model_metadata.Metadata) -> str:
    """How to call the model: ``POST /predict`` and the v2 route, with a golden sample and what the model answers."""
    if not meta["golden"]:
        return "## How to call it\n\n_The metadata holds no golden sample to show._"
    golden = meta["golden"][0]
    row = {s["name"]: _whole(golden["inputs"].get(s["name"]), s["type"]) for s in meta["inputs"]}
    body = json.dumps({"instances": [row]})
    tensors = ",\n".join(
        "    "
        + json.dumps({"name": s["name"], "datatype": V2_TYPES[s["type"]], "shape": [1], "data": [row[s["name"]]]})
        for s in meta["inputs"]
    )
    v2 = '{"inputs": [\n' + tensors + "\n]}"
    classes = f" (`probabilities` in the order of `classes`: {', '.join(meta['classes'])})" if meta["classes"] else ""
    return (
        "## How to call it\n\n"
        "The server (`make serve`, or the image) answers `POST /predict`, one prediction per instance. A test row of "
        f"the golden samples shipped in the metadata:\n\n```bash\ncurl -s localhost:8080/predict -d '{body}'\n```\n\n"
        f"The metadata records the model's output for it, `{json.dumps(golden['expected'])}`{classes}; the server "
        "checks that it reproduces it before it reports ready.\n\n"
        "The same row on the Open Inference Protocol (KServe v2), one tensor per feature:\n\n"
        f"```bash\ncurl -s localhost:8080/v2/models/{MODEL_NAME}/infer -d '{v2}'\n```"
    )


def _whole(value: float | str | None, kind: str) -> float | str | None:
    """An integer feature's value as a whole number (``19``, not ``19.0``): what ``INT64`` holds."""
    return int(value) if kind == "integer" and isinstance(value, float) and value.is_integer() else value


def build(params: Params) -> str:
    """The whole model card as Markdown."""
    paths = params.paths
    meta = model_metadata.read(paths.metadata)
    source = paths.card_text
    team = team_sections(source.read_text() if source.is_file() else None)

    def written(section: str, level: str = "##") -> str:
        return f"{level} {section}\n\n{team.get(section) or missing(source, section)}"

    absent = [s for s in TEAM_SECTIONS if s not in team]
    header = [
        f"# Model card: {params.mlflow.registered_model} `{meta['version']}`",
        f"_Written by the pipeline (stage `card`) from its artifacts; the team's sentences come from "
        f"`{source.as_posix()}`._",
    ]
    if absent:
        header.append(f"**Not written yet:** {', '.join(absent)}: edit `{source.as_posix()}`.")
    sections = [
        *header,
        details(params, meta),
        written("Intended use"),
        written("Out-of-scope use", "###"),
        training_data(read_json(paths.data_profile), meta, paths.raw),
        evaluation_section(evaluation.read(paths.metrics), read_json(paths.slices), params.evaluate.min_slice_size),
        verdict_section(read_verdict(paths.verdict)),
        written("Limitations"),
        written("Ethical considerations"),
        usage(meta),
        *(f"## {heading}\n\n{text}" for heading, text in team.items() if heading not in TEAM_SECTIONS),
    ]
    return "\n\n".join(sections) + "\n"


def run(params: Params) -> str:
    """Write the model card."""
    text = build(params)
    write_text(params.paths.card, text)
    return text

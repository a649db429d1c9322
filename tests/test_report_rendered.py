"""The pull-request report as a reviewer sees it on GitHub: rendered by GitHub's Markdown engine and by Mermaid, and
looked at as a picture.

A default project is baked; ``main`` runs its pipeline and commits the outputs, a branch changes the model family and
runs it again, so its report compares this change with main and each curve chart draws both. The report is rendered
with ``cmarkgfm`` (cmark-gfm, GitHub's engine, with its GFM extensions) and every table must come out whole. Each
```` ```mermaid ```` block is then rendered to SVG by the ``mermaid`` npm package (pinned in ``tests/render``) in
Debian's headless Chromium, the way GitHub replaces the block by its chart: the test reads each plotted line's stroke
from the SVG and from the browser's computed style, and requires this change's line and main's in the two colours the
report sets, apart from each other, visible on white and named in the chart's title. Last, the page (GitHub's HTML with
the SVGs inlined) is screenshotted to a PNG, kept as an artifact (``$ARTIFACTS_DIR`` when set), in which each chart
must show pixels of both colours. Two quick tests show the checks catching what they look for: a cell's unescaped
pipe, Mermaid's own palette (its first line #ECECFF on white), a title naming the wrong colours, one curve drawn twice,
a chart Mermaid refuses.

Chromium (``apt-get install chromium``; or Chrome, or ``$CHROMIUM``) and ``tests/render/node_modules``
(``npm ci --prefix tests/render``) are installed by ``.ci/run``; where either is missing the tests that render are
skipped, except under ``CI``, where they fail.
"""

from __future__ import annotations

import colorsys
import html
import json
import os
import re
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import cmarkgfm
import pytest
from cmarkgfm.cmark import Options
from conftest import UV, UV_RUN, Steps, bake_into
from PIL import Image

# Debian's Chromium first (what .ci/run installs), else a Chrome already there (GitHub's Ubuntu runners have one).
BROWSERS = ("chromium", "google-chrome-stable", "google-chrome", "chromium-browser")
RENDER = Path(__file__).resolve().parent / "render"
MERMAID = RENDER / "node_modules" / "mermaid" / "dist" / "mermaid.min.js"
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
    "--force-device-scale-factor=1",
)
WIDTH = 1012  # GitHub's width for a comment in a pull request's conversation, about
WHITE = (255, 255, 255)
# The colour names a chart title may use, by hue (degrees): the name must match the line it names.
HUES = {"red": (345, 15), "orange": (15, 45), "yellow": (45, 70), "green": (70, 170), "blue": (190, 250)}
VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}
# GitHub's look, near enough: its font stacks (Liberation and Noto Color Emoji stand in on Debian), bordered tables.
STYLE = """
body { margin: 0; background: #ffffff; color: #1f2328; font-size: 14px; line-height: 1.5;
  font-family: -apple-system, "Segoe UI", "Noto Sans", Helvetica, Arial, sans-serif, "Noto Color Emoji"; }
article { max-width: 880px; margin: 0 auto; padding: 16px 32px; }
table { border-collapse: collapse; margin: 8px 0 16px; }
th, td { border: 1px solid #d1d9e0; padding: 6px 13px; }
th { font-weight: 600; }
tr:nth-child(2n) td { background: #f6f8fa; }
code { font-family: ui-monospace, "Liberation Mono", monospace; font-size: 85%; background: #eff1f3;
  padding: 0.2em 0.4em; border-radius: 6px; }
.mermaid-chart { margin: 16px 0; } .mermaid-chart svg { max-width: 100%; height: auto; }
.mermaid-error { color: #d1242f; white-space: pre-wrap; }
"""
# Replace each ```mermaid block (cmark-gfm writes <pre lang="mermaid">) by its SVG, as GitHub does; record on each chart
# the computed stroke of every plotted line and where the chart is on the page, then the page's height.
RENDER_SCRIPT = """
(async () => {
  mermaid.initialize({ startOnLoad: false, securityLevel: "strict" });
  const blocks = [...document.querySelectorAll('pre[lang="mermaid"]')];
  for (const [i, pre] of blocks.entries()) {
    const div = document.createElement("div");
    try {
      const { svg } = await mermaid.render("chart" + i, pre.textContent);
      div.className = "mermaid-chart";
      div.innerHTML = svg;
    } catch (error) {
      div.className = "mermaid-error";
      div.textContent = String((error && error.message) || error);
    }
    pre.replaceWith(div);
  }
  for (const div of document.querySelectorAll(".mermaid-chart")) {
    const paths = div.querySelectorAll('g[class^="line-plot-"] path');
    div.dataset.computed = JSON.stringify([...paths].map((p) => getComputedStyle(p).stroke));
    const box = div.getBoundingClientRect();
    div.dataset.box = JSON.stringify([box.left, box.top + window.scrollY, box.width, box.height].map(Math.round));
  }
  document.body.dataset.height = String(document.documentElement.scrollHeight);
  document.body.dataset.done = "yes";
})();
"""


@dataclass
class Node:
    """An element of a parsed HTML page: enough of a DOM to read tables and SVG charts."""

    tag: str
    attrs: dict[str, str]
    children: list[Node | str] = field(default_factory=list)

    def text(self) -> str:
        return "".join(c if isinstance(c, str) else c.text() for c in self.children)

    def iter(self, tag: str | None = None, cls: str | None = None) -> Iterator[Node]:
        """This element and its descendants, in document order, with this tag and a class starting with ``cls``."""
        classes = self.attrs.get("class", "").split()
        if (tag is None or self.tag == tag) and (cls is None or any(c.startswith(cls) for c in classes)):
            yield self
        for child in self.children:
            if isinstance(child, Node):
                yield from child.iter(tag, cls)


class _TreeBuilder(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.root = Node("#document", {})
        self.stack = [self.root]

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        node = Node(tag, {k: v or "" for k, v in attrs})
        self.stack[-1].children.append(node)
        if tag not in VOID:
            self.stack.append(node)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.stack[-1].children.append(Node(tag, {k: v or "" for k, v in attrs}))

    def handle_endtag(self, tag: str) -> None:
        for depth in range(len(self.stack) - 1, 0, -1):
            if self.stack[depth].tag == tag:
                del self.stack[depth:]
                return

    def handle_data(self, data: str) -> None:
        self.stack[-1].children.append(data)


def parse_html(text: str) -> Node:
    builder = _TreeBuilder()
    builder.feed(text)
    builder.close()
    return builder.root


def gfm(markdown: str) -> str:
    """HTML as GitHub renders a comment: cmark-gfm with table, strikethrough, autolink, tagfilter and tasklist, and
    each line break kept (GitHub does in comments on pull requests, where the report is posted)."""
    rendered: str = cmarkgfm.github_flavored_markdown_to_html(markdown, Options.CMARK_OPT_HARDBREAKS)
    return rendered


# --- Markdown tables as written, and as GitHub renders them


def markdown_cells(line: str) -> list[str]:
    """A table row's cells, split on the pipes that are not escaped."""
    cells = re.split(r"(?<!\\)\|", line.strip().removeprefix("|").removesuffix("|"))
    return [c.strip().replace("\\|", "|") for c in cells]


def markdown_tables(markdown: str) -> list[list[list[str]]]:
    """Every table of the Markdown outside code blocks, as rows of cells (header first, delimiter row dropped)."""
    tables: list[list[list[str]]] = []
    current: list[list[str]] = []
    fenced = False
    for line in [*markdown.splitlines(), ""]:
        fenced ^= line.startswith("```")
        if not fenced and line.startswith("|"):
            current.append(markdown_cells(line))
            continue
        if current:
            tables.append([current[0], *current[2:]])
            current = []
    return tables


def plain(text: str) -> str:
    """A cell's text without Markdown's emphasis and code marks, to compare a header as written and as rendered."""
    return re.sub(r"[*`_]", "", text).strip()


def html_tables(page: Node) -> list[list[list[str]]]:
    return [[[cell.text().strip() for cell in row.children if isinstance(cell, Node)] for row in t.iter("tr")]
            for t in page.iter("table")]  # fmt: skip


# --- colours


def rgb(colour: str) -> tuple[int, int, int]:
    """``#RRGGBB`` or CSS ``rgb(r, g, b)`` as a triple."""
    colour = colour.strip()
    if match := re.fullmatch(r"#([0-9a-fA-F]{6})", colour):
        value = int(match.group(1), 16)
        return value >> 16, (value >> 8) & 0xFF, value & 0xFF
    if match := re.fullmatch(r"rgb\((\d+),\s*(\d+),\s*(\d+)\)", colour):
        red, green, blue = (int(g) for g in match.groups())
        return red, green, blue
    raise AssertionError(f"not a colour: {colour!r}")


def luminance(colour: tuple[int, int, int]) -> float:
    """WCAG relative luminance."""
    linear = [c / 255 / 12.92 if c <= 10 else ((c / 255 + 0.055) / 1.055) ** 2.4 for c in colour]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def contrast(a: tuple[int, int, int], b: tuple[int, int, int]) -> float:
    """WCAG contrast ratio, 1 (none) to 21."""
    high, low = sorted((luminance(a), luminance(b)), reverse=True)
    return (high + 0.05) / (low + 0.05)


def lab(colour: tuple[int, int, int]) -> tuple[float, float, float]:
    """CIELAB (D65) of an sRGB colour."""
    linear = [c / 255 / 12.92 if c <= 10 else ((c / 255 + 0.055) / 1.055) ** 2.4 for c in colour]
    xyz = [
        (0.4124 * linear[0] + 0.3576 * linear[1] + 0.1805 * linear[2]) / 0.95047,
        0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2],
        (0.0193 * linear[0] + 0.1192 * linear[1] + 0.9505 * linear[2]) / 1.08883,
    ]
    f = [t ** (1 / 3) if t > 0.008856 else 7.787 * t + 16 / 116 for t in xyz]
    return 116 * f[1] - 16, 500 * (f[0] - f[1]), 200 * (f[1] - f[2])


def difference(a: tuple[int, int, int], b: tuple[int, int, int]) -> float:
    """CIE76 colour difference: about 2 is just noticeable, above 40 two different colours."""
    return float(sum((x - y) ** 2 for x, y in zip(lab(a), lab(b), strict=True)) ** 0.5)


def colour_name(colour: tuple[int, int, int]) -> str | None:
    """The name of a saturated colour by its hue (``HUES``), None for a grey or a hue without a name here."""
    hue, _, saturation = colorsys.rgb_to_hls(*(c / 255 for c in colour))
    if saturation < 0.3:
        return None
    degrees = hue * 360
    for name, (start, end) in HUES.items():
        if (start <= degrees < end) if start < end else (degrees >= start or degrees < end):
            return name
    return None


# --- the tools, and the report


def render_tools() -> str:
    """Chromium's path, after checking Mermaid's bundle is installed; skip without them, fail under CI."""
    names = [os.environ["CHROMIUM"]] if os.environ.get("CHROMIUM") else BROWSERS
    chromium = next((path for path in map(shutil.which, names) if path), None)
    missing = []
    if chromium is None:
        missing.append(f"Chromium ({' or '.join(names)} on PATH; apt-get install chromium)")
    if not MERMAID.is_file():
        missing.append(f"Mermaid's bundle {MERMAID} (npm ci --prefix tests/render)")
    if missing:
        message = "the report cannot be rendered without " + " and ".join(missing)
        if os.environ.get("CI"):
            pytest.fail(f"{message}; .ci/run installs both", pytrace=False)
        pytest.skip(message)
    assert chromium is not None
    return chromium


def chromium_run(chromium: str, profile: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Headless Chromium with a fresh profile; fails the test with its error output if it fails."""
    command = [chromium, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *args]
    result = subprocess.run(command, capture_output=True, text=True, timeout=180, check=False)
    if result.returncode != 0:
        pytest.fail(f"{' '.join(command)} exited {result.returncode}:\n{result.stderr[-3000:]}", pytrace=False)
    return result


def timed(record_property: Callable[[str, Any], None], name: str, started: float) -> None:
    """Record a step that is not a command (``Steps`` times those): the suite prints it with the others."""
    record_property(f"step:{name}", round(time.monotonic() - started, 1))


def pr_report(root: Path, step: Steps) -> str:
    """The report of a pull request that changes the model family, against main's committed outputs."""
    started = time.monotonic()
    project = bake_into(root / "out")
    timed(step.record, "bake", started)
    step("sync", [UV, "sync", "--frozen"], cwd=project)
    step("commit", "git add -A && git commit --quiet --no-verify -m 'Bake the project'", cwd=project)
    step("repro-main", [*UV_RUN, "dvc", "repro"], cwd=project)
    step("commit-main", "git add -A && git commit --quiet --no-verify -m 'main: the baseline'", cwd=project)
    params = project / "params.yaml"
    text = params.read_text()
    assert "\n  model: random_forest" in text, "the default project's model family moved in params.yaml"
    params.write_text(text.replace("\n  model: random_forest", "\n  model: linear", 1))
    step(
        "commit-change",
        "git switch --quiet -c change && git commit --quiet --no-verify -am 'A linear model'",
        cwd=project,
    )
    step("repro-change", [*UV_RUN, "dvc", "repro"], cwd=project)
    return (project / "reports" / "report.md").read_text(encoding="utf-8")


@dataclass(frozen=True)
class Chart:
    """One Mermaid chart of the report: what its Markdown asks for and what the SVG draws."""

    markdown: str
    title: str  # the SVG's
    strokes: list[str]  # of each plotted line's path in the SVG, in order
    computed: list[str]  # the same lines' stroke as the browser computed it
    paths: list[str]  # each line's path data
    box: tuple[int, int, int, int]  # left, top, width, height on the page

    @property
    def palette(self) -> list[str]:
        directive = re.match(r"%%\{init: (.*)\}%%", self.markdown)
        if directive is None:  # Mermaid's own colours
            return []
        palette: str = json.loads(directive.group(1))["themeVariables"]["xyChart"]["plotColorPalette"]
        return [c.strip() for c in palette.split(",")]

    @property
    def markdown_title(self) -> str:
        found = re.search(r'^\s+title "([^"]*)"', self.markdown, re.MULTILINE)
        assert found, f"no title in the chart:\n{self.markdown}"
        return found.group(1)


def render(chromium: str, markdown: str, out: Path) -> tuple[str, list[Chart], int]:
    """GitHub's HTML of the report with each Mermaid block replaced by its SVG (scripts removed), the charts, and the
    page's height in pixels at ``WIDTH``."""
    out.mkdir(parents=True, exist_ok=True)
    blocks = re.findall(r"^```mermaid\n(.*?)^```", markdown, re.MULTILINE | re.DOTALL)
    page = (
        f'<!doctype html><html><head><meta charset="utf-8"><style>{STYLE}</style>'
        f'<script src="{MERMAID.as_uri()}"></script></head>'
        f'<body><article class="markdown-body">{gfm(markdown)}</article><script>{RENDER_SCRIPT}</script></body></html>'
    )
    (out / "render.html").write_text(page, encoding="utf-8")
    dumped = chromium_run(
        chromium,
        out / "profile-render",
        f"--window-size={WIDTH},1000",
        "--virtual-time-budget=30000",
        "--dump-dom",
        (out / "render.html").as_uri(),
    ).stdout
    dom = parse_html(dumped)
    body = next(dom.iter("body"))
    assert body.attrs.get("data-done") == "yes", f"Mermaid did not finish rendering:\n{dumped[-2000:]}"
    errors = [e.text() for e in dom.iter("div", "mermaid-error")]
    assert not errors, f"Mermaid refused {len(errors)} chart(s) of the report: {errors}"
    charts = []
    for source, div in zip(blocks, dom.iter("div", "mermaid-chart"), strict=True):
        titles = [t.text() for g in div.iter("g", "chart-title") for t in g.iter("text")]
        lines = [p for g in div.iter("g", "line-plot-") for p in g.iter("path")]
        left, top, width, height = json.loads(div.attrs["data-box"])
        charts.append(
            Chart(
                markdown=source,
                title=" ".join(titles),
                strokes=[p.attrs.get("stroke", "") for p in lines],
                computed=json.loads(div.attrs["data-computed"]),
                paths=[p.attrs.get("d", "") for p in lines],
                box=(left, top, width, height),
            )
        )
    static = re.sub(r"<script\b.*?</script>", "", dumped, flags=re.DOTALL)
    return static, charts, int(body.attrs["data-height"])


def near(image: Image.Image, colour: tuple[int, int, int], tolerance: int = 40) -> int:
    """How many pixels of ``image`` are within ``tolerance`` of ``colour`` in each channel."""
    data, (red, green, blue) = image.convert("RGB").tobytes(), colour
    return sum(
        abs(data[i] - red) <= tolerance
        and abs(data[i + 1] - green) <= tolerance
        and abs(data[i + 2] - blue) <= tolerance
        for i in range(0, len(data), 3)
    )


def keep(artifact: Path, record_property: Callable[[str, Any], None]) -> Path:
    """Copy an artifact to ``$ARTIFACTS_DIR`` when set; record and print where it is."""
    kept = artifact
    if directory := os.environ.get("ARTIFACTS_DIR"):
        Path(directory).mkdir(parents=True, exist_ok=True)
        kept = Path(directory) / artifact.name
        shutil.copyfile(artifact, kept)
    record_property(f"figure:{artifact.name}", str(kept))
    print(f"{artifact.name}: {kept}")
    return kept


def table_problems(markdown: str) -> list[str]:
    """How GitHub's engine breaks the Markdown's tables: a table lost, a row or cell more or less, a header changed,
    rows left as a paragraph of pipes."""
    page = parse_html(gfm(markdown))
    written, rendered = markdown_tables(markdown), html_tables(page)
    found = [f"{len(written)} tables written, {len(rendered)} rendered"] if len(written) != len(rendered) else []
    for source, table in zip(written, rendered, strict=False):
        if [len(row) for row in table] != [len(row) for row in source]:
            found.append(
                f"table {source[0]}: cells per row {[len(r) for r in source]} became {[len(r) for r in table]}"
            )
        elif [plain(c) for c in table[0]] != [plain(c) for c in source[0]]:
            found.append(f"table header {source[0]} became {table[0]}")
    found += [
        f"rows rendered as a paragraph: {p.text()!r}"
        for p in page.iter("p")
        if any(line.lstrip().startswith("|") for line in p.text().splitlines())
    ]
    return found


def chart_problems(chart: Chart, ref: str = "main") -> list[str]:
    """What keeps a reviewer from reading a chart: lines not in the colours the report set or named, a line nearly
    invisible on white, and in a chart of two lines, this change and ``ref`` drawn alike or as the same curve."""
    drawn = [rgb(s) for s in chart.strokes]
    found = []
    if chart.title != html.unescape(chart.markdown_title):
        found.append(f"the SVG's title {chart.title!r} is not the report's {chart.markdown_title!r}")
    if drawn != [rgb(c) for c in chart.computed]:
        found.append(f"CSS draws the lines in {chart.computed}, not their strokes {chart.strokes}")
    if drawn != [rgb(c) for c in chart.palette[: len(drawn)]]:
        found.append(f"lines drawn in {chart.strokes}, not in the palette set, {chart.palette}")
    found += [f"a line is nearly invisible on white: {s}" for s in chart.strokes if contrast(rgb(s), WHITE) < 3]
    named, seen = re.findall(r"\((\w+)\)", chart.title), [colour_name(c) for c in drawn]
    if named != seen:
        found.append(f"the title names {named}, the lines are {seen}")
    if len(drawn) == 2:
        if difference(*drawn) < 40:
            found.append(f"this change and {ref} are drawn alike: {chart.strokes}")
        if not re.search(rf"this change \(\w+\) vs {re.escape(ref)} \(\w+\)", chart.title):
            found.append(f"the title does not say which line is this change and which {ref}")
        if chart.paths[0] == chart.paths[1]:
            found.append("the same curve is drawn twice")
    return found


@pytest.mark.slow
def test_the_report_as_github_renders_it(tmp_path: Path, record_property: Callable[[str, Any], None]) -> None:
    chromium = render_tools()
    step = Steps(record_property)
    markdown = pr_report(tmp_path, step)
    out = tmp_path / "rendered"
    out.mkdir()
    (out / "report.md").write_text(markdown, encoding="utf-8")

    # Every table as written is a table in GitHub's HTML, with the same rows and cells.
    assert len(markdown_tables(markdown)) >= 5, "the report has fewer tables than it should"
    assert table_problems(markdown) == []

    # Each chart in SVG: this change's line and main's, in the colours the report set, apart and visible on white.
    started = time.monotonic()
    static, charts, height = render(chromium, markdown, out)
    timed(record_property, "mermaid", started)
    assert len(charts) == markdown.count("```mermaid"), "a Mermaid block was not rendered"
    compared = [c for c in charts if len(c.strokes) == 2]
    assert len(compared) >= 2, f"the ROC and PR charts do not both draw this change and main: {charts}"
    assert {c.title: chart_problems(c) for c in charts} == {c.title: [] for c in charts}
    record_property("figure:charts", ", ".join(f"{c.title} {c.strokes}" for c in charts))

    # The page as a picture: each chart comparing the two shows both colours.
    (out / "report.html").write_text(static, encoding="utf-8")
    png = out / "report.png"
    started = time.monotonic()
    chromium_run(chromium, out / "profile-shot", f"--window-size={WIDTH},{height}", f"--screenshot={png}",
                 (out / "report.html").as_uri())  # fmt: skip
    timed(record_property, "screenshot", started)
    assert png.is_file(), "Chromium wrote no screenshot"
    keep(png, record_property)
    keep(out / "report.html", record_property)
    with Image.open(png) as image:
        assert image.size == (WIDTH, height)
        for chart in compared:
            left, top, width, tall = chart.box
            crop = image.crop((left, top, left + width, top + tall))
            for stroke in chart.strokes:
                pixels = near(crop, rgb(stroke))
                assert pixels >= 300, f"{chart.title!r}: only {pixels} pixels of {stroke} on the screenshot"


# The checks themselves, on what they must catch (a few seconds: no pipeline).

TABLE = "| metric | main | this change |\n|---|---|---|\n| accuracy | 0.80 | 0.82 |\n| {cell} | 1 | 2 |\n"


def test_a_table_broken_by_a_pipe_is_caught() -> None:
    assert table_problems(TABLE.format(cell="slice a\\|b")) == []  # escaped, as the report's cells are
    problems = table_problems(TABLE.format(cell="slice a|b"))
    assert problems, "an unescaped pipe in a cell went unnoticed"
    assert "cells per row [3, 3, 4] became [3, 3, 3]" in problems[0]


def chart(palette: str, title: str, *lines: str) -> str:
    body = "".join(f"    line [{line}]\n" for line in lines)
    return f'```mermaid\n{palette}xychart-beta\n    title "{title}"\n    x-axis "x" 0 --> 1\n{body}```\n'


def test_chart_colours_are_read_from_the_svg(tmp_path: Path) -> None:
    chromium = render_tools()
    palette = '%%{init: {"themeVariables": {"xyChart": {"plotColorPalette": "#0969DA, #BC4C00"}}}}%%\n'
    curves = ("0.1, 0.6, 0.9", "0.2, 0.5, 0.8")
    charts = [
        chart(palette, "ROC: this change (blue) vs main (orange)", *curves),
        chart("", "ROC: this change (blue) vs main (orange)", *curves),  # Mermaid's own palette
        chart(palette, "ROC: this change (orange) vs main (blue)", *curves),
        chart(palette, "ROC: this change (blue) vs main (orange)", curves[0], curves[0]),
    ]
    _, rendered, _ = render(chromium, "\n".join(charts), tmp_path)
    assert [c.strokes for c in rendered] == [
        ["#0969DA", "#BC4C00"],
        ["#ECECFF", "#8493A6"],
        *[["#0969DA", "#BC4C00"]] * 2,
    ]
    good, default, misnamed, same = (chart_problems(c) for c in rendered)
    assert good == []
    assert "a line is nearly invisible on white: #ECECFF" in default
    assert "the title names ['orange', 'blue'], the lines are ['blue', 'orange']" in misnamed
    assert same == ["the same curve is drawn twice"]
    with pytest.raises(AssertionError, match="Mermaid refused 1 chart"):
        render(chromium, "```mermaid\nxychart-beta\n    line [0.1, oops]\n```\n", tmp_path / "refused")

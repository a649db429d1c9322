"""The project's one CSV reader, and its rules for writing.

The bake's schema inference, ``prepare``, ``retrain-data``, the monitor's label files and the synthetic data all read
(and write) CSV by these rules.

Standard library only: the bake's hook imports this file from the generated source, in cookiecutter's environment.

* The file is UTF-8; a byte-order mark is dropped (it would otherwise stick to the first column's name).
* The first line names the columns (names trimmed, unique; an empty name is ``Unnamed: <position from 0>``).
* The separator is one of ``SEPARATORS``: given (``data/schema.yaml``'s ``csv.separator``) or detected from the first
  lines, as the one separator that splits the header and every line into the same number (at least two) of fields.
* Fields may be quoted (``"a, b"``, ``""`` for a quote) and then hold separators and line breaks.
* Values are trimmed; a value equal to one of the missing-value markers (``csv.missing``, by default ``MISSING``) is
  missing (``None``). Blank lines are skipped.
* A column of numbers written with a decimal comma (``3,5``) is refused with a hint: read as text it would become a
  category of hundreds of values.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from {{ cookiecutter.package_name }}.contracts.errors import ProjectError

Separator = Literal[",", ";", "\t", "|"]
SEPARATORS: tuple[Separator, ...] = (",", ";", "\t", "|")
MISSING: tuple[str, ...] = ("", "NA", "N/A", "n/a", "#N/A", "NaN", "nan", "NULL", "null", "None", "<NA>", "?")
"""The default missing-value markers: what R, pandas, Excel, SQL exports and the UCI repository write for "no value"."""
SAMPLE_BYTES = 1 << 16
"""How much of a file the separator is detected from."""
NAMES = {",": "comma", ";": "semicolon", "\t": "tab", "|": "pipe"}
DECIMAL_COMMA = re.compile(r"[+-]?(\d{1,3}(\.\d{3})+|\d+),\d+")
NUMBER_OR_DECIMAL_COMMA = re.compile(r"[+-]?((\d{1,3}(\.\d{3})+|\d+)(,\d+)?|\d*\.\d+)")


class TableError(ProjectError, ValueError):
    """A CSV file this reader refuses; ``problem`` says why without the file's name (the message has both)."""

    def __init__(self, path: Path, problem: str) -> None:
        """Keep the problem; the message names the file."""
        self.path, self.problem = path, problem
        super().__init__(f"{path}: {problem}")


@dataclass(frozen=True)
class Format:
    """How the project's CSV files are written: the separator and the missing-value markers."""

    separator: Separator = ","
    missing: tuple[str, ...] = MISSING

    @property
    def null_text(self) -> str:
        """What a missing value is written as: the first marker (the empty field by default)."""
        return self.missing[0] if self.missing else ""


@dataclass(frozen=True)
class Table:
    """A CSV file's columns, in order, each as its values (``None`` where missing), and the separator it used."""

    columns: list[str]
    values: dict[str, list[str | None]] = field(repr=False)
    separator: Separator
    rows: int


def describe(separator: str) -> str:
    """A separator in words: ``comma (',')``."""
    return f"{NAMES.get(separator, 'separator')} ({separator!r})"


def _records(text: str, separator: str) -> list[list[str]]:
    """The non-blank records of ``text`` (the last one may be cut short), without raising on bad quoting."""
    return [r for r in csv.reader(io.StringIO(text, newline=""), delimiter=separator) if r]


def detect(path: Path, sample: str | None = None) -> Separator:
    """The separator of ``path``, from its first ``SAMPLE_BYTES``; a ``TableError`` when none or several fit."""
    if sample is None:
        with path.open("rb") as handle:
            data = handle.read(SAMPLE_BYTES + 1)
        whole = len(data) <= SAMPLE_BYTES
        if not whole:
            data = data[: data.rfind(b"\n", 0, SAMPLE_BYTES) + 1]
        sample = _decode(path, data)
    else:
        whole = True
    if not sample.strip():
        raise TableError(path, "the file is empty: no header and no rows")
    fitting: list[Separator] = []
    misfits: list[str] = []
    for separator in SEPARATORS:
        try:
            records = _records(sample, separator)
        except csv.Error:
            continue
        if not whole:
            records = records[:-1]  # a quoted field may have been cut at the end of the sample
        if not records or len(records[0]) < 2:
            continue
        width = len(records[0])
        bad = next((i for i, r in enumerate(records) if len(r) != width), None)
        if bad is None:
            fitting.append(separator)
        else:
            found = len(records[bad])
            misfits.append(f"{describe(separator)}: {width} fields in the header, {found} in record {bad + 1}")
    if len(fitting) == 1:
        return fitting[0]
    if not fitting:
        detail = f" ({'; '.join(misfits)})" if misfits else ""
        raise TableError(
            path,
            "cannot tell the separator: none of comma, semicolon, tab or pipe splits the header and every line into "
            f"the same number (at least 2) of fields{detail}",
        )
    raise TableError(
        path,
        f"cannot tell the separator: {' and '.join(describe(s) for s in fitting)} both split every line into the "
        "same number of fields; quote the fields that hold the other character, or export with another separator",
    )


def _decode(path: Path, data: bytes) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise TableError(
            path, f"not UTF-8 text (byte {data[exc.start]:#04x} at offset {exc.start}): save it as UTF-8"
        ) from None


def _header(path: Path, names: Sequence[str], separator: str) -> list[str]:
    # An unnamed column (R's write.csv puts the row names under "") is named as pandas names it: "Unnamed: <i>".
    columns = [name.strip() or f"Unnamed: {i}" for i, name in enumerate(names)]
    if len(columns) == 1:
        for other in SEPARATORS:
            if other != separator and len(columns[0].split(other)) > 1:
                raise TableError(
                    path,
                    f"the header is one column when split by {describe(separator)}, "
                    f"but {describe(other)} splits it into {len(columns[0].split(other))}: set csv.separator to "
                    f"{other!r} in data/schema.yaml",
                )
    duplicates = sorted({name for name in columns if columns.count(name) > 1})
    if duplicates:
        raise TableError(path, f"column(s) named more than once in the header: {', '.join(map(repr, duplicates))}")
    return columns


def decimal_comma(values: Iterable[str | None]) -> str | None:
    """An example if ``values`` are numbers written with a decimal comma (all of them numbers, one with a comma)."""
    example = None
    for value in values:
        if value is None:
            continue
        if not NUMBER_OR_DECIMAL_COMMA.fullmatch(value):
            return None
        if example is None and DECIMAL_COMMA.fullmatch(value):
            example = value
    return example


def read(path: Path, separator: Separator | None = None, missing: Iterable[str] = MISSING) -> Table:
    """Read ``path`` by the rules above (the separator detected if not given); ``TableError`` naming any problem."""
    markers = frozenset(missing)
    if separator is None:
        separator = detect(path)
    records: list[list[str]] = []
    try:
        with path.open(encoding="utf-8-sig", newline="") as handle:
            reader = csv.reader(handle, delimiter=separator, strict=True)
            header = next(reader, None)
            if header is None:
                raise TableError(path, "the file is empty: no header and no rows")
            columns = _header(path, header, separator)
            width = len(columns)
            for record in reader:
                if len(record) != width:
                    if not record:
                        continue  # a blank line
                    raise TableError(
                        path,
                        f"line {reader.line_num} has {len(record)} field(s), the header {width} (separator "
                        f"{describe(separator)}; a field holding it must be quoted)",
                    )
                records.append(record)
    except UnicodeDecodeError as exc:
        raise TableError(path, f"not UTF-8 text ({exc.reason}): save it as UTF-8") from None
    except csv.Error as exc:
        raise TableError(path, f"not valid CSV at line {reader.line_num}: {exc}") from None
    transposed: list[tuple[str, ...]] = list(zip(*records, strict=True)) if records else [() for _ in columns]
    values: dict[str, list[str | None]] = {}
    for name, column in zip(columns, transposed, strict=True):
        cleaned = [None if (text := value.strip()) in markers else text for value in column]
        example = decimal_comma(cleaned) if any("," in value for value in column) else None
        if example is not None:
            raise TableError(
                path,
                f"column {name!r} holds numbers written with a decimal comma (e.g. {example!r}), which would be read "
                "as text: export the file with a decimal point (and no thousands separator)",
            )
        values[name] = cleaned
    return Table(columns, values, separator, len(records))


def write(path: Path, columns: Sequence[str], rows: Iterable[Sequence[object]], fmt: Format) -> None:
    """Write a header and ``rows`` in ``fmt`` (``None`` as ``fmt.null_text``), quoting only where needed."""
    with path.open("w", encoding="utf-8", newline="") as handle:
        out = csv.writer(handle, delimiter=fmt.separator, lineterminator="\n")
        out.writerow(columns)
        out.writerows([fmt.null_text if v is None else v for v in row] for row in rows)

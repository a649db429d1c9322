"""The one CSV reader (``contracts.table``): files as they circulate (a byte-order mark, ``;`` or tab or ``|``
separators, quoted fields holding separators and line breaks, ``NA``-style markers) are read the same everywhere, and
what cannot be read right (a decimal comma, an ambiguous or missing separator, a ragged line) is refused by name."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from {{ cookiecutter.package_name }}.contracts.table import MISSING, SEPARATORS, Format, TableError, detect, read, write


def csv_file(tmp_path: Path, text: str, encoding: str = "utf-8") -> Path:
    path = tmp_path / "data.csv"
    path.write_bytes(text.encode(encoding))
    return path


def test_a_byte_order_mark_is_not_part_of_the_first_column(tmp_path: Path) -> None:
    path = csv_file(tmp_path, "\ufeffisland,mass\nBiscoe,3750\nDream,NA\n")
    table = read(path)
    assert table.columns == ["island", "mass"]
    assert table.values == {"island": ["Biscoe", "Dream"], "mass": ["3750", None]}
    assert table.rows == 2


@pytest.mark.parametrize("separator", SEPARATORS)
def test_each_separator_is_detected(tmp_path: Path, separator: str) -> None:
    lines = [["name", "size", "kind"], ["a", "1.5", "x"], ["b", "", "y"], ["c", "3", "x"]]
    path = csv_file(tmp_path, "".join(separator.join(line) + "\n" for line in lines))
    assert detect(path) == separator
    table = read(path)
    assert table.separator == separator
    assert table.columns == ["name", "size", "kind"]
    assert table.values["size"] == ["1.5", None, "3"]


def test_quoted_fields_hold_separators_quotes_and_line_breaks(tmp_path: Path) -> None:
    text = 'id;note;score\r\n1;"Dupont; Marie";4\r\n2;"said ""hello""\non two lines";5\r\n3;plain, with a comma;6\r\n'
    table = read(csv_file(tmp_path, text))
    assert table.separator == ";"
    assert table.values["note"] == ["Dupont; Marie", 'said "hello"\non two lines', "plain, with a comma"]
    assert table.values["score"] == ["4", "5", "6"]


def test_missing_value_markers_are_missing_and_editable(tmp_path: Path) -> None:
    markers = ["", "NA", "N/A", "n/a", "NaN", "nan", "NULL", "null", "None", "?", "#N/A", "<NA>"]
    assert set(markers) <= set(MISSING)
    text = "x,y\n" + "".join(f"{marker},{i}\n" for i, marker in enumerate(markers)) + " 7 ,8\n"
    path = csv_file(tmp_path, text)
    assert read(path).values["x"] == [None] * len(markers) + ["7"]  # values are trimmed
    # A team whose "NA" means North America keeps it as a value by leaving it out of the markers.
    assert read(path, ",", missing=[""]).values["x"][1:3] == ["NA", "N/A"]


def test_r_row_names_get_the_name_pandas_gives_them(tmp_path: Path) -> None:
    """R's write.csv quotes text and writes the row names under an empty name."""
    path = csv_file(tmp_path, '"","species","mass"\n"1","Adelie",3750\n"2","Gentoo",NA\n')
    table = read(path)
    assert table.columns == ["Unnamed: 0", "species", "mass"]
    assert table.values["Unnamed: 0"] == ["1", "2"]
    assert table.values["mass"] == ["3750", None]


def test_a_decimal_comma_is_refused_with_a_hint(tmp_path: Path) -> None:
    path = csv_file(tmp_path, "height;weight;name\n1,75;70;Ann\n1,62;NA;Bob\n")
    with pytest.raises(TableError) as refused:
        read(path)
    message = str(refused.value)
    assert "'height'" in message
    assert "decimal comma" in message
    assert "'1,75'" in message
    assert "decimal point" in message
    assert str(path) in message


def test_text_with_commas_is_not_a_decimal_comma(tmp_path: Path) -> None:
    path = csv_file(tmp_path, 'city;size\n"Paris, France";1\n"Lyon, France";2\n')
    assert read(path).values["city"] == ["Paris, France", "Lyon, France"]


def test_an_ambiguous_separator_is_refused(tmp_path: Path) -> None:
    path = csv_file(tmp_path, "a,b;c\n1,2;3\n4,5;6\n")
    with pytest.raises(TableError, match="cannot tell the separator") as refused:
        read(path)
    assert "comma (',')" in str(refused.value)
    assert "semicolon (';')" in str(refused.value)


def test_no_separator_that_fits_is_refused(tmp_path: Path) -> None:
    path = csv_file(tmp_path, "a,b,c\n1,2\n3,4,5,6\n")
    with pytest.raises(TableError, match="cannot tell the separator: none of") as refused:
        read(path)
    assert "3 fields in the header, 2 in record 2" in str(refused.value)


def test_a_ragged_line_is_refused_by_its_number(tmp_path: Path) -> None:
    path = csv_file(tmp_path, "a,b\n1,2\n3\n")
    with pytest.raises(TableError, match=r"line 3 has 1 field\(s\), the header 2"):
        read(path, ",")


def test_the_wrong_separator_names_the_right_one(tmp_path: Path) -> None:
    path = csv_file(tmp_path, "a;b;c\n1;2;3\n")
    with pytest.raises(TableError, match=r"semicolon .* splits it into 3: set csv\.separator to ';'"):
        read(path, ",")


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("", "the file is empty"),
        ("a,b,a\n1,2,3\n", "named more than once in the header: 'a'"),
        ('a,b\n"1,2\n', "not valid CSV"),
    ],
    ids=["empty", "duplicate-column", "unclosed-quote"],
)
def test_unreadable_files_are_refused_by_name(tmp_path: Path, text: str, problem: str) -> None:
    with pytest.raises(TableError, match=re.escape(problem)):
        read(csv_file(tmp_path, text), ",")


def test_a_file_that_is_not_utf8_is_refused(tmp_path: Path) -> None:
    path = csv_file(tmp_path, "ville,taille\nSète,1\n", encoding="latin-1")
    with pytest.raises(TableError, match=r"not UTF-8 text.*save it as UTF-8"):
        read(path)


def test_what_is_written_is_read_back(tmp_path: Path) -> None:
    fmt = Format(";", ("NA", ""))
    rows = [["a; b", 1.5, None], ['say "hi"', None, "x\ny"]]
    path = tmp_path / "out.csv"
    write(path, ["text", "number", "other"], rows, fmt)
    assert path.read_text().splitlines()[1] == '"a; b";1.5;NA'
    table = read(path, fmt.separator, fmt.missing)
    assert table.values == {"text": ["a; b", 'say "hi"'], "number": ["1.5", None], "other": [None, "x\ny"]}

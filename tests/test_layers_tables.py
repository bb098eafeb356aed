"""layers.tables: production and national totals from CSV and Excel, with spreadsheet row numbers.

Rows are numbered as a spreadsheet shows them: the header is row 1, the first data row 2.
"""

from __future__ import annotations

import math
from pathlib import Path

import openpyxl
import pytest

from geo.errors import InputError
from layers.fields import parse_field_mappings
from layers.tables import parse_carats, read_national, read_production

HEADER = "concession_id,period,carats"


def csv(tmp_path: Path, text: str, name: str = "production.csv") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def xlsx(tmp_path: Path, rows: list[list], name: str = "production.xlsx") -> Path:
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    for row in rows:
        sheet.append(row)
    path = tmp_path / name
    workbook.save(path)
    return path


# ---------------------------------------------------------------------------------------
# production


def test_production_csv(tmp_path):
    path = csv(
        tmp_path,
        "concession_id,period,carats,value_usd,source\n"
        'ZW-1,2021,"1,234.5","50,000",KP filing\n'
        "ZW-1,2021-q3,0,,\n"
        "12,2021-03,12, 7.5 ,\n",
    )
    loaded = read_production(path)
    table = loaded.table
    assert table["concession_id"].tolist() == ["ZW-1", "ZW-1", "12"]
    assert table["period"].tolist() == ["2021", "2021-Q3", "2021-03"]
    assert table["carats"].tolist() == [1234.5, 0.0, 12.0]
    assert table["value_usd"].iloc[0] == 50_000.0
    assert math.isnan(table["value_usd"].iloc[1])
    assert table["value_usd"].iloc[2] == 7.5
    assert table["source"].tolist() == ["KP filing", "", ""]
    assert loaded.synthetic is False
    assert loaded.notes == []


def test_value_usd_and_source_optional(tmp_path):
    table = read_production(csv(tmp_path, f"{HEADER}\nA,2021,5\nB,2021,6\n")).table
    assert list(table.columns) == ["concession_id", "period", "carats", "value_usd", "source"]
    assert table["value_usd"].isna().all()
    assert table["source"].tolist() == ["", ""]


def test_synthetic_source_detected(tmp_path):
    loaded = read_production(csv(tmp_path, f"{HEADER},source\nA,2021,5,Synthetic demo data\nB,2021,6,\n"))
    assert loaded.synthetic is True


def test_headers_match_case_and_spaces_and_a_byte_order_mark(tmp_path):
    path = tmp_path / "p.csv"
    path.write_bytes("\ufeffConcession_ID , PERIOD ,Carats\n A ,2021, 1 234 \n".encode())
    table = read_production(path).table
    assert table[["concession_id", "period", "carats"]].values.tolist() == [["A", "2021", 1234.0]]


def test_field_mapping_for_production(tmp_path):
    path = csv(tmp_path, "LIC,YEAR,CT\nA,2021,5\n")
    mappings = parse_field_mappings(["concession_id=LIC", "period=YEAR", "production:carats=CT"])
    assert read_production(path, mappings).table["carats"].tolist() == [5.0]


def test_missing_column_named_with_the_field_fix(tmp_path):
    path = csv(tmp_path, "concession_id,period,CT\nA,2021,5\n")
    with pytest.raises(InputError, match="missing column 'carats'.*--field carats=") as info:
        read_production(path)
    assert str(path) in str(info.value) and "CT" in str(info.value)


def test_production_excel(tmp_path):
    path = xlsx(
        tmp_path,
        [
            ["concession_id", "period", "carats", "value_usd"],
            [12, 2021, 1500, None],
            ["ZW-2", "2021-Q3", "1,234.5", 99.5],
            [13.0, 2021.0, 0.25, "1 000"],
        ],
    )
    table = read_production(path).table
    assert table["concession_id"].tolist() == ["12", "ZW-2", "13"]
    assert table["period"].tolist() == ["2021", "2021-Q3", "2021"]
    assert table["carats"].tolist() == [1500.0, 1234.5, 0.25]
    assert math.isnan(table["value_usd"].iloc[0])
    assert table["value_usd"].iloc[1:].tolist() == [99.5, 1000.0]


def test_excel_error_names_the_spreadsheet_row(tmp_path):
    path = xlsx(tmp_path, [[*HEADER.split(",")], ["A", 2021, 1], ["B", 2021, 2], ["C", "2021-13", 3]])
    with pytest.raises(InputError, match="row 4, column period") as info:
        read_production(path)
    assert str(path) in str(info.value)


@pytest.mark.parametrize(
    ("raw", "label"),
    [
        ("2021", "2021"),
        ("2021-Q3", "2021-Q3"),
        ("2021-q1", "2021-Q1"),
        ("2021-03", "2021-03"),
        (" 2021-12 ", "2021-12"),
    ],
)
def test_periods_accepted(tmp_path, raw, label):
    table = read_production(csv(tmp_path, f"{HEADER}\nA,{raw},1\n")).table
    assert table["period"].tolist() == [label]


@pytest.mark.parametrize("raw", ["2021-13", "21", "2021Q3", "2021-Q5", "", "Q3 2021"])
@pytest.mark.parametrize("reader", [read_production, read_national])
def test_bad_period_names_file_row_and_column(tmp_path, raw, reader):
    first = "A" if reader is read_production else "Zimbabwe"
    header = HEADER if reader is read_production else "country,period,carats"
    path = csv(tmp_path, f"{header}\n{first},2020,1\n{first},{raw},2\n")
    with pytest.raises(InputError) as info:
        reader(path)
    message = str(info.value)
    assert str(path) in message
    assert "row 3, column period" in message
    assert "YYYY, YYYY-Qn or YYYY-MM" in message


@pytest.mark.parametrize(
    ("raw", "expected"),
    [('"1,234.5"', 1234.5), ("1 234", 1234.0), ("12", 12.0), ("0", 0.0), ("0.5", 0.5), ('"1,000,000"', 1_000_000.0)],
)
def test_carats_accepted(tmp_path, raw, expected):
    table = read_production(csv(tmp_path, f"{HEADER}\nA,2020,1\nB,2020,{raw}\n")).table
    assert table["carats"].tolist() == [1.0, expected]


@pytest.mark.parametrize(
    ("raw", "why"),
    [
        ("-5", "negative"),
        ("abc", "not a number"),
        ("", "is empty"),
        ('"1,5"', "not a number"),
        ("nan", "not a number"),
        ("1e999", "finite"),
    ],
)
def test_bad_carats_name_row_and_column(tmp_path, raw, why):
    path = csv(tmp_path, f"{HEADER}\nA,2020,1\nB,2020,2\nC,2020,{raw}\n")
    with pytest.raises(InputError, match=f"row 4, column carats: .*{why}") as info:
        read_production(path)
    assert str(path) in str(info.value)


def test_empty_carats_hint_says_write_zero(tmp_path):
    with pytest.raises(InputError, match="write 0 if nothing was produced"):
        read_production(csv(tmp_path, f"{HEADER}\nA,2020, \n"))


def test_bad_value_usd_named(tmp_path):
    path = csv(tmp_path, f"{HEADER},value_usd\nA,2020,1,\nB,2020,2,-3\n")
    with pytest.raises(InputError, match="row 3, column value_usd: .*negative"):
        read_production(path)


def test_empty_concession_id_named(tmp_path):
    with pytest.raises(InputError, match="row 3, column concession_id: is empty"):
        read_production(csv(tmp_path, f"{HEADER}\nA,2020,1\n ,2020,2\n"))


def test_duplicate_report_refused_naming_both_rows(tmp_path):
    path = csv(tmp_path, f"{HEADER}\nA,2020,1\nB,2021,2\nC,2021,3\nB,2021,4\n")
    with pytest.raises(InputError, match="rows 3 and 5 both report concession_id=B, period=2021") as info:
        read_production(path)
    assert str(path) in str(info.value)


def test_duplicate_after_normalising_the_period_and_id(tmp_path):
    path = csv(tmp_path, f"{HEADER}\nA,2021-q3,1\n A ,2021-Q3,2\n")
    with pytest.raises(InputError, match="rows 2 and 3 both report concession_id=A, period=2021-Q3"):
        read_production(path)


def test_same_concession_in_different_periods_is_not_a_duplicate(tmp_path):
    table = read_production(csv(tmp_path, f"{HEADER}\nA,2021,1\nA,2021-Q3,2\nA,2022,3\n")).table
    assert table["period"].tolist() == ["2021", "2021-Q3", "2022"]


def test_interleaved_duplicates_name_the_rows_that_repeat(tmp_path):
    path = csv(tmp_path, f"{HEADER}\nA,2021,1\nB,2021,2\nA,2021,3\nB,2021,4\n")
    with pytest.raises(InputError, match="rows 2 and 4 both report concession_id=A, period=2021"):
        read_production(path)


def test_row_numbers_count_blank_lines_as_a_spreadsheet_does(tmp_path):
    path = csv(tmp_path, f"{HEADER}\nA,2021,1\n\nB,2021,abc\n")
    with pytest.raises(InputError, match="row 4, column carats"):
        read_production(path)


def test_non_utf8_csv_refused_cleanly(tmp_path):
    path = tmp_path / "latin.csv"
    path.write_bytes(f"{HEADER},source\nA,2021,1,Sociedade Mineração\n".encode("latin-1"))
    with pytest.raises(InputError, match="is not UTF-8 text.*save it as UTF-8") as info:
        read_production(path)
    assert str(path) in str(info.value)


def test_utf8_accents_kept(tmp_path):
    loaded = read_production(csv(tmp_path, f"{HEADER},source\nA,2021,1,Sociedade Mineração Fictícia\n"))
    assert loaded.table["source"].tolist() == ["Sociedade Mineração Fictícia"]


def test_unsupported_and_unreadable_tables(tmp_path):
    json_path = tmp_path / "p.json"
    json_path.write_text("{}")
    with pytest.raises(InputError, match="unsupported file type .json"):
        read_production(json_path)
    fake = tmp_path / "p.xlsx"
    fake.write_text("not a workbook")
    with pytest.raises(InputError, match=r"does not hold Excel \(.xlsx\) data") as info:
        read_production(fake)
    assert str(fake) in str(info.value)


# ---------------------------------------------------------------------------------------
# national totals


def test_national_csv(tmp_path):
    path = csv(
        tmp_path,
        "Country,Period,Carats,Value_USD,Source\n"
        'Zimbabwe,2020,"2,650,000","50,500,000",KP public statistics\n'
        "Zimbabwe,2021,4 200 000,,KP public statistics\n"
        "Botswana,2021,22000000,,\n",
        name="national.csv",
    )
    loaded = read_national(path)
    table = loaded.table
    assert table["country"].tolist() == ["Zimbabwe", "Zimbabwe", "Botswana"]
    assert table["period"].tolist() == ["2020", "2021", "2021"]
    assert table["carats"].tolist() == [2_650_000.0, 4_200_000.0, 22_000_000.0]
    assert table["value_usd"].iloc[0] == 50_500_000.0 and table["value_usd"].iloc[1:].isna().all()
    assert table["source"].iloc[0] == "KP public statistics"
    assert loaded.synthetic is False


def test_national_excel(tmp_path):
    path = xlsx(tmp_path, [["country", "period", "carats"], ["Zimbabwe", 2021, 4_200_000]], name="national.xlsx")
    table = read_national(path).table
    assert table[["country", "period", "carats"]].values.tolist() == [["Zimbabwe", "2021", 4_200_000.0]]


def test_national_duplicate_refused(tmp_path):
    path = csv(tmp_path, "country,period,carats\nZimbabwe,2021,1\nBotswana,2021,2\nZimbabwe,2021,3\n", "n.csv")
    with pytest.raises(InputError, match="rows 2 and 4 both report country=Zimbabwe, period=2021"):
        read_national(path)


def test_national_bad_carats_and_missing_column(tmp_path):
    path = csv(tmp_path, "country,period,carats\nZimbabwe,2021,-1\n", "n.csv")
    with pytest.raises(InputError, match="national: .*row 2, column carats: .*negative"):
        read_national(path)
    path = csv(tmp_path, "nation,period,carats\nZimbabwe,2021,1\n", "m.csv")
    with pytest.raises(InputError, match="national: .*missing column 'country'.*--field country="):
        read_national(path)


# ---------------------------------------------------------------------------------------
# paths


@pytest.mark.parametrize("reader", [read_production, read_national])
@pytest.mark.parametrize("raw", ["/vsicurl/http://x/y.csv", "https://x/y.csv", "/vsizip//tmp/a.zip/p.csv"])
def test_urls_and_gdal_virtual_paths_refused(reader, raw):
    with pytest.raises(InputError, match="GDAL virtual paths and URLs are not accepted") as info:
        reader(raw)
    assert raw in str(info.value)


@pytest.mark.parametrize("reader", [read_production, read_national])
def test_missing_file_refused_naming_it(tmp_path, reader):
    path = tmp_path / "absent.csv"
    with pytest.raises(InputError, match="no such file or folder") as info:
        reader(path)
    assert str(path) in str(info.value)


# ---------------------------------------------------------------------------------------
# parse_carats


@pytest.mark.parametrize(
    ("cell", "expected"),
    [
        ("1,234.5", 1234.5),
        ("1 234", 1234.0),
        ("12", 12.0),
        ("12.0", 12.0),
        (" 7 ", 7.0),
        ("1'000", 1000.0),
        ("1_000", 1000.0),
        ("1\u00a0234", 1234.0),
        ("1\u202f234", 1234.0),
        ("1,234,567.25", 1234567.25),
        (".5", 0.5),
        ("1e3", 1000.0),
        ("0", 0.0),
        (3, 3.0),
        (2.5, 2.5),
        (0, 0.0),
    ],
)
def test_parse_carats_accepts(cell, expected):
    assert parse_carats(cell) == expected


@pytest.mark.parametrize(
    ("cell", "why"),
    [
        ("1,5", "not a number"),
        ("12,34", "not a number"),
        ("1,2345", "not a number"),
        ("-5", "negative"),
        (-1, "negative"),
        (-0.5, "negative"),
        ("abc", "not a number"),
        ("", "empty"),
        ("  ", "empty"),
        (None, "empty"),
        (float("nan"), "empty"),
        ("nan", "not a number"),
        ("inf", "not a number"),
        (float("inf"), "finite"),
        ("1e400", "finite"),
        ("+5", "not a number"),
        (True, "not a number"),
        ("1.2.3", "not a number"),
        ("12 carats", "not a number"),
    ],
)
def test_parse_carats_refuses(cell, why):
    with pytest.raises(ValueError, match=why):
        parse_carats(cell)


def test_row_longer_than_the_header_is_an_error_not_a_silent_loss(tmp_path):
    path = tmp_path / "long.csv"
    path.write_text("concession_id,period,carats\nA,2021,10\nB,2021,20,extra,cells\n", encoding="utf-8")
    with pytest.raises(InputError, match="cannot be read as a table"):
        read_production(path)


def test_a_column_given_twice_is_refused_not_guessed(tmp_path):
    """Found by atheris: a header naming 'period' twice (one behind an invisible control
    character that strip() removes) made pandas hand back a table instead of a column."""
    with pytest.raises(InputError, match=r"2 columns are named 'period' \('period', 'Period'\)"):
        read_production(csv(tmp_path, "concession_id,\x1eperiod,Period,carats\nA,2021,2022,1\n"))
    with pytest.raises(InputError, match=r"2 columns are named 'carats' \('carats', 'CARATS'\)"):
        read_production(csv(tmp_path, "concession_id,period,carats,CARATS\nA,2021,1,2\n"))

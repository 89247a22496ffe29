"""Normalising VicRoads crash CSVs: both real export shapes, errors naming column and line.

Every row here is invented (the shapes follow the two real exports: the upper-case ArcGIS
export with ``1/07/2015 0:00`` dates and ``1:37:00`` times, and the lower-case extract with ISO
dates and ``08.45.00`` times).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pandas as pd
import pytest

from crashed.core.crash_csv import inspect_csv, read_chunks, record_lines
from crashed.core.crash_schema import (
    LoadSummary,
    Normaliser,
    finish_frame,
    normalise,
    read_crash_csv,
    snake_case,
    summarise,
)
from crashed.core.features import CATEGORY_FEATURES, COUNT_FEATURES, RAW_FEATURES
from crashed.errors import InputError, NotFoundError

UPPER = (
    "X,OBJECTID,ACCIDENT_NO,ACCIDENT_DATE,ACCIDENT_TIME,ACCIDENT_TYPE,DAY_OF_WEEK,DCA_CODE,"
    "HIT_RUN_FLAG,LIGHT_CONDITION,ROAD_GEOMETRY,SPEED_ZONE,LGA_NAME,INJ_OR_FATAL,FATALITY,MALES,"
    "FEMALES,DRIVER,PEDESTRIAN,OLD_DRIVER,YOUNG_DRIVER,ALCOHOL_RELATED,UNLICENCSED,HEAVYVEHICLE,"
    "PASSENGERVEHICLE,MOTORCYCLE\n"
    "2500000.5,7,T20990000001,1/07/2015 0:00,1:37:00,Vehicle overturned (no collision),Wednesday,"
    "OFF CARRIAGEWAY ON RIGHT BEND,No,Dark Street lights on,Not at intersection,Not known,"
    "SOMEWHERE,1,0,1,0,1,0,0,1,Yes,0,0,1,0\n"
    "2500001.25,8,T20990000002,14/07/2015 0:00,23:05:00, Collision with vehicle ,Tuesday,"
    "REAR END(VEHICLES IN SAME LANE),No,Day,T intersection,60 km/hr,ELSEWHERE,2,0,1,1,2,0,"
    "1,0,No,1,0,2,0\n"
)

LOWER = (
    "OBJECTID,accident_no,accident_date,accident_time,accident_type,day_of_week,road_geometry,"
    "severity,speed_zone,lga_name,inj_or_fatal,fatality,males,females,driver,pedestrian,"
    "old_driver,young_driver,alcohol_related,heavyvehicle,passengervehicle,motorcycle,"
    "hit_run_flag,light_condition\n"
    "11,T20990000011,2018-03-09,08.45.00,Collision with vehicle,Friday,Cross intersection,"
    "Other injury accident,40 km/hr,NOWHERE,1,0,1,1,2,0,0,1,No,0,2,0,No,Day\n"
    "12,T20990000012,2018-03-10,00.05.00,Struck Pedestrian,Saturday,Not at intersection,"
    "Serious injury accident,60 km/hr,NOWHERE,1,0,2,0,1,1,0,0,Yes,0,1,0,,\n"
    "13,T20990000013,2018-03-11,,collision with some other object,,Not at intersection,"
    "Other injury accident,Not known,NOWHERE,1,0,,,1,0,0,0,No,0,1,0,Yes,Dark\n"
)


def write(tmp_path: Path, text: str | bytes, name: str = "crashes.csv") -> Path:
    path = tmp_path / name
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


def load(tmp_path: Path, text: str | bytes) -> pd.DataFrame:
    path = write(tmp_path, text)
    return normalise(read_crash_csv(path), source=str(path))


def load_error(tmp_path: Path, text: str | bytes) -> str:
    with pytest.raises(InputError) as caught:
        load(tmp_path, text)
    assert caught.value.exit_code == 2
    return caught.value.message


# ---- both real export shapes --------------------------------------------------------------


def test_upper_case_export_is_normalised(tmp_path: Path) -> None:
    table = load(tmp_path, UPPER)

    assert len(table) == 2
    assert table["accident_date"].tolist() == [dt.date(2015, 7, 1), dt.date(2015, 7, 14)]
    assert table["accident_time"].tolist() == ["01:37:00", "23:05:00"]
    assert table["alcohol_related"].tolist() == [True, False]
    assert table["alcohol_related"].dtype == bool
    assert table["dca_code"].tolist() == [
        "OFF CARRIAGEWAY ON RIGHT BEND",
        "REAR END(VEHICLES IN SAME LANE)",
    ]
    # category text is trimmed, counts are nullable integers
    assert table["accident_type"].tolist() == [
        "Vehicle overturned (no collision)",
        "Collision with vehicle",
    ]
    assert table["unlicencsed"].tolist() == [0, 1]
    assert str(table["driver"].dtype) == "Int64"
    assert table["driver"].tolist() == [1, 2]
    # the other source columns are kept, snake_cased, with inferred types
    assert table["accident_no"].tolist() == ["T20990000001", "T20990000002"]
    assert table["x"].tolist() == [2500000.5, 2500001.25]
    assert str(table["objectid"].dtype) == "Int64"
    assert table["lga_name"].tolist() == ["SOMEWHERE", "ELSEWHERE"]


def test_lower_case_extract_is_normalised(tmp_path: Path) -> None:
    table = load(tmp_path, LOWER)

    assert table["accident_date"].tolist() == [
        dt.date(2018, 3, 9),
        dt.date(2018, 3, 10),
        dt.date(2018, 3, 11),
    ]
    assert table["accident_time"].iloc[0] == "08:45:00"
    assert table["accident_time"].iloc[1] == "00:05:00"
    assert pd.isna(table["accident_time"].iloc[2])
    assert table["alcohol_related"].tolist() == [False, True, False]
    # empty category cells are null, not ""
    assert pd.isna(table["hit_run_flag"].iloc[1])
    assert pd.isna(table["day_of_week"].iloc[2])
    assert table["hit_run_flag"].iloc[2] == "Yes"
    # empty count cells are <NA>, present ones integers
    assert table["males"].iloc[0] == 1
    assert pd.isna(table["males"].iloc[2])
    # features this extract lacks exist and are entirely null
    assert table["dca_code"].isna().all()
    assert table["unlicencsed"].isna().all()
    assert str(table["unlicencsed"].dtype) == "Int64"
    # kept source columns
    assert table["severity"].iloc[1] == "Serious injury accident"


@pytest.mark.parametrize("text", [UPPER, LOWER], ids=["upper", "lower"])
def test_column_order_is_date_label_features_then_rest(tmp_path: Path, text: str) -> None:
    table = load(tmp_path, text)

    columns = list(table.columns)
    assert columns[:2] == ["accident_date", "alcohol_related"]
    assert columns[2 : 2 + len(RAW_FEATURES)] == list(RAW_FEATURES)
    assert set(COUNT_FEATURES) | set(CATEGORY_FEATURES) <= set(columns)
    assert all(c == c.lower() and " " not in c for c in columns)
    assert list(table.index) == list(range(len(table)))


def test_both_shapes_give_the_same_feature_columns_and_types(tmp_path: Path) -> None:
    upper = load(tmp_path, UPPER)
    lower = load(tmp_path, LOWER)
    features = ["accident_date", "alcohol_related", *RAW_FEATURES]

    assert (
        upper[features].dtypes.astype(str).tolist() == lower[features].dtypes.astype(str).tolist()
    )


def test_summarise(tmp_path: Path) -> None:
    summary = summarise(load(tmp_path, LOWER))

    assert summary == LoadSummary(
        rows=3, date_min="2018-03-09", date_max="2018-03-11", positive_rate=pytest.approx(1 / 3)
    )


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("Yes", True),
        ("yes", True),
        (" YES ", True),
        ("Y", True),
        ("1", True),
        ("true", True),
        ("No", False),
        ("no", False),
        ("N", False),
        ("0", False),
        ("False", False),
    ],
)
def test_label_spellings(tmp_path: Path, raw: str, expected: bool) -> None:
    table = load(tmp_path, f"accident_date,alcohol_related\n2018-01-01,{raw}\n")
    assert table["alcohol_related"].tolist() == [expected]


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("2018-01-05", dt.date(2018, 1, 5)),
        ("5/01/2018", dt.date(2018, 1, 5)),  # day first: 5 January, not 1 May
        ("5/01/2018 0:00", dt.date(2018, 1, 5)),
        ("31/12/2018 13:45", dt.date(2018, 12, 31)),
        ("05/01/18", dt.date(2018, 1, 5)),
        ("2018-01-05 00:00:00", dt.date(2018, 1, 5)),
    ],
)
def test_date_formats_are_day_first(tmp_path: Path, raw: str, expected: dt.date) -> None:
    table = load(tmp_path, f"accident_date,alcohol_related\n{raw},No\n")
    assert table["accident_date"].tolist() == [expected]


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("ACCIDENT_DATE", "accident_date"),
        ("Accident Date", "accident_date"),
        ("accident-date", "accident_date"),
        ("AccidentDate", "accident_date"),
        ("  OBJECTID ", "objectid"),
        ("UNLICENCSED", "unlicencsed"),
    ],
)
def test_snake_case(raw: str, expected: str) -> None:
    assert snake_case(raw) == expected


def test_header_spellings_and_bom_and_other_delimiters(tmp_path: Path) -> None:
    bom = load(tmp_path, "\ufeffAccident Date,Alcohol-Related\n2018-01-01,Yes\n")
    assert bom["accident_date"].tolist() == [dt.date(2018, 1, 1)]
    assert bom["alcohol_related"].tolist() == [True]

    semicolons = load(tmp_path, "accident_date;alcohol_related;males\n2018-01-01;No;3\n")
    assert semicolons["males"].tolist() == [3]

    crlf = load(tmp_path, "accident_date,alcohol_related\r\n2018-01-01,No\r\n2018-01-02,Yes\r\n")
    assert crlf["alcohol_related"].tolist() == [False, True]


def test_latin1_file_is_read(tmp_path: Path) -> None:
    text = "accident_date,alcohol_related,lga_name\n2018-01-01,No,G\xe9elong\n"
    table = load(tmp_path, text.encode("latin-1"))
    assert table["lga_name"].tolist() == ["G\xe9elong"]


def test_text_column_with_numbers_and_words_stays_text(tmp_path: Path) -> None:
    table = load(
        tmp_path, "accident_date,alcohol_related,node_id\n2018-01-01,No,12\n2018-01-02,No,A7\n"
    )
    assert table["node_id"].tolist() == ["12", "A7"]


# ---- errors: column and CSV line named ----------------------------------------------------


def test_missing_label_column_is_named(tmp_path: Path) -> None:
    message = load_error(tmp_path, "accident_date,males\n2018-01-01,1\n")
    assert "missing required column(s) alcohol_related (found: accident_date, males)" in message


def test_missing_both_required_columns_are_named(tmp_path: Path) -> None:
    message = load_error(tmp_path, "a,b\n1,2\n")
    assert "accident_date" in message
    assert "alcohol_related" in message
    assert "found: a, b" in message


def test_unparseable_date_names_column_line_and_value(tmp_path: Path) -> None:
    message = load_error(
        tmp_path,
        "accident_date,alcohol_related\n2018-01-01,No\n2018-01-02,No\n2018-02-30,Yes\n",
    )
    assert "accident_date" in message
    assert "line 4" in message
    assert "'2018-02-30'" in message
    assert "line 2" not in message and "line 3" not in message


def test_empty_date_names_line(tmp_path: Path) -> None:
    message = load_error(tmp_path, "accident_date,alcohol_related\n2018-01-01,No\n,Yes\n")
    assert "accident_date" in message
    assert "empty" in message
    assert "line 3" in message


def test_many_bad_rows_are_capped_with_a_count(tmp_path: Path) -> None:
    message = load_error(tmp_path, "accident_date,alcohol_related\n" + "soon,No\n" * 8)
    for line in range(2, 7):
        assert f"line {line}:" in message
    assert "line 7:" not in message
    assert "and 3 more" in message


def test_bad_label_names_column_and_line(tmp_path: Path) -> None:
    message = load_error(
        tmp_path, "accident_date,alcohol_related\n2018-01-01,No\n2018-01-02,maybe\n"
    )
    assert "alcohol_related" in message
    assert "line 3: 'maybe'" in message


def test_empty_label_is_an_error(tmp_path: Path) -> None:
    message = load_error(tmp_path, "accident_date,alcohol_related,males\n2018-01-01,,1\n")
    assert "alcohol_related" in message
    assert "line 2" in message


@pytest.mark.parametrize("bad", ["25.00.00", "12.61.00", "quarter past"])
def test_invalid_time_names_column_and_line(tmp_path: Path, bad: str) -> None:
    message = load_error(
        tmp_path,
        f"accident_date,alcohol_related,accident_time\n2018-01-01,No,08.00.00\n"
        f"2018-01-01,No,{bad}\n",
    )
    assert "accident_time" in message
    assert f"line 3: '{bad}'" in message


@pytest.mark.parametrize("bad", ["-1", "1.5", "two"])
def test_invalid_count_names_column_and_line(tmp_path: Path, bad: str) -> None:
    message = load_error(tmp_path, f"accident_date,alcohol_related,males\n2018-01-01,No,{bad}\n")
    assert "males" in message
    assert f"line 2: '{bad}'" in message
    assert "non-negative whole numbers" in message


def test_duplicate_columns_after_snake_case(tmp_path: Path) -> None:
    message = load_error(
        tmp_path, "ACCIDENT_DATE,accident_date,alcohol_related\n2018-01-01,2018-01-01,No\n"
    )
    assert "duplicate" in message
    assert "accident_date" in message


# ---- files that are not crash CSVs ---------------------------------------------------------


@pytest.mark.parametrize("content", ["", "\n\n  \n"], ids=["zero-bytes", "blank-lines"])
def test_empty_file(tmp_path: Path, content: str) -> None:
    path = write(tmp_path, content)
    with pytest.raises(InputError, match="empty") as caught:
        read_crash_csv(path)
    assert str(path) in caught.value.message


def test_binary_file(tmp_path: Path) -> None:
    path = write(tmp_path, b"PK\x03\x04\x00\x00\x08\x00" + bytes(range(256)) * 4)
    with pytest.raises(InputError, match="binary") as caught:
        read_crash_csv(path)
    assert caught.value.exit_code == 2


def test_one_column_file(tmp_path: Path) -> None:
    path = write(tmp_path, "just_one_column\nvalue\nanother\n")
    with pytest.raises(InputError) as caught:
        read_crash_csv(path)
    assert "found 1 column" in caught.value.message
    assert "accident_date" in caught.value.message
    assert "alcohol_related" in caught.value.message


def test_header_without_rows(tmp_path: Path) -> None:
    path = write(tmp_path, "accident_date,alcohol_related\n")
    with pytest.raises(InputError, match="no rows"):
        read_crash_csv(path)


def test_missing_file_is_not_found(tmp_path: Path) -> None:
    with pytest.raises(NotFoundError, match="no such file") as caught:
        read_crash_csv(tmp_path / "absent.csv")
    assert caught.value.exit_code == 4


def test_directory_is_not_a_file(tmp_path: Path) -> None:
    with pytest.raises(NotFoundError, match="no such file"):
        read_crash_csv(tmp_path)


def test_ragged_rows_are_an_input_error(tmp_path: Path) -> None:
    path = write(tmp_path, "accident_date,alcohol_related\n2018-01-01,No\n2018-01-02,No,x,y\n")
    with pytest.raises(InputError, match="not a readable CSV"):
        read_crash_csv(path)


def test_line_numbers_count_blank_lines(tmp_path: Path) -> None:
    message = load_error(
        tmp_path, "accident_date,alcohol_related\n2018-01-01,No\n\n2018-02-30,Yes\n"
    )
    assert "line 4" in message


def test_ragged_row_names_its_line(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        'accident_date,alcohol_related\n2018-01-01,No\n\n"2018-\n01-02",No\n2018-01-03,No,x\n',
    )
    with pytest.raises(InputError) as caught:
        read_crash_csv(path)
    assert caught.value.message == (
        f"{path}: not a readable CSV (line 6 has 3 fields, the header has 2)"
    )


# ---- duplicate headers, UTF-16, month/day swaps (issue 10) -------------------------------------


def test_label_twice_with_opposite_values_is_rejected_naming_both_positions(tmp_path: Path) -> None:
    path = write(
        tmp_path, "accident_date,alcohol_related,males,alcohol_related\n2018-01-01,Yes,1,No\n"
    )
    with pytest.raises(InputError) as caught:
        read_crash_csv(path)
    assert caught.value.message == (
        f"{path}: column 'alcohol_related' appears twice in the header (columns 2 and 4); "
        "remove or rename one of them"
    )


def test_any_exact_duplicate_header_is_rejected(tmp_path: Path) -> None:
    path = write(tmp_path, "males,accident_date,alcohol_related,MALES,males\n1,2018-01-01,No,1,1\n")
    with pytest.raises(
        InputError, match=r"'males' appears twice in the header \(columns 1 and 5\)"
    ):
        read_crash_csv(path)


def test_names_equal_after_snake_case_give_both_positions(tmp_path: Path) -> None:
    message = load_error(
        tmp_path, "ACCIDENT_DATE,alcohol_related,Accident Date\n2018-01-01,No,2018-01-01\n"
    )
    assert "'ACCIDENT_DATE' (column 1) and 'Accident Date' (column 3)" in message


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-le", "utf-16-be"])
def test_utf16_file_is_reported_as_utf16(tmp_path: Path, encoding: str) -> None:
    path = write(tmp_path, LOWER.encode(encoding))  # utf-16: BOM; -le/-be: NUL pattern only
    with pytest.raises(InputError) as caught:
        read_crash_csv(path)
    assert caught.value.message.startswith(f"{path}: the file is UTF-16 text, not UTF-8;")
    assert "re-save it as UTF-8" in caught.value.message
    assert "binary" not in caught.value.message


def _week(dates: list[dt.date], swap: bool) -> str:
    lines = ["accident_date,day_of_week,alcohol_related"]
    for day in dates:
        shown = dt.date(day.year, day.day, day.month) if swap and day.day <= 12 else day
        lines.append(f"{shown.isoformat()},{day.strftime('%A')},No")
    return "\n".join(lines) + "\n"


DAYS = [dt.date(2018, m, d) for m in (1, 3, 5, 8) for d in (2, 5, 9, 11, 17, 24)]


def test_month_day_swap_is_caught(tmp_path: Path) -> None:
    message = load_error(tmp_path, _week(DAYS, swap=True))
    assert "accident_date looks month/day swapped" in message
    assert "line 2: 2018-02-01 is a Thursday but day_of_week is Tuesday" in message
    assert "YYYY-MM-DD or D/MM/YYYY" in message


def test_correct_dates_with_some_weekday_noise_load(tmp_path: Path) -> None:
    text = _week(DAYS, swap=False).replace("Tuesday", "Wednesday")  # real data: ~21 % off by one
    assert len(load(tmp_path, text)) == len(DAYS)


def test_month_first_dates_get_a_hint(tmp_path: Path) -> None:
    message = load_error(tmp_path, "accident_date,alcohol_related\n1/13/2018,No\n1/14/2018,No\n")
    assert "month-first M/D/YYYY" in message
    assert "line 2: '1/13/2018'" in message


@pytest.mark.real_data
def test_real_file_with_swapped_dates_is_rejected(real_crashes_csv: Path) -> None:
    swapped = real_crashes_csv.parent / "jeremychiaa_ETL-project_2018.csv"
    if not swapped.is_file():
        pytest.skip(f"{swapped} is absent")
    with pytest.raises(InputError, match="looks month/day swapped"):
        normalise(read_crash_csv(swapped), str(swapped))


# ---- streaming = whole file ----------------------------------------------------------------------


def test_chunks_normalise_like_the_whole_file(tmp_path: Path) -> None:
    rows = [
        LOWER.splitlines()[1 + i % 3].replace("2018-03-", f"2018-0{1 + i % 9}-") for i in range(40)
    ]
    text = LOWER.splitlines()[0] + "\n" + "\n".join(rows) + "\n"
    text = text.replace("\n13,", "\n1e3,")  # objectid: an integer column that turns decimal
    path = write(tmp_path, text)
    whole = normalise(read_crash_csv(path), str(path))

    source = inspect_csv(path)
    normaliser = Normaliser(list(source.header), str(path))
    parts = [normaliser.chunk(raw) for raw in read_chunks(source, chunk_rows=7)]
    types = normaliser.finish()
    streamed = finish_frame(pd.concat(parts), types)

    assert types["objectid"] == "FLOAT64"
    pd.testing.assert_frame_equal(streamed, whole)
    assert normaliser.summary() == summarise(whole)


def test_chunk_errors_name_the_csv_line(tmp_path: Path) -> None:
    body = "".join(f"2018-01-{1 + i % 28:02d},No,{i % 5}\n" for i in range(30))
    path = write(tmp_path, "accident_date,alcohol_related,males\n" + body + "\n2018-02-01,No,1_0\n")
    source = inspect_csv(path)
    normaliser = Normaliser(list(source.header), "f.csv", lambda r: record_lines(source, r))
    with pytest.raises(InputError) as caught:
        for raw in read_chunks(source, chunk_rows=8):
            normaliser.chunk(raw)
    assert caught.value.message == (
        "f.csv: column males must hold non-negative whole numbers up to 1000; got line 33: '1_0'"
    )

import pytest

from apps.core.spreadsheet_safety import neutralise


@pytest.mark.parametrize("cell", ["=1+1", "+cmd|' /C calc'!A0", "-2+3", "@SUM(A1)", "\t=1", "\r=1"])
def test_formula_triggers_are_quoted(cell):
    assert neutralise(cell) == "'" + cell


@pytest.mark.parametrize("cell", ["-5", "+3.25", "-1e3", "Torna", "", 12, None, "a=b"])
def test_numbers_and_plain_text_are_left_alone(cell):
    assert neutralise(cell) == cell


def _xlsx_values(data: bytes):
    import io

    import openpyxl

    sheet = openpyxl.load_workbook(io.BytesIO(data)).active
    return [[(c.value, c.data_type, c.quotePrefix) for c in row] for row in sheet.iter_rows()]


def test_the_csv_writer_quotes_every_cell_that_would_run():
    import io

    from apps.core.spreadsheet_safety import FormulaSafeCSVWriter

    out = io.StringIO()
    writer = FormulaSafeCSVWriter(out, delimiter=";")
    writer.writerow(["=1+1", "Torna", -5, "-5", "@x"])
    assert out.getvalue() == "'=1+1;Torna;-5;-5;'@x\r\n"


def test_an_xlsx_cell_keeps_the_text_exactly_and_never_becomes_a_formula():
    import datetime as dt
    import decimal
    import io

    from apps.core.spreadsheet_safety import FormulaSafeWorkbook

    out = io.BytesIO()
    workbook = FormulaSafeWorkbook(out)
    sheet = workbook.add_sheet("s")
    when = dt.datetime(2026, 12, 3, 9, 30, 15)
    sheet.append(
        [
            "=HYPERLINK(1)",
            "Torna",
            42,
            "bell\x07",
            None,
            "-5",
            "+90 555",
            True,
            decimal.Decimal("2.5"),
            when,
            "@SUM(A1)",
        ],
        [None, None, "#,##0", None, None, None, None, None, None, "dd.mm.yyyy hh:mm:ss"],
    )
    workbook.close()
    (row,) = _xlsx_values(out.getvalue())
    assert row[0] == ("=HYPERLINK(1)", "s", True)
    assert row[1] == ("Torna", "s", False)
    assert row[2][:2] == (42, "n")
    assert row[3][0] == "bell\ufffd", "a character XLSX cannot hold is replaced, not a failed file"
    assert row[4][0] is None
    assert row[5] == ("-5", "s", False), "a text that is a plain number stays that text, with no prefix"
    assert row[6] == ("+90 555", "s", True)
    assert row[7][:2] == (True, "b") and row[8][:2] == (2.5, "n")
    assert row[9][0] == when and row[10] == ("@SUM(A1)", "s", True)
    import openpyxl

    cells = next(openpyxl.load_workbook(io.BytesIO(out.getvalue()))["s"].iter_rows())
    assert cells[2].number_format == "#,##0" and cells[9].number_format == "dd.mm.yyyy hh:mm:ss"


def test_admin_xlsx_exports_write_formula_text_as_text():
    import tablib

    from apps.core.spreadsheet_safety import SafeXLSX

    dataset = tablib.Dataset(headers=["code", "name"], title="machines")
    dataset.append(["M1", '=HYPERLINK("http://x")'])
    rows = _xlsx_values(SafeXLSX().export_data(dataset))
    assert rows[0] == [("code", "s", False), ("name", "s", False)]
    assert rows[1][1] == ('=HYPERLINK("http://x")', "s", True)

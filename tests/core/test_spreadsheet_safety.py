import pytest

from apps.core.spreadsheet_safety import neutralise


@pytest.mark.parametrize("cell", ["=1+1", "+cmd|' /C calc'!A0", "-2+3", "@SUM(A1)", "\t=1", "\r=1"])
def test_formula_triggers_are_quoted(cell):
    assert neutralise(cell) == "'" + cell


@pytest.mark.parametrize("cell", ["-5", "+3.25", "-1e3", "Torna", "", 12, None, "a=b"])
def test_numbers_and_plain_text_are_left_alone(cell):
    assert neutralise(cell) == cell

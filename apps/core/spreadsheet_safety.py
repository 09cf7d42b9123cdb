"""Export formats that neutralise spreadsheet formulas (CSV injection, django-import-export#1543).

django-import-export only strips a leading "=", so "+", "-", "@", tab and CR still run as formulas in
Excel and LibreOffice; OWASP's advice is to prefix such cells with a single quote.
"""

from import_export.formats.base_formats import CSV, XLSX

_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def neutralise(value):
    """Prefix a text cell that a spreadsheet would read as a formula; plain numbers stay numbers."""
    if isinstance(value, str) and value.startswith(_TRIGGERS) and not _is_number(value):
        return "'" + value
    return value


def _neutralised(dataset):
    safe = dataset.__class__(headers=dataset.headers, title=dataset.title)
    for row in dataset:
        safe.append([neutralise(cell) for cell in row])
    return safe


class SafeCSV(CSV):
    def export_data(self, dataset, **kwargs):
        return super().export_data(_neutralised(dataset), **kwargs)


class SafeXLSX(XLSX):
    def export_data(self, dataset, **kwargs):
        return super().export_data(_neutralised(dataset), **kwargs)

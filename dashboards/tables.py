"""Research answers as tables: JSON, CSV or Parquet (pandas / pyarrow).

Responsible for the shape researchers load: one column per dimension (text) and per metric
(64-bit integers), and the privacy metadata (noise per metric, cost, budget) travelling with
the table: in the Parquet schema metadata under ``mayak``, and for CSV in the
``Mayak-Privacy`` response header (JSON), so that confidence intervals can be computed from
either.
"""

from __future__ import annotations

import io
from typing import TYPE_CHECKING

import orjson
from starlette.responses import JSONResponse, Response

from dashboards.export import spreadsheet_safe

if TYPE_CHECKING:
    import pandas as pd

# pandas and pyarrow are imported on the first CSV / Parquet answer, not with the module: the
# worker serves the dashboards, and the two held some 40 MB of its resident memory unused

META_KEY = b"mayak"
HEADER = "Mayak-Privacy"


def metadata(payload: dict) -> dict:
    return {k: payload[k] for k in ("privacy", "cost", "budget")}


def frame(payload: dict) -> pd.DataFrame:
    """The answer's rows as a DataFrame: dimensions as strings, metrics as int64."""
    import pandas as pd

    dims = payload["dimensions"]
    df = pd.DataFrame(payload["rows"], columns=payload["columns"])
    for column in payload["columns"]:
        df[column] = df[column].astype("string" if column in dims else "int64")
    return df


def to_parquet(payload: dict) -> bytes:
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.Table.from_pandas(frame(payload), preserve_index=False)
    schema_meta = {**(table.schema.metadata or {}), META_KEY: orjson.dumps(metadata(payload))}
    out = io.BytesIO()
    pq.write_table(table.replace_schema_metadata(schema_meta), out)
    return out.getvalue()


def respond(payload: dict, fmt: str) -> Response:
    if fmt == "csv":
        table = frame(payload)
        for column in payload["dimensions"]:  # visitors' text: shown, never run as a formula
            table[column] = table[column].map(spreadsheet_safe)
        text = table.to_csv(index=False)
        return Response(
            text, media_type="text/csv", headers={HEADER: orjson.dumps(metadata(payload)).decode()}
        )
    if fmt == "parquet":
        return Response(to_parquet(payload), media_type="application/vnd.apache.parquet")
    return JSONResponse(payload)

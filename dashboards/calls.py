"""What an endpoint's work function receives (``Call``) and returns (``Answer``)."""

from __future__ import annotations

from dataclasses import dataclass

from starlette.responses import Response

from dashboards import params as qp
from dashboards.auth import Principal


@dataclass
class Answer:
    payload: dict
    cells: int
    request: dict
    response: Response | None = None  # another format than JSON (csv, parquet, zip)


@dataclass
class Call:
    params: qp.QueryParams
    body: dict
    path: dict
    who: Principal

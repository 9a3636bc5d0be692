"""What an endpoint's work function receives (``Call``) and returns (``Answer``)."""

from __future__ import annotations

from dataclasses import dataclass

from starlette.responses import Response

from dashboards import params as qp
from dashboards.auth import Principal


@dataclass
class Answer:
    """An endpoint's answer: the JSON payload, how many cells it reveals (for the audit), the
    question as the audit keeps it, and a response of another format when not JSON. (The
    collector's bare ASGI response is ``producers.collector.app.RawResponse``.)"""

    payload: dict
    cells: int
    request: dict
    response: Response | None = None  # another format than JSON (csv, parquet, zip)


@dataclass
class Call:
    """What a checked request hands an endpoint: query parameters, JSON body, path parameters
    and who asks."""

    params: qp.QueryParams
    body: dict
    path: dict
    who: Principal

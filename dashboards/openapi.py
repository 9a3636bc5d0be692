"""The ONE description of Mayak's HTTP API (dashboards and collector) as OpenAPI 3.1.

Responsible for ``GET /openapi.json`` and the ``/docs`` page built from it: every endpoint,
its parameters, and the roles that may call it (``x-roles``; the collector's endpoints are
public: browsers and e-mail clients call them without a token). A test checks that every
route of both apps is described here, with the roles the app enforces.
"""

from __future__ import annotations

from collections.abc import Sequence

from dashboards.roles import ADMIN, MARKETING, PRODUCT, RESEARCH, ROLES, either

_S, _I = {"type": "string"}, {"type": "integer"}
# query parameter -> (schema, description, repeatable)
PARAMS: dict[str, tuple[dict, str, bool]] = {
    "site": (_S, "the site id (required; 404 naming the known sites when it has no data)", False),
    "from": ({**_S, "format": "date"}, "first day, report time zone (default: 30 days ago)", False),
    "to": ({**_S, "format": "date"}, "last day, inclusive (default: today)", False),
    "filter": (_S, "dimension:value, e.g. country:AZ; repeat to combine (AND)", True),
    "dimensions": (_S, "comma-separated dimension names (see warehouse/README.md)", False),
    "metrics": (_S, "comma-separated metric names", False),
    "limit": (_I, "rows, 1..1000", False),
    "format": ({"enum": ["json", "csv"]}, "csv: a download with a header row", False),
    "research_format": (
        {"enum": ["json", "csv", "parquet"]},
        "csv: a header row, the privacy "
        "metadata in the Mayak-Privacy header; parquet: a table with it in the "
        "schema metadata",
        False,
    ),
    "compare": (
        {"enum": ["previous"]},
        "add the previous period of the same length "
        "(`previous`) and, for the summary, the change of each figure",
        False,
    ),
    "step": (_S, "a funnel step: page:/pattern* or event:name; 2..8, in order", True),
    "goal": (_S, "event:name or page:/pattern*; up to 10", True),
    "path": (_S, "one page path", False),
    "epsilon": ({"type": "number"}, "privacy cost of this question", False),
}
STATS = ["site", "from", "to", "filter"]


ERROR = {
    "application/json": {
        "schema": {
            "type": "object",
            "properties": {"error": {"type": "string"}},
            "required": ["error"],
        }
    }
}


def _error(text: str) -> dict:
    return {"description": text, "content": ERROR}


def _op(
    summary: str,
    roles: tuple[str, ...] | None,
    params: Sequence[str | dict] = (),
    body: dict | None = None,
    answer: str | tuple[str, ...] = "application/json",
    tag: str = "product",
) -> dict:
    answers = (answer,) if isinstance(answer, str) else answer
    op: dict = {
        "summary": summary,
        "tags": [tag],
        "x-roles": list(roles or ()),
        "parameters": [p if isinstance(p, dict) else _param(p) for p in params],
        "responses": {
            "200": {"description": "the answer", "content": {media: {} for media in answers}}
        },
    }
    if roles:
        op["description"] = f"Roles: {', '.join(roles)}."
        op["responses"].update(
            {
                "400": _error("a malformed question (the error names the field)"),
                "401": _error("no valid token: send Authorization: Bearer TOKEN"),
                "403": _error("the token's role may not call this endpoint"),
                "429": _error(
                    "too many calls without a valid token from this address: retry "
                    "after Retry-After seconds"
                ),
                "503": _error(
                    "no tokens file: run `mayak token add`, or busy: retry after "
                    "Retry-After seconds"
                ),
            }
        )
        if "site" in params:
            op["responses"].update(
                {
                    "404": _error("no data for that site (the error names the sites with data)"),
                    "422": _error(
                        "query too heavy (time, memory or rows limit): narrow the date "
                        "range or drop a dimension"
                    ),
                }
            )
    else:
        op["security"] = []
        op["description"] = "Public: no token."
    if body:
        op["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": {"type": "object", "properties": body}}},
        }
    return op


def _post(
    summary: str, roles: tuple[str, ...], body: dict | None = None, tag: str = "admin"
) -> dict:
    """``_op`` for a POST: every one reads a JSON body (``dashboards.app.json_body``)."""
    op = _op(summary, roles, body=body, tag=tag)
    op["responses"].update(
        {
            "413": _error("the body is larger than 64 KB"),
            "415": _error("the body is declared as another type than application/json"),
        }
    )
    return op


def _param(key: str) -> dict:
    schema, text, repeatable = PARAMS[key]
    name = key.removeprefix("research_")
    return {
        "name": name,
        "in": "query",
        "required": name in ("site", "step"),
        "description": text,
        "schema": {"type": "array", "items": schema} if repeatable else schema,
        **({"explode": True} if repeatable else {}),
    }


def _path_param(name: str) -> dict:
    return {"name": name, "in": "path", "required": True, "schema": _S}


CSV = ["format"]
TABLE = ("application/json", "text/csv")
PATHS: dict[str, dict[str, dict]] = {
    "/api/stats/summary": {
        "get": _op(
            "Top line: web visitors, visits, pageviews, views per visit, bounce rate, visit "
            "duration, custom events, outbound clicks; e-mail opens and service requests apart. "
            "Without filters on a busy period bounce rate and visit duration are estimated from "
            "a sample of visits (`sampled`: its share, null when exact)",
            either(PRODUCT, MARKETING),
            STATS + ["compare", *CSV],
            answer=TABLE,
        )
    },
    "/api/stats/breakdown": {
        "get": _op(
            "Top values of one or two dimensions",
            PRODUCT,
            STATS + ["dimensions", "metrics", "limit", *CSV],
            answer=TABLE,
        )
    },
    "/api/stats/series": {
        "get": _op(
            "A time series: hour, day, hour_of_day or weekday (or weekday,hour_of_day: a heat "
            "map), labelled in the report time zone",
            PRODUCT,
            STATS + ["dimensions", "metrics", "limit", "compare", *CSV],
            answer=TABLE,
        )
    },
    "/api/stats/goals": {
        "get": _op(
            "Conversions per goal; without filters on a busy period the visits and conversions "
            "are estimated from a sample of visits (`sampled`: its share, null when exact)",
            PRODUCT,
            STATS + ["goal", *CSV],
            answer=TABLE,
        )
    },
    "/api/stats/entry-exit": {
        "get": _op(
            "Top entry and exit pages; without filters on a busy period estimated from a sample "
            "of visits (`sampled`: its share, null when exact)",
            PRODUCT,
            STATS + ["limit", *CSV],
            answer=TABLE,
        )
    },
    "/api/stats/sections": {
        "get": _op(
            "Per page and section: readers, dwell, reach",
            PRODUCT,
            ["site", "from", "to", "path", "limit"],
        )
    },
    "/api/stats/realtime": {
        "get": _op(
            "Visitors in the last 5 minutes and the pages they are reading", PRODUCT, ["site"]
        )
    },
    "/api/stats/funnel": {
        "get": _op(
            "Visits reaching each ordered step within a visit (windowFunnel); without filters "
            "on a busy period estimated from a sample of visits (`sampled`: its share, null "
            "when exact)",
            PRODUCT,
            STATS + ["step", *CSV],
            answer=TABLE,
        )
    },
    "/api/stats/export": {
        "get": _op(
            "The whole view (summary, series, entry/exit, every panel) as a ZIP of CSV files",
            PRODUCT,
            STATS,
            answer="application/zip",
        )
    },
    "/api/marketing/campaigns": {
        "get": _op(
            "Per e-mail campaign: sent, human and machine opens, human open rate",
            MARKETING,
            ["site", "from", "to"],
            tag="marketing",
        )
    },
    "/api/marketing/campaigns/{campaign_id}/sends": {
        "post": {
            **_post(
                "Register a send of a campaign",
                MARKETING,
                body={"site": _S, "sent": _I, "sent_on": {**_S, "format": "date"}},
                tag="marketing",
            ),
            "parameters": [_path_param("campaign_id")],
        }
    },
    "/api/research/query": {
        "get": _op(
            "A differentially private answer (spends from the caller's budget)",
            RESEARCH,
            ["site", "from", "to", "filter", "dimensions", "metrics", "epsilon", "research_format"],
            answer=(*TABLE, "application/vnd.apache.parquet"),
            tag="research",
        )
    },
    "/api/research/budget": {"get": _op("The caller's privacy budget", RESEARCH, tag="research")},
    "/api/admin/research/budget": {
        "post": _post(
            "Set a researcher's privacy budget",
            ADMIN,
            body={
                "researcher": _S,
                "epsilon": {"type": "number"},
                "delta": {"type": "number"},
                "period": _S,
            },
            tag="admin",
        )
    },
    "/api/admin/research/budgets": {"get": _op("Every researcher's budget", ADMIN, tag="admin")},
    "/api/admin/erase": {
        "post": _post(
            "Erase a portal customer's events (and opt out)",
            ADMIN,
            body={"customer": _S, "opt_out": {"type": "boolean"}},
            tag="admin",
        )
    },
    "/api/admin/export": {
        "post": _post(
            "Export a portal customer's events", ADMIN, body={"customer": _S}, tag="admin"
        )
    },
    "/api/admin/sweep": {
        "post": _post("Delete late arrivals of erased customers", ADMIN, tag="admin")
    },
    "/api/admin/audit": {
        "get": _op("Recent API calls (who, what, status)", ADMIN, ["limit"], tag="admin")
    },
    "/api/admin/bots": {
        "get": _op(
            "Bot hits per day by category and family (never in events)",
            ADMIN,
            ["site", "from", "to"],
            tag="admin",
        )
    },
    "/api/me": {
        "get": _op("The caller's name, role and the pages that role may use", ROLES, tag="pages")
    },
    "/": {
        "get": _op(
            "The product dashboard page (asks for a token, keeps it in the browser)",
            None,
            answer="text/html",
            tag="pages",
        )
    },
    "/marketing": {
        "get": _op(
            "The marketing page: e-mail campaigns, sends", None, answer="text/html", tag="pages"
        )
    },
    "/research": {
        "get": _op(
            "The research page: private questions, budget", None, answer="text/html", tag="pages"
        )
    },
    "/admin": {
        "get": _op(
            "The admin page: audit log, budgets, erasure and export",
            None,
            answer="text/html",
            tag="pages",
        )
    },
    "/openapi.json": {"get": _op("This description", None, tag="pages")},
    "/docs": {"get": _op("This description as a page", None, answer="text/html", tag="pages")},
    "/static/{asset}": {
        "get": {
            **_op(
                "The pages' scripts, styles and chart library",
                None,
                answer=("text/javascript", "text/css", "text/html", "text/plain"),
                tag="pages",
            ),
            "parameters": [_path_param("asset")],
        }
    },
    "/healthz": {
        "get": _op(
            "Liveness: `ok` (the collector answers it on its port too)",
            None,
            answer="text/plain",
            tag="pages",
        )
    },
    "/readyz": {
        "get": _op(
            "Collector readiness: 200 {ready: true, kafka: ok}, or 503 with why "
            "Kafka cannot take events now (collector port)",
            None,
            tag="collector",
        )
    },
}

COLLECTOR = {
    "servers": [
        {"url": "http://127.0.0.1:8400", "description": "the collector (MAYAK_COLLECTOR_PORT)"}
    ]
}
COLLECTOR_PATHS: dict[str, dict[str, dict]] = {
    "/e": {
        "post": _op("Collect events from the beacon (JSON or text/plain)", None, tag="collector"),
        "options": _op("CORS preflight for /e", None, tag="collector"),
    },
    "/o/{campaign}/{recipient}.gif": {
        "get": {
            **_op("E-mail open pixel (a 1x1 GIF)", None, answer="image/gif", tag="collector"),
            "parameters": [_path_param("campaign"), _path_param("recipient")],
        }
    },
    "/t.js": {
        "get": _op("The beacon script", None, answer="application/javascript", tag="collector")
    },
    "/metrics": {
        "get": _op(
            "Prometheus metrics of the collector", None, answer="text/plain", tag="collector"
        )
    },
}


PATHS["/static/{asset}"]["get"]["responses"]["404"] = {
    "description": "no such asset",
    "content": {"text/plain": {}},
}


def description() -> dict:
    """The OpenAPI 3.1 document."""
    paths = {**PATHS, **{p: {**ops, **COLLECTOR} for p, ops in COLLECTOR_PATHS.items()}}
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Mayak",
            "version": "1",
            "description": "Privacy-first analytics: the collector (public), the "
            "dashboards API (a bearer token whose role is listed per endpoint as x-roles) "
            "and its pages. No anonymous access to any figure.",
        },
        "servers": [{"url": "/", "description": "the dashboards (MAYAK_DASHBOARDS_PORT)"}],
        "components": {"securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}},
        "security": [{"bearer": []}],
        "paths": paths,
    }

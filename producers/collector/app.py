"""Thin collector (foundation): accepts ``POST /e`` and produces the event to ``mayak.raw``.

The producers issue deepens this (limits, consent, IP encryption, beacon, pixel).
"""

from __future__ import annotations

import contextlib
import time
import uuid

import orjson
from kafka import KafkaProducer
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse
from starlette.routing import Route

from mayak.settings import Settings


def create_app(settings: Settings) -> Starlette:
    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette):
        app.state.producer = KafkaProducer(bootstrap_servers=settings.kafka_bootstrap, acks="all",
                                           linger_ms=5)
        yield
        app.state.producer.close(timeout=10)

    async def collect(request: Request) -> JSONResponse:
        try:
            event = orjson.loads(await request.body())
        except orjson.JSONDecodeError:
            return JSONResponse({"error": "body is not JSON"}, status_code=400)
        if not isinstance(event, dict) or not event.get("site"):
            return JSONResponse({"error": "field 'site' is required"}, status_code=400)
        event.setdefault("id", str(uuid.uuid4()))
        event["received"] = int(time.time() * 1000)
        future = request.app.state.producer.send(settings.topic_raw, orjson.dumps(event))
        await run_in_threadpool(future.get, 10)
        return JSONResponse({"accepted": 1}, status_code=202)

    async def healthz(request: Request) -> PlainTextResponse:
        return PlainTextResponse("ok")

    routes = [Route("/e", collect, methods=["POST"]), Route("/healthz", healthz)]
    return Starlette(routes=routes, lifespan=lifespan)

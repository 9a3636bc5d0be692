"""A small Python client for the research API: answers as pandas DataFrames.

    from mayak.research import Client
    research = Client("http://127.0.0.1:8401", token="mk_...")
    df = research.query("elegal", metrics=["pageviews"], dimensions=["country"],
                        date_from="2026-03-01", date_to="2026-03-31")
    df.attrs["noise"]["pageviews"]["scale"]   # discrete Laplace scale of that column
    df.attrs["budget"]["left_epsilon"]        # what is left this period
    research.budget()                         # the same, without asking anything

Answers travel as Parquet; the privacy metadata (noise per metric, what the answer cost, the
budget) is read from the file's schema metadata into ``df.attrs``.
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Mapping, Sequence

import httpx
import orjson
import pandas as pd
import pyarrow.parquet as pq


class ResearchError(RuntimeError):
    """The API refused the question (bad question, spent budget...): the message says why."""


class Client:
    """Asks the research API (``/api/research/query``) with a researcher's token."""

    def __init__(
        self, base_url: str = "", token: str = "", http: httpx.Client | None = None
    ) -> None:
        self.http = http or httpx.Client(base_url=base_url, timeout=120)
        self.headers = {"Authorization": f"Bearer {token}"}

    def query(
        self,
        site: str,
        metrics: Iterable[str] = ("visitors",),
        dimensions: Iterable[str] = (),
        filters: Mapping[str, str] | None = None,
        date_from: str | None = None,
        date_to: str | None = None,
        epsilon: float | None = None,
        limit: int | None = None,
    ) -> pd.DataFrame:
        """One question; ``df.attrs`` holds ``noise``, ``privacy``, ``cost`` and ``budget``."""
        params: list[tuple[str, str]] = [
            ("site", site),
            ("format", "parquet"),
            ("metrics", ",".join(metrics)),
            ("dimensions", ",".join(dimensions)),
        ]
        params += [("filter", f"{k}:{v}") for k, v in (filters or {}).items()]
        for name, value in (
            ("from", date_from),
            ("to", date_to),
            ("epsilon", epsilon),
            ("limit", limit),
        ):
            if value is not None:
                params.append((name, str(value)))
        return read_parquet(self._get("research/query", params).content)

    def budget(self) -> dict:
        """What this researcher may still spend this period and on each day of data already
        paid for (``data_days``); asking costs nothing."""
        return self._get("research/budget", []).json()

    def _get(self, path: str, params: Sequence[tuple[str, str]]) -> httpx.Response:
        response = self.http.get(f"/api/{path}", params=tuple(params), headers=self.headers)
        if response.status_code != 200:
            try:
                message = response.json().get("error", response.text)
            except ValueError:
                message = response.text
            raise ResearchError(f"{response.status_code}: {message}")
        return response


def read_parquet(data: bytes) -> pd.DataFrame:
    """A research answer (Parquet bytes) as a DataFrame with its privacy metadata in attrs."""
    table = pq.read_table(io.BytesIO(data))
    meta = orjson.loads((table.schema.metadata or {}).get(b"mayak", b"{}"))
    df = table.to_pandas()
    df.attrs.update(meta)
    df.attrs["noise"] = meta.get("privacy", {}).get("noise", {})
    return df

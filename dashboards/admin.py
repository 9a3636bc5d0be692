"""Runs the operator's admin tasks where the data is: through the running worker, or directly.

With embedded chDB only the worker process may open the database. So when its dashboards
answer on ``dashboards_url``, admin tasks go through the admin API (authenticated with the
machine-local CLI token, audited like every call); when nothing runs, the CLI opens chDB and
the key store itself. With a ClickHouse server (``http(s)://``) the CLI always goes direct.
It lives with the dashboards: one path is their admin API, the other does what its handlers do.
"""

from __future__ import annotations

import getpass
from datetime import date
from typing import TYPE_CHECKING, Any

import httpx

from anonymizer.keystore import keystore_from_settings
from dashboards.auth import cli_token_path
from mayak.errors import MayakError
from mayak.install import refuse_lost_keys
from mayak.settings import Settings
from warehouse.campaigns import register_send
from warehouse.client import client_from_settings
from warehouse.ddl import Layout
from warehouse.erasure import erase_customer, export_customer, sweep_late_arrivals
from warehouse.migrate import migrate

if TYPE_CHECKING:
    from anonymizer.keystore import KeyStoreLike


class ApiBackend:
    """Admin tasks through the worker's dashboards API."""

    def __init__(self, settings: Settings) -> None:
        path = cli_token_path(settings)
        if not path.exists():
            raise MayakError(f"no CLI token at {path} -> is MAYAK_DATA_DIR the worker's data dir?")
        self.http = httpx.Client(
            base_url=settings.dashboards_url,
            timeout=120,
            headers={"Authorization": f"Bearer {path.read_text().strip()}"},
        )

    def _call(self, method: str, path: str, **kw: Any) -> dict:
        response = self.http.request(method, f"/api/{path}", **kw)
        if response.status_code != 200:
            raise MayakError(
                f"the worker refused {path}: {response.status_code} "
                f"{response.text[:300]} -> check the arguments and the worker log"
            )
        return response.json()

    def erase(self, customer: str, opt_out: bool) -> dict:
        return self._call("POST", "admin/erase", json={"customer": customer, "opt_out": opt_out})

    def export(self, customer: str) -> list[dict]:
        return self._call("POST", "admin/export", json={"customer": customer})["events"]

    def sweep(self) -> int:
        return self._call("POST", "admin/sweep", json={})["deleted"]

    def register_send(self, site: str, campaign: str, sent: int, sent_on: date) -> dict:
        return self._call(
            "POST",
            f"marketing/campaigns/{campaign}/sends",
            json={"site": site, "sent": sent, "sent_on": str(sent_on)},
        )

    def set_research_budget(
        self, researcher: str, epsilon: float, delta: float, period: str
    ) -> dict:
        return self._call(
            "POST",
            "admin/research/budget",
            json={"researcher": researcher, "epsilon": epsilon, "delta": delta, "period": period},
        )

    def research_budgets(self) -> dict:
        return self._call("GET", "admin/research/budgets")


class DirectBackend:
    """Admin tasks with this process's own ClickHouse client and key store."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.client = client_from_settings(settings)
        migrate(self.client, cluster=settings.clickhouse_cluster)
        self.actor = f"cli:{getpass.getuser()}"
        self._keys: KeyStoreLike | None = None

    def keys(self) -> KeyStoreLike:
        if self._keys is None:
            refuse_lost_keys(self.settings)  # an erasure must not run against new, empty keys
            self._keys = keystore_from_settings(self.settings)  # the shared one too
        return self._keys

    def erase(self, customer: str, opt_out: bool) -> dict:
        layout = Layout.of(self.client, self.settings.clickhouse_cluster)
        return erase_customer(
            self.client, self.keys(), customer, self.actor, "cli", opt_out=opt_out, layout=layout
        ).as_dict()

    def sweep(self) -> int:
        return sweep_late_arrivals(
            self.client, Layout.of(self.client, self.settings.clickhouse_cluster)
        )

    def export(self, customer: str) -> list[dict]:
        return export_customer(self.client, self.keys(), customer)

    def register_send(self, site: str, campaign: str, sent: int, sent_on: date) -> dict:
        return register_send(self.client, site, campaign, sent, sent_on, self.actor)

    def set_research_budget(
        self, researcher: str, epsilon: float, delta: float, period: str
    ) -> dict:
        from dashboards.research import set_budget  # opendp: ~1 s, for these two only

        return set_budget(
            self.client,
            {"researcher": researcher, "epsilon": epsilon, "delta": delta, "period": period},
            self.actor,
        )

    def research_budgets(self) -> dict:
        from dashboards.research import show_budgets  # opendp: ~1 s

        return show_budgets(self.client, self.settings)


def worker_is_serving(settings: Settings) -> bool:
    try:
        return httpx.get(f"{settings.dashboards_url}/healthz", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def backend(settings: Settings) -> ApiBackend | DirectBackend:
    """The API when an embedded-mode worker holds the database, else a direct connection."""
    if settings.embedded_clickhouse and worker_is_serving(settings):
        return ApiBackend(settings)
    return DirectBackend(settings)

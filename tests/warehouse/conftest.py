"""Fixtures for warehouse tests: a fresh database per test in the process's one chDB path."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from clickhouse_connect.driver.client import Client

from warehouse.migrate import migrate
from warehouse.testing import drop, fresh_database


@pytest.fixture
def ch() -> Iterator[Client]:
    """An empty database of its own (chDB, shared path)."""
    client = fresh_database()
    try:
        yield client
    finally:
        drop(client)


@pytest.fixture
def wh(ch: Client) -> Client:
    """A database with every migration applied."""
    migrate(ch)
    return ch

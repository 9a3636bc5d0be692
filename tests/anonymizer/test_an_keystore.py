"""The key store: salts rotate and are destroyed after 48 h, customer keys erase, opt-outs."""

from __future__ import annotations

import os
import stat
from datetime import UTC, date, datetime, timedelta

import pytest

from anonymizer.keystore import KeyStore, SaltExpired

DAY = date(2026, 11, 28)
NOON = datetime(2026, 11, 28, 12, tzinfo=UTC)


@pytest.fixture
def store(tmp_path):
    s = KeyStore(tmp_path / "k" / "store.db")
    yield s
    s.close()


def test_file_is_private_and_repr_shows_no_secret(store) -> None:
    assert stat.S_IMODE(os.stat(store.path).st_mode) == 0o600
    assert "store.db" in repr(store) and store.visitor_key.hex() not in repr(store)


def test_salt_is_stable_per_day_and_differs_between_days(store) -> None:
    assert store.salt_for(DAY, NOON) == store.salt_for(DAY, NOON)
    assert store.salt_for(DAY, NOON) != store.salt_for(DAY + timedelta(days=1), NOON)


def test_salts_persist_across_instances(tmp_path) -> None:
    a = KeyStore(tmp_path / "s.db")
    salt = a.salt_for(DAY, NOON)
    a.close()
    b = KeyStore(tmp_path / "s.db")
    assert b.salt_for(DAY, NOON) == salt
    b.close()


def test_salts_are_destroyed_48h_after_their_day_began(store) -> None:
    store.salt_for(DAY, NOON)
    store.salt_for(DAY + timedelta(days=1), NOON + timedelta(days=1))
    just_before = datetime(2026, 11, 29, 23, 59, tzinfo=UTC)
    assert store.purge_expired(just_before) == []
    at_48h = datetime(2026, 11, 30, 0, 0, tzinfo=UTC)
    assert store.purge_expired(at_48h) == [DAY]
    assert store.salt_days() == [DAY + timedelta(days=1)]
    with pytest.raises(SaltExpired):
        store.salt_for(DAY, at_48h)
    with pytest.raises(SaltExpired):  # a destroyed salt is never re-created, even if asked early
        store.salt_for(DAY, NOON)


def test_forgetting_a_customer_destroys_the_key(store) -> None:
    key = store.customer_key("cust-1")
    assert store.customer_key("cust-1") == key and store.has_customer("cust-1")
    assert store.forget_customer("cust-1") is True
    assert store.forget_customer("cust-1") is False
    assert not store.has_customer("cust-1")
    assert store.customer_key("cust-1") != key  # a new, unrelated key from now on


def test_customer_ids_are_not_stored_in_clear(store) -> None:
    store.customer_key("customer-4242")
    store.opt_out("customer-4242")
    store.close()
    raw = store.path.read_bytes() + b"".join(
        p.read_bytes() for p in store.path.parent.iterdir() if p != store.path
    )
    assert b"customer-4242" not in raw


def test_opt_out_and_back_in(store) -> None:
    assert not store.is_opted_out("c")
    store.opt_out("c")
    assert store.is_opted_out("c") and not store.is_opted_out("d")
    assert store.opt_in("c") is True
    assert not store.is_opted_out("c")

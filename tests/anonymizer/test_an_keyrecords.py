"""The shared key store's rules without a broker: the winner of a race, destruction records,
the record cipher; and the encrypted backup/restore, here on the local (SQLite) store."""

from __future__ import annotations

import secrets
from datetime import UTC, date, datetime, timedelta

import pytest

from anonymizer import keybackup
from anonymizer.keyrecords import KeyState, RecordCipher, WrongMasterKey, slot_of
from anonymizer.keystore import KeyStore, SaltExpired
from mayak.settings import Settings

DAY = date(2026, 11, 28)
NOON = datetime(2026, 11, 28, 12, tzinfo=UTC)


def test_slot_of_candidates_only() -> None:
    assert slot_of("salt/2026-11-28/ab12") == "salt/2026-11-28"
    assert slot_of("cust/00ff/ab12") == "cust/00ff"
    assert slot_of("secret/install-id/x") == "secret/install-id"
    assert slot_of("optout/00ff") is None and slot_of("hb") is None
    assert slot_of("salt/2026-11-28") is None  # a day, not a candidate


def test_lowest_live_offset_wins_and_survives_compaction_of_losers() -> None:
    state = KeyState()
    state.apply(7, "cust/aa/late", b"B")
    state.apply(3, "cust/aa/early", b"A")  # read in any order: the offset decides
    assert state.winner("cust/aa").secret == b"A"
    state.apply(9, "cust/aa/late", None)  # the loser's tombstone
    assert state.winner("cust/aa").secret == b"A" and len(state.live("cust/aa")) == 1


def test_gone_markers_destroy_and_keep_destroyed() -> None:
    state = KeyState()
    state.apply(1, "cust/aa/k1", b"A")
    state.apply(2, "gone/cust/aa/k1", b"")
    assert state.winner("cust/aa") is None
    state.apply(3, "cust/aa/k1", b"A")  # a late copy of a destroyed record stays dead
    assert state.winner("cust/aa") is None
    state.apply(4, "cust/aa/k2", b"B")  # a new key for the same customer is fine
    assert state.winner("cust/aa").secret == b"B"
    state.apply(5, "salt/2026-11-28/x", b"S")
    state.apply(6, "gone/salt/2026-11-28", b"")
    state.apply(7, "salt/2026-11-28/y", b"T")  # a destroyed day's salt never comes back
    assert state.slots("salt") == []


def test_record_cipher_binds_value_to_key_and_master() -> None:
    cipher = RecordCipher(secrets.token_bytes(32))
    sealed = cipher.seal("cust/aa/k1", b"secret")
    assert b"secret" not in sealed and cipher.open("cust/aa/k1", sealed) == b"secret"
    with pytest.raises(WrongMasterKey, match="same MAYAK_IP_KEY"):
        cipher.open("cust/bb/k1", sealed)  # moved to another slot
    with pytest.raises(WrongMasterKey):
        RecordCipher(secrets.token_bytes(32)).open("cust/aa/k1", sealed)


def test_local_backup_restores_into_an_empty_store_but_not_what_was_destroyed(tmp_path) -> None:
    master = secrets.token_bytes(32)
    a = KeyStore(tmp_path / "a.db")
    salt, kept, erased = a.salt_for(DAY, NOON), a.customer_key("kept"), a.customer_key("gone")
    a.opt_out("objector")
    install = a.install_id
    file = tmp_path / "keys.backup"
    counts = keybackup.backup(a, "local", master, file, NOON)
    assert counts["secrets"] == 6 and counts["opted_out"] == 1  # 3 store-wide, salt, 2 keys
    assert file.stat().st_mode & 0o077 == 0
    for secret in (salt, kept, erased, a.visitor_key):
        assert secret not in file.read_bytes()

    empty = KeyStore(tmp_path / "b.db", mint=False)
    report = keybackup.restore(empty, keybackup.load(file, master, "local"), NOON)
    assert report["restored"] == 6
    empty.close()
    b = KeyStore(tmp_path / "b.db")
    assert (b.install_id, b.salt_for(DAY, NOON), b.customer_key("kept")) == (install, salt, kept)
    assert b.customer_key("gone") == erased and b.is_opted_out("objector")
    assert b.visitor_key == a.visitor_key

    # erased (and a salt destroyed) after the backup: restoring it again brings neither back
    assert a.forget_customer("gone") and a.purge_expired(NOON + timedelta(days=2)) == [DAY]
    report = keybackup.restore(a, keybackup.load(file, master, "local"), NOON)
    assert report["not_restored_destroyed"] == 2 and "restored" not in report
    assert not a.has_customer("gone") and a.customer_key("kept") == kept
    with pytest.raises(SaltExpired):
        a.salt_for(DAY, NOON)

    # and the erasure record travels with a later backup, onto a store that still had the key
    later = tmp_path / "later.backup"
    keybackup.backup(a, "local", master, later, NOON)
    report = keybackup.restore(b, keybackup.load(later, master, "local"), NOON)
    assert report["destroyed_here"] >= 2 and not b.has_customer("gone")


def test_restore_keeps_existing_keys_and_refuses_other_installs(tmp_path) -> None:
    master = secrets.token_bytes(32)
    a = KeyStore(tmp_path / "a.db")
    a.customer_key("c")
    assert a.install_id
    file = tmp_path / "a.backup"
    keybackup.backup(a, "local", master, file, NOON)
    other = KeyStore(tmp_path / "other.db")
    assert other.install_id != a.install_id
    with pytest.raises(keybackup.BackupError, match="another install"):
        keybackup.restore(other, keybackup.load(file, master, "local"), NOON)
    with pytest.raises(keybackup.BackupError, match="customer index keys differ"):
        keybackup.restore(other, keybackup.load(file, master, "kafka"), NOON)


def test_wrong_master_and_damaged_files_are_clear_errors(tmp_path) -> None:
    a = KeyStore(tmp_path / "a.db")
    file = tmp_path / "a.backup"
    keybackup.backup(a, "local", secrets.token_bytes(32), file, NOON)
    with pytest.raises(keybackup.BackupError, match="does not decrypt with this master secret"):
        keybackup.restore(a, keybackup.load(file, secrets.token_bytes(32), "local"), NOON)
    (tmp_path / "junk").write_bytes(b"hello")
    with pytest.raises(keybackup.BackupError, match="not a Mayak key backup"):
        keybackup.restore(
            a, keybackup.load(tmp_path / "junk", secrets.token_bytes(32), "local"), NOON
        )
    with pytest.raises(keybackup.BackupError, match="cannot read"):
        keybackup.restore(
            a, keybackup.load(tmp_path / "nope", secrets.token_bytes(32), "local"), NOON
        )


def test_setting_selects_the_store(tmp_path) -> None:
    assert Settings(data_dir=tmp_path).key_store == "local"
    assert Settings(data_dir=tmp_path, key_store="kafka").topic_keys == "mayak.keys"
    with pytest.raises(ValueError):
        Settings(data_dir=tmp_path, key_store="redis")


def test_factory_and_install_watch_follow_the_setting(tmp_path) -> None:
    from anonymizer.keystore import keystore_from_settings, keystore_location
    from mayak.install import KeyStoreWatch, marker_path

    local = Settings(data_dir=tmp_path)
    store = keystore_from_settings(local)
    assert isinstance(store, KeyStore) and keystore_location(local).endswith("anonymizer.db")
    store.close()
    shared = Settings(data_dir=tmp_path, key_store="kafka", topic_keys="k.keys")
    assert keystore_location(shared).startswith("the Kafka topic k.keys at ")
    # no key store file to watch on this host: only the install marker
    assert KeyStoreWatch(shared, print).paths == [marker_path(shared)]
    assert len(KeyStoreWatch(local, print).paths) == 2


def test_cli_restore_that_fails_leaves_no_empty_key_store_behind(tmp_path, monkeypatch) -> None:
    import base64

    from typer.testing import CliRunner

    from anonymizer.keystore import keystore_path
    from mayak.cli import app

    master = base64.b64encode(secrets.token_bytes(32)).decode()
    monkeypatch.setenv("MAYAK_DATA_DIR", str(tmp_path / "old"))
    monkeypatch.setenv("MAYAK_IP_KEY", master)
    old = KeyStore(keystore_path(Settings()))
    key = old.customer_key("c")
    old.close()
    runner = CliRunner()
    file = tmp_path / "keys.backup"
    assert runner.invoke(app, ["keys", "backup", str(file)]).exit_code == 0

    monkeypatch.setenv("MAYAK_DATA_DIR", str(tmp_path / "new"))
    monkeypatch.setenv("MAYAK_IP_KEY", base64.b64encode(secrets.token_bytes(32)).decode())
    done = runner.invoke(app, ["keys", "restore", str(file)])
    assert "does not decrypt with this master secret" in str(done.exception)
    assert not keystore_path(Settings()).exists()  # the lost-keys guard still sees no store

    monkeypatch.setenv("MAYAK_IP_KEY", master)
    done = runner.invoke(app, ["keys", "restore", str(file)])
    assert done.exit_code == 0, done.output
    restored = KeyStore(keystore_path(Settings()))
    assert restored.customer_key("c") == key

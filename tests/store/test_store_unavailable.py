"""A database that goes away while a command uses it (a lost connection, a server that no longer
takes connections, a SQLite file locked past the busy timeout or gone) is StoreUnavailable naming the
database, password hidden, as one that cannot be opened is; a wrong query stays the bug it is."""

from __future__ import annotations

import getpass
import shutil
import time
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError

from postgres_databases import SOCKET_DIR
from sqlite_lock import locked
from trainarena.store import StoreUnavailable, database, open_store_url
from trainarena.store.leases import LeaseKeeper

COUNT = text("SELECT count(*) FROM competitor")


def test_a_sqlite_file_locked_past_the_busy_timeout_is_unavailable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(database, "SQLITE_BUSY_TIMEOUT_S", 0.1)
    path = tmp_path / "store.db"
    with open_store_url(f"sqlite:///{path}") as store:
        with locked(path), pytest.raises(StoreUnavailable) as refused, store.transaction() as session:
            session.execute(text("DELETE FROM competitor"))
        assert str(refused.value) == f"the database sqlite:///{path} became unavailable: database is locked"
        with store.transaction() as session:  # the lock gone, the store serves again
            assert session.execute(COUNT).scalar() == 0


def test_a_sqlite_store_whose_folder_is_gone_is_unavailable_to_a_new_connection(tmp_path: Path) -> None:
    folder = tmp_path / "data"
    with open_store_url(f"sqlite:///{folder / 'store.db'}") as store, store.session() as busy:
        busy.execute(COUNT)  # holds the connection it has: the next session needs another
        shutil.rmtree(folder)
        # Named as the file gone before SQLite tries to open it (and fails: no folder to create it in).
        with pytest.raises(StoreUnavailable, match=r"^the database file .*/data/store.db was deleted or replaced while in use; "
                           r"restart to use the file now at that path$"), store.session() as session:
            session.execute(COUNT)


@pytest.mark.parametrize("how", ["deleted", "replaced"])
def test_a_sqlite_file_deleted_or_replaced_in_use_is_unavailable_not_written_blind(tmp_path: Path, how: str) -> None:
    """SQLite keeps writing to the file it has open once that file is unlinked: every write after it
    would be lost without a word. The next session is refused instead, on the pooled connection too."""
    path = tmp_path / "store.db"
    with open_store_url(f"sqlite:///{path}") as store:
        with store.transaction() as session:
            assert session.execute(COUNT).scalar() == 0  # a pooled connection holds the file open
        if how == "deleted":
            path.unlink()
        else:
            shutil.copy(path, tmp_path / "copy.db")
            (tmp_path / "copy.db").replace(path)
        for _ in range(2):  # and stays refused: no connection serves the old file, none a new one
            with pytest.raises(StoreUnavailable) as refused, store.transaction() as session:
                session.execute(text("DELETE FROM competitor"))
            assert str(refused.value) == (f"the database file {path} was deleted or replaced while in use; "
                                          "restart to use the file now at that path")


@pytest.mark.parametrize("url", ["sqlite://", "sqlite:///:memory:"])
def test_an_in_memory_sqlite_store_has_no_file_to_lose(url: str) -> None:
    with open_store_url(url, migrate=False) as store:
        for _ in range(2):
            with store.transaction() as session:
                assert session.execute(text("SELECT 1")).scalar() == 1


def test_a_wrong_query_is_not_taken_for_a_database_gone(url_on_each_backend: str) -> None:
    with open_store_url(url_on_each_backend) as store, store.session() as session:
        with pytest.raises(DBAPIError, match="nope"):
            session.execute(text("SELECT nope FROM competitor"))


def _admin(sql: str) -> None:
    import psycopg

    with psycopg.connect(dbname="postgres", host=SOCKET_DIR, user=getpass.getuser(), autocommit=True) as admin:
        admin.execute(sql)


def test_a_postgresql_connection_lost_mid_command_is_unavailable_with_the_password_hidden(postgres_url: str) -> None:
    url = make_url(postgres_url).set(password="hunter2")  # local connections do not ask for it
    name = url.database
    terminate = f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}'"
    with open_store_url(url.render_as_string(hide_password=False)) as store:
        with store.session() as session:
            session.execute(COUNT)
            _admin(terminate)  # as a restarted server does to every connection
            with pytest.raises(StoreUnavailable) as lost:
                session.execute(COUNT)
        message = str(lost.value)
        assert message.startswith(f"the database {url.render_as_string(hide_password=True)} became unavailable: ")
        assert "terminating connection" in message and "hunter2" not in message
        with store.session() as session:  # a server still there is connected to again
            assert session.execute(COUNT).scalar() == 0
        _admin(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false')
        _admin(terminate)
        with pytest.raises(StoreUnavailable, match="not currently accepting connections"), store.session() as session:
            session.execute(COUNT)


def test_a_lease_heartbeat_beats_on_through_a_store_locked_for_a_while(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """StoreUnavailable is a SQLAlchemyError, as the driver's error it replaces: what retried a busy
    store before (the lease keeper's next beat) still does."""
    monkeypatch.setattr(database, "SQLITE_BUSY_TIMEOUT_S", 0.05)
    path = tmp_path / "store.db"
    beats: list[str] = []
    with open_store_url(f"sqlite:///{path}") as store:

        def renew_once() -> bool:
            with store.transaction() as session:
                session.execute(text("DELETE FROM competitor"))
            beats.append("renewed")
            return True

        with LeaseKeeper(renew_once, 0.05):
            with locked(path):
                time.sleep(0.5)  # every beat meanwhile meets the lock
                assert beats == []
            time.sleep(0.5)
        assert beats  # the same keeper, beating on once the lock was gone

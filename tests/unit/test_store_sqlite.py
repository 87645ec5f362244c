"""SqliteStore: the local store, real SQLite files under tmp_path."""

from __future__ import annotations

import sqlite3
import threading

import pytest

from netcore.errors import AlreadyExists
from netcore.store import open_store
from netcore.store.sqlite import SqliteStore


class Boom(Exception):
    pass


def test_put_get_roundtrip_keeps_nested_json(store):
    data = {"id": "a", "options": {"k": "v"}, "aliases": ["x", "y"], "internal": True, "gw": None, "n": 3}
    store.put("network", "a", data, name="web")
    assert store.get("network", "a") == data
    assert store.get("network", "missing") is None
    assert store.get("endpoint", "a") is None  # ids are per kind


def test_find_by_unique_name(store):
    store.put("network", "a", {"id": "a"}, name="web")
    store.put("endpoint", "e", {"id": "e"}, name="web")  # same name, other kind: allowed
    assert store.find("network", "web") == {"id": "a"}
    assert store.find("endpoint", "web") == {"id": "e"}
    assert store.find("network", "nope") is None


def test_list_count_and_parent(store):
    store.put("endpoint", "e1", {"id": "e1"}, parent="n1")
    store.put("endpoint", "e2", {"id": "e2"}, parent="n1")
    store.put("endpoint", "e3", {"id": "e3"}, parent="n2")
    store.put("network", "n1", {"id": "n1"})
    assert sorted(d["id"] for d in store.list("endpoint")) == ["e1", "e2", "e3"]
    assert sorted(d["id"] for d in store.list("endpoint", parent="n1")) == ["e1", "e2"]
    assert [d["id"] for d in store.list("endpoint", parent="n2")] == ["e3"]
    assert store.list("endpoint", parent="n3") == []
    assert store.count("endpoint") == 3
    assert store.count("endpoint", parent="n1") == 2
    assert store.count("network") == 1
    assert store.count("sandbox") == 0


def test_delete_reports_existence(store):
    store.put("network", "a", {"id": "a"}, name="web")
    assert store.delete("network", "a") is True
    assert store.delete("network", "a") is False
    assert store.get("network", "a") is None
    assert store.find("network", "web") is None
    store.put("network", "b", {"id": "b"}, name="web", create=True)  # the name is free again


def test_create_refuses_taken_id_and_name(store):
    store.put("network", "a", {"v": 1}, name="web", create=True)
    with pytest.raises(AlreadyExists):
        store.put("network", "a", {"v": 2}, name="other", create=True)
    with pytest.raises(AlreadyExists, match="web"):
        store.put("network", "b", {"v": 3}, name="web", create=True)
    assert store.get("network", "a") == {"v": 1}
    assert store.get("network", "b") is None
    assert store.count("network") == 1


def test_upsert_updates_data_name_and_parent(store):
    store.put("endpoint", "e", {"v": 1}, name="old", parent="n1")
    store.put("endpoint", "e", {"v": 2}, name="new", parent="n2")
    assert store.get("endpoint", "e") == {"v": 2}
    assert store.find("endpoint", "old") is None
    assert store.find("endpoint", "new") == {"v": 2}
    assert store.count("endpoint", parent="n1") == 0
    assert store.count("endpoint", parent="n2") == 1


def test_upsert_stealing_a_name_is_refused_and_keeps_the_owner(store):
    store.put("network", "a", {"id": "a"}, name="web")
    store.put("network", "b", {"id": "b"}, name="db")
    with pytest.raises(AlreadyExists, match="web"):
        store.put("network", "b", {"id": "b", "changed": True}, name="web")  # update of b
    with pytest.raises(AlreadyExists, match="web"):
        store.put("network", "c", {"id": "c"}, name="web")  # insert of c
    assert store.find("network", "web") == {"id": "a"}
    assert store.get("network", "a") == {"id": "a"}
    assert store.get("network", "b") == {"id": "b"}
    assert store.find("network", "db") == {"id": "b"}
    assert store.get("network", "c") is None
    assert store.count("network") == 2


def test_transaction_commits_together(tmp_path, store):
    other = SqliteStore(str(tmp_path))  # a second connection sees only committed state
    try:
        with store.transaction():
            store.put("network", "a", {"id": "a"})
            store.put("endpoint", "e", {"id": "e"}, parent="a")
            assert store.get("network", "a") == {"id": "a"}  # visible inside
            assert other.get("network", "a") is None  # not yet outside
        assert other.get("network", "a") == {"id": "a"}
        assert other.get("endpoint", "e") == {"id": "e"}
    finally:
        other.close()


def test_transaction_rolls_back_on_exception(store):
    store.put("network", "keep", {"id": "keep"})
    with pytest.raises(Boom):
        with store.transaction():
            store.put("network", "a", {"id": "a"})
            store.delete("network", "keep")
            raise Boom
    assert store.get("network", "a") is None
    assert store.get("network", "keep") == {"id": "keep"}


def test_nested_transaction_rolls_back_everything_when_error_escapes(store):
    with pytest.raises(Boom):
        with store.transaction():
            store.put("network", "outer", {})
            with store.transaction():
                store.put("network", "inner", {})
                raise Boom
    assert store.get("network", "outer") is None
    assert store.get("network", "inner") is None
    # the store is usable afterwards: depth was reset, a new transaction commits
    with store.transaction():
        store.put("network", "after", {})
    assert store.get("network", "after") == {}


def test_nested_transaction_commits_only_at_the_outer_level(tmp_path, store):
    other = SqliteStore(str(tmp_path))
    try:
        with store.transaction():
            with store.transaction():
                store.put("network", "inner", {})
            assert other.get("network", "inner") is None  # inner exit did not commit
        assert other.get("network", "inner") == {}
    finally:
        other.close()


def test_inner_transaction_that_failed_leaves_nothing_even_if_outer_goes_on(store):
    with store.transaction():
        store.put("network", "outer", {})
        try:
            with store.transaction():
                store.put("network", "inner", {})
                raise Boom
        except Boom:
            pass
    assert store.get("network", "outer") == {}
    assert store.get("network", "inner") is None


def test_failed_create_inside_transaction_does_not_poison_it(store):
    store.put("network", "a", {}, name="web")
    with store.transaction():
        with pytest.raises(AlreadyExists):
            store.put("network", "b", {}, name="web", create=True)
        store.put("network", "c", {}, name="api", create=True)
    assert store.find("network", "api") == {}
    assert store.get("network", "b") is None


def test_persists_across_reopen(tmp_path):
    s1 = SqliteStore(str(tmp_path))
    s1.put("network", "a", {"id": "a"}, name="web", parent="p")
    with s1.transaction():
        s1.put("network", "b", {"id": "b"}, name="db")
    s1.close()
    s2 = open_store(str(tmp_path))
    try:
        assert s2.get("network", "a") == {"id": "a"}
        assert s2.find("network", "db") == {"id": "b"}
        assert s2.count("network", parent="p") == 1
        with pytest.raises(AlreadyExists):  # the unique index survived too
            s2.put("network", "c", {}, name="web", create=True)
    finally:
        s2.close()


def test_creates_root_dir(tmp_path):
    root = tmp_path / "deep" / "root"
    s = SqliteStore(str(root))
    try:
        s.put("k", "1", {})
        assert (root / "netcore.db").exists()
    finally:
        s.close()


def test_wal_mode_enabled(store):
    # WAL is a property of the database file: a fresh, independent connection reports it
    con = sqlite3.connect(store.path)
    try:
        assert con.execute("PRAGMA journal_mode").fetchone()[0].lower() == "wal"
    finally:
        con.close()


def test_thread_safety_many_writers(store):
    errors: list[BaseException] = []
    n_threads, per_thread = 8, 100

    def writer(t: int) -> None:
        try:
            for i in range(per_thread):
                if i % 10 == 0:
                    with store.transaction():
                        store.put("rec", f"{t}-{i}", {"t": t, "i": i}, name=f"n{t}-{i}", parent=f"p{t}", create=True)
                        assert store.get("rec", f"{t}-{i}") is not None
                else:
                    store.put("rec", f"{t}-{i}", {"t": t, "i": i}, name=f"n{t}-{i}", parent=f"p{t}", create=True)
                store.count("rec")
                store.list("rec", parent=f"p{t}")
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(t,)) for t in range(n_threads)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert errors == []
    assert store.count("rec") == n_threads * per_thread
    for t in range(n_threads):
        assert store.count("rec", parent=f"p{t}") == per_thread
    assert store.find("rec", "n3-57") == {"t": 3, "i": 57}


def test_thread_safety_racing_for_one_name(store):
    """Many threads create the same name: exactly one wins, the rest get AlreadyExists."""
    wins: list[int] = []
    losses: list[int] = []
    other: list[BaseException] = []
    barrier = threading.Barrier(10)

    def racer(t: int) -> None:
        barrier.wait()
        try:
            store.put("network", f"id{t}", {"t": t}, name="contested", create=True)
            wins.append(t)
        except AlreadyExists:
            losses.append(t)
        except BaseException as exc:
            other.append(exc)

    threads = [threading.Thread(target=racer, args=(t,)) for t in range(10)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert other == []
    assert len(wins) == 1 and len(losses) == 9
    assert store.find("network", "contested") == {"t": wins[0]}
    assert store.count("network") == 1

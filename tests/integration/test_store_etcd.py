"""EtcdStore against a real etcd (tests/etcd_server.py): Store parity with SqliteStore,
create-if-absent races, transactions, leases, watches across etcd restarts, outages.

Most tests share the session's etcd (``etcd_store`` is on a unique key prefix); tests
that kill etcd start their own (``private_etcd``).
"""

from __future__ import annotations

import random
import socket
import threading
import time
from typing import Any

import pytest
import requests

from etcd_server import start_etcd
from netcore.errors import AlreadyExists, InvalidConfig, NetcoreError
from netcore.store.etcd import EtcdStore, StoreUnavailable


class Boom(Exception):
    pass


@pytest.fixture
def store(etcd_store):
    return etcd_store


@pytest.fixture
def other(etcd_server, store):
    """A second client (another 'host') on the same prefix."""
    s = EtcdStore(etcd_server.url, prefix=store.prefix)
    yield s
    s.close()


@pytest.fixture
def private_etcd(tmp_path):
    srv = start_etcd(str(tmp_path / "etcd"))
    yield srv
    srv.stop()


def wait_for(pred, timeout: float = 15.0, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while True:
        value = pred()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.02)


class Events:
    """A watch callback that records (event, id, data) and lets a test wait for them."""

    def __init__(self) -> None:
        self.items: list[tuple[str, str, Any]] = []
        self.cond = threading.Condition()

    def __call__(self, event: str, id: str, data: Any) -> None:
        with self.cond:
            self.items.append((event, id, data))
            self.cond.notify_all()

    def wait(self, n: int, timeout: float = 15.0) -> list[tuple[str, str, Any]]:
        with self.cond:
            if not self.cond.wait_for(lambda: len(self.items) >= n, timeout):
                raise AssertionError(f"got {len(self.items)} of {n} events: {self.items}")
            return list(self.items)


def compact(srv) -> int:
    """Compact etcd's history up to its current revision; returns that revision."""
    base = srv.url.replace("etcd://", "http://")
    s = requests.Session()
    s.trust_env = False
    rev = int(s.post(f"{base}/v3/kv/range", json={"key": "AA=="}, timeout=5).json()["header"]["revision"])
    s.post(f"{base}/v3/kv/compaction", json={"revision": rev, "physical": True}, timeout=5).raise_for_status()
    return rev


# ============================================================ Store parity =====


def test_put_get_roundtrip_keeps_nested_json(store):
    data = {"id": "a", "options": {"k": "v"}, "aliases": ["x", "y"], "internal": True, "gw": None, "n": 3, "u": "é✓"}
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


def test_slashes_and_odd_characters_in_kind_id_and_name_stay_apart(store):
    store.put("address", "10.0.0.0/24", {"v": 1}, name="a/b")
    store.put("addr", "x", {"v": 2})
    store.put("address/x", "y", {"v": 3})  # must not show up under kind "address"
    store.put("address", "10.0.0.0", {"v": 4}, name="a")
    assert store.get("address", "10.0.0.0/24") == {"v": 1}
    assert store.find("address", "a/b") == {"v": 1}
    assert store.find("address", "a") == {"v": 4}
    assert sorted(d["v"] for d in store.list("address")) == [1, 4]
    assert store.count("address") == 2
    assert store.list("address/x") == [{"v": 3}]
    assert store.delete("address", "10.0.0.0/24") is True
    assert store.find("address", "a/b") is None and store.get("address", "10.0.0.0") == {"v": 4}


def test_prefixes_isolate_stores(etcd_server, store):
    s2 = EtcdStore(etcd_server.url, prefix=store.prefix.rstrip("/") + "-b")  # prefix without "/" is completed
    try:
        store.put("network", "a", {"who": 1}, name="web")
        s2.put("network", "a", {"who": 2}, name="web", create=True)
        assert store.get("network", "a") == {"who": 1}
        assert s2.find("network", "web") == {"who": 2}
        assert store.count("network") == 1 and s2.count("network") == 1
    finally:
        s2.close()


def test_delete_reports_existence(store):
    store.put("network", "a", {"id": "a"}, name="web")
    assert store.delete("network", "a") is True
    assert store.delete("network", "a") is False
    assert store.get("network", "a") is None
    assert store.find("network", "web") is None
    store.put("network", "b", {"id": "b"}, name="web", create=True)  # the name is free again


def test_create_refuses_taken_id_and_name(store):
    store.put("network", "a", {"v": 1}, name="web", create=True)
    with pytest.raises(AlreadyExists, match="id 'a'"):
        store.put("network", "a", {"v": 2}, name="other", create=True)
    with pytest.raises(AlreadyExists, match="web"):
        store.put("network", "b", {"v": 3}, name="web", create=True)
    assert store.get("network", "a") == {"v": 1}
    assert store.get("network", "b") is None
    assert store.find("network", "other") is None
    assert store.count("network") == 1


def test_create_returns_whether_it_won(store):
    assert store.create("vni", "4097", {"net": "n1"}) is True
    assert store.create("vni", "4097", {"net": "n2"}) is False
    assert store.create("vni", "4098", {"net": "n2"}, name="n1") is True
    assert store.create("vni", "4099", {"net": "n3"}, name="n1") is False  # name taken
    assert store.get("vni", "4097") == {"net": "n1"}
    assert store.get("vni", "4099") is None


def test_upsert_updates_data_name_and_parent(store):
    store.put("endpoint", "e", {"v": 1}, name="old", parent="n1")
    store.put("endpoint", "e", {"v": 2}, name="new", parent="n2")
    assert store.get("endpoint", "e") == {"v": 2}
    assert store.find("endpoint", "old") is None
    assert store.find("endpoint", "new") == {"v": 2}
    assert store.count("endpoint", parent="n1") == 0
    assert store.count("endpoint", parent="n2") == 1
    store.put("endpoint", "e", {"v": 3})  # dropping the name frees it
    assert store.find("endpoint", "new") is None
    store.put("endpoint", "f", {}, name="new", create=True)


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


def test_transaction_commits_together(store, other):
    with store.transaction():
        store.put("network", "a", {"id": "a"}, name="web")
        store.put("endpoint", "e", {"id": "e"}, parent="a")
        store.delete("network", "nothing")
        # reads inside see the block's own writes ...
        assert store.get("network", "a") == {"id": "a"}
        assert store.find("network", "web") == {"id": "a"}
        assert store.list("endpoint", parent="a") == [{"id": "e"}]
        assert store.count("endpoint") == 1
        # ... and nobody else does yet
        assert other.get("network", "a") is None
        assert other.count("endpoint") == 0
    assert other.get("network", "a") == {"id": "a"}
    assert other.find("network", "web") == {"id": "a"}
    assert other.get("endpoint", "e") == {"id": "e"}


def test_transaction_is_per_thread(store, other):
    inside, done = threading.Event(), threading.Event()

    def elsewhere() -> None:
        inside.wait(10)
        store.put("network", "t2", {})  # another thread's plain put commits at once
        done.set()

    t = threading.Thread(target=elsewhere)
    t.start()
    with store.transaction():
        store.put("network", "t1", {})
        inside.set()
        assert done.wait(10)
        assert other.get("network", "t2") == {} and other.get("network", "t1") is None
    t.join()
    assert other.get("network", "t1") == {}


def test_transaction_rolls_back_on_exception(store):
    store.put("network", "keep", {"id": "keep"}, name="k")
    with pytest.raises(Boom):
        with store.transaction():
            store.put("network", "a", {"id": "a"})
            store.delete("network", "keep")
            assert store.get("network", "keep") is None
            raise Boom
    assert store.get("network", "a") is None
    assert store.get("network", "keep") == {"id": "keep"}
    assert store.find("network", "k") == {"id": "keep"}


def test_nested_transaction_rolls_back_everything_when_error_escapes(store):
    with pytest.raises(Boom):
        with store.transaction():
            store.put("network", "outer", {})
            with store.transaction():
                store.put("network", "inner", {})
                raise Boom
    assert store.get("network", "outer") is None
    assert store.get("network", "inner") is None
    with store.transaction():
        store.put("network", "after", {})
    assert store.get("network", "after") == {}


def test_nested_transaction_commits_only_at_the_outer_level(store, other):
    with store.transaction():
        with store.transaction():
            store.put("network", "inner", {})
        assert other.get("network", "inner") is None  # inner exit did not commit
    assert other.get("network", "inner") == {}


def test_inner_transaction_that_failed_leaves_nothing_even_if_outer_goes_on(store):
    with store.transaction():
        store.put("network", "outer", {})
        try:
            with store.transaction():
                store.put("network", "inner", {})
                store.delete("network", "outer")
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
        with pytest.raises(AlreadyExists):  # taken inside the block itself
            store.put("network", "d", {}, name="api", create=True)
    assert store.find("network", "api") == {}
    assert store.get("network", "b") is None
    assert store.get("network", "d") is None


def test_transaction_is_all_or_nothing_when_a_create_loses_at_commit(store, other):
    """A create checked free inside the block but taken by another host before the
    commit fails the whole txn: none of the block's writes land."""
    store.put("network", "keep", {"v": 1})
    with pytest.raises(AlreadyExists, match="10.1.0.7"):
        with store.transaction():
            store.put("network", "keep", {"v": 2})
            store.delete("network", "nothing")
            store.put("endpoint", "e1", {"ip": "10.1.0.7"}, parent="n")
            store.put("address", "10.1.0.7", {"ep": "e1"}, create=True)
            assert other.create("address", "10.1.0.7", {"ep": "other-host"})  # wins in between
    assert store.get("network", "keep") == {"v": 1}
    assert store.get("endpoint", "e1") is None
    assert store.get("address", "10.1.0.7") == {"ep": "other-host"}


def test_transaction_replays_over_a_concurrent_update(store, other):
    """A guard that fails only because someone else updated a key we read is retried."""
    store.put("network", "a", {"v": 0}, name="web")
    with store.transaction():
        store.put("network", "a", {"v": "mine"}, name="web2")
        other.put("network", "a", {"v": "theirs"}, name="web3")
    assert other.get("network", "a") == {"v": "mine"}
    assert other.find("network", "web2") == {"v": "mine"}
    assert other.find("network", "web3") is None  # the replay removed the name it had set
    assert other.find("network", "web") is None


def test_a_write_that_always_loses_gives_up_with_one_line_and_writes_nothing(store, other, monkeypatch):
    """Every commit races a real concurrent writer on the same key: the store replays a
    bounded number of times, then says so in one line; its own value never lands."""
    from netcore.errors import Conflict
    from netcore.store import etcd as etcd_mod

    store.put("network", "a", {"v": 0}, name="web")
    real_txn, tries = store._txn, []

    def always_overtaken(batch):
        tries.append(1)
        other.put("network", "a", {"v": f"theirs-{len(tries)}"}, name="web")  # lands between read and commit
        return real_txn(batch)

    monkeypatch.setattr(store, "_txn", always_overtaken)
    with pytest.raises(Conflict) as exc:
        with store.transaction():
            store.put("network", "a", {"v": "mine"}, name="web")
    assert "gave up after" in str(exc.value) and "\n" not in str(exc.value)
    assert len(tries) == etcd_mod._MAX_RETRIES
    assert other.get("network", "a") == {"v": f"theirs-{len(tries)}"}


def test_persists_across_reopen(etcd_server, store):
    store.put("network", "a", {"id": "a"}, name="web", parent="p")
    with store.transaction():
        store.put("network", "b", {"id": "b"}, name="db")
    s2 = EtcdStore("http://" + etcd_server.url.split("://", 1)[1], prefix=store.prefix)  # http:// works too
    try:
        assert s2.get("network", "a") == {"id": "a"}
        assert s2.find("network", "db") == {"id": "b"}
        assert s2.count("network", parent="p") == 1
        with pytest.raises(AlreadyExists):
            s2.put("network", "c", {}, name="web", create=True)
    finally:
        s2.close()


def test_thread_safety_many_writers(store):
    errors: list[BaseException] = []
    n_threads, per_thread = 6, 25

    def writer(t: int) -> None:
        try:
            for i in range(per_thread):
                if i % 5 == 0:
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
    assert store.find("rec", "n3-17") == {"t": 3, "i": 17}


def test_bad_url_is_invalid_config():
    with pytest.raises(InvalidConfig):
        EtcdStore("consul://127.0.0.1:8500")
    with pytest.raises(InvalidConfig):
        EtcdStore("etcd://127.0.0.1:2379/some/path")


# ============================================================ races ============


def test_racing_threads_and_stores_create_each_id_exactly_once(etcd_server, store):
    """3 stores (hosts) x 4 threads each race to create the same 40 ids (addresses)
    and the same 10 names: every id and every name is won by exactly one racer."""
    stores = [store] + [EtcdStore(etcd_server.url, prefix=store.prefix) for _ in range(2)]
    ids = [f"10.9.0.{i}" for i in range(40)]
    wins: dict[str, list[str]] = {i: [] for i in ids}
    name_wins: dict[str, list[str]] = {}
    errors: list[BaseException] = []
    lock = threading.Lock()
    racers = [(s, t) for s in range(len(stores)) for t in range(4)]
    barrier = threading.Barrier(len(racers))

    def racer(s: int, t: int) -> None:
        me = f"s{s}t{t}"
        order = ids[:]
        random.Random(me).shuffle(order)
        try:
            barrier.wait()
            for ip in order:
                if stores[s].create("address", ip, {"by": me}, parent="pool"):
                    with lock:
                        wins[ip].append(me)
            for n in range(10):
                try:
                    stores[s].put("network", f"{me}-{n}", {"by": me}, name=f"net{n}", create=True)
                    with lock:
                        name_wins.setdefault(f"net{n}", []).append(me)
                except AlreadyExists:
                    pass
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=racer, args=r) for r in racers]
    try:
        for th in threads:
            th.start()
        for th in threads:
            th.join()
    finally:
        for s in stores[1:]:
            s.close()
    assert errors == []
    assert all(len(w) == 1 for w in wins.values()), {ip: w for ip, w in wins.items() if len(w) != 1}
    assert store.count("address", parent="pool") == len(ids)
    for ip in ids:
        assert store.get("address", ip) == {"by": wins[ip][0]}
    assert sorted(name_wins) == [f"net{n}" for n in range(10)]
    assert all(len(w) == 1 for w in name_wins.values()), name_wins
    assert store.count("network") == 10
    for n in range(10):
        assert store.find("network", f"net{n}") == {"by": name_wins[f"net{n}"][0]}


# ============================================================ leases ===========


def test_lease_is_kept_alive_then_records_vanish_when_it_expires(etcd_server, store, other):
    s = EtcdStore(etcd_server.url, prefix=store.prefix)
    try:
        lease = s.grant_lease(1)
        s.put("node", "host1", {"ip": "10.0.0.1"}, name="h1", lease=lease)
        s.put("node", "forever", {})
        time.sleep(3)  # three TTLs: only the keepalive thread can have kept it
        assert other.get("node", "host1") == {"ip": "10.0.0.1"}
        assert not s.lease_lost.is_set()
    finally:
        s.close()  # stops the keepalive without revoking: the lease runs out by itself
    wait_for(lambda: other.get("node", "host1") is None, what="the leased record to expire")
    assert other.find("node", "h1") is None  # its name key went with it
    assert other.get("node", "forever") == {}
    assert other.create("node", "host1-again", {}, name="h1")


def test_revoke_lease_removes_records_now(store, other):
    lease = store.grant_lease(30)
    store.create("vni", "4100", {"net": "n"}, lease=lease)
    with store.transaction():
        store.put("node", "a", {}, lease=lease)
    assert other.count("node") == 1
    store.revoke_lease(lease)
    assert other.get("vni", "4100") is None and other.count("node") == 0
    store.revoke_lease(lease)  # twice is fine
    assert not store.lease_lost.is_set()


def test_lease_lost_is_reported(store, other):
    lost: list[int] = []
    store.on_lease_lost = lost.append
    lease = store.grant_lease(2)
    store.put("node", "me", {}, lease=lease)
    other.revoke_lease(lease)  # gone on the server: the next keepalive finds out
    assert store.lease_lost.wait(15)
    assert lost == [lease]
    assert store.get("node", "me") is None


# ============================================================ watches ==========


def test_watch_delivers_puts_and_deletes_in_order(store, other):
    ev = Events()
    cancel = store.watch("endpoint", ev)
    other.put("endpoint", "e1", {"v": 1}, name="one")
    other.put("network", "n1", {})  # another kind: not delivered
    other.put("endpoint", "e1", {"v": 2})
    with other.transaction():
        other.put("endpoint", "e2", {"v": 3})
        other.delete("endpoint", "e1")
    lease = other.grant_lease(30)
    other.put("endpoint", "e3", {"v": 4}, lease=lease)
    other.revoke_lease(lease)
    got = ev.wait(6)
    cancel()
    assert got[:3] == [("put", "e1", {"v": 1}), ("put", "e1", {"v": 2}), ("put", "e2", {"v": 3})] or got[:3] == [
        ("put", "e1", {"v": 1}), ("put", "e1", {"v": 2}), ("delete", "e1", None)]
    assert sorted(got[2:4], key=str) == sorted([("put", "e2", {"v": 3}), ("delete", "e1", None)], key=str)
    assert got[4:] == [("put", "e3", {"v": 4}), ("delete", "e3", None)]
    # cancelled: nothing more arrives
    other.put("endpoint", "late", {})
    time.sleep(0.3)
    assert len(ev.items) == 6


def test_list_with_revision_then_watch_has_no_gap_and_no_repeat(store, other):
    store.put("endpoint", "a", {"v": 1})
    store.put("endpoint", "b", {"v": 1})
    snapshot, rev = store.list_with_revision("endpoint")
    assert sorted(d["v"] for d in snapshot) == [1, 1]
    # changes between the listing and the watch must not be lost
    other.put("endpoint", "c", {"v": 2})
    other.delete("endpoint", "a")
    ev = Events()
    cancel = store.watch("endpoint", ev, start_revision=rev)
    other.put("endpoint", "b", {"v": 3})
    got = ev.wait(3)
    cancel()
    assert got == [("put", "c", {"v": 2}), ("delete", "a", None), ("put", "b", {"v": 3})]


def test_a_failing_callback_does_not_stop_the_watch(store, other):
    ev = Events()

    def callback(event, id, data):
        ev(event, id, data)
        if id == "bad":
            raise RuntimeError("callback bug")

    cancel = store.watch("network", callback)
    other.put("network", "bad", {})
    other.put("network", "good", {})
    assert [e[1] for e in ev.wait(2)] == ["bad", "good"]
    cancel()


def test_watch_survives_etcd_restart_exactly_once(private_etcd):
    s = EtcdStore(private_etcd.url)
    ev = Events()
    try:
        s.watch("endpoint", ev)
        s.put("endpoint", "a", {"v": 1})
        s.put("endpoint", "b", {"v": 1})
        ev.wait(2)
        private_etcd.kill()
        private_etcd.restart()
        # written right after the restart: the watch may not have reconnected yet
        s.put("endpoint", "a", {"v": 2})
        s.delete("endpoint", "b")
        s.put("endpoint", "c", {"v": 1})
        got = ev.wait(5)
        time.sleep(0.5)  # room for a duplicate to show up
        assert ev.items == got == [
            ("put", "a", {"v": 1}), ("put", "b", {"v": 1}),
            ("put", "a", {"v": 2}), ("delete", "b", None), ("put", "c", {"v": 1}),
        ]
    finally:
        s.close()


def test_watch_resyncs_when_its_revision_was_compacted(private_etcd):
    """The watcher is held in its callback while etcd restarts and the history it
    would resume from is compacted: it delivers the difference from a fresh listing."""
    s = EtcdStore(private_etcd.url)
    ev = Events()
    hold = threading.Event()

    def callback(event, id, data):
        ev(event, id, data)
        if id == "gate":
            hold.wait(30)

    try:
        s.put("endpoint", "stays", {"v": 1})
        s.put("endpoint", "goes", {"v": 1})
        s.put("endpoint", "changes", {"v": 1})
        _, rev = s.list_with_revision("endpoint")
        s.watch("endpoint", callback, start_revision=rev)
        s.put("endpoint", "gate", {})
        ev.wait(1)  # the watcher now sits in the callback
        private_etcd.kill()
        private_etcd.restart()
        s.delete("endpoint", "goes")
        s.put("endpoint", "changes", {"v": 2})
        s.put("endpoint", "new", {"v": 1})
        s.put("endpoint", "flash", {})
        s.delete("endpoint", "flash")
        compact(private_etcd)
        hold.set()
        got = ev.wait(4)
        time.sleep(0.5)
        assert ev.items == got
        assert got[0] == ("put", "gate", {})
        assert sorted(got[1:], key=str) == sorted(
            [("delete", "goes", None), ("put", "changes", {"v": 2}), ("put", "new", {"v": 1})], key=str
        )
        # and it keeps watching after the resync
        s.put("endpoint", "after", {})
        assert ev.wait(5)[-1] == ("put", "after", {})
    finally:
        hold.set()
        s.close()


# ============================================================ outages ==========


def test_unreachable_store_fails_fast_with_one_clear_line():
    with socket.socket() as probe:  # a port where nothing listens
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    s = EtcdStore(f"etcd://127.0.0.1:{port}", timeout=1.0)
    try:
        with pytest.raises(StoreUnavailable) as exc:
            s.get("network", "a")
        assert str(exc.value) == f"cluster store etcd://127.0.0.1:{port} is unreachable: connection refused"
        assert exc.value.status == 503 and isinstance(exc.value, NetcoreError)
        for call in (lambda: s.put("n", "a", {}), lambda: s.grant_lease(5), lambda: s.watch("n", print),
                     lambda: s.list_with_revision("n"), lambda: s.create("n", "a", {})):
            with pytest.raises(StoreUnavailable):
                call()
        assert s.healthy() is False
    finally:
        s.close()


def test_silent_store_times_out_within_the_timeout():
    """A peer that accepts connections but never answers (a hung etcd)."""
    with socket.socket() as srv:
        srv.bind(("127.0.0.1", 0))
        srv.listen(16)
        port = srv.getsockname()[1]
        s = EtcdStore(f"etcd://127.0.0.1:{port}", timeout=0.5)
        try:
            t0 = time.monotonic()
            with pytest.raises(StoreUnavailable, match=r"is unreachable: no answer within 0.5s$"):
                s.get("network", "a")
            assert time.monotonic() - t0 < 5  # bounded by the timeout, not hanging
        finally:
            s.close()


def test_killed_etcd_then_back(private_etcd):
    s = EtcdStore(private_etcd.url, timeout=1.0)
    try:
        s.put("network", "a", {"v": 1})
        assert s.healthy()
        private_etcd.kill()
        with pytest.raises(StoreUnavailable, match=r"^cluster store etcd://127\.0\.0\.1:\d+ is unreachable: "):
            s.get("network", "a")
        with pytest.raises(StoreUnavailable):
            with s.transaction():
                s.put("network", "b", {})
        assert not s.healthy()
        private_etcd.restart()
        assert s.healthy()
        assert s.get("network", "a") == {"v": 1}
        assert s.get("network", "b") is None
    finally:
        s.close()


def test_lease_lost_when_etcd_is_gone_longer_than_the_ttl(private_etcd):
    s = EtcdStore(private_etcd.url, timeout=0.5)
    try:
        s.grant_lease(1)
        private_etcd.kill()
        assert s.lease_lost.wait(15)
    finally:
        s.close()


# ============================================================ threads ==========


def test_close_stops_every_thread(etcd_server, store):
    before = set(threading.enumerate())
    s = EtcdStore(etcd_server.url, prefix=store.prefix)
    s.grant_lease(10)
    s.watch("network", lambda *a: None)
    cancel = s.watch("endpoint", lambda *a: None)
    s.put("network", "a", {})
    assert len(set(threading.enumerate()) - before) == 3  # keepalive + 2 watchers
    s.close()
    cancel()  # after close: harmless
    assert [t for t in threading.enumerate() if t not in before and t.is_alive()] == []

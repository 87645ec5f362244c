"""MemoryStore keeps SqliteStore's contract: the same contract tests run against it.

The SQLite-only tests (a second connection, WAL, files on disk) are not imported; the
contract's isolation is checked here with a second thread instead.
"""

from __future__ import annotations

import threading

import pytest

from netcore.store.memory import MemoryStore
from tests.unit.test_store_sqlite import (  # noqa: F401  (collected here, against this module's store)
    test_create_refuses_taken_id_and_name,
    test_delete_reports_existence,
    test_failed_create_inside_transaction_does_not_poison_it,
    test_find_by_unique_name,
    test_inner_transaction_that_failed_leaves_nothing_even_if_outer_goes_on,
    test_list_count_and_parent,
    test_nested_transaction_rolls_back_everything_when_error_escapes,
    test_put_get_roundtrip_keeps_nested_json,
    test_thread_safety_many_writers,
    test_thread_safety_racing_for_one_name,
    test_transaction_rolls_back_on_exception,
    test_upsert_stealing_a_name_is_refused_and_keeps_the_owner,
    test_upsert_updates_data_name_and_parent,
)


@pytest.fixture
def store():
    return MemoryStore()


def test_other_threads_see_only_committed_state(store):
    seen: list[object] = []
    inside, checked = threading.Event(), threading.Event()

    def reader() -> None:
        inside.wait()
        t = threading.Thread(target=lambda: seen.append(store.get("network", "a")))
        t.start()
        t.join(0.05)  # blocked behind the writer's transaction, as behind SQLite's lock
        seen.append("blocked" if t.is_alive() else "ran")
        checked.set()
        t.join()

    r = threading.Thread(target=reader)
    r.start()
    with store.transaction():
        store.put("network", "a", {"id": "a"})
        inside.set()
        checked.wait()
    r.join()
    assert seen == ["blocked", {"id": "a"}]


def test_returned_records_are_copies(store):
    store.put("network", "a", {"id": "a", "opts": {"k": "v"}})
    got = store.get("network", "a")
    got["opts"]["k"] = "changed"
    store.list("network")[0]["id"] = "changed"
    assert store.get("network", "a") == {"id": "a", "opts": {"k": "v"}}


def test_watchers_get_committed_changes_in_order_on_deliver(store):
    seen: list[tuple[str, str, object]] = []
    cancel = store.watch("endpoint", lambda event, id, data: seen.append((event, id, data)))
    store.put("endpoint", "e1", {"v": 1})
    store.put("network", "n1", {})  # another kind: not this watcher's
    with pytest.raises(RuntimeError):
        with store.transaction():
            store.put("endpoint", "never", {})
            raise RuntimeError
    with store.transaction():
        store.put("endpoint", "e2", {"v": 2})
        store.delete("endpoint", "e1")
    assert seen == []  # nothing before deliver(): etcd's watch thread runs after the write returned
    assert store.deliver() == 4
    assert seen == [("put", "e1", {"v": 1}), ("put", "e2", {"v": 2}), ("delete", "e1", None)]
    cancel()
    store.put("endpoint", "e3", {})
    store.deliver()
    assert len(seen) == 3


def test_a_revoked_lease_takes_its_records_and_only_them(store):
    lease = store.grant_lease(15)
    store.put("node", "h1", {}, lease=lease)
    store.put("endpoint", "e1", {}, lease=lease)
    store.put("endpoint", "e2", {}, lease=lease)
    store.put("endpoint", "e2", {})  # a put without the lease makes it permanent again
    assert store.create("endpoint", "e1", {}) is False and store.create("endpoint", "e9", {}) is True
    store.revoke_lease(lease)
    assert store.get("node", "h1") is None and store.get("endpoint", "e1") is None
    assert store.get("endpoint", "e2") == {} and store.get("endpoint", "e9") == {}

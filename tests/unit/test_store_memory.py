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

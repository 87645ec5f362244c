"""Cache keys (runtime.build.cache): what a step's key depends on, and what it does not."""

import os

from runtime.build.cache import BuildCache, State, step_key, tree_digest


def test_keys_chain_through_parents():
    base = State(key="scratch")
    a = step_key(base, "COPY x", "d1")
    assert a == step_key(State(key="scratch"), "COPY x", "d1")
    assert a != step_key(base, "COPY x", "d2")
    assert a != step_key(base, "COPY y", "d1")
    assert step_key(State(key=a), "CMD", "") != step_key(State(key="other"), "CMD", "")


def test_tree_digest_counts_content_mode_and_names_not_times(tmp_path):
    f = tmp_path / "f"
    f.write_text("one")
    d0 = tree_digest([("/f", str(f))])
    os.utime(f, (1, 1))
    assert tree_digest([("/f", str(f))]) == d0  # touching a file does not bust the cache, as in Docker
    os.chmod(f, 0o700)
    d1 = tree_digest([("/f", str(f))])
    assert d1 != d0
    f.write_text("two")
    assert tree_digest([("/f", str(f))]) != d1
    assert tree_digest([("/g", str(f))]) != tree_digest([("/f", str(f))])
    os.symlink("f", tmp_path / "l")
    os.symlink("g", tmp_path / "m")
    assert tree_digest([("/l", str(tmp_path / "l"))]) != tree_digest([("/l", str(tmp_path / "m"))])


def test_an_entry_is_used_only_while_its_layers_exist(tmp_path):
    cache = BuildCache(str(tmp_path))
    state = State(("sha256:aa", "sha256:bb"), {"Cmd": ["x"]}, "k1", history=({"created_by": "x"},), image="sha256:img")
    cache.put(state)
    assert cache.get("k1", lambda layer: True) == state
    assert cache.get("k1", lambda layer: layer != "sha256:bb") is None
    assert cache.get("nope", lambda layer: True) is None

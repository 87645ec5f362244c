"""No ``select()`` where descriptors can exceed 1023 (issue 12, item 2).

``select()`` takes descriptors below FD_SETSIZE (1024) only: glibc aborts the process
(``bit out of range 0 - FD_SETSIZE``), Python raises. The engine holds descriptors
above 1023 (pidfds, DNS listeners, client connections), so its own code waits with
poll or epoll. libnftables still selects: the low range is kept free for it (see
runtime/api/server.py and runtime/engine/process.py).
"""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BANNED = re.compile(r"\bselect\.select\(|\bSelectSelector\b")


def test_the_default_selector_is_epoll():
    import selectors

    assert selectors.DefaultSelector is selectors.EpollSelector


def test_the_engine_code_never_selects():
    hits = []
    for pkg in ("netcore", "drivers", "runtime"):
        for path in sorted((ROOT / pkg).rglob("*.py")):
            for n, line in enumerate(path.read_text().splitlines(), 1):
                code = line.split("#", 1)[0]
                if BANNED.search(code) and not code.lstrip().startswith(('"', "'")):
                    hits.append(f"{path.relative_to(ROOT)}:{n}: {line.strip()}")
    assert not hits, "\n".join(hits)

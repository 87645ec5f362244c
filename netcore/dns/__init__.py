"""The embedded DNS server (Docker's 127.0.0.11), as a core plugin.

- ``records``: the name index, pure data (which names, on which network, seen by whom);
- ``query``: answering one query from the index, or deciding to forward it;
- ``forward``: upstream selection and forwarding, one connected socket per attempt;
- ``server``: the sockets and the engine-wide selector thread;
- ``plugin``: ``EmbeddedDns``, the observer hooks that keep all of it in step.
"""

from netcore.dns.plugin import EmbeddedDns

__all__ = ["EmbeddedDns"]

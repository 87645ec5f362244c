"""Side-by-side benchmarks of netcore against Docker, Podman, the CNI bridge plugin and
the kernel floor (issue 6). Run as ``python -m tests.benchmarks --help``.

Not part of the test run: pytest's testpaths leave this package out, and no module here
is named ``test_*.py``. Every peer runs inside a network namespace of its own (``ncb-*``)
so the host's firewall and links stay untouched.
"""

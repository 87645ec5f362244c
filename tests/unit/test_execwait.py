"""execwait: which deaths of pid 1 before its command ran are a command that cannot be run,
and the pre-check's view of bind mounts."""

from __future__ import annotations

import os

import pytest

from runtime.engine.execwait import failure, mounted_view
from runtime.engine.rootfs import ExecError, RootView, find_command


@pytest.mark.parametrize(("code", "line", "expected"), [
    (1, "bwrap: execvp /x.sh: No such file or directory", ('exec: "/x.sh": no such file or directory', 127)),
    (1, "bwrap: execvp /x.sh: Permission denied", ('exec: "/x.sh": permission denied', 126)),
    (1, "bwrap: execvp /x.sh: Exec format error", ('exec: "/x.sh": exec format error', 126)),
    (127, 'exec: "/x.sh": No such file or directory', ('exec: "/x.sh": no such file or directory', 127)),
    (126, 'exec: "/x.sh": Permission denied', ('exec: "/x.sh": permission denied', 126)),
    (1, "bwrap: Can't mount proc on /newroot/proc: Operation not permitted", None),  # setup, not the command
    (127, "sh: 1: nosuch: not found", None),  # the command ran: its own 127
    (0, "", None),
    (None, "bwrap: execvp /x.sh: No such file or directory", None),  # no exit code recorded: not ours to say
])
def test_failure_is_only_an_exec_that_failed(code, line, expected):
    assert failure(code, line, "/x.sh") == expected


def test_the_pre_check_sees_bind_mounts(tmp_path):
    (tmp_path / "bin").mkdir()
    tool = tmp_path / "bin" / "tool"
    tool.write_text("#!/bin/sh\n")
    tool.chmod(0o755)
    (tmp_path / "data").write_text("x")
    root = RootView(("/",))
    with pytest.raises(ExecError):
        find_command(root, "/opt/netcore-test-tools/tool", "/usr/bin", "/")
    view = mounted_view(root, {"/opt/netcore-test-tools": str(tmp_path / "bin"), "/etc/data": str(tmp_path / "data")})
    assert find_command(view, "/opt/netcore-test-tools/tool", "/usr/bin", "/") == "/opt/netcore-test-tools/tool"
    assert find_command(view, "tool", "/usr/bin:/opt/netcore-test-tools", "/") == "/opt/netcore-test-tools/tool"
    with pytest.raises(ExecError) as exc:
        find_command(view, "/etc/data", "/usr/bin", "/")
    assert exc.value.code == 126  # a bound file that is not executable
    assert find_command(view, "sh", "/usr/bin:/bin", "/").endswith("/sh")  # the rest is the root's
    assert mounted_view(root, {}) is root and os.path.isdir(view.lookup("/usr"))

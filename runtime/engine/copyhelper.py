"""The process ``cp`` runs in (``python -S -m runtime.engine.copyhelper get|put ... -- ROOT``):
it enters a container's root (see ``runtime.engine.copy``), then packs or unpacks with
``runtime.copyrules``, never looking up a user or group name in there. It imports nothing
of netcore, so that it starts fast.
"""

from __future__ import annotations

import os
import sys
import tempfile

__all__ = ["main"]


def _enter(root: list[str]) -> None:
    kind = root[0]
    if kind == "proc":
        os.chroot(f"/proc/{root[1]}/root")
    elif kind == "overlay":
        mnt, upper, work, layers = root[1], root[2], root[3], root[4:]
        opts = f"lowerdir={':'.join(reversed(layers))},upperdir={upper},workdir={work}"
        import subprocess

        res = subprocess.run(["/bin/mount", "-t", "overlay", "-o", opts, "overlay", mnt], capture_output=True, text=True)
        if res.returncode != 0:
            raise OSError(f"cannot mount the container's root: {res.stderr.strip()}")
        os.chroot(mnt)
    os.chdir("/")


def main(argv: list[str]) -> int:
    import tarfile

    from runtime import copyrules

    # no user or group lookups once inside: NSS would load the container's libraries into
    # this root process (Docker's CVE-2019-14271); names stay out, numbers go in the archive
    tarfile.pwd = tarfile.grp = None  # type: ignore[attr-defined]

    sep = argv.index("--")
    args, root = argv[:sep], argv[sep + 1:]
    try:
        if args[0] == "get":
            path, follow, name = args[1], args[2] == "1", args[3]
            _enter(root)
            out = os.fdopen(sys.stdout.fileno(), "wb", closefd=False)
            copyrules.pack(path, out, follow=follow, where=f" in container {name}")
            out.flush()
        else:
            path, keep_owner, raw = args[1], args[2] == "1", args[3] == "1"
            spool = tempfile.TemporaryFile()  # opened on the host, before entering the root
            src = os.fdopen(sys.stdin.fileno(), "rb", closefd=False)
            while chunk := src.read(1 << 20):
                spool.write(chunk)
            spool.seek(0)
            _enter(root)
            copyrules.unpack(spool, path, keep_owner=keep_owner, raw=raw)
    except (copyrules.CopyError, OSError) as exc:
        print(str(exc) if isinstance(exc, copyrules.CopyError) else f"{exc.strerror or exc}: {getattr(exc, 'filename', '') or path}",
              file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

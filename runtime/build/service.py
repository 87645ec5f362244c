"""The engine's side of ``netcore build``: ``POST /build`` with the context tar as the body.

What can be checked before any step runs is answered as an API error (one line, a 4xx):
a bad tag, a context that is not a tar, a missing Dockerfile, a Dockerfile that does
not parse, a FROM image that does not exist. Then the answer streams the build as
Docker's API does, one JSON object a line: ``{"stream": "Step 1/5 : ..."}`` while it
runs, and last either ``{"aux": {"ID": "sha256:..."}}`` or ``{"error": "...",
"errorDetail": {"message": "...", "code": N}}``. The build runs in its own thread so
that RUN output reaches the client as it is printed; a client that goes away cancels it
at its next line of progress.
"""

from __future__ import annotations

import json
import logging
import os
import queue
import shutil
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

from netcore import InvalidConfig, NetcoreError

from runtime.build import context as build_context
from runtime.build.builder import Builder, BuildError, BuildOptions, ImageStore, Runner, check_tag
from runtime.build.cache import BuildCache
from runtime.build.dockerfile import Dockerfile, DockerfileError, Instruction, parse
from runtime.build.words import ExpandError, expand

__all__ = ["BuildService"]

log = logging.getLogger("netcore.build")
_DONE = object()


class _Cancelled(Exception):
    pass


class BuildService:
    def __init__(self, root: str, store: ImageStore, runner: Runner | None) -> None:
        self.dir = os.path.join(root, "build")
        self.tmp = os.path.join(self.dir, "tmp")
        shutil.rmtree(self.tmp, ignore_errors=True)  # what a killed engine's builds left
        os.makedirs(self.tmp, exist_ok=True)
        self.store = store
        self.builder = Builder(store, BuildCache(root), runner, self.tmp)

    def handle(self, body: Any, query: dict[str, str]) -> Iterator[bytes]:
        """Check the request, then return the stream of the build's progress."""
        try:
            return self._handle(body, query)
        finally:
            _drain(body)

    def _handle(self, body: Any, query: dict[str, str]) -> Iterator[bytes]:
        try:
            tags = [check_tag(t) for t in (query.get("t") or "").split(",") if t]
        except BuildError as exc:
            raise InvalidConfig(str(exc)) from None
        try:
            build_args = json.loads(query.get("buildargs") or "{}")
        except ValueError:
            raise InvalidConfig("buildargs is not a JSON object") from None
        if not isinstance(build_args, dict) or not all(isinstance(v, str) for v in build_args.values()):
            raise InvalidConfig("buildargs must map names to strings")
        try:
            labels = json.loads(query.get("labels") or "{}")
        except ValueError:
            raise InvalidConfig("labels is not a JSON object") from None
        if not isinstance(labels, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in labels.items()):
            raise InvalidConfig("labels must map names to strings")
        opts = BuildOptions(tags, build_args, query.get("nocache") in ("1", "true"))
        ctx = tempfile.mkdtemp(prefix="context-", dir=self.tmp)
        try:
            if body is None:
                raise InvalidConfig("the request carries no build context (a tar, Content-Type: application/x-tar)")
            try:
                build_context.unpack(body, ctx)
            except build_context.ContextError as exc:
                raise InvalidConfig(str(exc)) from None
            df = self._dockerfile(ctx, query.get("dockerfile") or "Dockerfile")
            df = _shaped(df, query.get("target") or "", labels)
            self._check_bases(df)
        except BaseException:
            shutil.rmtree(ctx, ignore_errors=True)
            raise
        return self._stream(df, ctx, opts)

    def _dockerfile(self, ctx: str, name: str) -> Dockerfile:
        path = os.path.normpath(os.path.join(ctx, name))
        if not path.startswith(ctx + "/") or not os.path.isfile(path):
            raise InvalidConfig(f"Cannot locate specified Dockerfile: {name}")
        with open(path, encoding="utf-8", errors="replace") as f:
            text = f.read()
        try:
            return parse(text, os.path.basename(name) if not name.startswith(".dockerfile.") else "Dockerfile")
        except DockerfileError as exc:
            raise InvalidConfig(str(exc)) from None

    def _check_bases(self, df: Dockerfile) -> None:
        """Every FROM that names an image (not scratch, not an earlier stage) must resolve now."""
        meta: dict[str, str] = {}
        for ins in df.meta_args:
            for word in ins.args:
                name, sep, default = word.partition("=")
                if sep:
                    try:
                        meta[name] = expand(default, meta, df.escape)
                    except ExpandError:
                        pass
        names: set[str] = set()
        for stage in df.stages:
            try:
                ref = expand(stage.base, meta, df.escape)
            except ExpandError as exc:
                raise InvalidConfig(f"Dockerfile:{stage.start.line}: {exc}") from None
            if "$" not in stage.base and ref.lower() != "scratch" and ref.lower() not in names:
                self.store.resolve(ref)  # NotFound: "No such image: ..." as a 404
            if stage.name:
                names.add(stage.name)

    def _stream(self, df: Dockerfile, ctx: str, opts: BuildOptions) -> Iterator[bytes]:
        lines: queue.SimpleQueue[Any] = queue.SimpleQueue()
        cancelled = threading.Event()

        def emit(text: str) -> None:
            if cancelled.is_set():
                raise _Cancelled()
            lines.put({"stream": text})

        def work() -> None:
            try:
                image = self.builder.build(df, ctx, opts, emit)
                lines.put({"aux": {"ID": image.id}})
            except _Cancelled:
                log.info("build cancelled: the client went away")
            except BuildError as exc:
                lines.put(_error(str(exc), exc.code))
            except NetcoreError as exc:
                lines.put(_error(str(exc), 1))
            except Exception as exc:  # a bug: one line to the client, the traceback to the engine log
                log.exception("build failed")
                lines.put(_error(f"internal error: {type(exc).__name__}: {exc}", 1))
            finally:
                shutil.rmtree(ctx, ignore_errors=True)
                lines.put(_DONE)

        thread = threading.Thread(target=work, name="build", daemon=True)
        thread.start()

        def chunks() -> Iterator[bytes]:
            try:
                while (item := lines.get()) is not _DONE:
                    yield (json.dumps(item) + "\n").encode()
            finally:
                cancelled.set()

        return chunks()


def _shaped(df: Dockerfile, target: str, labels: dict[str, str]) -> Dockerfile:
    """``--target``: the stages up to that one; ``--label``: a LABEL step at the end, as
    Docker's classic builder adds it (its values taken literally)."""
    stages = df.stages
    if target:
        names = [s.name for s in stages]
        if target.lower() not in names:
            raise InvalidConfig(f"failed to reach build target {target} in Dockerfile")
        stages = stages[: names.index(target.lower()) + 1]
    if labels:
        last = stages[-1]
        args = tuple(w for k, v in sorted(labels.items()) for w in (_literal(k), _literal(v)))
        text = "LABEL " + " ".join(f"{k}={json.dumps(v)}" for k, v in sorted(labels.items()))
        extra = Instruction("LABEL", args, original=text, line=0)
        stages = [*stages[:-1], replace(last, instructions=[*last.instructions, extra])]
    return replace(df, stages=list(stages))


def _literal(text: str) -> str:
    """``text`` quoted so that word expansion gives it back unchanged."""
    return "'" + text.replace("'", "'\"'\"'") + "'"


def _drain(body: Any) -> None:
    """Read what the tar reader left (the archive's zero padding): a connection closed with
    unread bytes is reset, and the client would lose the end of the answer."""
    read = getattr(body, "read", None)
    while read is not None and read(1 << 16):
        pass


def _error(message: str, code: int) -> dict[str, Any]:
    return {"error": message, "errorDetail": {"message": message, "code": code}}


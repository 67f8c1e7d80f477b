"""The control endpoint: a small local socket through which the CLI talks to a running `serve`.

Each `serve` listens on `<state dir>/run/serve-<pid>.sock` (the folder owner-only, 0700; the
socket 0600), so only the user who started it can ask it anything. The protocol is one JSON
object per line, one request per connection (the server closes it after replying):

    → {"op": "status"}                      (any other keys are the op's parameters)
    ← {"result": {...}}                     or  {"error": "one sentence"}

Ops are supplied by the caller as `handlers` (`"status"` by the supervisor; live profile
switching can add its own). `ping` is built in, answering the pid and the ops on offer.
A handler's exception becomes an `error` reply; it never ends the endpoint or the gateway.

Why one request per connection: with anyio 4.16 on asyncio, a Unix stream whose pending
`receive()` is cancelled just as data arrives raises `InvalidStateError` from a loop callback
(agronholm/anyio#1267). Never holding an idle read open keeps serve's shutdown clear of it.

Discovery needs no registry: `list_endpoints` lists the sockets in the run folder and removes
those whose pid is gone (a SIGKILLed serve cannot unlink its own).
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import anyio.abc
import orjson
from anyio.streams.buffered import BufferedByteReceiveStream

from mcpmux.errors import ControlError
from mcpmux.paths import StatePaths, ensure_private_dir, state_paths
from mcpmux.wire import as_object

logger = logging.getLogger("mcpmux")

Handler = Callable[[dict[str, Any]], Awaitable[dict[str, Any]]]
"""One op: receives the request's parameters (without `op`), returns the JSON object to reply with."""

DEFAULT_TIMEOUT_SECONDS = 5.0
HANDLER_TIMEOUT_SECONDS = 10.0
IDLE_TIMEOUT_SECONDS = 30.0
MAX_REQUEST_BYTES = 1024 * 1024
_PREFIX, _SUFFIX = "serve-", ".sock"
# sun_path holds 108 bytes on Linux and 104 on macOS and the BSDs, the terminating NUL included.
MAX_SOCKET_PATH_BYTES = 107 if sys.platform.startswith("linux") else 103


@dataclass(frozen=True, slots=True)
class Endpoint:
    """The control socket of one running `serve`."""

    pid: int
    path: Path


def run_dir(paths: StatePaths | None = None) -> Path:
    """The folder holding the control sockets of running serves."""
    return (paths or state_paths()).state_dir / "run"


def endpoint_path(pid: int | None = None, paths: StatePaths | None = None) -> Path:
    """Where the serve with `pid` (default: this process) listens."""
    return run_dir(paths) / f"{_PREFIX}{os.getpid() if pid is None else pid}{_SUFFIX}"


def pid_alive(pid: int) -> bool:
    """Whether a process with this pid exists (it may belong to another user)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def list_endpoints(paths: StatePaths | None = None) -> list[Endpoint]:
    """The endpoints of running serves, by pid; sockets left by serves that died are removed."""
    folder = run_dir(paths)
    try:
        entries = list(folder.iterdir())
    except FileNotFoundError:
        return []
    found: list[Endpoint] = []
    for entry in entries:
        name = entry.name
        if not (name.startswith(_PREFIX) and name.endswith(_SUFFIX)):
            continue
        digits = name[len(_PREFIX) : -len(_SUFFIX)]
        if not digits.isdigit():
            continue
        pid = int(digits)
        if pid_alive(pid):
            found.append(Endpoint(pid, entry))
        else:
            entry.unlink(missing_ok=True)
    return sorted(found, key=lambda e: e.pid)


class ControlServer:
    """Serves `handlers` on a Unix socket until cancelled; the socket is removed on the way out."""

    def __init__(self, handlers: Mapping[str, Handler]) -> None:
        self._handlers: dict[str, Handler] = {"ping": self._ping, **handlers}

    async def serve(
        self,
        path: Path | None = None,
        *,
        task_status: anyio.abc.TaskStatus[Path | None] = anyio.TASK_STATUS_IGNORED,
    ) -> None:
        """Listen on `path` (default: this process's `endpoint_path()`); `task_status` gets the path once listening.

        If the socket cannot be created (path too long, folder not writable) this logs a warning
        with the fix, reports `None` as started and returns: the gateway serves on without it.
        """
        path = path or endpoint_path()
        try:
            listener = await _listen(path)
        except (OSError, ControlError) as exc:
            logger.warning("status endpoint unavailable, `mcpmux status` will not see this serve: %s", exc)
            task_status.started(None)
            return
        try:
            async with listener:
                task_status.started(path)
                await listener.serve(self._connection)
        finally:
            path.unlink(missing_ok=True)

    async def _ping(self, _params: dict[str, Any]) -> dict[str, Any]:
        return {"pid": os.getpid(), "ops": sorted(self._handlers)}

    async def _connection(self, stream: anyio.abc.SocketStream) -> None:
        # Everything is caught here: an exception escaping a connection would end the listener.
        async with stream:
            try:
                with anyio.fail_after(IDLE_TIMEOUT_SECONDS):
                    line = await BufferedByteReceiveStream(stream).receive_until(b"\n", MAX_REQUEST_BYTES)
            except (TimeoutError, anyio.EndOfStream, anyio.IncompleteRead, anyio.DelimiterNotFound):
                return
            except (anyio.BrokenResourceError, anyio.ClosedResourceError, OSError):
                return
            reply = await self._answer(line)
            try:
                data = orjson.dumps(reply)
            except TypeError as exc:  # a handler returned something JSON cannot hold
                data = orjson.dumps({"error": f"the reply could not be encoded as JSON: {exc}"})
            with contextlib.suppress(anyio.BrokenResourceError, anyio.ClosedResourceError, OSError):
                await stream.send(data + b"\n")

    async def _answer(self, line: bytes) -> dict[str, Any]:
        try:
            request = orjson.loads(line)
        except orjson.JSONDecodeError:
            return {"error": "a request must be one JSON object per line"}
        params = as_object(request)
        op = params.pop("op", None) if params is not None else None
        if params is None or not isinstance(op, str):
            return {"error": 'a request must be a JSON object with a string "op", e.g. {"op": "status"}'}
        handler = self._handlers.get(op)
        if handler is None:
            return {"error": f"unknown op {op!r}; this serve offers: {', '.join(sorted(self._handlers))}"}
        try:
            with anyio.fail_after(HANDLER_TIMEOUT_SECONDS):
                return {"result": await handler(params)}
        except TimeoutError:
            return {"error": f"op {op!r} did not finish within {HANDLER_TIMEOUT_SECONDS:g} s"}
        except Exception as exc:  # a failing handler must not end the endpoint
            logger.warning("control op %r failed: %s", op, exc)
            return {"error": f"op {op!r} failed: {exc}"}


async def _listen(path: Path) -> anyio.abc.SocketListener:
    if len(os.fsencode(path)) > MAX_SOCKET_PATH_BYTES:
        raise ControlError(
            path,
            f"socket path {path} is longer than the {MAX_SOCKET_PATH_BYTES} bytes Unix sockets allow "
            "(set MCPMUX_HOME to a shorter folder)",
        )
    folder = ensure_private_dir(path.parent)
    folder.chmod(0o700)  # mkdir's mode does not apply to a folder that already existed
    return await anyio.create_unix_listener(path, mode=0o600)


async def request(
    path: Path, op: str, *, timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS, **params: Any
) -> dict[str, Any]:
    """Send one request to the endpoint at `path` and return its `result`; raise `ControlError` on any failure."""
    pid = path.name.removeprefix(_PREFIX).removesuffix(_SUFFIX)
    who = f"mcpmux serve (pid {pid})"
    try:
        with anyio.fail_after(timeout_seconds):
            async with await anyio.connect_unix(path) as stream:
                await stream.send(orjson.dumps({**params, "op": op}) + b"\n")
                line = await BufferedByteReceiveStream(stream).receive_until(b"\n", 64 * MAX_REQUEST_BYTES)
    except TimeoutError:
        raise ControlError(path, f"{who} did not answer {op!r} on {path} within {timeout_seconds:g} s") from None
    except (FileNotFoundError, ConnectionRefusedError):
        raise ControlError(path, f"{who} is not listening on {path} (it may have just exited)") from None
    except (OSError, anyio.EndOfStream, anyio.IncompleteRead, anyio.BrokenResourceError) as exc:
        raise ControlError(path, f"{who} closed the connection on {path} before answering {op!r}: {exc}") from None
    except anyio.DelimiterNotFound:
        raise ControlError(path, f"{who} sent an oversized reply to {op!r} on {path}") from None
    try:
        reply = orjson.loads(line)
    except orjson.JSONDecodeError:
        raise ControlError(path, f"{who} sent a reply that is not JSON on {path}") from None
    reply = as_object(reply) or {}
    if (result := as_object(reply.get("result"))) is not None:
        return result
    if "error" in reply:
        raise ControlError(path, f"{who} refused {op!r}: {reply['error']}")
    raise ControlError(path, f"{who} sent a reply without result or error on {path}")

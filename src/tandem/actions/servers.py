"""MCP servers from the release's configuration, and one connection to each, on the official SDK's ``Client``.

A release names its servers in a YAML file (``examples/bank/mcp/servers.yaml``)::

    servers:
      fraud:                                   # started by the runtime, spoken to over stdio
        transport: stdio
        command: "{python}"
        args: ["{here}/fraud.py", "--data", "{data_dir}/fraud.db", "--world", "{world}"]
      crm:                                     # started by the runtime, spoken to over streamable HTTP;
        transport: http                        # the process prints {"url": ...} once it listens
        command: "{python}"
        args: ["{here}/crm.py", "--data", "{data_dir}/crm.db", "--world", "{world}", "--http", "127.0.0.1:0"]
      ledger_of_record:                        # or a server someone else runs
        transport: http
        url: https://mcp.example.com/mcp
        timeout: 10s

``{python}`` is the interpreter running Tandem, ``{here}`` the folder of the file, ``{data_dir}`` the
deployment's data directory, ``{world}`` the tenant's ``world.yaml``.

A ``McpConnection`` owns its SDK client in one task (the SDK's client is an anyio context that must be entered
and left by the same task) and hands it to any number of concurrent callers. When the server goes away
(the process died, the connection closed) the connection marks itself broken; the next caller starts the
server again and reconnects, so the caller can reconcile what the interrupted call did.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, cast

import mcp_types as types
import yaml
from mcp import Client, StdioServerParameters
from mcp.client.stdio import get_default_environment
from mcp.shared.exceptions import MCPError

log = logging.getLogger(__name__)

DEFAULT_CONNECT_TIMEOUT_S = 20.0
DEFAULT_CALL_TIMEOUT_S = 10.0


class ServerConfigError(ValueError):
    pass


class ServerUnavailable(Exception):
    """The server could not be reached or started: nothing was sent to it."""


@dataclass(frozen=True)
class ServerConfig:
    name: str
    transport: Literal["stdio", "http"]
    command: str | None = None
    args: tuple[str, ...] = ()
    env: Mapping[str, str] = field(default_factory=dict)
    cwd: str | None = None
    url: str | None = None
    connect_timeout_s: float = DEFAULT_CONNECT_TIMEOUT_S
    call_timeout_s: float = DEFAULT_CALL_TIMEOUT_S

    def with_env(self, extra: Mapping[str, str]) -> ServerConfig:
        return ServerConfig(
            self.name, self.transport, self.command, self.args, {**self.env, **extra}, self.cwd, self.url,
            self.connect_timeout_s, self.call_timeout_s,
        )  # fmt: skip


def _seconds(raw: Any, where: str) -> float:
    text = str(raw).strip()
    units = {"ms": 0.001, "s": 1.0, "m": 60.0}
    for unit in ("ms", "s", "m"):
        if text.endswith(unit) and text[: -len(unit)].replace(".", "").isdigit():
            return float(text[: -len(unit)]) * units[unit]
    try:
        return float(text)
    except ValueError:
        raise ServerConfigError(f"{where}: expected seconds or a duration such as 500ms, 10s") from None


def parse_servers(raw: Any, *, where: str, values: Mapping[str, str]) -> dict[str, ServerConfig]:
    if not isinstance(raw, Mapping) or not isinstance(raw.get("servers"), Mapping):
        raise ServerConfigError(f"{where}: expected servers: {{name: {{transport, ...}}}}")

    def fill(text: Any) -> str:
        try:
            return str(text).format_map(values)
        except KeyError as exc:
            raise ServerConfigError(f"{where}: unknown placeholder {exc} in {text!r}") from None

    out: dict[str, ServerConfig] = {}
    for name, spec in raw["servers"].items():
        here = f"{where}: servers.{name}"
        if not isinstance(spec, Mapping):
            raise ServerConfigError(f"{here}: expected a mapping")
        transport = spec.get("transport")
        if transport not in ("stdio", "http"):
            raise ServerConfigError(f"{here}.transport: use stdio or http")
        command = fill(spec["command"]) if spec.get("command") else None
        url = fill(spec["url"]) if spec.get("url") else None
        if transport == "stdio" and command is None:
            raise ServerConfigError(f"{here}: a stdio server needs a command")
        if transport == "http" and (command is None) == (url is None):
            raise ServerConfigError(f"{here}: an http server needs either a url or a command that announces one")
        args = spec.get("args") or []
        if not isinstance(args, list):
            raise ServerConfigError(f"{here}.args: expected a list")
        out[str(name)] = ServerConfig(
            name=str(name),
            transport=transport,
            command=command,
            args=tuple(fill(a) for a in args),
            env={str(k): fill(v) for k, v in (spec.get("env") or {}).items()},
            cwd=fill(spec["cwd"]) if spec.get("cwd") else None,
            url=url,
            connect_timeout_s=_seconds(
                spec.get("connect_timeout", DEFAULT_CONNECT_TIMEOUT_S), f"{here}.connect_timeout"
            ),
            call_timeout_s=_seconds(spec.get("timeout", DEFAULT_CALL_TIMEOUT_S), f"{here}.timeout"),
        )
    return out


def load_servers(path: Path, *, data_dir: Path, world: Path | None = None) -> dict[str, ServerConfig]:
    try:
        raw = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise ServerConfigError(f"{path}: {exc}") from exc
    values = {
        "python": sys.executable,
        "here": str(path.parent.resolve()),
        "data_dir": str(data_dir.resolve()),
        "world": str((world or path.parent.parent / "world.yaml").resolve()),
    }
    return parse_servers(raw, where=str(path), values=values)


class McpConnection:
    """One server, one SDK client, shared by concurrent callers; restarted on demand after it broke."""

    def __init__(self, config: ServerConfig) -> None:
        self.config = config
        self.generation = 0  # how many times a session was established; a new one may offer other tools
        self.last_error: str | None = None
        self._client: Client | None = None
        self._task: asyncio.Task[None] | None = None
        self._ready = asyncio.Event()
        self._broken = asyncio.Event()
        self._wanted = asyncio.Event()
        self._attempted = asyncio.Event()
        self._stop = asyncio.Event()
        self._process: asyncio.subprocess.Process | None = None

    @property
    def connected(self) -> bool:
        return self._ready.is_set()

    async def client(self) -> Client:
        """The connected SDK client, starting (or reaching) the server first if need be; ServerUnavailable if
        that does not work within the connect timeout."""
        if self._task is None or self._task.done():
            self._stop.clear()
            self._task = asyncio.create_task(self._own(), name=f"mcp:{self.config.name}")
        if self._ready.is_set() and self._client is not None:
            return self._client
        self._attempted.clear()
        self._wanted.set()
        ready = asyncio.create_task(self._ready.wait())
        attempted = asyncio.create_task(self._attempted.wait())
        try:
            await asyncio.wait({ready, attempted}, timeout=self.config.connect_timeout_s, return_when="FIRST_COMPLETED")
        finally:
            ready.cancel()
            attempted.cancel()
        if self._ready.is_set() and self._client is not None:
            return self._client
        raise ServerUnavailable(
            f"MCP server {self.config.name} is unavailable: {self.last_error or 'it did not start in time'}"
        )

    async def call(
        self, name: str, arguments: Mapping[str, Any], *, meta: Mapping[str, Any] | None, read_timeout_s: float
    ) -> types.CallToolResult:
        """Call a tool. ``ServerUnavailable``: nothing was sent. ``MCPError`` with ``CONNECTION_CLOSED`` or
        ``REQUEST_TIMEOUT``, or ``OSError``: sent, outcome unknown. Any other ``MCPError``: the server refused it."""
        client = await self.client()
        generation = self.generation
        try:
            # The SDK types _meta as a TypedDict with open extra items; ours is such a map.
            request_meta = cast(types.RequestParamsMeta, dict(meta)) if meta else None
            return await client.call_tool(name, dict(arguments), read_timeout_seconds=read_timeout_s, meta=request_meta)
        except MCPError as exc:
            if exc.code == types.CONNECTION_CLOSED:
                self._mark_broken(generation, exc.message)
            raise
        except (OSError, EOFError) as exc:
            self._mark_broken(generation, str(exc))
            raise

    async def list_tools(self) -> list[types.Tool]:
        client = await self.client()
        tools: list[types.Tool] = []
        cursor: str | None = None
        for _ in range(100):
            page = await client.list_tools(cursor=cursor, cache_mode="bypass")
            tools.extend(page.tools)
            cursor = page.next_cursor
            if cursor is None:
                break
        return tools

    def _mark_broken(self, generation: int, reason: str) -> None:
        if generation == self.generation and self._ready.is_set():
            log.warning("MCP server %s broke: %s", self.config.name, reason)
            self.last_error = reason
            self._ready.clear()
            self._broken.set()

    async def aclose(self) -> None:
        self._stop.set()
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.wait_for(self._task, timeout=15)
            self._task = None

    # -- the owning task -------------------------------------------------------------------------------
    async def _own(self) -> None:
        while not self._stop.is_set():
            await _first(self._wanted, self._stop)
            if self._stop.is_set():
                break
            self._wanted.clear()
            try:
                async with contextlib.AsyncExitStack() as stack:
                    target = await self._target(stack)
                    client = Client(target, read_timeout_seconds=self.config.call_timeout_s)
                    async with asyncio.timeout(self.config.connect_timeout_s):
                        await stack.enter_async_context(client)
                    self._client = client
                    self.generation += 1
                    self.last_error = None
                    self._broken.clear()
                    self._ready.set()
                    self._attempted.set()
                    await _first(self._broken, self._stop)
            except Exception as exc:  # the top of a long-lived task: record it, the next caller retries
                self.last_error = f"{type(exc).__name__}: {exc}"
                log.warning("MCP server %s: %s", self.config.name, self.last_error)
            finally:
                self._ready.clear()
                self._client = None
                await self._stop_process()
                self._attempted.set()

    async def _target(self, stack: contextlib.AsyncExitStack) -> StdioServerParameters | str:
        config = self.config
        if config.transport == "stdio":
            assert config.command is not None
            return StdioServerParameters(
                command=config.command, args=list(config.args), env=dict(config.env), cwd=config.cwd
            )
        if config.command is None:
            assert config.url is not None
            return config.url
        env = {**get_default_environment(), **config.env}
        self._process = await asyncio.create_subprocess_exec(
            config.command, *config.args, env=env, cwd=config.cwd, stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
        )  # fmt: skip
        assert self._process.stdout is not None
        line = await asyncio.wait_for(self._process.stdout.readline(), config.connect_timeout_s)
        if not line:
            raise ServerUnavailable(f"{config.name} exited before announcing its URL")
        url = str(json.loads(line)["url"])
        watcher = asyncio.create_task(self._watch(self._process, self.generation + 1))
        stack.callback(watcher.cancel)
        return url

    async def _watch(self, process: asyncio.subprocess.Process, generation: int) -> None:
        code = await process.wait()
        self._mark_broken(generation, f"server process exited with {code}")

    async def _stop_process(self) -> None:
        process, self._process = self._process, None
        if process is None or process.returncode is not None:
            return
        if process.stdin is not None:
            process.stdin.close()
        process.terminate()
        try:
            await asyncio.wait_for(process.wait(), 5)
        except TimeoutError:
            process.kill()
            await asyncio.wait_for(process.wait(), 5)


async def _first(*events: asyncio.Event) -> None:
    waiters = [asyncio.create_task(e.wait()) for e in events]
    try:
        await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()

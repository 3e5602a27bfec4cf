"""Tools: what the release may call, discovered from MCP servers with their schemas and checked against pins.

A tool's contract is what the server lists for it: name, description, input and output schemas, and the
Tandem declaration in its ``_meta`` (``tandem/effect``: idempotent by the key passed in the call's ``_meta``,
the tool that reconciles by that key, the tool that compensates). The SHA-256 of that contract is what a
release pins. A tool whose contract differs from its pin, or that is missing, or has no pin, is unavailable:
the gate denies it and the worker never calls it. Changing a tool is a new release, never a surprise.

``Toolbox.call`` turns every way a call can end into one ``CallOutcome``:

- ``ok``: the server answered with a result;
- ``error``: the server answered that it did not do it (a tool error or a refused request);
- ``unknown``: the request may have reached the server and no answer came (timeout, connection lost,
  server died): only reconciling by the idempotency key can tell;
- ``unavailable``: nothing was sent (the server could not be reached or the tool is unavailable).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

import httpx
import mcp_types as types
from mcp.shared.exceptions import MCPError

from tandem.actions.ledger import EFFECT_META_KEY, IDEMPOTENCY_META_KEY
from tandem.actions.servers import McpConnection, ServerConfig, ServerUnavailable

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Binding:
    """How the release binds a Tandem tool name to a server's tool."""

    tool: str
    server: str
    mcp_tool: str
    pin: str | None
    timeout_s: float


@dataclass(frozen=True, slots=True)
class Contract:
    """A tool as its server lists it, and the digest a release pins."""

    server: str
    name: str
    digest: str
    idempotent: bool
    key_field: str
    reconcile: str | None
    compensate: str | None
    definition: types.Tool


def contract_digest(tool: types.Tool) -> str:
    """SHA-256 of the parts of a tool that change what calling it means."""
    effect = (tool.meta or {}).get(EFFECT_META_KEY)
    canonical = {
        "name": tool.name,
        "title": tool.title,
        "description": tool.description,
        "input_schema": tool.input_schema,
        "output_schema": tool.output_schema,
        "effect": effect,
    }
    return hashlib.sha256(json.dumps(canonical, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def contract_of(server: str, tool: types.Tool) -> Contract:
    effect = (tool.meta or {}).get(EFFECT_META_KEY) or {}
    return Contract(
        server=server,
        name=tool.name,
        digest=contract_digest(tool),
        idempotent=bool(effect.get("idempotent")),
        key_field=str(effect.get("key") or IDEMPOTENCY_META_KEY),
        reconcile=str(effect["reconcile"]) if effect.get("reconcile") else None,
        compensate=str(effect["compensate"]) if effect.get("compensate") else None,
        definition=tool,
    )


Status = Literal["ok", "error", "unknown", "unavailable"]


@dataclass(frozen=True, slots=True)
class CallOutcome:
    status: Status
    result: dict[str, Any] | None = None
    error: str | None = None

    @property
    def replayed(self) -> bool:
        return bool(self.result and self.result.get("replayed"))


@dataclass(frozen=True, slots=True)
class Reconciliation:
    """What the server says about an idempotency key: ``found`` None means it could not be asked."""

    found: bool | None
    result: dict[str, Any] | None = None
    error: str | None = None


class ToolUnavailable(Exception):
    pass


class Toolbox:
    """The tools of one tenant's release, over connections to its MCP servers."""

    def __init__(self, tenant_id: str, servers: Mapping[str, ServerConfig], bindings: Mapping[str, Binding]) -> None:
        self.tenant_id = tenant_id
        self.servers = dict(servers)
        self.bindings = dict(bindings)
        self.connections = {name: McpConnection(config) for name, config in self.servers.items()}
        self._contracts: dict[str, dict[str, Contract]] = {}
        self._seen_generation: dict[str, int] = {}
        self._discovering: dict[str, asyncio.Lock] = {name: asyncio.Lock() for name in self.servers}

    async def start(self) -> dict[str, str]:
        """Start every server and discover its tools; return the servers that failed, with why."""
        names = list(self.connections)
        results = await asyncio.gather(*(self._discover(n) for n in names), return_exceptions=True)
        failed: dict[str, str] = {}
        for name, result in zip(names, results, strict=True):
            if isinstance(result, BaseException):
                if not isinstance(result, Exception):
                    raise result
                failed[name] = str(result)
        return failed

    async def aclose(self) -> None:
        await asyncio.gather(*(c.aclose() for c in self.connections.values()))

    # -- contracts and pins ----------------------------------------------------------------------------
    async def _discover(self, server: str) -> dict[str, Contract]:
        connection = self.connections[server]
        async with self._discovering[server]:
            if self._seen_generation.get(server) == connection.generation and server in self._contracts:
                return self._contracts[server]
            tools = await connection.list_tools()
            self._contracts[server] = {t.name: contract_of(server, t) for t in tools}
            self._seen_generation[server] = connection.generation
            return self._contracts[server]

    def contracts(self, server: str) -> Mapping[str, Contract]:
        return self._contracts.get(server, {})

    def problem(self, tenant_id: str, tool: str) -> str | None:
        """Why ``tool`` may not be called (``ToolAvailability`` for the gate); None while its server has not
        been discovered yet: the worker checks again just before calling."""
        if tenant_id != self.tenant_id:
            return None
        binding = self.bindings.get(tool)
        if binding is None:
            return f"the release binds no server to {tool}"
        if binding.server not in self.servers:
            return f"{tool} names server {binding.server}, which the release does not configure"
        if binding.server not in self._contracts:
            return None
        return self._check(binding, self._contracts[binding.server])

    @staticmethod
    def _check(binding: Binding, contracts: Mapping[str, Contract]) -> str | None:
        contract = contracts.get(binding.mcp_tool)
        if contract is None:
            return f"server {binding.server} does not offer {binding.mcp_tool}"
        if binding.pin is None:
            return f"{binding.tool} has no schema pin in the release (its contract is {contract.digest})"
        if contract.digest != binding.pin:
            return (
                f"the contract of {binding.tool} changed: the release pins {binding.pin[:12]}, "
                f"server {binding.server} offers {contract.digest[:12]}"
            )
        return None

    async def contract(self, tool: str) -> Contract:
        """The checked contract of a bound tool, rediscovered when its server reconnected since."""
        binding = self.bindings.get(tool)
        if binding is None or binding.server not in self.connections:
            raise ToolUnavailable(self.problem(self.tenant_id, tool) or f"{tool} is not bound")
        connection = self.connections[binding.server]
        if connection.connected and self._seen_generation.get(binding.server) == connection.generation:
            # The common case, on every call: connected, and nothing changed since the contracts were read.
            contracts = self._contracts[binding.server]
            if self._check(binding, contracts) is None:
                return contracts[binding.mcp_tool]
        try:
            await self.connections[binding.server].client()  # a reconnected server is discovered again
            contracts = await self._discover(binding.server)
        except ServerUnavailable as exc:
            raise ToolUnavailable(str(exc)) from None
        problem = self._check(binding, contracts)
        if problem is not None:
            raise ToolUnavailable(problem)
        return contracts[binding.mcp_tool]

    # -- calls -----------------------------------------------------------------------------------------
    async def call(self, tool: str, args: Mapping[str, Any], *, key: str) -> CallOutcome:
        """Call a bound tool once, passing ``key`` in ``_meta`` when the tool is idempotent by it."""
        try:
            contract = await self.contract(tool)
        except ToolUnavailable as exc:
            return CallOutcome("unavailable", error=str(exc))
        binding = self.bindings[tool]
        meta = {contract.key_field: key} if contract.idempotent else None
        return await self._call(binding.server, contract.name, args, meta, binding.timeout_s)

    async def reconcile(self, tool: str, key: str) -> Reconciliation:
        """Ask the server whether the effect with this key happened (the tool's declared reconcile tool)."""
        try:
            contract = await self.contract(tool)
        except ToolUnavailable as exc:
            return Reconciliation(None, error=str(exc))
        if contract.reconcile is None:
            return Reconciliation(None, error=f"{tool} declares no way to reconcile")
        binding = self.bindings[tool]
        outcome = await self._call(
            binding.server, contract.reconcile, {"idempotency_key": key}, None, binding.timeout_s
        )
        if outcome.status != "ok" or outcome.result is None:
            return Reconciliation(None, error=outcome.error or f"reconcile ended {outcome.status}")
        if not outcome.result.get("found"):
            return Reconciliation(False)
        entry = outcome.result.get("entry") or {}
        return Reconciliation(True, dict(entry.get("result") or {}))

    async def _call(
        self, server: str, name: str, args: Mapping[str, Any], meta: Mapping[str, Any] | None, timeout_s: float
    ) -> CallOutcome:
        connection = self.connections[server]
        try:
            # The SDK's own timeout answers REQUEST_TIMEOUT; this outer bound also covers reconnecting.
            async with asyncio.timeout(timeout_s + connection.config.connect_timeout_s):
                result = await connection.call(name, args, meta=meta, read_timeout_s=timeout_s)
        except ServerUnavailable as exc:
            return CallOutcome("unavailable", error=str(exc))
        except MCPError as exc:
            if exc.code in (types.CONNECTION_CLOSED, types.REQUEST_TIMEOUT):
                return CallOutcome("unknown", error=f"{name}: {exc.message}")
            return CallOutcome("error", error=f"{name} refused: {exc.message}")
        except (TimeoutError, OSError, EOFError, httpx.HTTPError) as exc:
            return CallOutcome("unknown", error=f"{name}: {type(exc).__name__}: {exc}")
        if result.is_error:
            text = " ".join(c.text for c in result.content if isinstance(c, types.TextContent))
            return CallOutcome("error", error=text or f"{name} failed")
        structured = result.structured_content
        if structured is None:
            text = " ".join(c.text for c in result.content if isinstance(c, types.TextContent))
            structured = {"content": text}
        return CallOutcome("ok", dict(structured))

"""The tools Tandem's MCP server offers an outside AI agent (a ``service`` token), each one step through the
same doors as everyone else: the case file through the service's data scope, actions through the conductor
and policy, notes into the case file, handoffs through the conductor and the router.

==================  ==========================================================================================
tool                what it does
==================  ==========================================================================================
read_case_file      the interaction's case as the token's data scope allows (minimum necessary; never a full
                    card number, never the conversation)
propose_action      ``ProposeAction`` as actor kind ``service``: the conductor records the proposal with the
                    policy's decision, which the result reports (allow, deny or require_approval, with its
                    rule); a leased worker executes it later, never this call
add_note            a fact ``note`` with source ``service:<id>``: people on the case see it, the customer never
                    does, and policy never reads it (it is not a trusted source)
request_handoff     hand the customer to a person: a skill queue, or the tenant's first
==================  ==========================================================================================

An interaction of another tenant is answered exactly like one that does not exist.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp_types import ToolAnnotations

from tandem import __version__
from tandem import commands as cmd
from tandem.api.tokens import Principal
from tandem.case import events as ev
from tandem.case.envelope import Actor, Event, new_id
from tandem.case.interaction import Interaction
from tandem.conductor import ConductorError
from tandem.participants.planner_scope import case_file, redact
from tandem.release.scopes import DataScopes
from tandem.routing.queue import GENERAL, queues_of
from tandem.store.protocol import InteractionNotFound
from tandem.world.world import WorldError

if TYPE_CHECKING:
    from tandem.runtime import Runtime

SCOPE_PREFIX = "data_scope:"
NOTE_FACT = "note"
MAX_NOTE = 4096
MAX_REASON = 1000
MAX_ARGS_CHARS = 16 * 1024
_NAME = re.compile(r"^[a-z][a-z0-9_]{0,63}$")

INSTRUCTIONS = """Tandem's case tools for an outside AI agent. Read a case file within your data scope, propose an
action (policy decides: the answer says allow, deny or require_approval, and which rule), add a note for
the people on the case, or hand the customer to a person. You never execute anything yourself."""


def data_scope_of(principal: Principal) -> str | None:
    """The data scope a service token was issued for (``POST /v1/services``)."""
    for scope in principal.scopes:
        if scope.startswith(SCOPE_PREFIX):
            return scope[len(SCOPE_PREFIX) :]
    return None


def principal_of(ctx: Context[Any, Any]) -> Principal:
    """The service the HTTP gate authenticated for this request (``tandem.api.mcp``): never a header's word."""
    request = ctx.request_context.request
    principal = getattr(getattr(request, "state", None), "principal", None)
    if not isinstance(principal, Principal) or principal.role != "service" or principal.tenant_id is None:
        raise ToolError("this call carries no service token")
    return principal


class CaseTools:
    """The tools' work, bound to a runtime; the MCP functions in ``build_server`` only unwrap the caller."""

    def __init__(self, runtime: Runtime, scopes: Callable[[str], DataScopes]) -> None:
        self.runtime = runtime
        self.scopes = scopes

    async def _load(self, principal: Principal, interaction_id: str) -> Interaction:
        missing = ToolError(f"no interaction {interaction_id}")
        try:
            state = await self.runtime.conductor.load(interaction_id)
        except InteractionNotFound:
            raise missing from None
        if state.tenant_id != principal.tenant_id:
            raise missing  # another tenant's case does not exist for this caller
        return state

    @staticmethod
    def actor(principal: Principal) -> Actor:
        return Actor("service", principal.id)

    async def read_case_file(self, principal: Principal, interaction_id: str) -> dict[str, Any]:
        state = await self._load(principal, interaction_id)
        scope = data_scope_of(principal)
        if scope is None:
            raise ToolError("this service token names no data scope")
        view = case_file(state, self.scopes(state.tenant_id), scope, self.runtime.clock.now())
        view["data_scope"] = scope
        return view

    async def propose_action(
        self, principal: Principal, interaction_id: str, tool: str, args: dict[str, Any], reason: str
    ) -> dict[str, Any]:
        if not _NAME.match(tool):
            raise ToolError("tool must be a snake_case name such as open_dispute")
        clean: dict[str, Any] = redact(args)  # a card number stops here, as it does at the conversation's door
        if len(json.dumps(clean, default=str)) > MAX_ARGS_CHARS:
            raise ToolError(f"the arguments are over {MAX_ARGS_CHARS // 1024} KB")
        state = await self._load(principal, interaction_id)
        proposal = cmd.ProposeAction(tool, clean, redact(reason)[:MAX_REASON])
        events = await self._execute(principal, state, [proposal])
        proposed = next((e for e in events if e.type == ev.ACTION_PROPOSED), None)
        decided = next((e for e in events if e.type == ev.ACTION_DECIDED), None)
        if proposed is None or decided is None:
            raise ToolError("the proposal was not recorded; try again")
        action_id = str(proposed.data["action_id"])
        action = (await self.runtime.conductor.load(interaction_id)).actions.get(action_id, {})
        d = decided.data
        return {
            "action_id": action_id,
            "tool": tool,
            "status": action.get("status"),
            "args_digest": proposed.data["args_digest"],
            "decision": {
                "outcome": d["outcome"],
                "rule": d["rule"],
                "policy_version": d["policy_version"],
                "reasons": redact(list(d.get("reasons") or [])),
                "requires": d.get("requires"),
                "expires_at": d.get("expires_at"),
            },
        }

    async def add_note(self, principal: Principal, interaction_id: str, text: str) -> dict[str, Any]:
        body = redact(text.strip())
        if not body:
            raise ToolError("the note is empty")
        if len(body) > MAX_NOTE:
            raise ToolError(f"a note is at most {MAX_NOTE} characters")
        state = await self._load(principal, interaction_id)
        # Each note its own subject: notes add up, a later one never hides an earlier one.
        note = cmd.Learn(NOTE_FACT, body, f"service:{principal.id}", subject=new_id("note"))
        events = await self._execute(principal, state, [note])
        learned = next((e for e in events if e.type == ev.FACT_LEARNED), None)
        if learned is None:
            raise ToolError("the note was not recorded; try again")
        return {"seq": learned.seq, "fact": NOTE_FACT, "subject": learned.data["subject"], "source": note.source}

    async def request_handoff(
        self, principal: Principal, interaction_id: str, reason: str, queue: str | None
    ) -> dict[str, Any]:
        state = await self._load(principal, interaction_id)
        try:
            tenant = self.runtime.world.tenant(state.tenant_id)
        except WorldError as exc:
            raise ToolError(str(exc)) from None
        known = (*queues_of(tenant), GENERAL)
        if queue is not None and queue not in known:
            raise ToolError(f"unknown queue {queue!r}; queues: {', '.join(known)}")
        why = redact(reason.strip())[:MAX_REASON]
        if not why:
            raise ToolError("say why the customer needs a person")
        if state.handoff is None or not state.handoff.is_open:
            target = {"kind": "queue", "id": queue or known[0]}
            await self._execute(principal, state, [cmd.RequestHandoff(target, why)])
            await self.runtime.router.step()  # queued (and offered, if someone is free) before we answer
        state = await self.runtime.conductor.load(interaction_id)
        handoff = state.handoff
        if handoff is None:
            return {"handoff": None}
        return {"handoff": {"id": handoff.handoff_id, "status": handoff.status, "queue": handoff.queue,
                            "target": handoff.target}}  # fmt: skip

    async def _execute(self, principal: Principal, state: Interaction, commands: list[cmd.Command]) -> list[Event]:
        try:
            return await self.runtime.conductor.execute(
                state.tenant_id, state.interaction_id, commands, self.actor(principal)
            )
        except InteractionNotFound:
            raise ToolError(f"no interaction {state.interaction_id}") from None
        except ConductorError as exc:  # closed, or kept changing
            raise ToolError(str(exc)) from None


def build_server(tools: CaseTools) -> MCPServer[Any]:
    """The SDK's ``MCPServer`` with Tandem's tools, each registered by an explicit ``add_tool``."""
    # Making an MCPServer configures the root logger (logging.basicConfig with a Rich handler); in the API
    # process logging belongs to the deployment, so whatever the SDK set up there is undone.
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    server: MCPServer[Any] = MCPServer(
        "tandem", version=__version__, instructions=INSTRUCTIONS, log_level="WARNING", warn_on_duplicate_tools=False
    )
    root.handlers[:] = handlers
    root.setLevel(level)

    async def read_case_file(interaction_id: str, ctx: Context[Any, Any]) -> dict[str, Any]:
        """An interaction's case file within your data scope: status, floor, assurance, intents, the facts your
        scope lists (masked as it says), the actions with their policy decisions, the handoff."""
        return await tools.read_case_file(principal_of(ctx), interaction_id)

    async def propose_action(
        interaction_id: str, tool: str, args: dict[str, Any], reason: str, ctx: Context[Any, Any]
    ) -> dict[str, Any]:
        """Propose an action on the case (for example open_dispute with its arguments). Policy decides at once;
        the answer says the decision (allow, deny or require_approval), its rule and policy version. An allowed
        action is executed later by Tandem's worker; one that needs approval waits for a person."""
        return await tools.propose_action(principal_of(ctx), interaction_id, tool, args, reason)

    async def add_note(interaction_id: str, text: str, ctx: Context[Any, Any]) -> dict[str, Any]:
        """Add a note to the case file for the people working on it. The customer never sees notes."""
        return await tools.add_note(principal_of(ctx), interaction_id, text)

    async def request_handoff(
        interaction_id: str, reason: str, ctx: Context[Any, Any], queue: str | None = None
    ) -> dict[str, Any]:
        """Hand the customer to a person: in the named skill queue, or the tenant's first."""
        return await tools.request_handoff(principal_of(ctx), interaction_id, reason, queue)

    reading = ToolAnnotations(read_only_hint=True, open_world_hint=False)
    writing = ToolAnnotations(read_only_hint=False, destructive_hint=False, open_world_hint=False)
    server.add_tool(read_case_file, annotations=reading)
    server.add_tool(propose_action, annotations=writing)
    server.add_tool(add_note, annotations=writing)
    server.add_tool(request_handoff, annotations=writing)
    return server

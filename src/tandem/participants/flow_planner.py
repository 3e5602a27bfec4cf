"""The flow planner: the self-service participant with a language model choosing what to do about each customer
line — which flow to start, what the customer stated, when to bring in a person, what to answer from the help
articles — while the flows do the work. Like a command generator: the model only emits commands; the flow engine
executes them, so every action still goes through a flow's ``propose`` and the policy gate, and every question
through ask-once.

What the model sees is the minimum it needs: the conversation (card numbers redacted at the door and again
here), the case facts within the bot's data scope (``signals.yaml``'s ``data_scopes``: no identity-challenge
answers, no full card numbers), the flows available and what the understanding step detected. The rails stay
deterministic and come first: a customer asking for a person, saying goodbye, or upset enough is handled as the
bot handles it, whatever a model would say. A model that fails or is slow leaves the bot's own choice in place.

    TANDEM_LLM=openai:gpt-4o-mini   # a real model
    TANDEM_LLM=scripted:flows       # the deterministic model shipped for the simulator and tests
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
from collections.abc import Mapping
from typing import Any

from tandem.activation.activator import Activator
from tandem.llm.protocol import LLM, Completion, LLMError, Message, Tool, ToolCall
from tandem.llm.scripted import CONTEXT_HEADER, ScriptedFlowLLM
from tandem.participants.ai import llm_from_env
from tandem.participants.bot import SelfServiceBot, _Work
from tandem.participants.planner_scope import redact, scoped_facts, shipped_scopes, transcript
from tandem.participants.protocol import ActionGate, Understanding
from tandem.release.scopes import DataScopes
from tandem.world.world import World

log = logging.getLogger(__name__)

SCRIPTED = "scripted:flows"
DEFAULT_TIMEOUT_S = 10.0
# Facts a customer states that the model may note for them (ask-once: only when the case file lacks them).
SETTABLE_FACTS = ("phone", "member_id", "email", "customer_name", "card_last4", "claim_id", "zip", "date_of_birth")
MAX_REPLY_CHARS = 600

SYSTEM_PROMPT = """You are the self-service assistant of {tenant}. You do not talk freely: you choose what to do
about the customer's latest line by calling tools, and the tools do the talking.
- start_flow: start (or carry on) the flow that serves what the customer wants; flows verify the customer,
  fetch their records, answer and propose actions within policy.
- set_fact: note something the customer stated (their phone number, member ID, ...) that the case lacks.
- request_handoff: bring in a person, with the reason, when no flow fits and the customer needs help.
- answer_from_knowledge: answer a general how-to question from the help articles.
Never promise an action yourself, never ask for a card number, PIN or password. If nothing fits, call nothing."""


def _tools(flow_names: list[str]) -> list[Tool]:
    return [
        Tool("start_flow", "Start or carry on a flow.",
             {"type": "object", "properties": {"name": {"type": "string", "enum": flow_names}}, "required": ["name"]}),
        Tool("set_fact", "Note a fact the customer stated and the case lacks.",
             {"type": "object", "properties": {"name": {"type": "string", "enum": list(SETTABLE_FACTS)},
                                               "value": {"type": "string"}}, "required": ["name", "value"]}),
        Tool("request_handoff", "Bring in a person.",
             {"type": "object", "properties": {"reason": {"type": "string"}}, "required": ["reason"]}),
        Tool("answer_from_knowledge", "Answer a general question from the help articles.",
             {"type": "object", "properties": {"query": {"type": "string"}}, "required": ["query"]}),
    ]  # fmt: skip


class FlowPlanner(SelfServiceBot):
    model = "tandem-flow-planner"
    prompt_version = "flow-planner-1"

    def __init__(
        self,
        llm: LLM,
        world: World,
        *,
        activator: Activator | None = None,
        gate: ActionGate | None = None,
        scopes: Mapping[str, DataScopes] | None = None,
        timeout_s: float = DEFAULT_TIMEOUT_S,
    ) -> None:
        super().__init__(world, activator=activator, gate=gate)
        self.llm = llm
        self.model = f"{self.model}:{llm.model}"
        self.scopes = dict(scopes) if scopes is not None else dict(shipped_scopes())
        self.timeout_s = timeout_s

    async def _choose(self, w: _Work, u: Understanding) -> None:
        book = self.book(w.case.tenant_id)
        if book is None:
            await super()._choose(w, u)
            return
        messages = self.messages(w, u)
        try:
            async with asyncio.timeout(self.timeout_s):
                completion = await self.llm.complete(messages, tools=_tools(sorted(book.flows)), temperature=0.0)
        except (LLMError, TimeoutError) as exc:
            # Degrade, never block: the bot's own choice stands in for the model's.
            log.warning("flow planner: the model failed (%s); the bot chooses", exc)
            await super()._choose(w, u)
            return
        await self._carry_out(w, u, completion)

    def messages(self, w: _Work, u: Understanding) -> list[Message]:
        """What the model is sent: the instructions, and the context as one JSON document."""
        book = self.book(w.case.tenant_id)
        assert book is not None
        reason = w.known("reason")
        current = book.for_intent(str(reason)) if reason else None
        offered = book.get(str(w.known("offered_next") or ""))
        scopes = self.scopes.get(w.case.tenant_id)
        context: dict[str, Any] = {
            "flows": [{"name": f.name, "description": f.description, "intents": list(f.intents)} for f in book],
            "current_flow": current.name if current is not None else None,
            "offered_next": offered.name if offered is not None else None,
            "pending_questions": sorted(self._pending_questions(w)),
            "handoff_open": self._handoff_open(w),
            "assurance": w.assurance.label,
            "understanding": {
                "intents": [[name, round(confidence, 2)] for name, confidence in u.intents[:3]],
                "sentiment": u.sentiment[1] if u.sentiment else None,
            },
            "facts": {k: v["value"] for k, v in scoped_facts(w.case, scopes, self.kind, w.turn.now).items()}
            if scopes is not None
            else {},
            "transcript": transcript(w.case, limit=12),
        }
        return [
            Message.system(SYSTEM_PROMPT.format(tenant=w.tenant.name)),
            Message.user(f"{CONTEXT_HEADER}\n{json.dumps(redact(context), default=str)}"),
        ]

    async def _carry_out(self, w: _Work, u: Understanding, completion: Completion) -> None:
        calls = sorted(completion.tool_calls, key=lambda c: c.name != "set_fact")  # facts first: flows read them
        acted = False
        for call in calls:
            if call.name == "set_fact":
                self._set_fact(w, call)
            elif acted:
                log.info("flow planner: ignoring %s after the turn's one decision", call.name)
            elif call.name == "start_flow":
                acted = await self._start_flow(w, u, call)
            elif call.name == "request_handoff":
                reason = redact(str(call.arguments.get("reason") or "the assistant asked for a person"))[:200]
                self._hand_over(w, reason, "Help with the request.")
                acted = True
            elif call.name == "answer_from_knowledge":
                hit = self.knowledge.answer(w.case.tenant_id, str(call.arguments.get("query") or u.text))
                if hit is not None:
                    w.say(f"{hit.passage.text.strip()} Anything else?")
                    acted = True
            else:
                log.warning("flow planner: the model called an unknown tool %s", call.name)
        if acted:
            return
        if completion.text.strip() and not completion.tool_calls:
            w.say(redact(completion.text.strip())[:MAX_REPLY_CHARS])
            return
        await self._pursue(w, None, u)  # keep a queued customer company, or say it was not understood

    def _set_fact(self, w: _Work, call: ToolCall) -> None:
        name, value = str(call.arguments.get("name") or ""), call.arguments.get("value")
        if name not in SETTABLE_FACTS or value in (None, ""):
            log.warning("flow planner: set_fact %r refused (settable: %s)", name, ", ".join(SETTABLE_FACTS))
            return
        if w.known(name) is not None:
            return  # ask-once: the case file has it; a model does not overwrite what the customer said
        w.learn(name, redact(str(value))[:200], "customer", confidence=0.8)

    async def _start_flow(self, w: _Work, u: Understanding, call: ToolCall) -> bool:
        book = self.book(w.case.tenant_id)
        flow = book.get(str(call.arguments.get("name") or "")) if book is not None else None
        if flow is None:
            log.warning("flow planner: the model started an unknown flow %r", call.arguments.get("name"))
            return False
        # The intent it serves: what the customer just asked, or the conversation's reason, or its first.
        candidates = [name for name, confidence in u.intents if confidence >= 0.5] + [str(w.known("reason"))]
        goal = next((c for c in candidates if c in flow.intents), flow.intents[0])
        await self._pursue(w, goal, u)
        return True


def self_service_from_env(
    world: World,
    *,
    activator: Activator | None = None,
    environ: Mapping[str, str] | None = None,
    model: LLM | None = None,
) -> SelfServiceBot:
    """The self-service participant: the flow planner when ``TANDEM_LLM`` names a model (``scripted:flows`` for
    the shipped deterministic one; ``model``: a client for the named one the caller already holds), else the
    bot choosing by intent."""
    env = os.environ if environ is None else environ
    spec = env.get("TANDEM_LLM", "").strip()
    if spec == SCRIPTED:
        return FlowPlanner(ScriptedFlowLLM(), world, activator=activator)
    llm = model or llm_from_env(environ)
    if llm is None:
        return SelfServiceBot(world, activator=activator)
    return FlowPlanner(llm, world, activator=activator)

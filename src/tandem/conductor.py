"""The conductor: accept inputs durably, then run each interaction's mailbox one turn at a time.

``accept`` appends the input event first; that commit is the acknowledgement. ``process`` takes the
interaction's mailbox (an in-process lock plus a store lease, with the expected version as the fence),
folds the case, runs understanding and the participants, checks their commands (floor, epoch, ask-once)
and appends the results with causation ids in one transaction.
"""

from __future__ import annotations

import asyncio
import copy
import hashlib
import json
import os
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from tandem import commands as cmd
from tandem.bus import Bus
from tandem.case import events as ev
from tandem.case.askonce import may_ask, may_challenge
from tandem.case.envelope import SYSTEM, Actor, Event, PendingEvent, new_id
from tandem.case.interaction import Interaction
from tandem.case.legs import Assurance
from tandem.clock import Clock, SystemClock
from tandem.participants.protocol import ActionDecision, ActionGate, Participant, Turn, Understander, Understanding
from tandem.store.protocol import DuplicateInput, EventStore, InteractionNotFound, VersionConflict
from tandem.understanding.redaction import redact_card_numbers


class ConductorError(Exception):
    code = "invalid_request"


class InteractionClosed(ConductorError):
    code = "interaction_closed"


class FloorNotHeld(ConductorError):
    code = "floor_not_held"


@dataclass(frozen=True, slots=True)
class Input:
    """Something from outside: a customer's line, an agent's word, a timer, a correction."""

    tenant_id: str
    interaction_id: str
    type: str
    data: Mapping[str, Any]
    actor: Actor
    leg_id: str | None = None
    # For inputs that only the floor holder may send (an agent's line): the epoch the sender saw.
    floor_epoch: int | None = None
    correlation_id: str | None = None


@dataclass
class TurnResult:
    input: Event
    produced: list[Event] = field(default_factory=list)

    @property
    def replies(self) -> list[Event]:
        return [e for e in self.produced if e.type == ev.REPLY_SENT]


class Conductor:
    def __init__(
        self,
        store: EventStore,
        participants: Mapping[str, Participant],
        *,
        clock: Clock | None = None,
        understander: Understander | None = None,
        gate: ActionGate | None = None,
        partners: Sequence[Participant] = (),
        bus: Bus | None = None,
        owner: str | None = None,
        snapshot_every: int = 50,
        cache_size: int = 20_000,
        lease_ttl_s: float = 30.0,
    ) -> None:
        self.store = store
        self.participants = dict(participants)
        self.partners = list(partners)
        self.clock = clock or SystemClock()
        self.understander = understander
        self.gate = gate
        # What a new interaction is pinned to when its starter names no release (the active policy version,
        # set by the action layer); None pins nothing.
        self.pin: Callable[[str], str | None] | None = None
        self.bus = bus or Bus()
        self.owner = owner or f"conductor-{os.getpid()}-{new_id('w')[-8:]}"
        self.snapshot_every = snapshot_every
        self.lease_ttl_s = lease_ttl_s
        self._cache: OrderedDict[str, Interaction] = OrderedDict()
        self._cache_size = cache_size
        self._locks: dict[str, asyncio.Lock] = {}
        self._lock_users: dict[str, int] = {}

    # -- loading ---------------------------------------------------------------------------------------
    async def load(self, interaction_id: str) -> Interaction:
        """The current state: cached fold plus whatever was committed since (by any process)."""
        state = self._cache.get(interaction_id)
        if state is None:
            snap = await self.store.load_snapshot(interaction_id)
            state = Interaction.from_snapshot(snap[1]) if snap else Interaction(interaction_id)
        newer = await self.store.read(interaction_id, after_seq=state.version)
        if not newer and state.version == 0:
            raise InteractionNotFound(interaction_id)
        before = state.version
        for event in newer:
            # Another load of the same interaction may have applied it while we read (an asynchronous store
            # interleaves them: the action worker loads while a turn or the API does).
            if event.seq > state.version:
                state.apply(event)
        self._remember(state)
        if state.version // self.snapshot_every > before // self.snapshot_every:
            await self.store.save_snapshot(interaction_id, state.version, state.to_snapshot())
        return state

    def _remember(self, state: Interaction) -> None:
        self._cache[state.interaction_id] = state
        self._cache.move_to_end(state.interaction_id)
        while len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)

    async def _committed(self, state: Interaction, events: Sequence[Event]) -> None:
        before = state.version
        # An input appended at the end may land after events another process committed since our load;
        # then the cached state stays a true prefix and the next load reads the rest from the store.
        if events and events[0].seq == state.version + 1:
            for event in events:
                state.apply(event)
            self._remember(state)
        self.bus.publish(events)
        if state.version // self.snapshot_every > before // self.snapshot_every:
            # Once every N events: cheap next to the turns, and a cold load then folds fewer than N events.
            await self.store.save_snapshot(state.interaction_id, state.version, state.to_snapshot())

    # -- starting --------------------------------------------------------------------------------------
    async def start(
        self,
        tenant_id: str,
        customer_id: str,
        channel: str,
        *,
        actor: Actor = SYSTEM,
        customer: Mapping[str, Any] | None = None,
        assurance: Assurance = Assurance.NONE,
        attributes: Mapping[str, Any] | None = None,
        release: str | None = None,
        floor: str = "bot",
        interaction_id: str | None = None,
    ) -> tuple[Interaction, TurnResult]:
        """Open an interaction with its first leg, then let the floor holder greet."""
        if release is None and self.pin is not None:
            release = self.pin(tenant_id)
        interaction_id = interaction_id or new_id("int")
        leg_id = new_id("leg")
        now = self.clock.now()
        started = PendingEvent(
            ev.INTERACTION_STARTED,
            {
                "customer_id": customer_id,
                "channel": channel,
                "customer": dict(customer or {}),
                "attributes": dict(attributes or {}),
                "release": release,
                "floor": floor,
            },
            actor,
            now,
            floor_epoch=0,
        )
        leg = PendingEvent(
            ev.LEG_OPENED,
            {"leg_id": leg_id, "channel": channel, "assurance": assurance.label},
            actor,
            now,
            floor_epoch=0,
            leg_id=leg_id,
            causation_id=started.event_id,
            correlation_id=started.event_id,
        )
        committed = await self.store.create(tenant_id, interaction_id, customer_id, [started, leg])
        state = Interaction(interaction_id)
        await self._committed(state, committed)
        result = await self.process(interaction_id)
        return await self.load(interaction_id), result or TurnResult(committed[-1])

    async def open_leg(
        self, tenant_id: str, interaction_id: str, channel: str, assurance: Assurance, actor: Actor
    ) -> TurnResult:
        """A customer comes back on another channel: the case goes on, the new leg earns its own assurance."""
        leg_id = new_id("leg")
        data = {"leg_id": leg_id, "channel": channel, "assurance": assurance.label}
        return await self.handle(Input(tenant_id, interaction_id, ev.LEG_OPENED, data, actor, leg_id=leg_id))

    # -- inputs ----------------------------------------------------------------------------------------
    async def accept(self, inp: Input) -> Event:
        """Append the input: once this returns, the input is durable and will be processed."""
        ev.validate(inp.type, inp.data)
        if isinstance(inp.data.get("text"), str):
            # The one door every channel's words pass through: full card numbers stop here (PCI DSS).
            inp = replace(inp, data={**inp.data, "text": redact_card_numbers(inp.data["text"])})
        for _ in range(10):
            state = await self.load(inp.interaction_id)
            if state.tenant_id != inp.tenant_id:
                raise InteractionNotFound(inp.interaction_id)
            if not state.is_open:
                raise InteractionClosed(f"interaction {inp.interaction_id} is closed")
            expected: int | None = None
            if inp.floor_epoch is not None:
                if inp.floor_epoch != state.floor.epoch or not _holds_floor(state, inp.actor):
                    raise FloorNotHeld(
                        f"{inp.actor.kind} {inp.actor.id or ''} does not hold the floor at epoch {inp.floor_epoch}"
                        f" (current epoch {state.floor.epoch}, held by {state.floor.kind})"
                    )
                expected = state.version  # fenced: the floor cannot move between our check and the append
            pending = PendingEvent(
                inp.type,
                dict(inp.data),
                inp.actor,
                self.clock.now(),
                floor_epoch=state.floor.epoch,
                leg_id=inp.leg_id or state.current_leg_id,
                correlation_id=inp.correlation_id,
            )
            try:
                committed = await self.store.append(inp.tenant_id, inp.interaction_id, [pending], expected)
            except VersionConflict:
                continue
            await self._committed(state, committed)
            return committed[0]
        raise FloorNotHeld("the interaction kept changing; try again")

    async def handle(self, inp: Input) -> TurnResult:
        """Accept, then process: the synchronous path channels use to answer in the same request."""
        accepted = await self.accept(inp)
        result = await self.process(inp.interaction_id, until_seq=accepted.seq)
        return result if result and result.input.seq == accepted.seq else TurnResult(accepted)

    # -- the mailbox -----------------------------------------------------------------------------------
    @asynccontextmanager
    async def mailbox(self, interaction_id: str) -> AsyncIterator[bool]:
        lock = self._locks.setdefault(interaction_id, asyncio.Lock())
        self._lock_users[interaction_id] = self._lock_users.get(interaction_id, 0) + 1
        try:
            async with lock:
                leased = await self.store.acquire_lease(interaction_id, self.owner, self.lease_ttl_s)
                try:
                    yield leased
                finally:
                    if leased:
                        await self.store.release_lease(interaction_id, self.owner)
        finally:
            # Drop idle locks so that thousands of idle interactions cost nothing.
            self._lock_users[interaction_id] -= 1
            if self._lock_users[interaction_id] == 0:
                del self._lock_users[interaction_id]
                self._locks.pop(interaction_id, None)

    async def process(self, interaction_id: str, until_seq: int | None = None) -> TurnResult | None:
        """Handle every acknowledged input not yet handled; return the turn of ``until_seq`` (or the last)."""
        wanted: TurnResult | None = None
        async with self.mailbox(interaction_id) as leased:
            if not leased:
                return None  # another process holds the mailbox and will handle the input
            while True:
                state = await self.load(interaction_id)
                if not state.has_unhandled_input:
                    return wanted
                inputs = [
                    e
                    for e in await self.store.read(interaction_id, after_seq=state.handled_seq)
                    if ev.spec_of(e.type).is_input and e.seq <= state.last_input_seq
                ]
                if not inputs:
                    return wanted
                input_event = inputs[0]
                result = await self._turn(state, input_event)
                if result is None:
                    continue  # lost the race to another writer: reload and decide again
                if until_seq is None or input_event.seq == until_seq:
                    wanted = result

    async def _turn(self, state: Interaction, input_event: Event) -> TurnResult | None:
        now = self.clock.now()
        understanding = self._understand(state, input_event, now)
        holder_actor = Actor(state.floor.kind, state.floor.participant_id or state.floor.kind)
        understood: list[tuple[Actor, cmd.Command]] = []
        if understanding is not None:
            if understanding.intents:
                name, confidence = understanding.intents[0]
                understood.append((Actor("system", "understanding"), cmd.DetectIntent(name, confidence)))
            if understanding.sentiment is not None:
                score, label, reason = understanding.sentiment
                understood.append((Actor("system", "understanding"), cmd.AssessSentiment(score, label, reason)))

        def preview(commands: Sequence[cmd.Command]) -> Interaction:
            # The turn's own intent and sentiment come first, exactly as they are recorded below: a policy limit
            # on sentiment must decide the preview as it will decide the proposal.
            planned = [*understood, *((holder_actor, c) for c in commands)]
            return self._scratch(state, self._events_for(state, input_event, planned, now))

        turn = Turn(now=now, input=input_event, understanding=understanding, preview=preview)
        decided: list[tuple[Actor, cmd.Command]] = list(understood)
        if state.is_open:
            holder = self.participants.get(state.floor.kind)
            if holder is not None and _addressed_to_floor(input_event):
                actor = Actor(holder.kind, state.floor.participant_id or holder.kind, *_model_of(holder))
                decided.extend((actor, c) for c in await holder.decide(state, turn))
            for partner in self.partners:
                actor = Actor(partner.kind, partner.kind, *_model_of(partner))
                decided.extend((actor, c) for c in await partner.decide(state, turn) if not c.speaks)
        pending = self._events_for(state, input_event, decided, now)
        pending.append(
            PendingEvent(
                ev.TURN_COMPLETED,
                {"input_seq": input_event.seq},
                SYSTEM,
                now,
                floor_epoch=state.floor.epoch,
                causation_id=input_event.event_id,
                correlation_id=input_event.correlation_id or input_event.event_id,
            )
        )
        try:
            committed = await self.store.append(state.tenant_id, state.interaction_id, pending, state.version)
        except VersionConflict:
            return None
        await self._committed(state, committed)
        return TurnResult(input_event, committed)

    def _understand(self, state: Interaction, input_event: Event, now: datetime) -> Understanding | None:
        if self.understander is None or input_event.type != ev.CUSTOMER_SAID:
            return None
        text = input_event.data.get("text")
        if not text:
            return None
        return self.understander.understand(str(text), state, now)

    # -- commands outside a turn -----------------------------------------------------------------------
    async def execute(
        self,
        tenant_id: str,
        interaction_id: str,
        commands: Sequence[cmd.Command] | Callable[[Interaction], Sequence[cmd.Command]],
        actor: Actor,
        *,
        require_open: bool = True,
        floor_epoch: int | None = None,
    ) -> list[Event]:
        """Run commands from outside a customer turn (an agent accepting, a hand-back, a supervisor) under
        the mailbox, so they are ordered with turns and fenced like them.

        With ``floor_epoch`` the actor must hold the floor at exactly that epoch (an agent handing back
        must still be the one on the floor). Emitting an input type (HandedBack) leaves it for
        ``process`` to hand to the new floor holder. ``commands`` may be a function of the state: it is
        called under the mailbox with the state the append is fenced on (and again after a conflict), so
        a check and its effect are one step (an action is started only while it is still approved).
        """
        for _ in range(10):
            async with self.mailbox(interaction_id):
                state = await self.load(interaction_id)
                if state.tenant_id != tenant_id:
                    raise InteractionNotFound(interaction_id)
                if require_open and not state.is_open:
                    raise InteractionClosed(f"interaction {interaction_id} is closed")
                if floor_epoch is not None and (floor_epoch != state.floor.epoch or not _holds_floor(state, actor)):
                    raise FloorNotHeld(
                        f"{actor.kind} {actor.id or ''} does not hold the floor at epoch {floor_epoch}"
                        f" (current epoch {state.floor.epoch}, held by {state.floor.kind})"
                    )
                now = self.clock.now()
                decided = commands(state) if callable(commands) else commands
                pending = self._events_for(state, None, [(actor, c) for c in decided], now)
                if not pending:
                    return []
                try:
                    committed = await self.store.append(tenant_id, interaction_id, pending, state.version)
                except VersionConflict:
                    continue
                except DuplicateInput:
                    return []
                await self._committed(state, committed)
                return committed
        raise ConductorError("the interaction kept changing; try again")

    # -- checking commands and turning them into events ------------------------------------------------
    def _events_for(
        self,
        state: Interaction,
        cause: Event | None,
        decided: Sequence[tuple[Actor, cmd.Command]],
        now: datetime,
    ) -> list[PendingEvent]:
        out: list[PendingEvent] = []
        epoch = state.floor.epoch
        leg_id = (cause.leg_id if cause else None) or state.current_leg_id
        causation = cause.event_id if cause else None
        correlation = (cause.correlation_id or cause.event_id) if cause else new_id("cor")

        def emit(type_: str, data: dict[str, Any], actor: Actor) -> None:
            out.append(
                PendingEvent(
                    type_, data, actor, now, floor_epoch=epoch, leg_id=leg_id,
                    causation_id=causation, correlation_id=correlation,
                )
            )  # fmt: skip

        def refuse(actor: Actor, command: cmd.Command, reason: str) -> None:
            emit(ev.COMMAND_REFUSED, {"command": type(command).__name__, "reason": reason}, actor)

        for actor, command in decided:
            if command.speaks:
                if command.epoch is not None and command.epoch != epoch:
                    refuse(actor, command, f"stale floor epoch {command.epoch}, floor is at {epoch}")
                    continue
                if actor.kind != state.floor.kind:
                    refuse(actor, command, f"{actor.kind} does not hold the floor ({state.floor.kind} does)")
                    continue
            match command:
                case cmd.Say(text=text):
                    emit(ev.REPLY_SENT, {"text": text}, _voiced(actor, command))
                case cmd.Ask():
                    decision = (
                        may_challenge(
                            state.assurance(leg_id), Assurance.parse(command.needed_level or "knowledge_verified"),
                            command.name,
                        )
                        if command.purpose == "authentication"
                        else may_ask(state.case, command.name, now, command.subject, command.min_confidence)
                    )  # fmt: skip
                    if not decision.allowed:
                        refuse(actor, command, f"ask-once: {command.name} is already {decision.basis}")
                        continue
                    emit(
                        ev.FACT_REQUESTED,
                        {"name": command.name, "subject": command.subject, "basis": decision.basis,
                         "purpose": command.purpose},
                        actor,
                    )  # fmt: skip
                    if command.text:
                        emit(ev.REPLY_SENT, {"text": command.text, "asks": command.name}, actor)
                case cmd.Learn():
                    data: dict[str, Any] = {
                        "name": command.name, "value": command.value, "source": command.source,
                        "confidence": command.confidence, "verified": command.verified,
                    }  # fmt: skip
                    if command.subject is not None:
                        data["subject"] = command.subject
                    if command.observed_at is not None:
                        data["observed_at"] = command.observed_at.isoformat()
                    emit(ev.FACT_LEARNED, data, actor)
                case cmd.Correct():
                    emit(
                        ev.FACT_CORRECTED,
                        {"name": command.name, "value": command.value, "source": command.source,
                         "subject": command.subject, "confidence": 1.0, "verified": True},
                        actor,
                    )  # fmt: skip
                case cmd.Identify():
                    data = {"customer_id": command.customer_id, "method": command.method}
                    if command.customer is not None:
                        data["customer"] = command.customer
                    emit(ev.CUSTOMER_IDENTIFIED, data, actor)
                case cmd.RaiseAssurance():
                    target_leg = command.leg_id or leg_id
                    if target_leg is None:
                        refuse(actor, command, "no open leg to raise")
                        continue
                    emit(
                        ev.ASSURANCE_RAISED,
                        {"leg_id": target_leg, "level": command.level, "method": command.method},
                        actor,
                    )
                case cmd.DetectIntent():
                    emit(ev.INTENT_DETECTED, {"name": command.name, "confidence": command.confidence}, actor)
                case cmd.AssessSentiment():
                    emit(
                        ev.SENTIMENT_ASSESSED,
                        {"score": command.score, "label": command.label, "reason": command.reason},
                        actor,
                    )
                case cmd.RequestHandoff():
                    if state.handoff is not None and state.handoff.is_open:
                        refuse(actor, command, f"handoff {state.handoff.handoff_id} is already under way")
                        continue
                    data = {"handoff_id": new_id("hof"), "target": command.target, "reason": command.reason}
                    if command.next_step:
                        data["next_step"] = command.next_step
                    emit(ev.HANDOFF_REQUESTED, data, actor)
                case cmd.MoveFloor():
                    epoch += 1
                    emit(
                        ev.FLOOR_MOVED,
                        {"kind": command.kind, "participant_id": command.participant_id, "epoch": epoch,
                         "reason": command.reason},
                        actor,
                    )  # fmt: skip
                case cmd.ScheduleTimer():
                    data = {
                        "timer_id": command.timer_id or new_id("tmr"),
                        "kind": command.kind,
                        "due_at": command.due_at.isoformat(),
                    }
                    if command.payload:
                        data["payload"] = command.payload
                    emit(ev.TIMER_SCHEDULED, data, actor)
                case cmd.CancelTimer():
                    if state.timers.get(command.timer_id, {}).get("status") == "scheduled":
                        emit(ev.TIMER_CANCELLED, {"timer_id": command.timer_id}, actor)
                case cmd.Close():
                    emit(ev.INTERACTION_CLOSED, {"disposition": command.disposition}, actor)
                case cmd.ProposeAction():
                    self._propose(self._scratch(state, out), actor, command, now, emit)
                case cmd.Emit():
                    emit(command.type, dict(command.data), actor)
                case _:
                    raise TypeError(f"unknown command {command!r}")
        return out

    @staticmethod
    def _scratch(state: Interaction, pending: Sequence[PendingEvent]) -> Interaction:
        """The case as it would be after ``pending``: policy decides a proposal on the facts recorded before
        it in the same turn (the customer verified a moment ago), never on the case as it was."""
        if not pending:
            return state
        scratch = Interaction.from_snapshot(copy.deepcopy(state.to_snapshot()))
        for offset, p in enumerate(pending, start=1):
            scratch.apply(
                Event(
                    event_id=p.event_id, tenant_id=state.tenant_id, interaction_id=state.interaction_id,
                    seq=state.version + offset, position=0, type=p.type, schema_version=ev.spec_of(p.type).version,
                    occurred_at=p.occurred_at, recorded_at=p.occurred_at, actor=p.actor, leg_id=p.leg_id,
                    causation_id=p.causation_id, correlation_id=p.correlation_id, floor_epoch=p.floor_epoch,
                    data=p.data,
                )
            )  # fmt: skip
        return scratch

    def _propose(
        self,
        state: Interaction,
        actor: Actor,
        command: cmd.ProposeAction,
        now: datetime,
        emit: Callable[[str, dict[str, Any], Actor], None],
    ) -> None:
        """Policy before effect: a proposal and its decision are recorded together, or not at all."""
        action_id = new_id("act")
        digest = args_digest(command.tool, command.args)
        emit(
            ev.ACTION_PROPOSED,
            {"action_id": action_id, "tool": command.tool, "args": command.args, "args_digest": digest,
             "reason": command.reason},
            actor,
        )  # fmt: skip
        if self.gate is None:
            decision = ActionDecision("deny", "no_policy", "none", ("no policy is configured: actions fail closed",))
        else:
            decision = self.gate.decide(state, command.tool, dict(command.args), actor.kind, now)
        data: dict[str, Any] = {
            "action_id": action_id,
            "outcome": decision.outcome,
            "rule": decision.rule,
            "policy_version": decision.policy_version,
            "reasons": list(decision.reasons),
            "requires": decision.requires,
            "args_digest": digest,
        }
        if decision.expires_in_s is not None:
            data["expires_at"] = (now + timedelta(seconds=decision.expires_in_s)).isoformat()
        emit(ev.ACTION_DECIDED, data, Actor("system", "policy"))


def args_digest(tool: str, args: Mapping[str, Any]) -> str:
    """The digest an approval is bound to: approving one set of arguments never approves another."""
    canonical = json.dumps({"tool": tool, "args": args}, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def _voiced(actor: Actor, say: cmd.Say) -> Actor:
    """Who a line names: its author, or, for a line a language model re-worded, that model and its prompt
    version (the author decided what to say; the model chose the words)."""
    if isinstance(say, cmd.Reworded):
        return replace(actor, model=say.model, prompt_version=say.prompt_version)
    return actor


def _holds_floor(state: Interaction, actor: Actor) -> bool:
    if actor.kind == "supervisor":
        return state.floor.kind == "supervisor" and state.floor.participant_id == actor.id
    return state.floor.kind == actor.kind and (state.floor.participant_id in (None, actor.id))


def _addressed_to_floor(event: Event) -> bool:
    # An agent's own line needs no automated answer; everything else is for whoever holds the floor.
    return event.type != ev.AGENT_SAID


def _model_of(participant: Participant) -> tuple[str | None, str | None]:
    return getattr(participant, "model", None), getattr(participant, "prompt_version", None)

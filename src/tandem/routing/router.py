"""The router: a reactor over the log that queues requested handoffs, offers the oldest waiting one to an
available agent with the skill and spare capacity, and expires, declines and accepts offers.

Its index (who waits, which offers are open, who holds which floor) is a projection of the store-wide log,
kept in memory and rebuilt from the whole log on start. The index only says where to look: every write goes
through the conductor with its check (is this handoff still queued, this offer still open?) made under the
interaction's mailbox on the state the append is fenced on, so routing is ordered and fenced like any turn,
even against other processes. One lock serialises the router's own decisions.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from tandem import commands as cmd
from tandem.case import events as ev
from tandem.case.envelope import Actor, Event, new_id
from tandem.case.interaction import Interaction
from tandem.conductor import Conductor, ConductorError
from tandem.participants.ai import takeover
from tandem.routing.offers import (
    EXPIRY_TIMER,
    AlreadyDecided,
    CapacityFull,
    Offer,
    OfferExpired,
    OfferNotFound,
    OfferStatus,
    expiry_timer_id,
    offer_of_timer,
)
from tandem.routing.presence import Agent, AgentDirectory
from tandem.routing.queue import GENERAL, Queues, QueueStats, Waiting, queue_for, queues_of
from tandem.store.protocol import InteractionNotFound
from tandem.world.world import World, WorldError

log = logging.getLogger(__name__)

ROUTING = Actor("system", "routing")
DEFAULT_OFFER_TTL = timedelta(seconds=30)
_NEVER = datetime.min.replace(tzinfo=UTC)


class Router:
    def __init__(
        self,
        conductor: Conductor,
        agents: AgentDirectory,
        world: World,
        *,
        offer_ttl: timedelta = DEFAULT_OFFER_TTL,
        batch_size: int = 500,
    ) -> None:
        self.conductor = conductor
        self.agents = agents
        self.world = world
        self.offer_ttl = offer_ttl
        self.batch_size = batch_size
        self.queues = Queues()
        self.offers: dict[str, Offer] = {}
        self.holders: dict[str, str] = {}  # interaction -> the agent (or supervisor) holding its floor
        self.position = 0
        # Others that want every event the router reads (metrics), in commit order.
        self.observers: list[Callable[[Event], None]] = []
        self._requested: dict[str, tuple[str, str]] = {}  # interaction -> (tenant, handoff) not yet queued
        self._since: dict[str, datetime] = {}  # handoff -> when it was requested
        self._passed: dict[str, set[str]] = {}  # handoff -> agents who declined it
        self._fired: set[str] = set()  # offers whose expiry timer fired
        self._last_offer: dict[str, datetime] = {}  # agent -> when they were last offered work
        self._lock = asyncio.Lock()

    # -- the projection ---------------------------------------------------------------------------------
    def observe(self, e: Event) -> None:
        d = e.data
        iid = e.interaction_id
        match e.type:
            case ev.HANDOFF_REQUESTED:
                self._requested[iid] = (e.tenant_id, d["handoff_id"])
                self._since[d["handoff_id"]] = e.occurred_at
            case ev.HANDOFF_QUEUED:
                self._requested.pop(iid, None)
                since = self._since.get(d["handoff_id"], e.occurred_at)
                self.queues.add(Waiting(e.tenant_id, iid, d["handoff_id"], d["queue"], since, d.get("agent_id")))
            case ev.HANDOFF_OFFERED:
                self.queues.remove(iid)
                self.offers[d["offer_id"]] = Offer(
                    d["offer_id"], e.tenant_id, iid, d["handoff_id"], d["agent_id"], d.get("queue") or GENERAL,
                    e.occurred_at, datetime.fromisoformat(d["expires_at"]),
                )  # fmt: skip
            case ev.HANDOFF_DECLINED:
                self._end_offer(d["offer_id"], "declined")
                self._passed.setdefault(d["handoff_id"], set()).add(str(d.get("agent_id")))
            case ev.HANDOFF_EXPIRED:
                self._end_offer(d["offer_id"], "expired")
            case ev.HANDOFF_ACCEPTED:
                self._end_offer(d["offer_id"], "accepted")
            case ev.HANDOFF_ABANDONED:
                self._forget_handoff(iid)
            case ev.INTERACTION_CLOSED:
                self._forget_handoff(iid)
                self.holders.pop(iid, None)
            case ev.FLOOR_MOVED:
                if d["kind"] in ("human", "supervisor") and d.get("participant_id"):
                    self.holders[iid] = d["participant_id"]
                else:
                    self.holders.pop(iid, None)
            case ev.TIMER_FIRED if d.get("kind") == EXPIRY_TIMER:
                offer_id = offer_of_timer(d["timer_id"])
                if offer_id is not None:
                    self._fired.add(offer_id)

    def _end_offer(self, offer_id: str, status: OfferStatus) -> None:
        offer = self.offers.get(offer_id)
        if offer is not None and offer.is_open:
            offer.status = status
        self._fired.discard(offer_id)

    def _forget_handoff(self, interaction_id: str) -> None:
        self._requested.pop(interaction_id, None)
        self.queues.remove(interaction_id)
        for offer in self.offers.values():
            if offer.interaction_id == interaction_id and offer.is_open:
                offer.status = "withdrawn"
                self._fired.discard(offer.offer_id)

    async def _follow(self) -> None:
        while True:
            batch = await self.conductor.store.read_all(self.position, limit=self.batch_size)
            for event in batch:
                self.observe(event)
                for observer in self.observers:
                    observer(event)
                self.position = event.position
            if len(batch) < self.batch_size:
                return

    # -- reading -----------------------------------------------------------------------------------------
    async def sync(self) -> None:
        """Bring the index up to the end of the log, so a read sees what was just written."""
        async with self._lock:
            await self._follow()

    def load_of(self, agent_id: str) -> int:
        return sum(1 for holder in self.holders.values() if holder == agent_id)

    def held_by(self, agent_id: str) -> set[str]:
        return {iid for iid, holder in self.holders.items() if holder == agent_id}

    def open_offers(self, agent_id: str | None = None, interaction_id: str | None = None) -> list[Offer]:
        return sorted(
            (
                o
                for o in self.offers.values()
                if o.is_open
                and (agent_id is None or o.agent_id == agent_id)
                and (interaction_id is None or o.interaction_id == interaction_id)
            ),
            key=lambda o: (o.offered_at, o.offer_id),
        )

    def queue_stats(self, tenant_id: str) -> list[QueueStats]:
        now = self.conductor.clock.now()
        waiting = self.queues.in_order(tenant_id)
        names = list(dict.fromkeys([*self._tenant_queues(tenant_id), *(w.queue for w in waiting)]))
        out = []
        for name in names:
            items = [w for w in waiting if w.queue == name]
            free = [a for a in self.agents.of_tenant(tenant_id) if self._has_room(a) and a.serves(name)]
            oldest = (now - items[0].since).total_seconds() if items else None
            out.append(QueueStats(name, len(items), len(free), oldest))
        return out

    def _tenant_queues(self, tenant_id: str) -> tuple[str, ...]:
        try:
            return queues_of(self.world.tenant(tenant_id))
        except WorldError:
            return (GENERAL,)

    def _has_room(self, agent: Agent) -> bool:
        busy = self.load_of(agent.agent_id) + len(self.open_offers(agent.agent_id))
        return agent.presence == "available" and busy < agent.capacity

    # -- reacting ----------------------------------------------------------------------------------------
    async def step(self) -> None:
        """Catch up with the log and do everything that is due: queue, expire, offer."""
        async with self._lock:
            await self._follow()
            for iid, (tenant_id, handoff_id) in list(self._requested.items()):
                await self._queue(tenant_id, iid, handoff_id)
            for offer_id in sorted(self._fired):
                self._fired.discard(offer_id)
                offer = self.offers.get(offer_id)
                if offer is not None and offer.is_open:
                    await self._expire(offer, missed=True)
            await self._offer_waiting()

    async def _queue(self, tenant_id: str, interaction_id: str, handoff_id: str) -> None:
        def decide(state: Interaction) -> list[cmd.Command]:
            handoff = state.handoff
            if handoff is None or handoff.handoff_id != handoff_id or handoff.status != "requested":
                return []
            if handoff.target.get("kind") == "ai":
                if "ai" in self.conductor.participants:
                    # The AI needs no queue and no offer: the handoff settles at once and the AI greets.
                    return takeover(handoff_id, self.conductor.clock.now(), handoff.reason)
                # Without a model configured there is no AI to take it: say so rather than leave it hanging.
                reason = "no AI participant takes handoffs in this deployment"
                return [cmd.Emit(ev.HANDOFF_ABANDONED, {"handoff_id": handoff_id, "reason": reason})]
            return [cmd.Emit(ev.HANDOFF_QUEUED, self._queued(tenant_id, handoff_id, handoff.target))]

        if not await self._execute(tenant_id, interaction_id, decide):
            self._requested.pop(interaction_id, None)  # settled meanwhile (closed, or queued by another process)

    def _queued(self, tenant_id: str, handoff_id: str, target: dict[str, Any]) -> dict[str, Any]:
        try:
            queue = queue_for(self.world.tenant(tenant_id), target)
        except WorldError:
            queue = GENERAL
        data = {"handoff_id": handoff_id, "queue": queue}
        named = self.agents.get(str(target.get("id"))) if target.get("kind") == "agent" else None
        if named is not None and named.tenant_id == tenant_id:
            data["agent_id"] = named.agent_id
        return data

    async def _offer_waiting(self) -> None:
        tried: set[str] = set()
        while True:
            pick = next(
                ((w, a) for w in self.queues.in_order() if w.interaction_id not in tried if (a := self._pick(w))),
                None,
            )
            if pick is None:
                return
            waiting, agent = pick
            tried.add(waiting.interaction_id)
            await self._offer(waiting, agent)

    def _pick(self, waiting: Waiting) -> Agent | None:
        agents = [
            a
            for a in self.agents.of_tenant(waiting.tenant_id)
            if a.presence == "available" and self.holders.get(waiting.interaction_id) != a.agent_id
        ]
        if waiting.agent_id is not None:
            # Asked for by name: the offer reaches them even when they are full, and they decide.
            agents = [a for a in agents if a.agent_id == waiting.agent_id]
        else:
            passed = self._passed.get(waiting.handoff_id, set())
            agents = [a for a in agents if a.serves(waiting.queue) and a.agent_id not in passed and self._has_room(a)]
        if not agents:
            return None
        return min(
            agents,
            key=lambda a: (
                self.load_of(a.agent_id) + len(self.open_offers(a.agent_id)),
                self._last_offer.get(a.agent_id, _NEVER),
                a.agent_id,
            ),
        )

    async def _offer(self, waiting: Waiting, agent: Agent) -> None:
        now = self.conductor.clock.now()
        offer_id = new_id("ofr")
        expires_at = now + self.offer_ttl

        def decide(state: Interaction) -> list[cmd.Command]:
            handoff = state.handoff
            if handoff is None or handoff.handoff_id != waiting.handoff_id or handoff.status != "queued":
                return []
            offered = {
                "handoff_id": waiting.handoff_id,
                "offer_id": offer_id,
                "agent_id": agent.agent_id,
                "expires_at": expires_at.isoformat(),
                "queue": waiting.queue,
            }
            expiry = cmd.ScheduleTimer(
                EXPIRY_TIMER, expires_at, timer_id=expiry_timer_id(offer_id), payload={"offer_id": offer_id}
            )
            return [cmd.Emit(ev.HANDOFF_OFFERED, offered), expiry]

        if await self._execute(waiting.tenant_id, waiting.interaction_id, decide):
            self._last_offer[agent.agent_id] = now
        else:
            self.queues.remove(waiting.interaction_id)  # no longer waiting: the log will say why

    async def _expire(self, offer: Offer, *, missed: bool) -> None:
        def decide(state: Interaction) -> list[cmd.Command]:
            if not _is_offered(state, offer):
                return []
            expired = {"handoff_id": offer.handoff_id, "offer_id": offer.offer_id, "agent_id": offer.agent_id}
            requeued = {"handoff_id": offer.handoff_id, "queue": offer.queue}
            return [cmd.Emit(ev.HANDOFF_EXPIRED, expired), cmd.Emit(ev.HANDOFF_QUEUED, requeued)]

        expired = await self._execute(offer.tenant_id, offer.interaction_id, decide)
        agent = self.agents.get(offer.agent_id)
        if expired and missed and agent is not None and agent.presence == "available":
            # Whoever lets an offer run out is probably not at the desk: stop offering them work until they
            # say they are back, as contact centres do, instead of bouncing the customer between offers.
            self.agents.set_presence(agent.agent_id, "away")

    # -- an agent's answer -------------------------------------------------------------------------------
    async def accept(self, offer_id: str, agent_id: str) -> Interaction:
        async with self._lock:
            await self._follow()
            offer = await self._answerable(offer_id, agent_id)
            agent = self.agents.get(agent_id)
            if agent is None or self.load_of(agent_id) >= agent.capacity:
                raise CapacityFull(
                    f"agent {agent_id} already holds {self.load_of(agent_id)} interaction(s), their capacity"
                )
            accepted = {"handoff_id": offer.handoff_id, "offer_id": offer_id, "agent_id": agent_id}
            commands: list[cmd.Command] = [
                cmd.Emit(ev.HANDOFF_ACCEPTED, accepted),
                cmd.MoveFloor("human", agent_id, reason="handoff accepted"),
                cmd.Emit(ev.HANDOFF_CONNECTED, {"handoff_id": offer.handoff_id, "agent_id": agent_id}),
                cmd.CancelTimer(offer.timer_id),
            ]
            await self._answer(offer, commands, agent_id)
            return await self.conductor.load(offer.interaction_id)

    async def decline(self, offer_id: str, agent_id: str, reason: str | None = None) -> Interaction:
        async with self._lock:
            await self._follow()
            offer = await self._answerable(offer_id, agent_id)
            declined: dict[str, Any] = {"handoff_id": offer.handoff_id, "offer_id": offer_id, "agent_id": agent_id}
            if reason:
                declined["reason"] = reason
            commands: list[cmd.Command] = [
                cmd.Emit(ev.HANDOFF_DECLINED, declined),
                cmd.Emit(ev.HANDOFF_QUEUED, {"handoff_id": offer.handoff_id, "queue": offer.queue}),
                cmd.CancelTimer(offer.timer_id),
            ]
            await self._answer(offer, commands, agent_id)
            await self._offer_waiting()  # to someone else
            return await self.conductor.load(offer.interaction_id)

    async def _answerable(self, offer_id: str, agent_id: str) -> Offer:
        offer = self.offers.get(offer_id)
        if offer is None or offer.agent_id != agent_id:
            raise OfferNotFound(f"no offer {offer_id} for agent {agent_id}")
        if offer.status in ("accepted", "declined"):
            raise AlreadyDecided(f"offer {offer_id} was already {offer.status}")
        if not offer.is_open:
            raise OfferExpired(f"offer {offer_id} is {offer.status}")
        if self.conductor.clock.now() >= offer.expires_at:
            await self._expire(offer, missed=False)
            raise OfferExpired(f"offer {offer_id} expired at {offer.expires_at.isoformat()}")
        return offer

    async def _answer(self, offer: Offer, commands: list[cmd.Command], agent_id: str) -> None:
        def decide(state: Interaction) -> list[cmd.Command]:
            if not _is_offered(state, offer):
                raise OfferExpired(f"offer {offer.offer_id} is no longer open")
            return commands

        if not await self._execute(offer.tenant_id, offer.interaction_id, decide, Actor("human", agent_id)):
            raise OfferExpired(f"the interaction ended before offer {offer.offer_id} was answered")

    # -- writing -----------------------------------------------------------------------------------------
    async def _execute(
        self,
        tenant_id: str,
        interaction_id: str,
        decide: Callable[[Interaction], list[cmd.Command]],
        actor: Actor = ROUTING,
    ) -> bool:
        """Check and write as one step under the interaction's mailbox (``decide`` sees the state the append
        is fenced on), then read our own writes back into the index. False: nothing was written."""
        try:
            written = await self.conductor.execute(tenant_id, interaction_id, decide, actor)
        except (ConductorError, InteractionNotFound) as exc:
            log.info("routing skipped %s: %s", interaction_id, exc)
            written = []
        await self._follow()
        return bool(written)


def _is_offered(state: Interaction, offer: Offer) -> bool:
    handoff = state.handoff
    return handoff is not None and handoff.offer_id == offer.offer_id and handoff.status == "offered"

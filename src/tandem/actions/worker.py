"""The action worker: a leased reactor over the store that executes approved actions, never the request handler.

It follows the store-wide log (``store.read_all`` after its position, woken by the bus, with a bounded poll for
what other processes commit) and advances each action it hears of from the action's state in the fold, so
hearing of an action twice does nothing twice:

- **awaiting approval**: make sure the approval's expiry timer is scheduled; once expired, reject it.
- **approved**: ask the gate again with the case as it is now and record ``ActionStarted`` with the idempotency
  key *before* the call, in one fenced append (of two workers racing, one starts, the other sees it started);
  the start carries a lease (this worker, until when) that keeps every other worker off the action while
  the call runs. Call the tool, record the result and write it into the case file as facts with source
  ``action:<tool>``, which outrank any signal.
- **started or unknown** (a call interrupted by a crash, a timeout, a server that went away): never call
  blind. Ask the server by the idempotency key: found means it happened (``ActionSucceeded``, reconciled);
  not found means it did not, and an idempotent tool is called again with the same key; when the server
  cannot be asked, try later, and after that hand the action to a person.

Its one checkpoint is a low-water mark: the position before the oldest action it has not seen finish. On start
it re-reads the log from there, so actions started before a crash or a restart are found again and, once
their lease lapsed, reconciled. The mark is saved now and then, not per event: a mark that lags only means
re-reading a little more after a restart, and every checkpoint write on SQLite costs a sync to disk.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from tandem import commands as cmd
from tandem.actions import lifecycle
from tandem.actions.tools import CallOutcome, Toolbox
from tandem.case import events as ev
from tandem.case.envelope import Actor, Event, new_id
from tandem.case.interaction import Interaction
from tandem.conductor import Conductor
from tandem.release.policy_gate import PolicyGate
from tandem.store.protocol import InteractionNotFound

log = logging.getLogger(__name__)

WORKER = Actor("system", "actions")
LOW_WATER = "actions"
SAVE_EVERY = 1000  # positions the low-water mark may lag before it is written again
SAVE_AFTER_S = 5.0
_WAKES = frozenset(
    {ev.ACTION_DECIDED, ev.ACTION_APPROVED, ev.ACTION_OUTCOME_UNKNOWN, ev.ACTION_SUCCEEDED, ev.ACTION_STARTED}
)
_CLOSES = frozenset({ev.ACTION_REJECTED, ev.ACTION_FAILED, ev.ACTION_COMPENSATED})


class ActionWorker:
    def __init__(
        self,
        conductor: Conductor,
        gate: PolicyGate,
        toolboxes: Mapping[str, Toolbox],
        *,
        owner: str | None = None,
        lease_ttl_s: float = 60.0,
        concurrency: int = 16,
        max_attempts: int = 3,
        retry_after_s: float = 2.0,
        poll_interval_s: float = 1.0,
    ) -> None:
        self.conductor = conductor
        self.store = conductor.store
        self.gate = gate
        self.toolboxes = dict(toolboxes)
        self.owner = owner or f"actions-{os.getpid()}-{new_id('w')[-8:]}"
        self.lease_ttl_s = lease_ttl_s
        self.max_attempts = max_attempts
        self.retry_after_s = retry_after_s
        self.poll_interval_s = poll_interval_s
        self._open: dict[str, tuple[str, str, int]] = {}  # action -> tenant, interaction, position proposed
        self._position = 0
        self._saved_low = -1
        self._saved_at = 0.0
        self._reading = asyncio.Lock()
        self._stopping = asyncio.Event()
        self._follower: asyncio.Task[None] | None = None
        self._queue: asyncio.Queue[str] = asyncio.Queue()
        self._queued: set[str] = set()
        self._running: set[str] = set()
        self._again: set[str] = set()
        self._unreachable: dict[str, int] = {}
        self._slots = asyncio.Semaphore(concurrency)
        self._tasks: set[asyncio.Task[None]] = set()
        self._later: dict[str, asyncio.TimerHandle] = {}
        self._dispatcher: asyncio.Task[None] | None = None
        self._idle = asyncio.Event()
        self._idle.set()

    # -- running -------------------------------------------------------------------------------------
    async def start(self) -> None:
        self._stopping.clear()
        await self._recover()
        self._follower = asyncio.create_task(self._follow(), name=f"actions-log:{self.owner}")
        self._dispatcher = asyncio.create_task(self._dispatch(), name=f"actions:{self.owner}")

    async def aclose(self) -> None:
        self._stopping.set()
        if self._follower is not None:
            await self._follower
        for handle in self._later.values():
            handle.cancel()
        self._later.clear()
        if self._dispatcher is not None:
            self._dispatcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._dispatcher
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=30)
        await self._save_low(force=True)

    async def catch_up(self) -> None:
        """Read everything committed so far and wait until the work it gave is done (tests, benchmarks)."""
        await self._read_new()
        await self.idle()

    async def idle(self, within: float = 60.0) -> None:
        """Wait until nothing is queued or running (actions waiting for a lease or a deadline do not count)."""
        async with asyncio.timeout(within):
            await self._idle.wait()

    @property
    def open_actions(self) -> int:
        return len(self._open)

    # -- following the log ---------------------------------------------------------------------------
    async def _recover(self) -> None:
        """Rebuild the unfinished actions from the low-water mark to the head of the log, then look at each."""
        self._position = self._saved_low = await self.store.checkpoint(LOW_WATER)
        self._saved_at = time.monotonic()
        await self._read_new(enqueue=False)
        for action_id in list(self._open):
            self._enqueue(action_id)

    async def _follow(self) -> None:
        # Subscribe before reading: anything committed after this wakes us, anything before, we read.
        queue = self.conductor.bus.subscribe()
        try:
            while not self._stopping.is_set():
                try:
                    await self._read_new()
                except Exception:  # the top of a long-running task: keep following, retry after the poll
                    log.exception("action worker %s could not read the log after %s", self.owner, self._position)
                await self._wait(queue)
        finally:
            self.conductor.bus.unsubscribe(queue)

    async def _wait(self, queue: asyncio.Queue[Event]) -> None:
        waiters = {asyncio.create_task(self._stopping.wait()), asyncio.create_task(queue.get())}
        try:
            await asyncio.wait(waiters, timeout=self.poll_interval_s, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiter in waiters:
                waiter.cancel()
            await asyncio.gather(*waiters, return_exceptions=True)
        while not queue.empty():  # the wake-ups carry nothing we need: the store has every event
            queue.get_nowait()

    async def _read_new(self, *, enqueue: bool = True) -> None:
        async with self._reading:
            while True:
                batch = await self.store.read_all(after_position=self._position, limit=500)
                for event in batch:
                    self._track(event, enqueue=enqueue)
                    self._position = event.position
                await self._save_low()
                if len(batch) < 500:
                    return

    def _track(self, event: Event, *, enqueue: bool) -> None:
        if event.type == ev.TIMER_FIRED and event.data.get("kind") == lifecycle.APPROVAL_EXPIRY:
            action_id = lifecycle.action_of_timer(str(event.data["timer_id"]))
            if action_id is not None and action_id in self._open and enqueue:
                self._enqueue(action_id)
            return
        if not event.type.startswith("Action"):
            return
        action_id = str(event.data["action_id"])
        if event.type == ev.ACTION_PROPOSED:
            self._open[action_id] = (event.tenant_id, event.interaction_id, event.position)
        elif event.type in _CLOSES or (event.type == ev.ACTION_DECIDED and event.data["outcome"] == "deny"):
            self._open.pop(action_id, None)
        elif event.type in _WAKES and enqueue and action_id in self._open:
            self._enqueue(action_id)

    async def _save_low(self, *, force: bool = False) -> None:
        low = min((p for _, _, p in self._open.values()), default=self._position + 1) - 1
        if low <= self._saved_low:
            return
        if force or low - self._saved_low >= SAVE_EVERY or time.monotonic() - self._saved_at >= SAVE_AFTER_S:
            await self.store.save_checkpoint(LOW_WATER, low)
            self._saved_low, self._saved_at = low, time.monotonic()

    # -- scheduling ----------------------------------------------------------------------------------
    def _enqueue(self, action_id: str) -> None:
        if action_id in self._running:
            self._again.add(action_id)
        elif action_id not in self._queued:
            self._queued.add(action_id)
            self._idle.clear()
            self._queue.put_nowait(action_id)

    def _retry_later(self, action_id: str, delay: float) -> None:
        if action_id in self._later:
            return
        loop = asyncio.get_running_loop()

        def fire() -> None:
            self._later.pop(action_id, None)
            self._enqueue(action_id)

        self._later[action_id] = loop.call_later(delay, fire)

    async def _dispatch(self) -> None:
        while True:
            action_id = await self._queue.get()
            await self._slots.acquire()
            self._queued.discard(action_id)
            self._running.add(action_id)
            task = asyncio.create_task(self._run(action_id))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _run(self, action_id: str) -> None:
        try:
            await self._advance(action_id)
        except Exception:  # the top of one action's task: log, look at it again later
            log.exception("action %s could not be advanced", action_id)
            self._retry_later(action_id, self.retry_after_s)
        finally:
            self._running.discard(action_id)
            self._slots.release()
            if action_id in self._again:
                self._again.discard(action_id)
                self._enqueue(action_id)
            if not self._running and not self._queued:
                self._idle.set()

    # -- advancing one action ------------------------------------------------------------------------
    async def _advance(self, action_id: str) -> None:
        where = self._open.get(action_id)
        if where is None:
            return
        tenant_id, interaction_id, _ = where
        try:
            state = await self.conductor.load(interaction_id)
        except InteractionNotFound:
            self._open.pop(action_id, None)
            return
        action = state.actions.get(action_id)
        if action is None or lifecycle.is_terminal(action):
            self._open.pop(action_id, None)
            return
        status = action["status"]
        if status == "awaiting_approval":
            await self._await_approval(state, action)
        elif status == "approved":
            await self._execute(tenant_id, interaction_id, action_id)
        elif status in ("started", "unknown"):
            lease = action.get("lease") or {}
            until = datetime.fromisoformat(lease["until"]) if lease.get("until") else None
            now = self.conductor.clock.now()
            if lease.get("worker") != self.owner and until is not None and now < until:
                # Another worker owns the call; if it died, its lease lapses and we look again then.
                self._retry_later(action_id, (until - now).total_seconds() + 0.05)
                return
            await self._reconcile(tenant_id, interaction_id, action_id)

    async def _await_approval(self, state: Interaction, action: dict[str, Any]) -> None:
        action_id = action["id"]
        deadline = lifecycle.expires_at(action)
        if deadline is None:
            return
        now = self.conductor.clock.now()
        timer_id = lifecycle.approval_timer_id(action_id)
        if now < deadline:
            if timer_id not in state.timers:

                def schedule(s: Interaction) -> list[cmd.Command]:
                    if timer_id in s.timers or s.actions[action_id]["status"] != "awaiting_approval":
                        return []
                    return [cmd.ScheduleTimer(lifecycle.APPROVAL_EXPIRY, deadline, timer_id=timer_id)]

                await self.conductor.execute(
                    state.tenant_id, state.interaction_id, schedule, WORKER, require_open=False
                )
            # Without a timer service in this process the expiry is still enforced: look again at the deadline.
            self._retry_later(action_id, max((deadline - now).total_seconds(), 0.0) + 0.01)
            return

        def expire(s: Interaction) -> list[cmd.Command]:
            if s.actions[action_id]["status"] != "awaiting_approval":
                return []
            data = {"action_id": action_id, "by": "system", "role": "system", "reason": "approval expired",
                    "expired": True}  # fmt: skip
            out: list[cmd.Command] = [cmd.Emit(ev.ACTION_REJECTED, data)]
            if s.timers.get(timer_id, {}).get("status") == "scheduled":
                out.append(cmd.CancelTimer(timer_id))
            return out

        if await self.conductor.execute(state.tenant_id, state.interaction_id, expire, WORKER, require_open=False):
            await self.conductor.process(state.interaction_id)

    async def _start(self, tenant_id: str, interaction_id: str, action_id: str, *, from_status: str) -> str | None:
        """Re-check policy and record ActionStarted in one fenced step; the idempotency key, or None when the
        action may not run now (it moved on, or policy now says otherwise: that is recorded instead)."""
        verdict_events: list[str] = []

        def start(s: Interaction) -> list[cmd.Command]:
            verdict_events.clear()
            action = s.actions.get(action_id)
            if action is None or action["status"] != from_status:
                return []
            now = self.conductor.clock.now()
            verdict = self.gate.verdict(
                s, action["tool"], action["args"], action["proposed_by"]["kind"], now, action_id=action_id
            )
            decision = verdict.decision
            runs = decision.outcome == "allow" or (
                decision.outcome == "require_approval" and lifecycle.approval_holds(action, decision.requires)
            )
            if runs:
                key = lifecycle.idempotency_key(tenant_id, action_id)
                data = {"action_id": action_id, "idempotency_key": key, "tool": action["tool"], "worker": self.owner,
                        "lease_until": self._lease_until(), "attempt": int(action.get("attempts") or 0) + 1,
                        "policy_version": decision.policy_version, "rule": decision.rule}  # fmt: skip
                verdict_events.append(key)
                return [cmd.Emit(ev.ACTION_STARTED, data)]
            redecided: dict[str, Any] = {
                "action_id": action_id, "outcome": decision.outcome, "rule": decision.rule,
                "policy_version": decision.policy_version,
                "reasons": ["re-checked before executing", *decision.reasons], "requires": decision.requires,
                "args_digest": action["args_digest"], "stage": "execution",
            }  # fmt: skip
            if decision.expires_in_s is not None:
                redecided["expires_at"] = (now + timedelta(seconds=decision.expires_in_s)).isoformat()
            return [cmd.Emit(ev.ACTION_DECIDED, redecided)]

        events = await self.conductor.execute(tenant_id, interaction_id, start, WORKER, require_open=False)
        if events and events[0].type == ev.ACTION_STARTED and verdict_events:
            return verdict_events[0]
        if events and events[0].type == ev.ACTION_DECIDED and events[0].data["outcome"] == "require_approval":
            self._enqueue(action_id)  # schedule the new approval's expiry
        elif events and events[0].type == ev.ACTION_DECIDED:
            self._open.pop(action_id, None)
        return None

    def _lease_until(self) -> str:
        return (self.conductor.clock.now() + timedelta(seconds=self.lease_ttl_s)).isoformat()

    async def _execute(self, tenant_id: str, interaction_id: str, action_id: str) -> None:
        key = await self._start(tenant_id, interaction_id, action_id, from_status="approved")
        if key is None:
            return
        await self._call_and_settle(tenant_id, interaction_id, action_id, key)

    async def _call_and_settle(self, tenant_id: str, interaction_id: str, action_id: str, key: str) -> None:
        state = await self.conductor.load(interaction_id)
        action = state.actions[action_id]
        toolbox = self.toolboxes.get(tenant_id)
        if toolbox is None:
            await self._fail(tenant_id, interaction_id, action, f"tenant {tenant_id} has no tools", retryable=False)
            return
        outcome = await toolbox.call(action["tool"], action["args"], key=key)
        await self._settle(tenant_id, interaction_id, action, key, outcome, toolbox)

    async def _settle(
        self,
        tenant_id: str,
        interaction_id: str,
        action: dict[str, Any],
        key: str,
        outcome: CallOutcome,
        toolbox: Toolbox,
    ) -> None:
        if outcome.status == "ok":
            await self._succeed(tenant_id, interaction_id, action, key, outcome.result or {}, reconciled=False)
            return
        if outcome.status == "unavailable":
            # Nothing was sent: the effect did not happen; say so, so the floor holder can offer a fallback.
            await self._fail(tenant_id, interaction_id, action, outcome.error or "unavailable", retryable=True)
            return
        if outcome.status == "error":
            # The server answered no. Cheap insurance before saying "failed": ask whether it happened anyway.
            found = await toolbox.reconcile(action["tool"], key)
            if found.found:
                await self._succeed(tenant_id, interaction_id, action, key, found.result or {}, reconciled=True)
            else:
                await self._fail(tenant_id, interaction_id, action, outcome.error or "failed", retryable=False)
            return
        await self._record(
            tenant_id, interaction_id, action["id"], ("started",),
            [cmd.Emit(ev.ACTION_OUTCOME_UNKNOWN, {"action_id": action["id"], "idempotency_key": key,
                                                  "error": outcome.error or "no answer", "worker": self.owner,
                                                  "lease_until": self._lease_until()})],
        )  # fmt: skip
        await self._reconcile(tenant_id, interaction_id, action["id"])

    async def _reconcile(self, tenant_id: str, interaction_id: str, action_id: str) -> None:
        """An action that may or may not have happened: look it up by its key, never call blind."""
        state = await self.conductor.load(interaction_id)
        action = state.actions[action_id]
        if action["status"] not in ("started", "unknown"):
            return
        key = action.get("idempotency_key") or lifecycle.idempotency_key(tenant_id, action_id)
        toolbox = self.toolboxes.get(tenant_id)
        if toolbox is None:
            await self._escalate(tenant_id, interaction_id, action_id, key, f"tenant {tenant_id} has no tools")
            return
        found = await toolbox.reconcile(action["tool"], key)
        if found.found:
            self._unreachable.pop(action_id, None)
            await self._succeed(tenant_id, interaction_id, action, key, found.result or {}, reconciled=True)
            return
        if found.found is None:
            tries = self._unreachable.get(action_id, 0) + 1
            self._unreachable[action_id] = tries
            if tries >= self.max_attempts:
                self._unreachable.pop(action_id, None)
                await self._escalate(tenant_id, interaction_id, action_id, key, f"cannot reconcile: {found.error}")
            else:
                self._retry_later(action_id, self.retry_after_s * tries)
            return
        self._unreachable.pop(action_id, None)
        contract = await toolbox.contract(action["tool"])
        if not contract.idempotent:
            await self._escalate(tenant_id, interaction_id, action_id, key, "not done, and the tool is not idempotent")
            return
        if int(action.get("attempts") or 0) >= self.max_attempts:
            await self._escalate(tenant_id, interaction_id, action_id, key, "not done after the last attempt")
            return
        # Known not to have happened: calling again with the same key is safe, and policy is asked again.
        again = await self._start(tenant_id, interaction_id, action_id, from_status=action["status"])
        if again is not None:
            await self._call_and_settle(tenant_id, interaction_id, action_id, again)

    # -- recording results ---------------------------------------------------------------------------
    async def _record(
        self, tenant_id: str, interaction_id: str, action_id: str, statuses: tuple[str, ...], out: list[cmd.Command]
    ) -> list[Event]:
        def guarded(s: Interaction) -> list[cmd.Command]:
            action = s.actions.get(action_id)
            return out if action is not None and action["status"] in statuses else []

        return await self.conductor.execute(tenant_id, interaction_id, guarded, WORKER, require_open=False)

    async def _succeed(
        self,
        tenant_id: str,
        interaction_id: str,
        action: dict[str, Any],
        key: str,
        result: dict[str, Any],
        *,
        reconciled: bool,
    ) -> None:
        tool = action["tool"]
        source = f"action:{tool}"
        facts = [f for f in result.get("facts") or [] if isinstance(f, Mapping) and "name" in f and "value" in f]
        visible = {k: v for k, v in result.items() if k not in ("facts", "replayed")}
        data: dict[str, Any] = {"action_id": action["id"], "idempotency_key": key, "result": visible,
                                "reconciled": reconciled, "replayed": bool(result.get("replayed"))}  # fmt: skip
        out: list[cmd.Command] = [cmd.Emit(ev.ACTION_SUCCEEDED, data)]
        for fact in facts:
            out.append(cmd.Learn(str(fact["name"]), fact["value"], source, subject=fact.get("subject"), verified=True))
        status = {"tool": tool, "status": "succeeded", "reconciled": reconciled}
        out.append(cmd.Learn("action_status", status, source, subject=f"action:{action['id']}", verified=True))
        original = lifecycle.action_of_key(str(action["args"].get("original_key") or ""))
        recorded = await self._record(tenant_id, interaction_id, action["id"], ("started", "unknown"), out)
        if recorded and original is not None:
            compensated = {"action_id": original, "by_action": action["id"], "result": visible}
            await self._record(
                tenant_id, interaction_id, original, ("succeeded",), [cmd.Emit(ev.ACTION_COMPENSATED, compensated)]
            )
        self._open.pop(action["id"], None)

    async def _fail(
        self, tenant_id: str, interaction_id: str, action: dict[str, Any], error: str, *, retryable: bool
    ) -> None:
        source = f"action:{action['tool']}"
        status = {"tool": action["tool"], "status": "failed", "error": error}
        out: list[cmd.Command] = [
            cmd.Emit(ev.ACTION_FAILED, {"action_id": action["id"], "error": error, "retryable": retryable}),
            cmd.Learn("action_status", status, source, subject=f"action:{action['id']}", verified=True),
        ]
        await self._record(tenant_id, interaction_id, action["id"], ("started", "unknown"), out)
        self._open.pop(action["id"], None)

    async def _escalate(self, tenant_id: str, interaction_id: str, action_id: str, key: str, reason: str) -> None:
        """Nobody can tell whether it happened: a person must look, with everything the log knows."""
        data = {"action_id": action_id, "idempotency_key": key, "error": reason, "escalated": True}
        state = await self.conductor.load(interaction_id)
        tool = state.actions[action_id]["tool"]
        status = {"tool": tool, "status": "unknown", "needs_person": True, "reason": reason}
        out: list[cmd.Command] = [
            cmd.Emit(ev.ACTION_OUTCOME_UNKNOWN, data),
            cmd.Learn("action_status", status, f"action:{tool}", subject=f"action:{action_id}", verified=True),
        ]
        await self._record(tenant_id, interaction_id, action_id, ("started", "unknown"), out)
        self._open.pop(action_id, None)

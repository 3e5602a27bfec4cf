"""The activator: for a trigger, fetch the signals it calls for, concurrently and within their budgets, and
hand them back as facts with provenance, masked for the participant that asked.

Every fact is a ``Learn`` with source ``signal:<name>`` and ``observed_at`` the moment it was read, so the case
file ranks it like any system of record, below the result of an action: once the hold is released, a lakehouse
that still says ``held`` is a lagging signal and loses. Each signal also reports how the fetch went, as the
fact ``signal_status`` about the subject ``signal:<name>`` (ok, timeout or failed; rows, milliseconds, budget,
freshness, release version). A slow or failing source never holds the conversation up: past its budget the
signal is a ``timeout`` fact and the participant goes on without it.

Results are cached per interaction for the signal's freshness, keyed by the signal and the key's value, and
concurrent requests for the same signal and key share one fetch, whichever interactions they come from. The
cache holds what the source returned; masking is applied on the way out, per participant.

    activator = await Activator.open(data_dir=Path("var/lakehouse"))
    learns = await activator.for_trigger(
        "bank", Trigger.intent("card_declined", Assurance.KNOWLEDGE_VERIFIED), {"customer": "C-1001"}, "bot",
        interaction_id=case.interaction_id,
    )
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from tandem.activation.sources import ManyKeys, Row, Source, SourceError, open_source
from tandem.clock import Clock, SystemClock
from tandem.commands import Learn
from tandem.release.signals import (
    STATUS_FACT,
    ReleaseError,
    SignalDef,
    SignalRelease,
    Trigger,
    load_releases,
    render,
)

log = logging.getLogger(__name__)

Status = Literal["ok", "timeout", "failed", "skipped"]
DEFAULT_DATA_DIR = Path("var/lakehouse")


@dataclass(frozen=True, slots=True)
class SignalReport:
    """How one signal's fetch went (what ``signal_status`` says, plus the key it was fetched for)."""

    signal: str
    status: Status
    ms: float
    rows: int = 0
    cached: bool = False
    error: str | None = None


@dataclass(frozen=True, slots=True)
class Activation:
    tenant_id: str
    trigger: Trigger
    participant: str
    learns: list[Learn]
    reports: list[SignalReport]
    ms: float

    def report(self, signal: str) -> SignalReport:
        return next(r for r in self.reports if r.signal == signal)


@dataclass(frozen=True, slots=True)
class _Outcome:
    status: Status
    rows: list[Row]
    fetched_at: datetime
    ms: float
    error: str | None = None


@dataclass
class _Cache:
    """Per-interaction results, least recently used first; bounded so closed interactions cannot pile up."""

    size: int
    items: OrderedDict[tuple[str, str, str, str], _Outcome] = field(default_factory=OrderedDict)
    by_interaction: dict[str, set[tuple[str, str, str, str]]] = field(default_factory=dict)

    def get(self, key: tuple[str, str, str, str]) -> _Outcome | None:
        hit = self.items.get(key)
        if hit is not None:
            self.items.move_to_end(key)
        return hit

    def put(self, key: tuple[str, str, str, str], outcome: _Outcome) -> None:
        self.items[key] = outcome
        self.items.move_to_end(key)
        self.by_interaction.setdefault(key[1], set()).add(key)
        while len(self.items) > self.size:
            old, _ = self.items.popitem(last=False)
            keys = self.by_interaction.get(old[1])
            if keys is not None:
                keys.discard(old)
                if not keys:
                    del self.by_interaction[old[1]]

    def forget(self, interaction_id: str) -> None:
        for key in self.by_interaction.pop(interaction_id, set()):
            self.items.pop(key, None)


class Activator:
    def __init__(
        self,
        releases: Mapping[str, SignalRelease],
        sources: Mapping[str, Mapping[str, Source]],
        *,
        clock: Clock | None = None,
        cache_size: int = 50_000,
    ) -> None:
        for tenant, release in releases.items():
            for signal in release.signals.values():
                if signal.source not in sources.get(tenant, {}):
                    raise ReleaseError(f"tenant {tenant}: signal {signal.name} needs source {signal.source}, not open")
        self.releases = dict(releases)
        self.sources = {tenant: dict(s) for tenant, s in sources.items()}
        for tenant, release in releases.items():
            for signal in release.signals.values():
                source = self.sources[tenant][signal.source]
                if signal.query_many is not None and isinstance(source, ManyKeys):
                    source.add_many_form(signal.query, signal.query_many)
        self.clock: Clock = clock or SystemClock()
        self._cache = _Cache(cache_size)
        self._inflight: dict[tuple[str, str, str], asyncio.Task[_Outcome]] = {}  # (tenant, signal, key)

    @classmethod
    async def open(
        cls,
        releases: Mapping[str, SignalRelease] | None = None,
        data_dir: Path = DEFAULT_DATA_DIR,
        *,
        clock: Clock | None = None,
        sources: Mapping[str, Mapping[str, Source]] | None = None,
        cache_size: int = 50_000,
    ) -> Activator:
        """Open every source the releases name (the shipped examples' by default). ``sources`` puts already
        open sources in place of some (tenant -> source name -> source): how a deployment or a test binds
        a release's source names to its own systems. The activator owns them all from then on: ``close``
        closes them."""
        releases = releases if releases is not None else load_releases()
        given = sources or {}
        opened: dict[str, dict[str, Source]] = {}
        try:
            for tenant, release in releases.items():
                for name, spec in release.sources.items():
                    source = given.get(tenant, {}).get(name)
                    opened.setdefault(tenant, {})[name] = source or await open_source(spec, data_dir)
        except BaseException:
            for tenant, tenant_sources in opened.items():
                for name, source in tenant_sources.items():
                    if given.get(tenant, {}).get(name) is not source:
                        await source.close()
            raise
        return cls(releases, opened, clock=clock, cache_size=cache_size)

    async def close(self) -> None:
        for task in list(self._inflight.values()):
            task.cancel()
        closed: set[int] = set()
        for tenant_sources in self.sources.values():
            for source in tenant_sources.values():
                if id(source) not in closed:
                    closed.add(id(source))
                    await source.close()

    # -- the API the conversation uses -----------------------------------------------------------------
    async def for_trigger(
        self,
        tenant_id: str,
        trigger: Trigger,
        keys: Mapping[str, str],
        participant: str,
        *,
        interaction_id: str | None = None,
    ) -> list[Learn]:
        """The facts the signals of this trigger produce, as ``participant`` may see them."""
        return (await self.activate(tenant_id, trigger, keys, participant, interaction_id=interaction_id)).learns

    async def activate(
        self,
        tenant_id: str,
        trigger: Trigger,
        keys: Mapping[str, str],
        participant: str,
        *,
        interaction_id: str | None = None,
    ) -> Activation:
        """Like ``for_trigger``, with a report per signal (the CLI and the benchmark show them)."""
        started = time.perf_counter()
        release = self.releases.get(tenant_id)
        if release is None:
            log.debug("tenant %s has no signal release: nothing to fetch for %s", tenant_id, trigger)
            return Activation(tenant_id, trigger, participant, [], [], 0.0)
        return await self._activate(
            release, release.triggered(trigger, participant), trigger, keys, participant, interaction_id, started
        )

    async def fetch(
        self, tenant_id: str, signal: str, key: str, participant: str, *, interaction_id: str | None = None
    ) -> Activation:
        """One signal by name, whatever its trigger: for operators (``tandem signals fetch``) and tests. A
        participant asking in a conversation goes through ``for_trigger(Trigger.request(...))`` instead, which
        checks that the release lets it ask."""
        started = time.perf_counter()
        release = self._release(tenant_id)
        definition = release.signal(signal)
        trigger = Trigger.request(signal)
        return await self._activate(
            release, [definition], trigger, {definition.key: key}, participant, interaction_id, started
        )

    def forget(self, interaction_id: str) -> None:
        """Drop an interaction's cached results (it closed)."""
        self._cache.forget(interaction_id)

    def release(self, tenant_id: str) -> SignalRelease:
        return self._release(tenant_id)

    # -- inside ----------------------------------------------------------------------------------------
    def _release(self, tenant_id: str) -> SignalRelease:
        try:
            return self.releases[tenant_id]
        except KeyError:
            raise ReleaseError(
                f"no signal release for tenant {tenant_id!r}; known: {', '.join(sorted(self.releases))}"
            ) from None

    async def _activate(
        self,
        release: SignalRelease,
        signals: Sequence[SignalDef],
        trigger: Trigger,
        keys: Mapping[str, str],
        participant: str,
        interaction_id: str | None,
        started: float,
    ) -> Activation:
        wanted = [s for s in signals if keys.get(s.key)]
        results = await asyncio.gather(*(self._one(release, s, str(keys[s.key]), interaction_id) for s in wanted))
        learns: list[Learn] = []
        reports: list[SignalReport] = [
            SignalReport(s.name, "skipped", 0.0, error=f"no {s.key} key") for s in signals if not keys.get(s.key)
        ]
        for signal, (outcome, cached) in zip(wanted, results, strict=True):
            facts, report = self._facts(release, signal, outcome, cached)
            reports.append(report)
            for learn in facts:
                seen = release.scopes.view(participant, learn)
                if seen is not None:
                    learns.append(seen)
        return Activation(
            release.tenant_id, trigger, participant, learns, reports, (time.perf_counter() - started) * 1000
        )

    async def _one(
        self, release: SignalRelease, signal: SignalDef, key: str, interaction_id: str | None
    ) -> tuple[_Outcome, bool]:
        cache_key = (release.tenant_id, interaction_id or "", signal.name, key)
        if interaction_id is not None:
            hit = self._cache.get(cache_key)
            if hit is not None and self.clock.now() - hit.fetched_at <= signal.freshness:
                return hit, True
        # A read already on its way for the same signal and key answers every interaction waiting for it, not
        # only the one that started it: it is fresher than anything cached, and the source reads once.
        flight = (release.tenant_id, signal.name, key)
        task = self._inflight.get(flight)
        if task is None:
            task = asyncio.ensure_future(self._run(release.tenant_id, signal, key))
            self._inflight[flight] = task
            task.add_done_callback(lambda _t: self._inflight.pop(flight, None))
        outcome = await asyncio.shield(task)
        if interaction_id is not None and outcome.status == "ok":
            self._cache.put(cache_key, outcome)
        return outcome, False

    async def _run(self, tenant_id: str, signal: SignalDef, key: str) -> _Outcome:
        source = self.sources[tenant_id][signal.source]
        fetched_at = self.clock.now()
        params: dict[str, Any] = {"key": key, "today": fetched_at.date()}
        started = time.perf_counter()
        try:
            async with asyncio.timeout(signal.budget_s):
                rows = await source.query(signal.query, params, signal.budget_s)
        except TimeoutError:
            return _Outcome("timeout", [], fetched_at, _ms(started), f"no answer within {signal.budget_ms} ms")
        except SourceError as exc:
            log.warning("signal %s failed: %s", signal.name, exc)
            return _Outcome("failed", [], fetched_at, _ms(started), str(exc))
        except Exception as exc:  # a source is someone else's system: whatever it raises, the conversation goes on
            log.warning("signal %s failed: %s: %s", signal.name, type(exc).__name__, exc)
            return _Outcome("failed", [], fetched_at, _ms(started), f"{type(exc).__name__}: {exc}")
        return _Outcome("ok", rows, fetched_at, _ms(started))

    def _facts(
        self, release: SignalRelease, signal: SignalDef, outcome: _Outcome, cached: bool
    ) -> tuple[list[Learn], SignalReport]:
        source = f"signal:{signal.name}"
        at = outcome.fetched_at
        status, error = outcome.status, outcome.error
        facts: list[Learn] = []
        if status == "ok":
            try:
                for fact in signal.facts:
                    if not outcome.rows and fact.has_empty:
                        facts.append(Learn(fact.name, fact.empty_value, source, subject=fact.subject, observed_at=at))
                    for row in outcome.rows:
                        rendered = render(fact.value, row)
                        facts.append(Learn(fact.name, rendered, source, subject=fact.subject_for(row), observed_at=at))
            except ReleaseError as exc:  # the query and the fact mapping disagree: a release bug, shown as such
                status, error, facts = "failed", f"release {release.version}: {exc}", []
        report = SignalReport(signal.name, status, outcome.ms, len(outcome.rows), cached, error)
        value: dict[str, Any] = {
            "signal": signal.name,
            "status": status,
            "source": signal.source,
            "key": signal.key,
            "rows": len(outcome.rows),
            "ms": round(outcome.ms, 2),
            "budget_ms": signal.budget_ms,
            "freshness_s": int(signal.freshness.total_seconds()),
            "cached": cached,
            "release": release.version,
        }
        if error:
            value["error"] = error
        facts.append(Learn(STATUS_FACT, value, source, subject=f"signal:{signal.name}", observed_at=at))
        return facts, report


def _ms(started: float) -> float:
    return (time.perf_counter() - started) * 1000

"""The contract every EventStore keeps, written once and run against each backend.

Subclass ``StoreContract`` and override the ``store`` fixture; every test here then runs on that backend.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tandem.case import events as ev
from tandem.case.envelope import SYSTEM, Actor, Event, PendingEvent
from tandem.case.events import InvalidEventData
from tandem.store import codec
from tandem.store.consumer import Consumer
from tandem.store.protocol import (
    DuplicateInput,
    EventStore,
    InteractionNotFound,
    OpenInteractionExists,
    StoreError,
    VersionConflict,
)

T0 = datetime(2026, 12, 3, 9, 0, tzinfo=UTC)
CUSTOMER = Actor("customer", "C-1")
BOT = Actor("bot", "bot")


def pending(type_: str, data: dict[str, Any], actor: Actor = SYSTEM, *, at: datetime = T0) -> PendingEvent:
    return PendingEvent(type_, data, actor, at, floor_epoch=0, correlation_id="cor-1")


def opening(customer_id: str = "C-1", *, channel: str = "chat", name: str = "Ada Lovelace") -> list[PendingEvent]:
    return [
        pending(
            ev.INTERACTION_STARTED,
            {"customer_id": customer_id, "channel": channel, "customer": {"name": name}, "floor": "bot"},
        ),
        pending(ev.LEG_OPENED, {"leg_id": "leg-1", "channel": channel, "assurance": "none"}),
    ]


def said(text: str) -> PendingEvent:
    return pending(ev.CUSTOMER_SAID, {"text": text}, CUSTOMER)


def reply(text: str) -> PendingEvent:
    return pending(ev.REPLY_SENT, {"text": text}, BOT)


def turn_done(input_seq: int) -> PendingEvent:
    return pending(ev.TURN_COMPLETED, {"input_seq": input_seq})


def closing() -> PendingEvent:
    return pending(ev.INTERACTION_CLOSED, {"disposition": "resolved"})


def envelope(event: Event) -> dict[str, Any]:
    """Everything about an event except its data."""
    out = event.to_dict()
    del out["data"]
    return out


class StoreContract:
    @pytest.fixture
    async def store(self) -> AsyncIterator[EventStore]:
        raise NotImplementedError("a backend's test class provides the store")
        yield  # pragma: no cover

    # -- writing and reading -----------------------------------------------------------------------------
    async def test_create_commits_the_opening_events_and_reads_them_back_unchanged(self, store: EventStore) -> None:
        created = await store.create("bank", "int-1", "C-1", opening())
        assert [e.seq for e in created] == [1, 2]
        assert created[0].position < created[1].position
        read = await store.read("int-1")
        assert [e.to_dict() for e in read] == [e.to_dict() for e in created]
        assert read[0].data["customer"] == {"name": "Ada Lovelace"}
        record = await store.record("int-1")
        assert (record.tenant_id, record.customer_id, record.status, record.version) == ("bank", "C-1", "open", 2)
        assert (record.channel, record.floor_kind) == ("chat", "bot")
        assert datetime.fromisoformat(record.created_at).tzinfo is not None

    async def test_an_interaction_must_start_with_interaction_started(self, store: EventStore) -> None:
        with pytest.raises(ValueError):
            await store.create("bank", "int-1", "C-1", [said("hi")])
        with pytest.raises(InteractionNotFound):
            await store.record("int-1")

    async def test_seq_is_gap_free_per_interaction_across_appends(self, store: EventStore) -> None:
        await store.create("bank", "int-1", "C-1", opening())
        await store.append("bank", "int-1", [said("a")], None)
        await store.append("bank", "int-1", [reply("b"), reply("c"), turn_done(3)], 3)
        await store.append("bank", "int-1", [said("d")], None)
        events = await store.read("int-1")
        assert [e.seq for e in events] == [1, 2, 3, 4, 5, 6, 7]
        assert [e.seq for e in await store.read("int-1", after_seq=3, limit=2)] == [4, 5]
        assert (await store.record("int-1")).version == 7

    async def test_a_stale_expected_version_is_refused_and_writes_nothing(self, store: EventStore) -> None:
        await store.create("bank", "int-1", "C-1", opening())
        await store.append("bank", "int-1", [said("first")], 2)
        with pytest.raises(VersionConflict) as refused:
            await store.append("bank", "int-1", [reply("too late")], 2)
        assert (refused.value.expected, refused.value.actual) == (2, 3)
        assert [e.seq for e in await store.read("int-1")] == [1, 2, 3]
        assert (await store.record("int-1")).version == 3

    async def test_append_without_expected_version_lands_at_the_end(self, store: EventStore) -> None:
        await store.create("bank", "int-1", "C-1", opening())
        await store.append("bank", "int-1", [reply("x")], 2)
        committed = await store.append("bank", "int-1", [said("late input")], None)
        assert [e.seq for e in committed] == [4]
        assert (await store.read("int-1", after_seq=3))[0].data["text"] == "late input"

    async def test_a_failed_append_writes_nothing_at_all(self, store: EventStore) -> None:
        await store.create("bank", "int-1", "C-1", opening())
        before = await store.read_all()
        with pytest.raises(InvalidEventData):
            await store.append("bank", "int-1", [reply("ok"), pending(ev.REPLY_SENT, {})], None)
        assert await store.read_all() == before
        assert (await store.record("int-1")).version == 2
        assert [e.seq for e in await store.append("bank", "int-1", [reply("ok")], 2)] == [3]

    async def test_unknown_interaction_or_another_tenant_is_not_found(self, store: EventStore) -> None:
        await store.create("bank", "int-1", "C-1", opening())
        with pytest.raises(InteractionNotFound):
            await store.append("bank", "int-nope", [said("hi")], None)
        with pytest.raises(InteractionNotFound):
            await store.append("health", "int-1", [said("hi")], None)
        with pytest.raises(InteractionNotFound):
            await store.record("int-nope")
        assert await store.read("int-nope") == []

    async def test_read_all_is_in_position_order_across_interactions(self, store: EventStore) -> None:
        await store.create("bank", "int-1", "C-1", opening("C-1"))
        await store.create("health", "int-2", "C-2", opening("C-2"))
        for n in range(3):
            await store.append("bank", "int-1", [said(f"one {n}")], None)
            await store.append("health", "int-2", [said(f"two {n}"), reply(f"two {n}")], None)
        everything = await store.read_all()
        positions = [e.position for e in everything]
        assert positions == sorted(set(positions))
        assert len(everything) == 4 + 3 + 6
        for interaction_id in ("int-1", "int-2"):
            seqs = [e.seq for e in everything if e.interaction_id == interaction_id]
            assert seqs == list(range(1, len(seqs) + 1))
        paged: list[Event] = []
        while batch := await store.read_all(after_position=paged[-1].position if paged else 0, limit=4):
            paged.extend(batch)
        assert [e.event_id for e in paged] == [e.event_id for e in everything]

    # -- one open interaction per customer ------------------------------------------------------------------
    async def test_a_customer_has_one_open_interaction_and_may_open_another_after_close(
        self, store: EventStore
    ) -> None:
        await store.create("bank", "int-1", "C-1", opening("C-1"))
        with pytest.raises(OpenInteractionExists) as refused:
            await store.create("bank", "int-2", "C-1", opening("C-1"))
        assert refused.value.existing == "int-1"
        assert await store.read("int-2") == []
        with pytest.raises(InteractionNotFound):
            await store.record("int-2")
        await store.create("health", "int-3", "C-1", opening("C-1"))  # another tenant: another customer
        assert await store.open_interaction_of("bank", "C-1") == "int-1"

        await store.append("bank", "int-1", [closing()], None)
        assert (await store.record("int-1")).status == "closed"
        assert await store.open_interaction_of("bank", "C-1") is None
        await store.create("bank", "int-2", "C-1", opening("C-1"))
        assert await store.open_interaction_of("bank", "C-1") == "int-2"

    async def test_customer_identified_moves_the_interaction_to_that_customer(self, store: EventStore) -> None:
        await store.create("bank", "int-1", "anon-1", opening("anon-1"))
        await store.append(
            "bank", "int-1", [pending(ev.CUSTOMER_IDENTIFIED, {"customer_id": "C-9", "method": "caller_id"})], None
        )
        assert (await store.record("int-1")).customer_id == "C-9"
        assert await store.open_interaction_of("bank", "C-9") == "int-1"
        assert await store.open_interaction_of("bank", "anon-1") is None
        # The customer's keys moved too: erasing C-9 covers what was said before they were identified.
        assert await store.erase_customer("bank", "C-9") == 1

    async def test_identifying_a_customer_who_already_has_an_open_interaction_keeps_both(
        self, store: EventStore
    ) -> None:
        await store.create("bank", "int-1", "C-9", opening("C-9"))
        await store.create("bank", "int-2", "anon-2", opening("anon-2"))
        await store.append(
            "bank", "int-2", [pending(ev.CUSTOMER_IDENTIFIED, {"customer_id": "C-9", "method": "claim"})], None
        )
        assert (await store.record("int-2")).customer_id == "anon-2"
        assert (await store.record("int-2")).version == 3
        assert await store.open_interaction_of("bank", "C-9") == "int-1"

    # -- snapshots and erasure -----------------------------------------------------------------------------
    async def test_snapshots_round_trip_keep_the_newest_and_are_removed_by_erasure(self, store: EventStore) -> None:
        await store.create("bank", "int-1", "C-1", opening())
        assert await store.load_snapshot("int-1") is None
        state = {"facts": {"card_last4": "4242"}, "version": 5}
        await store.save_snapshot("int-1", 5, state)
        assert await store.load_snapshot("int-1") == (5, state)
        await store.save_snapshot("int-1", 3, {"older": True})
        assert await store.load_snapshot("int-1") == (5, state)
        await store.save_snapshot("int-1", 7, {"newer": True})
        assert await store.load_snapshot("int-1") == (7, {"newer": True})

        await store.erase_customer("bank", "C-1")
        assert await store.load_snapshot("int-1") is None
        await store.save_snapshot("int-1", 9, {"after": "erasure"})
        assert await store.load_snapshot("int-1") is None

    async def test_erasure_makes_personal_fields_unreadable_and_keeps_the_envelope(self, store: EventStore) -> None:
        await store.create("bank", "int-1", "C-1", opening("C-1"))
        await store.create("bank", "int-2", "C-2", opening("C-2", name="Grace Hopper"))
        await store.append("bank", "int-1", [said("my card is 4111"), reply("thanks"), turn_done(3)], None)
        await store.append("bank", "int-2", [said("hello")], None)
        before = await store.read("int-1")

        assert await store.erase_customer("bank", "C-1") == 1
        after = await store.read("int-1")
        assert [envelope(e) for e in after] == [envelope(e) for e in before]
        assert after[0].data["customer"] == codec.ERASED
        assert after[0].data["customer_id"] == "C-1"  # not personal: the log stays navigable
        assert after[0].data["channel"] == "chat"
        assert [e.data.get("text") for e in after[2:4]] == [codec.ERASED, codec.ERASED]
        assert after[4].data == {"input_seq": 3}
        from_all = {e.event_id: e for e in await store.read_all()}
        assert from_all[after[2].event_id].data["text"] == codec.ERASED

        # Another customer is untouched; the erased one's later lines are never stored in the clear.
        assert (await store.read("int-2"))[2].data["text"] == "hello"
        await store.append("bank", "int-1", [said("one more thing")], None)
        assert (await store.read("int-1", after_seq=5))[0].data["text"] == codec.ERASED
        assert await store.erase_customer("bank", "C-1") == 0

    # -- timers -------------------------------------------------------------------------------------------
    async def test_timers_fall_due_fire_once_and_a_second_firing_is_a_duplicate(self, store: EventStore) -> None:
        await store.create("bank", "int-1", "C-1", opening())
        soon, later = T0 + timedelta(minutes=1), T0 + timedelta(minutes=10)
        await store.append(
            "bank",
            "int-1",
            [
                pending(ev.TIMER_SCHEDULED, {"timer_id": "tmr-1", "kind": "no_input", "due_at": soon.isoformat()}),
                pending(ev.TIMER_SCHEDULED, {"timer_id": "tmr-2", "kind": "sla", "due_at": later.isoformat()}),
            ],
            None,
        )
        assert await store.due_timers(T0) == []
        due = await store.due_timers(soon)
        assert [(t.timer_id, t.tenant_id, t.interaction_id, t.kind) for t in due] == [
            ("tmr-1", "bank", "int-1", "no_input")
        ]
        assert due[0].due_at == soon
        assert [t.timer_id for t in await store.due_timers(later + timedelta(hours=1))] == ["tmr-1", "tmr-2"]

        await store.append("bank", "int-1", [pending(ev.TIMER_FIRED, {"timer_id": "tmr-1", "kind": "no_input"})], None)
        assert [t.timer_id for t in await store.due_timers(later)] == ["tmr-2"]
        with pytest.raises(DuplicateInput):
            await store.append(
                "bank", "int-1", [pending(ev.TIMER_FIRED, {"timer_id": "tmr-1", "kind": "no_input"})], None
            )
        assert (await store.record("int-1")).version == 5

        await store.append("bank", "int-1", [pending(ev.TIMER_CANCELLED, {"timer_id": "tmr-2"})], None)
        assert await store.due_timers(later + timedelta(hours=1)) == []
        with pytest.raises(DuplicateInput):
            await store.append("bank", "int-1", [pending(ev.TIMER_FIRED, {"timer_id": "tmr-2", "kind": "sla"})], None)

    async def test_a_timer_scheduled_twice_is_a_duplicate_and_writes_nothing(self, store: EventStore) -> None:
        await store.create("bank", "int-1", "C-1", opening())
        timer = {"timer_id": "tmr-1", "kind": "no_input", "due_at": T0.isoformat()}
        await store.append("bank", "int-1", [pending(ev.TIMER_SCHEDULED, timer)], None)
        with pytest.raises(DuplicateInput):
            await store.append("bank", "int-1", [pending(ev.TIMER_SCHEDULED, timer)], None)
        assert (await store.record("int-1")).version == 3

    async def test_creating_an_interaction_id_twice_is_refused_without_touching_the_first(
        self, store: EventStore
    ) -> None:
        await store.create("bank", "int-1", "C-1", opening())
        with pytest.raises(StoreError):
            await store.create("bank", "int-1", "C-2", opening("C-2"))
        assert (await store.record("int-1")).customer_id == "C-1"
        assert len(await store.read("int-1")) == 2

    # -- leases, recovery, search, checkpoints ---------------------------------------------------------------
    async def test_a_lease_refuses_a_second_owner_until_it_expires_or_is_released(self, store: EventStore) -> None:
        assert await store.acquire_lease("int-1", "worker-a", 30)
        assert not await store.acquire_lease("int-1", "worker-b", 30)
        assert await store.acquire_lease("int-1", "worker-a", 30)  # the holder renews
        await store.release_lease("int-1", "worker-b")  # not the holder: no effect
        assert not await store.acquire_lease("int-1", "worker-b", 30)
        await store.release_lease("int-1", "worker-a")
        assert await store.acquire_lease("int-1", "worker-b", 30)
        assert await store.acquire_lease("int-2", "worker-a", 30)  # leases are per interaction

        assert await store.acquire_lease("int-3", "worker-a", -1)  # granted already expired: a dead holder
        assert await store.acquire_lease("int-3", "worker-b", 30)
        assert not await store.acquire_lease("int-3", "worker-a", 30)

    async def test_unhandled_lists_interactions_with_acknowledged_inputs_not_yet_turned(
        self, store: EventStore
    ) -> None:
        await store.create("bank", "int-1", "C-1", opening("C-1"))  # LegOpened is an input
        await store.create("bank", "int-2", "C-2", opening("C-2"))
        await store.append("bank", "int-2", [turn_done(2)], None)
        assert await store.unhandled() == [("bank", "int-1")]
        await store.append("bank", "int-1", [reply("hello"), turn_done(2)], 2)
        assert await store.unhandled() == []
        await store.append("bank", "int-2", [said("are you there?")], None)
        assert await store.unhandled() == [("bank", "int-2")]
        await store.append("bank", "int-2", [turn_done(4)], 4)
        assert await store.unhandled() == []

    async def test_search_filters_by_status_customer_and_floor_and_pages_by_cursor(self, store: EventStore) -> None:
        for n in range(1, 6):
            await store.create("bank", f"int-{n}", f"C-{n}", opening(f"C-{n}"))
        await store.create("health", "int-9", "C-1", opening("C-1"))
        await store.append("bank", "int-2", [closing()], None)
        await store.append("bank", "int-3", [pending(ev.FLOOR_MOVED, {"kind": "human", "epoch": 1})], None)

        def ids(records: list[Any]) -> list[str]:
            return [r.interaction_id for r in records]

        assert ids(await store.search("bank")) == ["int-1", "int-2", "int-3", "int-4", "int-5"]
        assert ids(await store.search("bank", status="open")) == ["int-1", "int-3", "int-4", "int-5"]
        assert ids(await store.search("bank", status="closed")) == ["int-2"]
        assert ids(await store.search("bank", customer_id="C-1")) == ["int-1"]
        assert ids(await store.search("bank", floor_kind="human")) == ["int-3"]
        assert (await store.search("bank", floor_kind="human"))[0].floor_kind == "human"
        assert ids(await store.search("bank", status="open", floor_kind="bot", customer_id="C-4")) == ["int-4"]
        assert ids(await store.search("health")) == ["int-9"]

        pages: list[list[str]] = []
        cursor: str | None = None
        while page := ids(await store.search("bank", limit=2, after=cursor)):
            pages.append(page)
            cursor = page[-1]
        assert pages == [["int-1", "int-2"], ["int-3", "int-4"], ["int-5"]]

    async def test_checkpoints_start_at_zero_and_are_kept_per_consumer(self, store: EventStore) -> None:
        assert await store.checkpoint("timers") == 0
        await store.save_checkpoint("timers", 5)
        await store.save_checkpoint("timers", 8)
        await store.save_checkpoint("analytics", 2)
        assert await store.checkpoint("timers") == 8
        assert await store.checkpoint("analytics") == 2

    # -- consumers --------------------------------------------------------------------------------------
    async def test_a_consumer_sees_every_event_once_and_resumes_from_its_checkpoint(self, store: EventStore) -> None:
        await store.create("bank", "int-1", "C-1", opening())
        for n in range(5):
            await store.append("bank", "int-1", [said(f"line {n}")], None)
        seen: list[Event] = []

        async def remember(event: Event) -> None:
            seen.append(event)

        first = Consumer(store, "audit", remember, batch_size=3)
        assert await first.catch_up() == 7
        assert await first.catch_up() == 0
        assert await store.checkpoint("audit") == seen[-1].position

        await store.append("bank", "int-1", [said("after a restart")], None)
        again = Consumer(store, "audit", remember, batch_size=3)
        assert await again.catch_up() == 1
        assert [e.event_id for e in seen] == [e.event_id for e in await store.read_all()]

    async def test_a_failing_handler_keeps_the_progress_before_it_and_is_offered_the_event_again(
        self, store: EventStore
    ) -> None:
        await store.create("bank", "int-1", "C-1", opening())
        await store.append("bank", "int-1", [said("a"), said("b")], None)
        seen: list[int] = []
        fail_on = {3}

        async def flaky(event: Event) -> None:
            if event.seq in fail_on:
                fail_on.discard(event.seq)
                raise RuntimeError("handler failed")
            seen.append(event.seq)

        consumer = Consumer(store, "flaky", flaky)
        with pytest.raises(RuntimeError):
            await consumer.catch_up()
        assert seen == [1, 2]
        assert await store.checkpoint("flaky") == consumer.position
        assert await consumer.catch_up() == 2
        assert seen == [1, 2, 3, 4]

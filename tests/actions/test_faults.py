"""Fault injection with real processes: a worker killed between the call and the record, a duplicate approval,
two workers on the same actions, an MCP server dying mid-call. Whatever happens, each server's ledger shows
exactly one effect per action, and the action ends succeeded, failed or reconciled, never silently twice."""

from __future__ import annotations

import asyncio
import json
import signal
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from uuid import uuid4

import pytest

from tandem.actions import lifecycle
from tandem.case import events as ev
from tests.actions.support import (
    JAMES_DISPUTE,
    MARIA_HOLD,
    Deployment,
    deployment,
    events_of,
    hand_to_agent,
    maria_facts,
    propose,
    settled,
    verified_case,
)
from tests.store.pg import DSN, fresh_schema

pytestmark = pytest.mark.slow
CHILD = Path(__file__).with_name("child.py")


class Child:
    """A process running ``child.py``; its reports are kept in order as they arrive."""

    def __init__(self, proc: asyncio.subprocess.Process, stderr: Path) -> None:
        self.proc = proc
        self.stderr = stderr
        self.reports: list[dict[str, Any]] = []

    @classmethod
    async def start(cls, mode: str, args: dict[str, Any], workdir: Path) -> Child:
        stderr = workdir / f"{mode}-{uuid4().hex[:8]}.stderr"
        with stderr.open("wb") as err:
            proc = await asyncio.create_subprocess_exec(
                sys.executable, str(CHILD), mode, json.dumps(args),
                stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=err,
            )  # fmt: skip
        return cls(proc, stderr)

    async def expect(self, event: str, within: float = 60.0) -> dict[str, Any]:
        return await self.expect_one_of(event, within=within)

    async def expect_one_of(self, *events: str, within: float = 60.0) -> dict[str, Any]:
        """Read reports until one of ``events`` arrives; return it."""
        assert self.proc.stdout is not None
        deadline = time.monotonic() + within
        event = " or ".join(events)
        while not any(r["event"] in events for r in self.reports):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"no {event!r} within {within}s; reports {self.reports}; stderr:\n{self.errors()}")
            line = await asyncio.wait_for(self.proc.stdout.readline(), remaining)
            if not line:
                await asyncio.wait_for(self.proc.wait(), 10)
                raise AssertionError(f"child exited ({self.proc.returncode}) before {event!r}:\n{self.errors()}")
            self.reports.append(json.loads(line))
        return next(r for r in self.reports if r["event"] in events)

    def go(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(b"go\n")

    async def exited(self, within: float = 60.0) -> int:
        assert self.proc.stdout is not None
        await asyncio.wait_for(self.proc.stdout.read(), within)
        return await asyncio.wait_for(self.proc.wait(), within)

    def errors(self) -> str:
        return self.stderr.read_text(errors="replace")[-4000:]

    async def stop(self) -> None:
        if self.proc.returncode is None:
            self.proc.send_signal(signal.SIGKILL)
            await asyncio.wait_for(self.proc.wait(), 10)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def postgres(request: pytest.FixtureRequest) -> AsyncIterator[tuple[str, str] | None]:
    """The store the processes share: the SQLite file, or a fresh PostgreSQL schema (the store for several
    processes)."""
    if request.param == "postgres":
        async with fresh_schema() as schema:
            yield DSN, schema
    else:
        yield None


def worker_args(d: Deployment, tenant: str, actions: list[tuple[str, str]], **extra: Any) -> dict[str, Any]:
    # A short lease, so that a survivor does not wait long for a killed worker's lease to lapse.
    return {"data_dir": str(d.data_dir), "tenant": tenant, "actions": actions, "lease_ttl_s": 2.0,
            **d.store_args, **extra}  # fmt: skip


async def test_a_worker_killed_after_the_call_returned_but_before_recording_is_reconciled_once(
    tmp_path: Path, postgres: tuple[str, str] | None
) -> None:
    async with deployment(tmp_path, ["bank"], worker=False, postgres=postgres) as d:
        iid = await verified_case(d, "bank", "C-1001", facts=maria_facts())
        action_id = await propose(d, "bank", iid, "release_fraud_hold", MARIA_HOLD)
        doomed = await Child.start(
            "worker", worker_args(d, "bank", [(iid, action_id)], owner="doomed", crash_after="release_fraud_hold"),
            tmp_path,
        )  # fmt: skip
        survivor: Child | None = None
        try:
            returned = await doomed.expect("returned")
            assert returned["status"] == "ok"
            assert await doomed.exited() == -signal.SIGKILL
            assert (await d.conductor.load(iid)).actions[action_id]["status"] == "started"  # the record never came
            assert len(d.ledger("bank", "fraud", "release_hold")) == 1  # but the effect did

            survivor = await Child.start(
                "worker", worker_args(d, "bank", [(iid, action_id)], owner="survivor"), tmp_path
            )
            await survivor.expect("done")
            assert await survivor.exited() == 0
        finally:
            await doomed.stop()
            if survivor is not None:
                await survivor.stop()
        action = (await d.conductor.load(iid)).actions[action_id]
        assert action["status"] == "succeeded" and action["reconciled"] is True
        assert len(await events_of(d, iid, ev.ACTION_STARTED)) == 1  # never called again
        effects = d.ledger("bank", "fraud", "release_hold")
        assert [e.idempotency_key for e in effects] == [lifecycle.idempotency_key("bank", action_id)]


async def test_a_duplicate_approval_from_two_processes_is_recorded_once_and_executes_once(
    tmp_path: Path, postgres: tuple[str, str] | None
) -> None:
    async with deployment(tmp_path, ["bank"], worker=False, postgres=postgres) as d:
        iid = await verified_case(d, "bank", "C-1002")
        action_id = await propose(d, "bank", iid, "open_dispute", JAMES_DISPUTE)
        await hand_to_agent(d, "bank", iid)
        args = {"data_dir": str(d.data_dir), "tenant": "bank", "interaction_id": iid, "action_id": action_id,
                "agent": "ag_1", **d.store_args}  # fmt: skip
        clicks = [await Child.start("approve", args, tmp_path) for _ in range(2)]
        try:
            for click in clicks:
                await click.expect("ready")
            for click in clicks:
                click.go()
            outcomes = sorted([await c.expect_one_of("approved", "refused") for c in clicks], key=lambda r: r["event"])
            for click in clicks:
                assert await click.exited() == 0
        finally:
            for click in clicks:
                await click.stop()
        assert [o["event"] for o in outcomes] == ["approved", "refused"]
        assert outcomes[1]["code"] == "already_decided"
        assert len(await events_of(d, iid, ev.ACTION_APPROVED)) == 1
        await d.actions.worker.start()
        action = await settled(d.conductor, iid, action_id, {"succeeded", "failed"})
        assert action["status"] == "succeeded"
        assert len(d.ledger("bank", "core_banking", "open_dispute")) == 1


async def test_the_same_actions_picked_by_two_workers_each_run_once(
    tmp_path: Path, postgres: tuple[str, str] | None
) -> None:
    async with deployment(tmp_path, ["bank"], worker=False, postgres=postgres) as d:
        await two_workers_on_the_same_actions(d, tmp_path)


async def two_workers_on_the_same_actions(d: Deployment, tmp_path: Path) -> None:
    picked: list[tuple[str, str]] = []
    for n in range(3):
        iid = await verified_case(d, "bank", f"C-10{n:02d}")
        for k in range(4):
            args = {"customer_id": f"C-10{n:02d}", "text": f"note {k}"}
            picked.append((iid, await propose(d, "bank", iid, "add_note", args)))
    workers = [
        await Child.start(
            "worker", worker_args(d, "bank", picked, owner=f"w{n}", barrier=True, lease_ttl_s=60.0), tmp_path
        )
        for n in range(2)
    ]
    try:
        for w in workers:
            await w.expect("ready", within=90)
        for w in workers:
            w.go()
        for w in workers:
            await w.expect("done", within=90)
            assert await w.exited() == 0
    finally:
        for w in workers:
            await w.stop()
    keys = [lifecycle.idempotency_key("bank", a) for _, a in picked]
    assert sorted(e.idempotency_key for e in d.ledger("bank", "crm", "add_note")) == sorted(keys)
    for iid, action_id in picked:
        action = (await d.conductor.load(iid)).actions[action_id]
        assert action["status"] == "succeeded", action
    started = [s for iid in {i for i, _ in picked} for s in await events_of(d, iid, ev.ACTION_STARTED)]
    assert sorted(s["action_id"] for s in started) == sorted(a for _, a in picked)  # one start each
    assert {s["worker"] for s in started} <= {"w0", "w1"}


@pytest.mark.parametrize(
    ("fault", "starts"),
    [("crash_after_commit", 1), ("crash_before_commit", 2)],
    ids=["after-commit-reconciled", "before-commit-called-again-with-the-same-key"],
)
async def test_an_mcp_server_dying_mid_call_is_restarted_and_the_effect_happens_once(
    tmp_path: Path, fault: str, starts: int
) -> None:
    env = {"TANDEM_MCP_FAULTS": f"release_hold:{fault}"}
    async with deployment(tmp_path, ["bank"], server_env=env) as d:
        fraud = d.actions.toolboxes["bank"].connections["fraud"]
        before = fraud.generation
        iid = await verified_case(d, "bank", "C-1001", facts=maria_facts())
        action_id = await propose(d, "bank", iid, "release_fraud_hold", MARIA_HOLD)
        action = await settled(d.conductor, iid, action_id, {"succeeded", "failed"})
        assert action["status"] == "succeeded", action
        assert fraud.generation == before + 1  # the server was started again
        unknown = await events_of(d, iid, ev.ACTION_OUTCOME_UNKNOWN)
        assert len(unknown) == 1 and "Connection closed" in unknown[0]["error"]
        started = await events_of(d, iid, ev.ACTION_STARTED)
        assert len(started) == starts and {s["idempotency_key"] for s in started} == {action["idempotency_key"]}
        assert action["reconciled"] is (fault == "crash_after_commit")
        assert len(d.ledger("bank", "fraud", "release_hold")) == 1

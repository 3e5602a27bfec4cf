"""A process the action fault tests start, race and kill. Run with ``python child.py MODE JSON_ARGS``.

It reports on stdout, one JSON object a line, flushed, only after what it reports on has happened. Where the
test needs several children to act at the same moment, each reports ``ready`` and waits for a line on stdin.
It imports only the installed package, never the test suite, so it starts like a real worker.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from tandem import commands as cmd
from tandem.actions import approvals
from tandem.actions.runtime import Actions, build_actions, policy_files
from tandem.actions.tools import CallOutcome, Toolbox
from tandem.case.envelope import Actor
from tandem.case.interaction import Interaction
from tandem.conductor import Conductor, ConductorError
from tandem.participants.protocol import Turn
from tandem.store.protocol import EventStore
from tandem.store.sqlite import SqliteStore
from tandem.world.world import World


def report(**fields: Any) -> None:
    print(json.dumps(fields), flush=True)


class Quiet:
    kind = "bot"

    async def decide(self, case: Interaction, turn: Turn) -> Sequence[cmd.Command]:
        return []


async def wait_for_go() -> None:
    report(event="ready")
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, sys.stdin.readline)


async def open_store(args: Mapping[str, Any]) -> EventStore:
    if args.get("dsn"):
        from tandem.store.postgres import PostgresStore

        return await PostgresStore.connect(args["dsn"], schema=args["schema"])
    return SqliteStore(Path(args["data_dir"]) / "tandem.db")


async def setup(args: Mapping[str, Any]) -> tuple[EventStore, Conductor, Actions]:
    data_dir = Path(args["data_dir"])
    world = World.load()
    store = await open_store(args)
    conductor = Conductor(store, {"bot": Quiet(), "human": Quiet()}, owner=args.get("owner"))
    files = {t: p for t, p in policy_files(world).items() if t == args["tenant"]}
    actions = build_actions(
        world, data_dir, conductor, policies=files, lease_ttl_s=float(args.get("lease_ttl_s", 60)),
        owner=args.get("owner"), server_env=args.get("server_env"),
    )  # fmt: skip
    return store, conductor, actions


def crash_after(toolbox: Toolbox, tool: str) -> None:
    """Die by SIGKILL right after ``tool``'s call returned: the effect is done, its result never recorded."""
    call = toolbox.call

    async def calling(name: str, args: Mapping[str, Any], *, key: str) -> CallOutcome:
        outcome = await call(name, args, key=key)
        if name == tool:
            report(event="returned", status=outcome.status, key=key)
            os.kill(os.getpid(), signal.SIGKILL)
        return outcome

    toolbox.call = calling  # type: ignore[method-assign,assignment]


async def worker(args: dict[str, Any]) -> None:
    """Run the action worker (with the tenant's MCP servers) until the given actions are settled."""
    store, conductor, actions = await setup(args)
    failed = await actions.start(worker=False)
    if failed:
        report(event="servers_failed", failed=failed)
    if args.get("crash_after"):
        crash_after(actions.toolboxes[args["tenant"]], args["crash_after"])
    if args.get("barrier"):
        await wait_for_go()
    await actions.worker.start()
    report(event="started")
    wanted = set(args.get("statuses", ["succeeded", "failed", "denied", "rejected"]))
    deadline = time.monotonic() + float(args.get("within", 60))
    pending = {(i, a) for i, a in args["actions"]}
    while pending:
        for interaction_id, action_id in list(pending):
            state = await conductor.load(interaction_id)
            if state.actions[action_id]["status"] in wanted:
                pending.discard((interaction_id, action_id))
        if time.monotonic() > deadline:
            raise TimeoutError(f"still pending: {pending}")
        if pending:
            await asyncio.sleep(0.05)  # polling the store another process writes to
    report(event="done")
    await actions.aclose()
    await store.close()


async def approve(args: dict[str, Any]) -> None:
    """Approve one action as an agent, at the same moment as another child does."""
    store = await open_store(args)
    conductor = Conductor(store, {"bot": Quiet(), "human": Quiet()})
    await wait_for_go()
    try:
        action = await approvals.approve(
            conductor, args["tenant"], args["interaction_id"], args["action_id"], Actor("human", args["agent"])
        )
        report(event="approved", status=action["status"])
    except ConductorError as exc:
        report(event="refused", code=exc.code, message=str(exc))
    await store.close()


MODES = {"worker": worker, "approve": approve}

if __name__ == "__main__":
    asyncio.run(MODES[sys.argv[1]](json.loads(sys.argv[2])))

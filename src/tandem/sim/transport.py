"""Where the simulator's journeys play: a fresh deployment per journey, in this process or on a socket, or a URL.

In process, the client speaks HTTP to ``create_app(runtime)`` through ``httpx.ASGITransport``: the same
requests, routing, validation and error handling, without a socket. Over HTTP, a uvicorn server runs in a
thread on a socket bound to 127.0.0.1 before it starts, so the first request waits in the listen backlog
instead of racing the start-up.

A built-in deployment runs as the demo does: signals read the example lakehouse through the activator, and
actions go through policy to the example MCP servers and their worker. The lakehouse is generated once per
run at a tiny scale and opened once, read-only, by every journey (nothing writes it). Everything a journey
can change is its own: each journey gets a fresh data directory (events, tokens, and the MCP servers' data
and ledgers) and a frozen simulated clock on the world's business date, so a journey never sees another's
effects and a rerun gives the same figures on either transport.

The MCP servers start on a journey's first call to one of their tools, not with the deployment: most
journeys call none, and starting a server is a Python process importing the MCP SDK (a second or more each).
"""

from __future__ import annotations

import asyncio
import secrets
import socket
import tempfile
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Collection, Mapping
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime, time
from pathlib import Path
from typing import Any, Literal, Protocol

import httpx

from tandem.activation.activator import Activator
from tandem.activation.sources import Row, Source
from tandem.clock import ManualClock
from tandem.participants.protocol import Participant, Understander
from tandem.release.signals import SignalRelease, load_releases
from tandem.sim.client import TandemApi
from tandem.sim.effects import Effect, read_ledgers
from tandem.world.world import World

Transport = Literal["inprocess", "http"]
REQUEST_TIMEOUT_S = 30.0
SERVER_STOP_S = 10.0
# Small enough to generate in a fraction of a second, large enough that the reference customers sit among
# others: 1,000 card transactions, 200 claims.
LAKEHOUSE_SCALE = 0.001
LAKEHOUSE_SEED = 7
# How long a late source takes to answer: far past any signal's budget, which cuts it short.
LATE_BY_S = 60.0
# The budget every signal gets in the simulator unless a scenario makes it late (see ``example_enterprise``).
STRETCHED_BUDGET_MS = 3_000

Ledgers = Callable[[str], Awaitable[list[Effect]]]


def simulated_clock(world: World) -> ManualClock:
    return ManualClock(datetime.combine(world.business_date, time(9, 0), UTC))


# -- the enterprise data every journey reads ----------------------------------------------------------------


class _LateSource:
    """A source that answers the queries of some signals only after ``LATE_BY_S``: a lakehouse too slow for
    those signals' budgets, on purpose. Every other query goes straight through."""

    def __init__(self, inner: Source, late_queries: Collection[str]) -> None:
        self.inner = inner
        self.name, self.kind = inner.name, inner.kind
        self.late_queries = frozenset(late_queries)

    async def query(self, sql: str, params: Mapping[str, Any], timeout_s: float) -> list[Row]:
        if sql in self.late_queries:
            await asyncio.sleep(LATE_BY_S)  # the activator's budget cancels this long before it ends
        return await self.inner.query(sql, params, timeout_s)

    async def close(self) -> None:
        """The shared source is closed by the enterprise that opened it."""


@dataclass
class Enterprise:
    """The example lakehouse, opened once for a whole run and shared read-only by every journey.
    ``releases`` are the signal releases as shipped, with their own budgets."""

    activator: Activator
    releases: Mapping[str, SignalRelease]

    def activator_for(self, tenant_id: str, late_signals: Collection[str] = ()) -> Activator:
        """The shared activator, or, when some signals must be late, one over the same open sources whose
        tenant's source answers those signals' queries past their budgets."""
        if not late_signals:
            return self.activator
        release = self.activator.releases.get(tenant_id)
        unknown = sorted(set(late_signals) - set(release.signals if release else ()))
        if release is None or unknown:
            raise ValueError(f"tenant {tenant_id} has no signal {', '.join(unknown) or ', '.join(late_signals)}")
        sources = {tenant: dict(by_name) for tenant, by_name in self.activator.sources.items()}
        for source_name in {release.signals[name].source for name in late_signals}:
            queries = [release.signals[n].query for n in late_signals if release.signals[n].source == source_name]
            sources[tenant_id][source_name] = _LateSource(self.activator.sources[tenant_id][source_name], queries)
        # A late signal keeps the budget its release gives it: it times out where a deployment's would.
        shipped = self.releases[tenant_id].signals
        late = {name: replace(release.signals[name], budget_ms=shipped[name].budget_ms) for name in late_signals}
        releases = {**self.activator.releases, tenant_id: replace(release, signals={**release.signals, **late})}
        # Same clock; a fresh cache, so a late signal is never answered from an earlier journey.
        return Activator(releases, sources, clock=self.activator.clock)


@asynccontextmanager
async def example_enterprise(world: World) -> AsyncIterator[Enterprise]:
    """The example lakehouse for one run. Every signal's budget is stretched to ``STRETCHED_BUDGET_MS``: a
    lookup takes about 10 ms, but on a busy machine, with several journeys sharing one event loop, the loop
    can come back to it after the release's 150 ms, and whether a fact arrived would then depend on the
    machine's load instead of the scenario. A scenario that wants a timeout says so (``signals.late``);
    budgets under load are the benchmark's business (docs/activation.md)."""
    from tandem.activation.lakehouse import generate

    with tempfile.TemporaryDirectory(prefix="tandem-sim-lakehouse-") as directory:
        lakehouse = Path(directory)
        # No DuckDB file: the example releases read the Parquet and Delta tables, and skipping it saves ~1.5 s.
        await asyncio.to_thread(generate, lakehouse, LAKEHOUSE_SCALE, LAKEHOUSE_SEED, duckdb_file=False)
        shipped = load_releases()
        stretched = {
            tenant: replace(
                release,
                signals={
                    name: replace(signal, budget_ms=max(signal.budget_ms, STRETCHED_BUDGET_MS))
                    for name, signal in release.signals.items()
                },
            )
            for tenant, release in shipped.items()
        }
        activator = await Activator.open(stretched, data_dir=lakehouse, clock=simulated_clock(world))
        try:
            yield Enterprise(activator, shipped)
        finally:
            await activator.close()


# -- one journey's deployment ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Stage:
    """Where one journey plays: the API, and, when the simulator runs the deployment, the ledgers of its
    example systems (``ledgers(tenant)``); None against a server someone else runs."""

    api: TandemApi
    ledgers: Ledgers | None = None


class Deployment(Protocol):
    def stage(self, tenant_id: str, late_signals: Collection[str] = ()) -> AbstractAsyncContextManager[Stage]:
        """A deployment for one journey of a scenario of ``tenant_id``."""
        ...


_POLICY_FILES: dict[tuple[str, ...], Mapping[str, Path]] = {}


def _policy_files(world: World) -> Mapping[str, Path]:
    """Found once per process and world: finding them parses every policy, a third of a runtime's build."""
    from tandem.actions.runtime import policy_files

    tenants = tuple(sorted(world.tenants))
    if tenants not in _POLICY_FILES:
        _POLICY_FILES[tenants] = policy_files(world)
    return _POLICY_FILES[tenants]


async def _runtime(
    data_dir: Path,
    world: World,
    admin_token: str,
    activator: Activator | None,
    participants: Mapping[str, Participant] | None = None,
    understander: Understander | None = None,
) -> Any:
    from tandem.runtime import build_runtime

    runtime = await build_runtime(
        data_dir, world, clock=simulated_clock(world), admin_token=admin_token, participants=participants,
        understander=understander, activator=activator, with_actions=True, policies=_policy_files(world),
    )  # fmt: skip
    runtime.owns_activator = False
    assert runtime.actions is not None  # with_actions
    # The worker only: each MCP server starts on the first call to one of its tools (see the module's note).
    await runtime.actions.worker.start()
    return runtime


def _app(runtime: Any) -> Any:
    from tandem.api.app import create_app

    return create_app(runtime)


def _token() -> str:
    return "tdm_sim_" + secrets.token_urlsafe(16)


@dataclass
class LocalDeployment:
    """A fresh runtime per journey, served in process or on a socket."""

    world: World
    enterprise: Enterprise | None
    transport: Transport = "inprocess"
    # Replaces the deployment's participants (the self-service bot): a seam for tests that need a participant
    # misbehaving on purpose.
    participants: Mapping[str, Participant] | None = None
    # How customers' lines are understood; None: the runtime's rule-based default. Shared by every journey
    # (a trained model is trained or loaded once, not per journey).
    understander: Understander | None = None

    def stage(self, tenant_id: str, late_signals: Collection[str] = ()) -> AbstractAsyncContextManager[Stage]:
        activator = self.enterprise.activator_for(tenant_id, late_signals) if self.enterprise is not None else None
        if self.transport == "inprocess":
            return self._inprocess(activator)
        return self._http(activator)

    @asynccontextmanager
    async def _inprocess(self, activator: Activator | None) -> AsyncIterator[Stage]:
        admin_token = _token()
        with tempfile.TemporaryDirectory(prefix="tandem-sim-") as directory:
            runtime = await _runtime(
                Path(directory), self.world, admin_token, activator, self.participants, self.understander
            )
            app = _app(runtime)
            # ASGITransport sends no lifespan events: run the app's lifespan (reactors, shutdown) ourselves.
            lifespan: AbstractAsyncContextManager[Any] = app.router.lifespan_context(app)
            try:
                async with lifespan:
                    transport = httpx.ASGITransport(app=app)
                    async with httpx.AsyncClient(
                        transport=transport, base_url="http://tandem.inprocess", timeout=REQUEST_TIMEOUT_S
                    ) as http:

                        async def ledgers(tenant_id: str) -> list[Effect]:
                            return await read_ledgers(runtime.actions, tenant_id)

                        yield Stage(TandemApi(http, admin_token), ledgers)
            finally:
                await runtime.aclose()

    @asynccontextmanager
    async def _http(self, activator: Activator | None) -> AsyncIterator[Stage]:
        admin_token = _token()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        # Accepted connections inherit this: without it every small answer waits out a delayed ACK.
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.bind(("127.0.0.1", 0))
        sock.listen(128)
        port = sock.getsockname()[1]
        with tempfile.TemporaryDirectory(prefix="tandem-sim-") as directory:
            thread = _ServerThread(
                self.world, Path(directory), admin_token, sock, activator, self.participants, self.understander
            )
            thread.start()
            try:
                # Bounded: the server object exists once the runtime is built; requests then queue on the socket.
                ready = await asyncio.to_thread(thread.ready.wait, REQUEST_TIMEOUT_S)
                if thread.failure is not None:
                    raise RuntimeError(f"the simulator's server failed to start: {thread.failure}") from thread.failure
                if not ready:
                    raise RuntimeError(f"the simulator's server did not start within {REQUEST_TIMEOUT_S} s")
                async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=REQUEST_TIMEOUT_S) as http:
                    yield Stage(TandemApi(http, admin_token), thread.ledgers)
            finally:
                await asyncio.to_thread(thread.stop)
                sock.close()


class _ServerThread(threading.Thread):
    """uvicorn in a thread of its own, with its own event loop, on a socket bound before it starts."""

    def __init__(
        self,
        world: World,
        data_dir: Path,
        admin_token: str,
        sock: socket.socket,
        activator: Activator | None,
        participants: Mapping[str, Participant] | None,
        understander: Understander | None = None,
    ) -> None:
        super().__init__(name="tandem-sim-server", daemon=True)
        self.world, self.data_dir, self.admin_token, self.sock = world, data_dir, admin_token, sock
        self.activator, self.participants, self.understander = activator, participants, understander
        self.server: Any = None
        self.runtime: Any = None
        self.loop: asyncio.AbstractEventLoop | None = None
        self.ready = threading.Event()
        self.failure: BaseException | None = None

    def run(self) -> None:
        try:
            asyncio.run(self._serve())
        except BaseException as exc:  # the thread's top level: hand the failure to the caller
            self.failure = exc
            self.ready.set()

    async def _serve(self) -> None:
        import uvicorn

        self.loop = asyncio.get_running_loop()
        self.runtime = await _runtime(
            self.data_dir, self.world, self.admin_token, self.activator, self.participants, self.understander
        )
        try:
            config = uvicorn.Config(_app(self.runtime), log_level="warning", lifespan="on", access_log=False)
            self.server = uvicorn.Server(config)
            self.ready.set()
            await self.server.serve(sockets=[self.sock])
        finally:
            await self.runtime.aclose()

    async def ledgers(self, tenant_id: str) -> list[Effect]:
        """Read the ledgers on the server's own loop, where its MCP connections live."""
        assert self.loop is not None and self.runtime is not None
        future = asyncio.run_coroutine_threadsafe(read_ledgers(self.runtime.actions, tenant_id), self.loop)
        return await asyncio.wrap_future(future)

    def stop(self) -> None:
        if self.server is not None:
            self.server.should_exit = True
        self.join(SERVER_STOP_S)


@dataclass
class ExternalDeployment:
    """A server someone else runs: every journey shares it, and its example systems' ledgers are not ours."""

    api: TandemApi

    @asynccontextmanager
    async def _shared(self) -> AsyncIterator[Stage]:
        yield Stage(self.api)

    def stage(self, tenant_id: str, late_signals: Collection[str] = ()) -> AbstractAsyncContextManager[Stage]:
        if late_signals:
            raise ValueError("late signals need a deployment the simulator runs (not --url)")
        return self._shared()


@asynccontextmanager
async def open_deployment(
    transport: Transport,
    world: World,
    *,
    url: str | None = None,
    admin_token: str | None = None,
    participants: Mapping[str, Participant] | None = None,
    understander: Understander | None = None,
) -> AsyncIterator[Deployment]:
    if url is not None:
        if not admin_token:
            raise ValueError("an external --url needs an admin token (--admin-token or TANDEM_ADMIN_TOKEN)")
        async with httpx.AsyncClient(base_url=url.rstrip("/"), timeout=REQUEST_TIMEOUT_S) as http:
            yield ExternalDeployment(TandemApi(http, admin_token))
        return
    async with example_enterprise(world) as enterprise:
        yield LocalDeployment(world, enterprise, transport, participants, understander)

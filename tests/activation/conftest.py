"""The example lakehouse the activation tests read: generated once per session at demo scale."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tandem.activation import Activator
from tandem.activation.lakehouse import DEMO_SCALE, generate
from tandem.clock import ManualClock
from tandem.release.signals import SignalRelease, load_releases

SEED = 7
# The example world's business date, at the hour the reference stories happen.
BUSINESS_MORNING = datetime(2026, 12, 3, 9, 0, tzinfo=UTC)


@pytest.fixture(scope="session")
def lakehouse(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("lakehouse")
    generate(out, DEMO_SCALE, SEED)
    return out


@pytest.fixture
def business_clock() -> ManualClock:
    return ManualClock(BUSINESS_MORNING)


def relaxed(release: SignalRelease, budget_ms: int = 10_000) -> SignalRelease:
    """The release with generous budgets: tests about facts must not turn into timeouts on a busy machine
    (budgets have tests of their own, with sources that are slow on purpose)."""
    signals = {name: replace(s, budget_ms=budget_ms) for name, s in release.signals.items()}
    return replace(release, signals=signals)


@pytest.fixture
async def activator(lakehouse: Path, business_clock: ManualClock) -> AsyncIterator[Activator]:
    releases = {tenant: relaxed(release) for tenant, release in load_releases().items()}
    opened = await Activator.open(releases, lakehouse, clock=business_clock)
    yield opened
    await opened.close()

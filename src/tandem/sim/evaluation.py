"""Running scenarios: each as Tandem plays it, and as a siloed bot-then-cold-transfer system would, each
journey on a fresh deployment of its own so that every figure is reproducible."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tandem.sim.expectations import check
from tandem.sim.journey import Journey, JourneyResult, Mode
from tandem.sim.metrics import Rates, Totals
from tandem.sim.scenario import LoadedScenario, Scenario
from tandem.sim.transport import Deployment


@dataclass
class Outcome:
    path: Path
    scenario: Scenario
    tandem: JourneyResult
    siloed: JourneyResult | None
    failures: list[str]

    @property
    def passed(self) -> bool:
        return not self.failures

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.scenario.name,
            "title": self.scenario.title,
            "tenant": self.scenario.tenant,
            "file": str(self.path),
            "passed": self.passed,
            "failures": self.failures,
            "tandem": self.tandem.to_dict(),
            "siloed": self.siloed.to_dict() if self.siloed else None,
        }


@dataclass
class Evaluation:
    rates: Rates
    transport: str
    outcomes: list[Outcome] = field(default_factory=list)
    understanding: str = "the deployment's own"  # how customers' lines were understood, for the report

    @property
    def passed(self) -> bool:
        return all(o.passed for o in self.outcomes)

    def totals(self, mode: Mode) -> Totals:
        totals = Totals()
        for outcome in self.outcomes:
            result = outcome.tandem if mode == "tandem" else outcome.siloed
            if result is not None:
                totals.add(result.metrics)
        return totals

    @property
    def has_siloed(self) -> bool:
        return any(o.siloed is not None for o in self.outcomes)

    def to_dict(self) -> dict[str, Any]:
        return {
            "transport": self.transport,
            "rates": self.rates.to_dict(),
            "passed": self.passed,
            "scenarios": len(self.outcomes),
            "failed": [o.scenario.name for o in self.outcomes if not o.passed],
            "totals": {
                "tandem": self.totals("tandem").to_dict(),
                "siloed": self.totals("siloed").to_dict() if self.has_siloed else None,
            },
            "outcomes": [o.to_dict() for o in self.outcomes],
        }


async def evaluate(
    scenarios: Sequence[LoadedScenario],
    deployment: Deployment,
    rates: Rates,
    tenant_kinds: Mapping[str, str],
    *,
    transport: str,
    understanding: str = "the deployment's own",
    siloed: bool = True,
    offer_wait_s: float = 5.0,
    jobs: int = 1,
    progress: Callable[[str], None] | None = None,  # called after each journey, with its label
) -> Evaluation:
    """Each journey (Tandem's, then the siloed one) on a stage of its own: what one journey did to the
    example systems never shows in another's, so ``jobs`` journeys may play at once and every figure stays
    the same (time is simulated, and each stage has its own clock). Outcomes keep the scenarios' order."""
    if jobs < 1:
        raise ValueError("jobs must be at least 1")
    slots = asyncio.Semaphore(jobs)

    async def play(s: Scenario, mode: Mode) -> JourneyResult:
        kind = tenant_kinds.get(s.tenant, "bank")
        async with slots, deployment.stage(s.tenant, s.signals.late) as stage:
            result = await Journey(stage.api, s, mode, rates, kind, offer_wait_s, stage.ledgers).run()
        if progress:
            progress(f"{s.name} ({mode})")
        return result

    async def both(s: Scenario) -> tuple[JourneyResult, JourneyResult | None]:
        tandem = asyncio.ensure_future(play(s, "tandem"))
        baseline = await play(s, "siloed") if siloed else None
        return await tandem, baseline

    played = await asyncio.gather(*(both(item.scenario) for item in scenarios))
    evaluation = Evaluation(rates, transport, understanding=understanding)
    for item, (tandem, baseline) in zip(scenarios, played, strict=True):
        evaluation.outcomes.append(
            Outcome(item.path, item.scenario, tandem, baseline, check(item.scenario.expect, tandem))
        )
    return evaluation

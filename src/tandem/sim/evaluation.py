"""Running scenarios: each as Tandem plays it, then as a siloed bot-then-cold-transfer system would, on
the same server, one after the other so that every figure is reproducible."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tandem.sim.client import TandemApi
from tandem.sim.expectations import check
from tandem.sim.journey import Journey, JourneyResult, Mode
from tandem.sim.metrics import Rates, Totals
from tandem.sim.scenario import LoadedScenario, Scenario


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
    api: TandemApi,
    rates: Rates,
    tenant_kinds: Mapping[str, str],
    *,
    transport: str,
    siloed: bool = True,
    offer_wait_s: float = 5.0,
    progress: Callable[[str], None] | None = None,  # called after each journey, with its label
) -> Evaluation:
    evaluation = Evaluation(rates, transport)
    for item in scenarios:
        s = item.scenario
        kind = tenant_kinds.get(s.tenant, "bank")
        tandem = await Journey(api, s, "tandem", rates, kind, offer_wait_s).run()
        if progress:
            progress(f"{s.name} (tandem)")
        baseline = None
        if siloed:
            baseline = await Journey(api, s, "siloed", rates, kind, offer_wait_s).run()
            if progress:
                progress(f"{s.name} (siloed)")
        evaluation.outcomes.append(Outcome(item.path, s, tandem, baseline, check(s.expect, tandem)))
    return evaluation

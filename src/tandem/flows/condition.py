"""Conditions of a flow (``when``): CEL over the case file's facts, compiled when the flow is loaded.

The same engine the policy uses (cel-python). A condition reads facts by name (``fraud_score < 0.9``,
``card_hold.status == 'held'``), ``known`` (the names the case file has: ``'card_hold' in known``),
``unavailable`` (the signals that did not answer this turn) and ``goal`` (the intent the flow serves). A
condition that reads a fact the case file lacks is false: test ``'name' in known`` first where it matters.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from celpy.adapter import json_to_cel

from tandem.release.cel import CelSyntaxError, Compiled, Expression, HasNotSupported

log = logging.getLogger(__name__)

# Names every condition may read beside the facts.
RESERVED = frozenset({"known", "unavailable", "goal"})


class ConditionError(ValueError):
    pass


@dataclass(frozen=True)
class Condition(Compiled):
    @classmethod
    def compile(cls, source: str, known_names: frozenset[str] | None = None) -> Condition:
        """``known_names``: the facts a flow of this tenant can see (None: do not check names)."""
        try:
            expression = Expression.compile(source)
        except CelSyntaxError as exc:
            raise ConditionError(f"not valid CEL ({exc}): {source!r}") from None
        except HasNotSupported:
            raise ConditionError(f"has() is not supported; test a fact with 'name' in known: {source!r}") from None
        if known_names is not None:
            unknown = expression.identifiers - known_names - RESERVED
            if unknown:
                raise ConditionError(
                    f"unknown fact {', '.join(sorted(unknown))} in {source!r}; a condition reads facts the "
                    f"signals or the conversation provide, or {', '.join(sorted(RESERVED))}"
                )
        return cls(expression)

    def holds(self, variables: Mapping[str, Any]) -> bool:
        """True or False; a condition that cannot be evaluated (a missing fact, a type mismatch) is False."""
        activation = {name: _cel(variables[name]) for name in self.identifiers if name in variables}
        value = self.expression.evaluate(activation)
        if isinstance(value, str):
            log.debug("condition %r is false: %s", self.source, value)
            return False
        return value


def _cel(value: Any) -> Any:
    return json_to_cel(value)

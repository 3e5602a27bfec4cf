"""Conditions of a flow (``when``): CEL over the case file's facts, compiled when the flow is loaded.

The same engine the policy uses (cel-python). A condition reads facts by name (``fraud_score < 0.9``,
``card_hold.status == 'held'``), ``known`` (the names the case file has: ``'card_hold' in known``),
``unavailable`` (the signals that did not answer this turn) and ``goal`` (the intent the flow serves). A
condition that reads a fact the case file lacks is false: test ``'name' in known`` first where it matters.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import celpy
from celpy import celtypes
from celpy.adapter import json_to_cel
from celpy.celparser import CELParseError
from celpy.evaluation import CELEvalError

from tandem.release.policy import _identifiers

log = logging.getLogger(__name__)

# Names every condition may read beside the facts.
RESERVED = frozenset({"known", "unavailable", "goal"})

_ENV = celpy.Environment(runner_class=celpy.CompiledRunner)


class ConditionError(ValueError):
    pass


@dataclass(frozen=True)
class Condition:
    source: str
    identifiers: frozenset[str]
    program: celpy.Runner = field(repr=False, compare=False)

    @classmethod
    def compile(cls, source: str, known_names: frozenset[str] | None = None) -> Condition:
        """``known_names``: the facts a flow of this tenant can see (None: do not check names)."""
        try:
            ast = _ENV.compile(source)
        except CELParseError as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else "syntax error"
            raise ConditionError(f"not valid CEL ({first}): {source!r}") from None
        if any(node.data == "ident_arg" and str(node.children[0]) == "has" for node in ast.iter_subtrees()):
            raise ConditionError(f"has() is not supported; test a fact with 'name' in known: {source!r}")
        identifiers = _identifiers(ast)
        if known_names is not None:
            unknown = identifiers - known_names - RESERVED
            if unknown:
                raise ConditionError(
                    f"unknown fact {', '.join(sorted(unknown))} in {source!r}; a condition reads facts the "
                    f"signals or the conversation provide, or {', '.join(sorted(RESERVED))}"
                )
        return cls(source, identifiers, _ENV.program(ast))

    def holds(self, variables: Mapping[str, Any]) -> bool:
        """True or False; a condition that cannot be evaluated (a missing fact, a type mismatch) is False."""
        activation = {name: _cel(variables[name]) for name in self.identifiers if name in variables}
        try:
            value = self.program.evaluate(activation)
        except CELEvalError as exc:
            log.debug("condition %r is false: %s", self.source, exc)
            return False
        if isinstance(value, CELEvalError):
            return False
        return isinstance(value, celtypes.BoolType | bool) and bool(value)


def _cel(value: Any) -> Any:
    return json_to_cel(value)

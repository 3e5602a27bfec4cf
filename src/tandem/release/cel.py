"""CEL, the expression language of policy rules and flow conditions (through cel-python): compiling an
expression once, the inputs it reads, and evaluating it to true, false or the reason it could not be.

Policy and flows word their errors for their own readers; what an expression is and how it runs is here.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import celpy
import lark
from celpy import celtypes
from celpy.celparser import CELParseError
from celpy.evaluation import CELEvalError

# The compiled runner evaluates about five times faster than the interpreter. It logs every failed
# evaluation at ERROR; here a failure is an expected outcome (policy fails closed and says why, a flow's
# condition is false), so it is not logged again.
_ENV = celpy.Environment(runner_class=celpy.CompiledRunner)
logging.getLogger("celpy.Transpiler").setLevel(logging.CRITICAL)

# Macros whose first argument binds a variable (``x`` in ``l.all(x, x > 0)``): not an input.
_MACROS = frozenset({"all", "exists", "exists_one", "map", "filter"})


class CelSyntaxError(ValueError):
    """Not valid CEL; the message is the parser's first line."""


class HasNotSupported(ValueError):
    """cel-python's compiled ``has()`` yields a value ``&&`` and ``||`` reject, so a guarded expression would
    always fail: callers say what to test instead."""


@dataclass(frozen=True)
class Expression:
    source: str
    identifiers: frozenset[str]
    program: celpy.Runner = field(repr=False, compare=False)

    @classmethod
    def compile(cls, source: str) -> Expression:
        try:
            ast = _ENV.compile(source)
        except CELParseError as exc:
            text = str(exc).strip()
            raise CelSyntaxError(text.splitlines()[0] if text else "syntax error") from None
        if any(node.data == "ident_arg" and str(node.children[0]) == "has" for node in ast.iter_subtrees()):
            raise HasNotSupported(source)
        return cls(source, _identifiers(ast), _ENV.program(ast))

    def evaluate(self, activation: Mapping[str, Any]) -> bool | str:
        """True or False, or the reason it could not be evaluated (a missing input, a type mismatch)."""
        try:
            value = self.program.evaluate(dict(activation))
        except CELEvalError as exc:
            return _eval_error(exc)
        if isinstance(value, CELEvalError):
            return _eval_error(value)
        if not isinstance(value, celtypes.BoolType | bool):
            return f"expected true or false, got {type(value).__name__}"
        return bool(value)


@dataclass(frozen=True)
class Compiled:
    """A compiled expression as its users hold it: policy rules and flow conditions each validate their own
    inputs and word their own errors when compiling, and read its text and inputs from here."""

    expression: Expression

    @property
    def source(self) -> str:
        return self.expression.source

    @property
    def identifiers(self) -> frozenset[str]:
        return self.expression.identifiers


def _eval_error(exc: CELEvalError) -> str:
    args = exc.args
    detail = args[2] if len(args) > 2 and args[2] else args[:1]
    text = str(detail[0] if isinstance(detail, tuple) and detail else detail)
    return text.split(" (in activation")[0][:200]


def _identifiers(ast: lark.Tree[Any]) -> frozenset[str]:
    """The free variables of a CEL expression: every ``ident`` not bound by a macro (``x`` in ``l.all(x, ...)``)."""
    found: set[str] = set()
    bound: set[str] = set()
    for node in ast.iter_subtrees():
        if node.data == "ident":
            found.add(str(node.children[0]))
        elif node.data == "member_dot_arg" and len(node.children) >= 3:
            name, args = node.children[1], node.children[2]
            if str(name) in _MACROS and isinstance(args, lark.Tree) and args.children:
                first = args.children[0]
                if isinstance(first, lark.Tree):
                    idents = [t for t in first.iter_subtrees() if t.data == "ident"]
                    if len(idents) == 1:
                        bound.add(str(idents[0].children[0]))
    return frozenset(found - bound)

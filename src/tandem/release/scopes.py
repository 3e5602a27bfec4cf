"""Data scopes: which facts, and which fields of a fact, each participant may see. Declared once per release.

A release's ``data_scopes`` section maps each participant (bot, ai, human, copilot, supervisor, customer) to
the facts it may see. Anything not listed is not seen: a new column added to a query reaches nobody until a
person writes it into a scope. A fact may be seen whole (``all``), cut down to some fields (``fields``: the
health plan's *minimum necessary*) or masked (``mask``: the AI never sees a full card number)::

    data_scopes:
      ai:
        declined_payment: all
        card_number: {mask: last4}
        claim_line: {fields: [description, network, billed, patient_responsibility, reason]}
      supervisor:
        "*": all                       # every fact not listed otherwise
        card_number: {mask: first6_last4}

Policy builds on this section (it is "the one place that says who sees what"); activation applies it to every
fact a signal produces, for the participant that asked.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from tandem.commands import Learn

PARTICIPANTS = frozenset({"bot", "ai", "human", "copilot", "supervisor", "customer"})
# Facts about the fetching itself (which signal, how long, timed out): no customer data, everyone sees them.
ALWAYS_VISIBLE = frozenset({"signal_status"})


class ScopeError(ValueError):
    pass


def _keep_last(value: str, keep: int) -> str:
    return "*" * max(len(value) - keep, 0) + value[-keep:] if len(value) > keep else "*" * len(value)


def mask_last4(value: str) -> str:
    """``4000001234564242`` -> ``************4242``."""
    return _keep_last(value, 4)


def mask_first6_last4(value: str) -> str:
    """``4000001234564242`` -> ``400000******4242``: the most of a card number PCI DSS lets anyone display."""
    if len(value) <= 10:
        return mask_last4(value)
    return value[:6] + "*" * (len(value) - 10) + value[-4:]


def mask_redact(value: str) -> str:
    return "[redacted]"


MASKS: Mapping[str, Callable[[str], str]] = {
    "last4": mask_last4,
    "first6_last4": mask_first6_last4,
    "redact": mask_redact,
}


@dataclass(frozen=True, slots=True)
class FactRule:
    """How one participant sees one fact. ``fields`` None: every field; ``masks`` maps a field (or ``""``, the
    whole value) to a mask name."""

    fields: frozenset[str] | None = None
    masks: Mapping[str, str] = field(default_factory=dict)

    def apply(self, value: Any) -> Any:
        if isinstance(value, list):
            return [self.apply(item) for item in value]
        if "" in self.masks:
            return None if value is None else MASKS[self.masks[""]](str(value))
        if self.fields is None and not self.masks:
            return value
        if not isinstance(value, Mapping):
            # A field list on a plain value cannot be honoured; showing it whole would widen the scope.
            return None if self.fields is not None else value
        out: dict[str, Any] = {}
        for name, item in value.items():
            if self.fields is not None and name not in self.fields:
                continue
            mask = self.masks.get(name)
            out[name] = MASKS[mask](str(item)) if mask is not None and item is not None else item
        return out


@dataclass(frozen=True, slots=True)
class Scope:
    participant: str
    rules: Mapping[str, FactRule | None]  # None: explicitly not seen (overrides "*")
    default: FactRule | None = None

    def rule(self, name: str) -> FactRule | None:
        if name in ALWAYS_VISIBLE:
            return FactRule()
        if name in self.rules:
            return self.rules[name]
        return self.default


@dataclass(frozen=True, slots=True)
class DataScopes:
    scopes: Mapping[str, Scope] = field(default_factory=dict)

    def rule(self, participant: str, name: str) -> FactRule | None:
        scope = self.scopes.get(participant)
        if scope is None:
            return FactRule() if name in ALWAYS_VISIBLE else None
        return scope.rule(name)

    def sees(self, participant: str, name: str) -> bool:
        return self.rule(participant, name) is not None

    def view(self, participant: str, learn: Learn) -> Learn | None:
        """The fact as ``participant`` may see it, or None when it may not see it at all."""
        rule = self.rule(participant, learn.name)
        if rule is None:
            return None
        value = rule.apply(learn.value)
        return learn if value is learn.value else dataclasses.replace(learn, value=value)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for participant, scope in sorted(self.scopes.items()):
            rules: dict[str, Any] = {}
            if scope.default is not None:
                rules["*"] = _rule_to_raw(scope.default)
            for name, rule in sorted(scope.rules.items()):
                rules[name] = "none" if rule is None else _rule_to_raw(rule)
            out[participant] = rules
        return out


def _rule_to_raw(rule: FactRule) -> Any:
    if rule.fields is None and not rule.masks:
        return "all"
    raw: dict[str, Any] = {}
    if rule.fields is not None:
        raw["fields"] = sorted(rule.fields)
    if rule.masks:
        raw["mask"] = rule.masks[""] if set(rule.masks) == {""} else dict(rule.masks)
    return raw


def parse_scopes(raw: Any, where: str = "data_scopes") -> DataScopes:
    if raw is None:
        return DataScopes()
    if not isinstance(raw, Mapping):
        raise ScopeError(f"{where}: expected a mapping of participant -> facts")
    scopes: dict[str, Scope] = {}
    for participant, facts in raw.items():
        if participant not in PARTICIPANTS:
            raise ScopeError(f"{where}: unknown participant {participant!r}; use {', '.join(sorted(PARTICIPANTS))}")
        if not isinstance(facts, Mapping):
            raise ScopeError(f"{where}.{participant}: expected a mapping of fact name -> rule")
        rules: dict[str, FactRule | None] = {}
        default: FactRule | None = None
        for name, rule_raw in facts.items():
            rule = _parse_rule(f"{where}.{participant}.{name}", rule_raw)
            if name == "*":
                default = rule
            else:
                rules[str(name)] = rule
        scopes[str(participant)] = Scope(str(participant), rules, default)
    return DataScopes(scopes)


def _parse_rule(where: str, raw: Any) -> FactRule | None:
    if raw == "all":
        return FactRule()
    if raw == "none":
        return None
    if not isinstance(raw, Mapping):
        raise ScopeError(f"{where}: expected all, none, or a mapping with fields and/or mask")
    unknown = set(raw) - {"fields", "mask"}
    if unknown:
        raise ScopeError(f"{where}: unknown keys {sorted(unknown)}; use fields and mask")
    fields: frozenset[str] | None = None
    if "fields" in raw:
        if not isinstance(raw["fields"], list) or not all(isinstance(f, str) for f in raw["fields"]):
            raise ScopeError(f"{where}.fields: expected a list of field names")
        fields = frozenset(raw["fields"])
    masks: dict[str, str] = {}
    mask = raw.get("mask")
    if isinstance(mask, str):
        masks[""] = mask
    elif isinstance(mask, Mapping):
        masks = {str(k): str(v) for k, v in mask.items()}
    elif mask is not None:
        raise ScopeError(f"{where}.mask: expected a mask name or a mapping of field -> mask name")
    for name in masks.values():
        if name not in MASKS:
            raise ScopeError(f"{where}.mask: unknown mask {name!r}; use {', '.join(sorted(MASKS))}")
    return FactRule(fields, masks)

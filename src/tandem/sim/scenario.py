"""Scenarios: a simulated customer, the simulated person who may take over, and what must come true.

A scenario is one YAML file. It is parsed with ``yaml.compose`` so every node keeps its line, validated with
pydantic, and any error is reported as ``file:line: message`` pointing at the offending key.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

Channel = Literal["chat", "voice", "sms", "api"]
FloorKind = Literal["bot", "ai", "human"]

# What the persona answers when asked for a fact named by Tandem (left) from its own facts (right).
DEFAULT_ANSWERS: dict[str, str] = {
    "customer_name": "name",
    "disputed_charge": "charge",
    "card_last4": "card_last4",
}
FACT_OF_PERSONA: dict[str, str] = {own: asked for asked, own in DEFAULT_ANSWERS.items() if own != asked}
KNOWN_FACTS = frozenset(
    {"name", "phone", "email", "member_id", "date_of_birth", "zip", "card_last4", "charge", "reason", "account_id"}
)


class ScenarioError(ValueError):
    """One or more problems in scenario files, each as ``file:line: message``."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Line(_Model):
    """Something the customer says of their own accord: to the bot or AI by default, or, with
    ``to: human``, only to a person once one holds the floor."""

    text: str = Field(min_length=1)
    to: FloorKind | None = None


class Leg(_Model):
    """One channel session. ``trusted`` legs come through a channel integration that vouches for the customer
    (and continue the customer's open case); ``anonymous`` legs are a web chat nobody vouches for."""

    channel: Channel = "chat"
    entry: Literal["anonymous", "trusted"] = "anonymous"
    assurance: Literal["identified", "authenticated"] | None = None
    # Which of the persona's facts the trusted channel passes as the customer's identity.
    identify_by: list[Literal["phone", "member_id", "name", "email"]] = Field(default_factory=list)
    opening: str = Field(min_length=1)
    # The opening says why the customer came (most do; "I want a person" does not).
    states_reason: bool = True
    lines: list[Line] = Field(default_factory=list)
    # Said while a person is awaited, before the simulated agent accepts.
    while_waiting: list[str] = Field(default_factory=list)

    @field_validator("lines", mode="before")
    @classmethod
    def _plain_lines(cls, value: Any) -> Any:
        if isinstance(value, list):
            return [{"text": item} if isinstance(item, str) else item for item in value]
        return value

    @model_validator(mode="after")
    def _trust(self) -> Leg:
        if self.entry == "anonymous" and (self.assurance or self.identify_by):
            raise ValueError("assurance and identify_by need entry: trusted (an anonymous chat vouches for nobody)")
        if self.entry == "trusted" and not self.identify_by:
            raise ValueError("a trusted leg needs identify_by: which facts the channel passes (e.g. [phone])")
        return self


class Persona(_Model):
    name: str = Field(min_length=1)
    facts: dict[str, str] = Field(default_factory=dict)
    mood: Literal["calm", "anxious", "impatient", "angry"] = "calm"
    patience: int = Field(default=12, ge=1, description="customer turns before they give up")
    # A first, mistaken answer to a fact (wrong date of birth); later answers are the true fact.
    first_answers: dict[str, str] = Field(default_factory=dict)
    # Extra mapping from a fact Tandem asks for to one of the persona's facts.
    answers: dict[str, str] = Field(default_factory=dict)
    # When given, the customer counts as served only after seeing one of these phrases.
    satisfied_by: list[str] = Field(default_factory=list)
    legs: list[Leg] = Field(min_length=1)

    @field_validator("facts", "first_answers", mode="before")
    @classmethod
    def _strings(cls, value: Any) -> Any:
        if isinstance(value, dict):
            return {k: str(v) for k, v in value.items()}
        return value

    @field_validator("facts")
    @classmethod
    def _known_facts(cls, value: dict[str, str]) -> dict[str, str]:
        unknown = sorted(set(value) - KNOWN_FACTS)
        if unknown:
            raise ValueError(f"unknown fact {', '.join(unknown)}; known facts: {', '.join(sorted(KNOWN_FACTS))}")
        return value

    @model_validator(mode="after")
    def _answers_point_at_facts(self) -> Persona:
        for asked, own in self.answers.items():
            if own not in self.facts:
                raise ValueError(f"answers.{asked} names {own!r}, which is not among the persona's facts")
        for name in self.first_answers:
            if self.fact_for(name) is None:
                raise ValueError(f"first_answers.{name} has no true fact to follow it in facts")
        return self

    def fact_for(self, asked: str) -> str | None:
        """The persona's fact that answers Tandem's question for ``asked``."""
        own = self.answers.get(asked) or DEFAULT_ANSWERS.get(asked) or asked
        return own if own in self.facts else None


class HandBack(_Model):
    flow: str | None = None
    step: str | None = None
    goal: str | None = None
    instructions: str | None = None


class Agent(_Model):
    """The simulated person who takes the handoff."""

    name: str = "Sam Rivera"
    skills: list[str] = Field(min_length=1)
    capacity: int = Field(default=1, ge=1)
    accept_after_s: float = Field(default=30.0, ge=0, description="simulated seconds from offer to accept")
    # The person becomes available when the customer opens this leg (a later one: they were busy before).
    joins_on_leg: int = Field(default=1, ge=1)
    # Facts this person needs before acting; asked only when the case file lacks them.
    needs: list[str] = Field(default_factory=list)
    # A participant that ignores the case file: asks ``needs`` even when they are known. Only for provoking
    # a repeat on purpose, so the counters can be shown to catch it.
    ignores_case_file: bool = False
    says: list[str] = Field(default_factory=list)
    records: dict[str, str] = Field(default_factory=dict, description="facts the person writes to the case file")
    approve: list[str] = Field(default_factory=list, description="tools whose pending actions they approve")
    reject: list[str] = Field(default_factory=list, description="tools whose pending actions they reject")
    then: Literal["hand_back", "close"] = "close"
    hand_back: HandBack | None = None
    disposition: str = "resolved_by_agent"

    @model_validator(mode="after")
    def _ending(self) -> Agent:
        if self.then == "hand_back" and self.hand_back is None:
            raise ValueError("then: hand_back needs hand_back: {flow, step, goal, instructions}")
        if self.then == "close" and self.hand_back is not None:
            raise ValueError("hand_back is given but then is close; set then: hand_back")
        overlap = set(self.approve) & set(self.reject)
        if overlap:
            raise ValueError(f"{', '.join(sorted(overlap))} both approved and rejected")
        return self


class RepeatBounds(_Model):
    """Exact repeat counts per counter, for scenarios written to provoke a repeat."""

    events: int | None = Field(default=None, ge=0)
    text: int | None = Field(default=None, ge=0)


class FactShown(_Model):
    """A fact the case file must show (or must have learned). Only what is given is compared: ``source``
    ``signal`` matches any signal (``signal:card_holds``), ``action`` any action's result; a mapping ``value``
    matches when each of its keys matches."""

    name: str = Field(min_length=1)
    subject: str | None = None
    source: str | None = None
    value: Any = None
    status: Literal["known", "conflicted", "stale"] | None = None


class SignalsExpected(_Model):
    """How the journey's signal fetches went, by signal name (the ``signal_status`` facts)."""

    ok: list[str] = Field(default_factory=list)
    timed_out: list[str] = Field(default_factory=list)


class ActionExpected(_Model):
    tool: str = Field(min_length=1)
    # Who let it run: policy (allowed outright, no person), or the agent or supervisor who approved it.
    approved_by: Literal["policy", "agent", "supervisor"] | None = None
    # Entries for this tool in the example system's own ledger: 1 is exactly once.
    effects: int | None = Field(default=None, ge=0)


class Actions(_Model):
    executed: list[ActionExpected] = Field(default_factory=list)
    not_executed: list[str] = Field(default_factory=list)

    @field_validator("executed", mode="before")
    @classmethod
    def _plain_tools(cls, value: Any) -> Any:
        if isinstance(value, list):
            return [{"tool": item} if isinstance(item, str) else item for item in value]
        return value


class Expect(_Model):
    resolved: bool | None = None
    contained: bool | None = None
    handoff_path: list[Literal["bot", "ai", "human", "supervisor", "ivr"]] | None = None
    # Per handoff, in order: facts the person's handoff card must show as known.
    handoff_facts: list[list[str]] | None = None
    max_repeats: int | None = Field(default=0, ge=0, description="for both counters")
    repeats: RepeatBounds | None = None
    max_turns: int | None = Field(default=None, ge=1)
    handoffs: int | None = Field(default=None, ge=0)
    hand_backs: int | None = Field(default=None, ge=0)
    legs: int | None = Field(default=None, ge=1)
    continued: bool | None = None
    actions: Actions | None = None
    # The case file at the end: each must match a fact it shows.
    facts: list[FactShown] = Field(default_factory=list)
    # Facts learned at any point (from the log), even if a later fact has superseded them since.
    learned: list[FactShown] = Field(default_factory=list)
    signals: SignalsExpected | None = None
    policy_blocks: int | None = Field(default=None, ge=0)
    unauthorized_actions: int | None = Field(default=0, ge=0)
    saw: list[str] = Field(default_factory=list, description="phrases the customer must have seen")
    never_saw: list[str] = Field(default_factory=list, description="phrases the customer must not have seen")
    # The release every interaction of the journey was pinned to: the scenario's own, or the one before it.
    release: Literal["published", "shipped"] | None = None


class Signals(_Model):
    """How the enterprise data behaves in this scenario."""

    # Signals whose source answers only after their budget has run out: the fetch times out.
    late: list[str] = Field(default_factory=list)


class Release(_Model):
    """A policy an admin publishes and activates on the running deployment before the journey starts."""

    policy: dict[str, Any] = Field(
        min_length=1,
        description="laid over the tenant's active policy: mappings merge key by key, lists and values replace",
    )


class Scenario(_Model):
    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]*$")
    title: str
    tenant: str
    persona: Persona
    agent: Agent | None = None
    signals: Signals = Field(default_factory=lambda: Signals())
    release: Release | None = None
    expect: Expect = Field(default_factory=lambda: Expect())
    tags: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _published_release(self) -> Scenario:
        if self.expect.release == "published" and self.release is None:
            raise ValueError("expect.release is published, but the scenario publishes none: add a release block")
        return self

    @model_validator(mode="after")
    def _agent_joins_a_leg(self) -> Scenario:
        if self.agent is not None and self.agent.joins_on_leg > len(self.persona.legs):
            raise ValueError(
                f"agent.joins_on_leg is {self.agent.joins_on_leg}, but the persona has only "
                f"{len(self.persona.legs)} leg(s)"
            )
        return self


@dataclass(frozen=True, slots=True)
class LoadedScenario:
    path: Path
    scenario: Scenario


# -- loading with line numbers ----------------------------------------------------------------------------


def _plain(node: yaml.Node) -> Any:
    """The Python value of a composed node (safe tags only)."""
    return yaml.safe_load(yaml.serialize(node))


def _locate(node: yaml.Node, loc: Iterable[int | str]) -> int:
    """The 1-based line of the deepest node that ``loc`` reaches."""
    line = node.start_mark.line + 1
    current: yaml.Node | None = node
    for part in loc:
        if isinstance(current, yaml.MappingNode):
            found = None
            for key, value in current.value:
                if isinstance(key, yaml.ScalarNode) and key.value == str(part):
                    found = (key, value)
                    break
            if found is None:
                return line
            line = found[0].start_mark.line + 1
            current = found[1]
            # Point at the value when it has a line of its own (a nested block), else at the key.
            if not isinstance(current, yaml.ScalarNode):
                line = current.start_mark.line + 1 if current.start_mark.line > found[0].start_mark.line else line
        elif isinstance(current, yaml.SequenceNode) and isinstance(part, int) and part < len(current.value):
            current = current.value[part]
            line = current.start_mark.line + 1
        else:
            return line
    return line


def _message(error: Any) -> str:
    kind = error.get("type", "")
    loc = ".".join(str(p) for p in error.get("loc", ()))
    if kind == "missing":
        return f"{loc} is required"
    if kind == "extra_forbidden":
        return f"unknown key {loc}"
    msg = str(error.get("msg", "is invalid")).removeprefix("Value error, ")
    return f"{loc}: {msg}" if loc else msg


def parse_scenario(
    text: str, path: Path, tenants: Iterable[str] | None = None, signals: Mapping[str, Iterable[str]] | None = None
) -> Scenario:
    """``tenants`` and ``signals`` (tenant -> signal names), when given, are what the scenario may name."""
    try:
        root = yaml.compose(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else 1
        raise ScenarioError([f"{path}:{line}: not valid YAML: {exc.problem or exc}"]) from None
    if root is None or not isinstance(root, yaml.MappingNode):
        line = root.start_mark.line + 1 if root is not None else 1
        raise ScenarioError([f"{path}:{line}: a scenario is a mapping with name, title, tenant, persona, expect"])
    try:
        scenario = Scenario.model_validate(_plain(root))
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            loc = [p for p in error.get("loc", ()) if not (isinstance(p, str) and p.startswith("function-"))]
            # A model-level check has the model's path as loc: the line of that mapping is the best we have.
            problems.append(f"{path}:{_locate(root, loc)}: {_message({**error, 'loc': loc})}")
        raise ScenarioError(problems) from None
    known = sorted(tenants or ())
    if known and scenario.tenant not in known:
        line = _locate(root, ["tenant"])
        raise ScenarioError([f"{path}:{line}: unknown tenant {scenario.tenant!r}; known: {', '.join(known)}"])
    if signals is not None:
        offered = set(signals.get(scenario.tenant, ()))
        for i, name in enumerate(scenario.signals.late):
            if name not in offered:
                line = _locate(root, ["signals", "late", i])
                raise ScenarioError(
                    [f"{path}:{line}: signals.late: tenant {scenario.tenant} has no signal {name!r}; "
                     f"known: {', '.join(sorted(offered)) or 'none'}"]
                )  # fmt: skip
    return scenario


def load_scenario(
    path: Path, tenants: Iterable[str] | None = None, signals: Mapping[str, Iterable[str]] | None = None
) -> LoadedScenario:
    return LoadedScenario(path, parse_scenario(path.read_text(encoding="utf-8"), path, tenants, signals))


def scenario_files(paths: Iterable[Path]) -> Iterator[Path]:
    for path in paths:
        if path.is_dir():
            yield from sorted(p for p in path.rglob("*.y*ml") if p.suffix in (".yaml", ".yml"))
        else:
            yield path


def load_scenarios(
    paths: Iterable[Path], tenants: Iterable[str] | None = None, signals: Mapping[str, Iterable[str]] | None = None
) -> list[LoadedScenario]:
    """Load every scenario under ``paths`` (files or directories); report every problem at once."""
    paths = list(paths)
    tenants = list(tenants or ())
    loaded: list[LoadedScenario] = []
    problems: list[str] = []
    names: dict[str, Path] = {}
    for path in scenario_files(paths):
        if not path.exists():
            problems.append(f"{path}:1: no such file")
            continue
        try:
            item = load_scenario(path, tenants, signals)
        except ScenarioError as exc:
            problems.extend(exc.problems)
            continue
        if item.scenario.name in names:
            problems.append(f"{path}:1: name {item.scenario.name!r} is already used by {names[item.scenario.name]}")
            continue
        names[item.scenario.name] = path
        loaded.append(item)
    if problems:
        raise ScenarioError(problems)
    if not loaded:
        raise ScenarioError([f"{', '.join(str(p) for p in paths) or '.'}:1: no scenario files found"])
    return loaded

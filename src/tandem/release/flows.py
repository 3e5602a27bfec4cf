"""Flows: the self-service journeys, one YAML file each, that business people can read and change.

A flow names the intents it serves, the queue that finishes the journey when the bot cannot, and its steps::

    flow: balance
    intents: [balance]
    queue: accounts
    steps:
      - verify: knowledge_verified
      - fetch: balance
      - say: "As of now, {items}. Anything else?"
        for_each: balance
        item: "your account ending {subject.balance|last4} has {balance|money}"

Step kinds: ``ask``, ``verify``, ``fetch``, ``say``, ``branch``, ``propose``, ``answer``, ``handoff`` and
``goto``; any step may carry an ``id`` (top-level steps: a ``goto`` or a hand-back resumes there) and a ``when``
condition (CEL). docs/flows.md describes each.

Loading fails closed: every file is checked against ``flow_schema.json`` and then for what a schema cannot say
(a goto to a missing step, an unknown tool, a condition that is not CEL or reads an unknown fact, a template
placeholder naming an unknown fact). Every problem is reported with its file and line:column and a hint, and
one bad file means the tenant's flows do not load.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from tandem.flows.condition import RESERVED, Condition, ConditionError
from tandem.flows.template import Template, TemplateError
from tandem.release.signals import RELEASE_FILE, ReleaseError, load_release
from tandem.world.world import EXAMPLES_DIR

FLOWS_DIR = "flows"
KINDS = ("ask", "verify", "fetch", "say", "branch", "propose", "answer", "handoff", "goto")
# What each kind may carry beside ``id`` and ``when``.
OPTIONS: dict[str, frozenset[str]] = {
    "ask": frozenset({"text", "choose_from", "free_text"}),
    "verify": frozenset(),
    "fetch": frozenset({"if_unavailable"}),
    "say": frozenset({"offer", "for_each", "item", "join"}),
    "branch": frozenset(),
    "propose": frozenset({"on_allow", "on_approval", "on_deny"}),
    "answer": frozenset({"otherwise"}),
    "handoff": frozenset(),
    "goto": frozenset(),
}
NESTED = ("if_unavailable", "on_allow", "on_approval", "on_deny", "otherwise")
# Facts the conversation itself provides (the customer's words, identification, the bot's own notes), beside
# the facts a tenant's signals provide.
CONVERSATION_FACTS = frozenset(
    {"reason", "phone", "member_id", "email", "card_last4", "claim_id", "zip", "customer_name", "date_of_birth",
     "mentioned_date", "mentioned_amount", "disputed_charge_description", "offered_next", "customer_tier",
     "travel_countries", "travel_start", "travel_end"}
)  # fmt: skip
# Names a template may start with beside facts: the subject of a fact, the customer, a for_each's items.
TEMPLATE_ROOTS = frozenset({"subject", "customer", "items", "goal"})


class FlowError(ValueError):
    """One or more problems in flow files, each as ``file:line:column: message``."""

    def __init__(self, problems: Sequence[str]) -> None:
        self.problems = list(problems)
        super().__init__("\n".join(self.problems))


@dataclass(frozen=True)
class Step:
    kind: str
    arg: Any
    where: str  # file:line:column, for messages at run time
    id: str | None = None
    when: Condition | None = None
    text: Template | None = None  # ask's question, say's sentence
    item: Template | None = None
    options: Mapping[str, Any] = field(default_factory=dict)
    # Nested step lists: if_unavailable, on_allow, on_approval, on_deny, otherwise; branch arms as
    # ("when", condition, steps) in order, the else arm with condition None.
    children: Mapping[str, tuple[Step, ...]] = field(default_factory=dict)
    arms: tuple[tuple[Condition | None, tuple[Step, ...]], ...] = ()
    templates: Mapping[str, Template] = field(default_factory=dict)  # propose args, handoff reason/next


@dataclass(frozen=True)
class Flow:
    name: str
    intents: tuple[str, ...]
    steps: tuple[Step, ...]
    path: Path
    queue: str | None = None
    description: str = ""

    def index(self, step_id: str) -> int | None:
        return next((i for i, s in enumerate(self.steps) if s.id == step_id), None)


@dataclass(frozen=True)
class FlowBook:
    """One tenant's flows, by name and by the intent each serves."""

    tenant_id: str
    flows: Mapping[str, Flow]

    def for_intent(self, intent: str) -> Flow | None:
        return next((f for f in self.flows.values() if intent in f.intents), None)

    def get(self, name: str | None) -> Flow | None:
        return self.flows.get(name) if name else None

    @property
    def intents(self) -> frozenset[str]:
        return frozenset(i for f in self.flows.values() for i in f.intents)

    def __iter__(self) -> Iterator[Flow]:
        return iter(self.flows.values())


@dataclass(frozen=True)
class Context:
    """What a tenant's flows are checked against: the facts they can see, the tools and the signal intents.
    None where unknown (a flows folder checked on its own): that check is skipped."""

    facts: frozenset[str] | None = None
    tools: frozenset[str] | None = None
    fetchable: frozenset[str] | None = None

    @classmethod
    def beside(cls, folder: Path) -> Context:
        """The context from the tenant folder a flows folder sits in: its signals.yaml and policy.yaml."""
        tenant_dir = folder.parent
        facts = fetchable = tools = None
        signals = tenant_dir / RELEASE_FILE
        if signals.exists():
            try:
                release = load_release(signals)
            except ReleaseError as exc:
                raise FlowError([f"{signals}: {exc}"]) from None
            facts = frozenset(f.name for s in release.signals.values() for f in s.facts)
            fetchable = frozenset(i for s in release.signals.values() for i in s.trigger.intents)
        policy = tenant_dir / "policy.yaml"
        if policy.exists():
            raw = yaml.safe_load(policy.read_text()) or {}
            tools = frozenset((raw.get("tools") or {}).keys())
        return cls(facts, tools, fetchable)


def schema() -> dict[str, Any]:
    text = resources.files("tandem.release").joinpath("flow_schema.json").read_text()
    loaded: dict[str, Any] = json.loads(text)
    return loaded


_VALIDATOR = jsonschema.Draft202012Validator(schema())


# -- loading -------------------------------------------------------------------------------------------------
def load_flows(folder: Path, tenant_id: str, context: Context | None = None) -> FlowBook:
    """Every ``*.yaml`` in ``folder`` as one tenant's flows; FlowError lists every problem found."""
    context = context if context is not None else Context.beside(folder)
    files = sorted(folder.glob("*.yaml"))
    if not files:
        raise FlowError([f"{folder}: no flow files (*.yaml)"])
    problems: list[str] = []
    flows: dict[str, Flow] = {}
    asked = {name for path in files for name in _asked(path)}
    facts = None if context.facts is None else context.facts | CONVERSATION_FACTS | asked
    for path in files:
        try:
            flow = _load_file(path, facts, context)
        except FlowError as exc:
            problems.extend(exc.problems)
            continue
        if flow.name in flows:
            problems.append(f"{path}:1:1: flow {flow.name} is already defined in {flows[flow.name].path.name}")
            continue
        flows[flow.name] = flow
    served: dict[str, str] = {}
    for flow in flows.values():
        for intent in flow.intents:
            if intent in served:
                problems.append(f"{flow.path}:1:1: intent {intent} is served by flow {served[intent]} already")
            served[intent] = flow.name
        for step in _walk(flow.steps):
            offered = step.options.get("offer")
            if offered is not None and offered not in flows:
                problems.append(
                    f"{step.where}: offer names flow {offered}, which does not exist; known: {', '.join(sorted(flows))}"
                )
    if problems:
        raise FlowError(problems)
    return FlowBook(tenant_id, flows)


def load_tenant_flows(root: Path | None = None) -> dict[str, FlowBook]:
    """The flows of every tenant folder under ``root`` (the shipped examples by default) that has a world.yaml
    and a flows folder, by tenant id."""
    books: dict[str, FlowBook] = {}
    problems: list[str] = []
    for world_file in sorted((root or EXAMPLES_DIR).glob("*/world.yaml")):
        folder = world_file.parent / FLOWS_DIR
        if not folder.is_dir():
            continue
        tenant_id = str(((yaml.safe_load(world_file.read_text()) or {}).get("tenant") or {}).get("id") or "")
        try:
            books[tenant_id] = load_flows(folder, tenant_id)
        except FlowError as exc:
            problems.extend(exc.problems)
    if problems:
        raise FlowError(problems)
    return books


def _asked(path: Path) -> set[str]:
    """Facts an ``ask`` step of this file names (a fact a flow asks for is a fact every flow may read)."""
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError:
        return set()
    found: set[str] = set()

    def visit(node: Any) -> None:
        if isinstance(node, dict):
            if isinstance(node.get("ask"), str):
                found.add(node["ask"])
            for value in node.values():
                visit(value)
        elif isinstance(node, list):
            for value in node:
                visit(value)

    visit(raw)
    return found


def _load_file(path: Path, facts: frozenset[str] | None, context: Context) -> Flow:
    text = path.read_text()
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f"{mark.line + 1}:{mark.column + 1}" if mark is not None else "1:1"
        raise FlowError([f"{path}:{at}: not valid YAML: {getattr(exc, 'problem', exc)}"]) from None
    marks = _Marks(path, root)
    if not isinstance(raw, dict):
        raise FlowError([f"{path}:1:1: a flow file is a mapping with flow, intents and steps"])
    problems = list(_kind_problems(raw.get("steps"), ("steps",), marks))
    if not problems:
        for error in sorted(_VALIDATOR.iter_errors(raw), key=lambda e: list(map(str, e.absolute_path))):
            problems.append(f"{marks.at(tuple(error.absolute_path))}: {_schema_message(error)}")
    if problems:
        raise FlowError(problems)
    builder = _Builder(path, marks, facts, context)
    steps = builder.steps(raw["steps"], ("steps",), top=True)
    flow = Flow(
        name=raw["flow"],
        intents=tuple(raw["intents"]),
        steps=steps,
        path=path,
        queue=raw.get("queue"),
        description=str(raw.get("description") or ""),
    )
    builder.check_gotos(flow)
    if builder.problems:
        raise FlowError(builder.problems)
    return flow


class _Marks:
    """Line and column of any node of a YAML document, by its path (keys and indices)."""

    def __init__(self, path: Path, root: yaml.Node | None) -> None:
        self.path = path
        self.root = root

    def at(self, where: tuple[Any, ...]) -> str:
        node = self.root
        for part in where:
            if isinstance(node, yaml.MappingNode):
                child = next((v for k, v in node.value if k.value == part), None)
                if child is None:
                    break
                node = child
            elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
                node = node.value[part]
            else:
                break
        if node is None:
            return f"{self.path}:1:1"
        return f"{self.path}:{node.start_mark.line + 1}:{node.start_mark.column + 1}"


def _kind_problems(steps: Any, where: tuple[Any, ...], marks: _Marks) -> Iterator[str]:
    """Each step has exactly one kind, and only the options of that kind: said plainly, before the schema
    (whose messages for this are hard to read)."""
    if not isinstance(steps, list):
        return
    for i, step in enumerate(steps):
        at = (*where, i)
        if not isinstance(step, dict):
            yield f"{marks.at(at)}: a step is a mapping such as 'say: ...'; got {type(step).__name__}"
            continue
        kinds = [k for k in step if k in KINDS]
        if not kinds:
            other = [str(k) for k in step if k not in ("id", "when") and not _is_option(k)]
            hint = f"unknown step kind {', '.join(repr(k) for k in other)}" if other else "a step without a kind"
            yield f"{marks.at(at)}: {hint}; use one of {', '.join(KINDS)}"
            continue
        if len(kinds) > 1:
            yield f"{marks.at(at)}: one step has two kinds ({', '.join(kinds)}); split it into two steps"
            continue
        kind = kinds[0]
        for key in step:
            if key not in ("id", "when", kind) and key not in OPTIONS[kind]:
                allowed = ", ".join(sorted(OPTIONS[kind] | {"id", "when"}))
                if _is_option(key):
                    yield f"{marks.at((*at, key))}: {key} does not belong to a {kind} step; it takes {allowed}"
                else:
                    yield f"{marks.at((*at, key))}: unknown key {key!r} in a {kind} step; it takes {allowed}"
        for key in NESTED:
            yield from _kind_problems(step.get(key), (*at, key), marks)
        if kind == "branch" and isinstance(step.get("branch"), list):
            for j, arm in enumerate(step["branch"]):
                if isinstance(arm, dict):
                    for key in ("then", "else"):
                        yield from _kind_problems(arm.get(key), (*at, "branch", j, key), marks)


def _is_option(key: Any) -> bool:
    return any(key in options for options in OPTIONS.values())


def _schema_message(error: Any) -> str:  # a jsonschema.ValidationError
    if error.validator == "additionalProperties":
        return f"{error.message}; see docs/flows.md for the keys each part takes"
    if error.validator == "pattern":
        return f"{error.instance!r} is not a name: use lower case letters, digits and underscores"
    if error.validator == "dependentRequired":
        return f"{error.message} (a step of this kind needs it)"
    if error.validator == "oneOf" and error.absolute_path and "branch" in error.absolute_path:
        return "a branch arm is either 'when' with 'then', or 'else' alone"
    return str(error.message)


class _Builder:
    def __init__(self, path: Path, marks: _Marks, facts: frozenset[str] | None, context: Context) -> None:
        self.path = path
        self.marks = marks
        self.facts = facts
        self.context = context
        self.problems: list[str] = []
        self.goto: list[tuple[str, str]] = []  # (target, where)

    def steps(self, raw: list[dict[str, Any]], where: tuple[Any, ...], *, top: bool = False) -> tuple[Step, ...]:
        return tuple(self.step(item, (*where, i), top) for i, item in enumerate(raw))

    def step(self, raw: dict[str, Any], where: tuple[Any, ...], top: bool) -> Step:
        kind = next(k for k in raw if k in KINDS)
        at = self.marks.at(where)
        if "id" in raw and not top:
            self.problems.append(
                f"{self.marks.at((*where, 'id'))}: only top-level steps have an id (a goto or a hand-back "
                "resumes there); move the step up or drop its id"
            )
        when = self.condition(raw.get("when"), (*where, "when"))
        arg = raw[kind]
        text = item = None
        templates: dict[str, Template] = {}
        children: dict[str, tuple[Step, ...]] = {}
        arms: list[tuple[Condition | None, tuple[Step, ...]]] = []
        options = {k: v for k, v in raw.items() if k in OPTIONS[kind] and k not in NESTED}
        each = raw.get("for_each")
        if kind == "ask":
            text = self.template(raw["text"], (*where, "text"))
            if raw.get("choose_from"):
                self.fact(raw["choose_from"], (*where, "choose_from"))
        elif kind == "say":
            text = self.template(arg, (*where, kind), items=each is not None)
            if each is not None:
                self.fact(each, (*where, "for_each"))
                item = self.template(raw["item"], (*where, "item"))
        elif kind == "fetch":
            if self.context.fetchable is not None and arg not in self.context.fetchable:
                self.problems.append(
                    f"{self.marks.at((*where, kind))}: no signal is fetched for intent {arg}; signals.yaml "
                    f"triggers on {', '.join(sorted(self.context.fetchable))}"
                )
        elif kind == "propose":
            tool = arg["tool"]
            if self.context.tools is not None and tool not in self.context.tools:
                self.problems.append(
                    f"{self.marks.at((*where, kind, 'tool'))}: unknown tool {tool}; policy.yaml declares "
                    f"{', '.join(sorted(self.context.tools))}"
                )
            for name, value in arg["args"].items():
                for path, leaf in _leaves(value, (name,)):
                    templates[arg_key(path)] = self.template(leaf, (*where, kind, "args", *path))
            templates["why"] = self.template(arg["why"], (*where, kind, "why"))
        elif kind == "handoff":
            for key in ("reason", "next"):
                if key in arg:
                    templates[key] = self.template(arg[key], (*where, kind, key))
        elif kind == "goto":
            self.goto.append((arg, self.marks.at((*where, kind))))
        elif kind == "branch":
            for j, arm in enumerate(arg):
                key = "then" if "then" in arm else "else"
                condition = self.condition(arm.get("when"), (*where, kind, j, "when"))
                arms.append((condition, self.steps(arm[key], (*where, kind, j, key))))
        for key in NESTED:
            if key in raw:
                children[key] = self.steps(raw[key], (*where, key))
        return Step(
            kind=kind, arg=arg, where=at, id=raw.get("id"), when=when, text=text, item=item, options=options,
            children=children, arms=tuple(arms), templates=templates,
        )  # fmt: skip

    def condition(self, source: str | None, where: tuple[Any, ...]) -> Condition | None:
        if source is None:
            return None
        try:
            return Condition.compile(source, self.facts)
        except ConditionError as exc:
            self.problems.append(f"{self.marks.at(where)}: {exc}")
            return None

    def template(self, source: str, where: tuple[Any, ...], *, items: bool = False) -> Template:
        try:
            template = Template.parse(source)
        except TemplateError as exc:
            self.problems.append(f"{self.marks.at(where)}: {exc}")
            return Template(source, (source,))
        for p in template.placeholders:
            if p.root == "items" and not items:
                self.problems.append(f"{self.marks.at(where)}: {{items}} needs for_each on the same say step")
            elif p.root == "subject" and len(p.path) != 1:
                self.problems.append(f"{self.marks.at(where)}: write {{subject.<fact>}}, e.g. {{subject.card_hold|id}}")
            elif p.root == "subject":
                self.fact(p.path[0], where)
            elif p.root not in TEMPLATE_ROOTS:
                self.fact(p.root, where)
        return template

    def fact(self, name: str, where: tuple[Any, ...]) -> None:
        if self.facts is not None and name not in self.facts and name not in RESERVED:
            self.problems.append(
                f"{self.marks.at(where)}: unknown fact {name}; the signals and the conversation provide "
                f"{', '.join(sorted(self.facts))}"
            )

    def check_gotos(self, flow: Flow) -> None:
        ids = [s.id for s in flow.steps if s.id]
        for target, at in self.goto:
            if target not in ids:
                known = ", ".join(ids) if ids else "none (give a top-level step an id)"
                self.problems.append(f"{at}: goto {target}: no top-level step has that id; ids: {known}")
        seen: set[str] = set()
        for step in flow.steps:
            if step.id in seen:
                self.problems.append(f"{step.where}: step id {step.id} is used twice")
            if step.id:
                seen.add(step.id)


def arg_key(path: Sequence[str | int]) -> str:
    """The key of a propose argument's template: ``args.countries.0`` for the first item of ``countries``."""
    return ".".join(("args", *map(str, path)))


def _leaves(value: Any, path: tuple[str | int, ...]) -> Iterator[tuple[tuple[str | int, ...], str]]:
    """Every text inside an argument, however deep in lists and maps, with its path: each is a template."""
    if isinstance(value, str):
        yield path, value
    elif isinstance(value, Mapping):
        for key, item in value.items():
            yield from _leaves(item, (*path, str(key)))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from _leaves(item, (*path, i))


def _walk(steps: Sequence[Step]) -> Iterator[Step]:
    for step in steps:
        yield step
        for children in step.children.values():
            yield from _walk(children)
        for _cond, arm in step.arms:
            yield from _walk(arm)

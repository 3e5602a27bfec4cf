"""Policy: the human-authored part of a release. Who may serve which intent; for every tool how autonomous
Tandem may be (auto, agent approval, supervisor approval, never) and when; what escalates to a person.

One YAML file per tenant (``examples/bank/policy.yaml``)::

    policy: {tenant: bank, name: harbor-bank-policy}
    servers: mcp/servers.yaml            # the MCP servers the tools live on (tandem.actions.servers)
    data_scopes: signals.yaml            # who sees what is declared once, in the signal release
    intents:
      dispute_charge: {served_by: [bot, ai, human]}
    tools:
      open_dispute:
        server: core_banking             # and ``mcp_tool`` when the server names it differently
        schema_sha256: 3f1c...           # the pinned contract; a changed schema fails closed
        proposers: [bot, ai, human]
        autonomy: agent_approval         # when no grant applies
        approval_expires_in: 15m
        grants:                          # may loosen; trusted inputs only; the first that holds applies
          - {rule: small_dispute, when: "amount <= 500.0 && assurance >= KNOWLEDGE_VERIFIED", autonomy: auto}
        limits:                          # may only tighten; any input; the strictest that holds applies
          - {rule: upset_customer, when: "sentiment in ['angry', 'distressed']", autonomy: agent_approval}
    escalations:
      - {name: distressed, when: "sentiment == 'distressed'", to: {kind: queue, id: disputes}, reason: ...}

Conditions are CEL (cel-python), compiled once when the file is loaded. The one rule that keeps a customer
from talking their way into an effect is checked here, statically: a **grant** may only read inputs the
customer cannot influence (``TRUSTED``); whatever they can (``CUSTOMER_INFLUENCED``: what they stated, their
sentiment, their words) may appear only in **limits**, which can only make a decision stricter. A condition
that cannot be evaluated (a missing input, a type error) fails closed: a grant does not apply, a limit does.

A policy's version is its name and the digest of the file, so a version can never mean two texts; the
``PolicyBook`` keeps every version it has seen, so an interaction pinned to one keeps it.
"""

from __future__ import annotations

import functools
import hashlib
import logging
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from enum import IntEnum
from pathlib import Path
from typing import Any

import yaml

from tandem.release.cel import CelSyntaxError, Compiled, Expression, HasNotSupported

log = logging.getLogger(__name__)

POLICY_FILE = "policy.yaml"
PARTICIPANT_KINDS = frozenset({"ivr", "bot", "ai", "human", "supervisor", "copilot", "system", "service"})
DEFAULT_PROPOSERS = frozenset({"bot", "ai", "human", "supervisor", "system"})
DEFAULT_APPROVAL_EXPIRY_S = 900.0
DEFAULT_TIMEOUT_S = 10.0

# Inputs a customer cannot move by what they say: the records, the verified assurance of the leg, the size of
# the effect itself (what executes is exactly that amount), the clock.
TRUSTED: Mapping[str, str] = {
    "tool": "the tool's name",
    "proposer": "kind of participant that proposed the action (bot, ai, human, supervisor)",
    "amount": "the amount in the arguments, in major units (args.amount or args.amount_minor)",
    "currency": "the currency of that amount",
    "assurance": "assurance of the current leg, 0..3 (compare with NONE .. STRONG)",
    "assurance_level": "the same as a name: none, identified, knowledge_verified, strong",
    "NONE": "assurance constant 0",
    "IDENTIFIED": "assurance constant 1",
    "KNOWLEDGE_VERIFIED": "assurance constant 2",
    "STRONG": "assurance constant 3",
    "customer": "the customer's record in the system of record (tier, eligibility, ...)",
    "tier": "customer.tier",
    "known": "which of the optional inputs amount, currency, tier, fraud_score this decision has ('x' in known)",
    "facts": "fresh facts from systems of record, signals and earlier actions, by name (name[subject])",
    "fraud_score": "the highest fresh fraud score a system of record reported on this case",
    "channel": "the interaction's first channel",
    "floor": "who holds the floor (bot, ai, human, supervisor)",
    "now": "the decision time (timestamp)",
    "hour": "hour of the decision time, UTC",
    "weekday": "day of the week of the decision time, 0 = Monday",
    # Counted from the actions the interaction recorded before this one (their tools and the amounts in their
    # arguments), never from what the customer says: four $25 credits add up to the $100 one would have been.
    "interaction": "what earlier actions of this interaction add up to: amount_proposed, amount_approved, "
    "amount_executed (major units) and actions (a count), in total, for this tool (interaction.same_tool.*) and "
    "per tool (interaction.tools.<tool>.*, every tool the policy lists)",
}
# Always present (a neutral value when there is nothing): stating nothing never tightens.
CUSTOMER_INFLUENCED: Mapping[str, str] = {
    "sentiment": "the latest sentiment label (neutral, positive, angry, distressed, ...; unknown before any)",
    "sentiment_score": "the latest sentiment score (0.0 before any)",
    "stated": "what the customer stated, by fact name",
    "stated_amount": "an amount the customer mentioned, in major units (0.0 when none)",
    "intent": "the top detected intent (from the customer's words; empty before any)",
    "text": "the customer's last line",
    # A reason or a note may be the customer's own words copied in; only the amount (the size of what executes,
    # bounded by the grant itself) is read as trusted, through ``amount``.
    "args": "the action's arguments",
}
OPTIONAL = frozenset({"amount", "currency", "tier", "fraud_score"})
VARIABLES = frozenset(TRUSTED) | frozenset(CUSTOMER_INFLUENCED)


class PolicyError(ValueError):
    pass


class Autonomy(IntEnum):
    """How far Tandem may go on its own, from most to least autonomous. Stricter is larger."""

    AUTO = 0
    AGENT_APPROVAL = 1
    SUPERVISOR_APPROVAL = 2
    NEVER = 3

    @classmethod
    def parse(cls, raw: Any, where: str) -> Autonomy:
        try:
            return cls[str(raw).upper()]
        except KeyError:
            raise PolicyError(
                f"{where}: unknown autonomy {raw!r}; use auto, agent_approval, supervisor_approval or never"
            ) from None

    @property
    def label(self) -> str:
        return self.name.lower()


@dataclass(frozen=True)
class Condition(Compiled):
    """A compiled CEL condition and the inputs it reads."""

    @classmethod
    def compile(cls, source: Any, where: str) -> Condition:
        if not isinstance(source, str) or not source.strip():
            raise PolicyError(f"{where}: expected a CEL expression")
        try:
            expression = Expression.compile(source.strip())
        except CelSyntaxError as exc:
            raise PolicyError(f"{where}: not valid CEL: {exc}") from None
        except HasNotSupported:
            raise PolicyError(
                f"{where}: has() is not supported here; test a key with 'key' in customer, an optional input "
                "with 'fraud_score' in known"
            ) from None
        unknown = expression.identifiers - VARIABLES
        if unknown:
            raise PolicyError(
                f"{where}: unknown input {', '.join(sorted(unknown))}; known: {', '.join(sorted(VARIABLES))}"
            )
        return cls(expression)

    def evaluate(self, activation: Mapping[str, Any]) -> bool | str:
        """True or False, or the reason it could not be evaluated (the caller fails closed)."""
        return self.expression.evaluate(activation)

    @property
    def customer_influenced(self) -> frozenset[str]:
        return self.identifiers & frozenset(CUSTOMER_INFLUENCED)


@dataclass(frozen=True)
class Rule:
    name: str
    when: Condition
    autonomy: Autonomy


@dataclass(frozen=True)
class ToolPolicy:
    name: str
    server: str
    mcp_tool: str
    autonomy: Autonomy
    grants: tuple[Rule, ...] = ()
    limits: tuple[Rule, ...] = ()
    proposers: frozenset[str] = DEFAULT_PROPOSERS
    approval_expires_in_s: float = DEFAULT_APPROVAL_EXPIRY_S
    timeout_s: float = DEFAULT_TIMEOUT_S
    schema_sha256: str | None = None
    description: str = ""

    @functools.cached_property
    def reads(self) -> frozenset[str]:
        """Every input its rules read."""
        return frozenset().union(*(r.when.identifiers for r in (*self.grants, *self.limits)))


@dataclass(frozen=True)
class Escalation:
    name: str
    when: Condition
    target: Mapping[str, Any]
    reason: str


@dataclass(frozen=True)
class Policy:
    tenant_id: str
    name: str
    digest: str
    intents: Mapping[str, frozenset[str]]
    tools: Mapping[str, ToolPolicy]
    escalations: tuple[Escalation, ...] = ()
    servers: Path | None = None
    data_scopes: Path | None = None
    path: Path | None = None
    text: str = field(default="", repr=False)

    @property
    def version(self) -> str:
        return f"{self.name}@{self.digest}"

    def tool(self, name: str) -> ToolPolicy | None:
        return self.tools.get(name)

    def may_serve(self, intent: str, participant: str) -> bool:
        """Who may serve an intent. An intent the policy does not list may be served by anyone but the IVR."""
        served_by = self.intents.get(intent)
        return participant != "ivr" if served_by is None else participant in served_by


# -- parsing -----------------------------------------------------------------------------------------------


def _kinds(raw: Any, where: str) -> frozenset[str]:
    if not isinstance(raw, list) or not all(isinstance(k, str) for k in raw):
        raise PolicyError(f"{where}: expected a list of participant kinds")
    unknown = set(raw) - PARTICIPANT_KINDS
    if unknown:
        raise PolicyError(f"{where}: unknown participant {sorted(unknown)}; use {', '.join(sorted(PARTICIPANT_KINDS))}")
    return frozenset(raw)


def _seconds(raw: Any, where: str) -> float:
    if isinstance(raw, int | float) and not isinstance(raw, bool):
        value = float(raw)
    elif isinstance(raw, str) and raw.strip()[-1:] in ("s", "m", "h") and raw.strip()[:-1].replace(".", "").isdigit():
        text = raw.strip()
        value = float(text[:-1]) * {"s": 1, "m": 60, "h": 3600}[text[-1]]
    else:
        raise PolicyError(f"{where}: expected seconds or a duration such as 90s, 15m, 2h")
    if value <= 0:
        raise PolicyError(f"{where}: must be positive")
    return value


def _rules(raw: Any, where: str, *, trusted_only: bool) -> tuple[Rule, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise PolicyError(f"{where}: expected a list of rules")
    rules: list[Rule] = []
    for i, item in enumerate(raw):
        here = f"{where}[{i}]"
        if not isinstance(item, Mapping):
            raise PolicyError(f"{here}: expected {{rule, when, autonomy}}")
        unknown = set(item) - {"rule", "when", "autonomy"}
        if unknown:
            raise PolicyError(f"{here}: unknown keys {sorted(unknown)}; use rule, when, autonomy")
        name = item.get("rule")
        if not isinstance(name, str) or not name:
            raise PolicyError(f"{here}: needs a rule name")
        condition = Condition.compile(item.get("when"), f"{here} ({name}).when")
        if trusted_only and condition.customer_influenced:
            raise PolicyError(
                f"{here} ({name}): a grant may only read inputs the customer cannot influence; "
                f"{', '.join(sorted(condition.customer_influenced))} may only tighten (move it to limits)"
            )
        rules.append(Rule(name, condition, Autonomy.parse(item.get("autonomy"), f"{here} ({name}).autonomy")))
    names = [r.name for r in rules]
    if len(set(names)) != len(names):
        raise PolicyError(f"{where}: rule names repeat")
    return tuple(rules)


_TOOL_KEYS = frozenset(
    {"server", "mcp_tool", "description", "autonomy", "grants", "limits", "proposers", "approval_expires_in",
     "timeout", "schema_sha256"}
)  # fmt: skip


def _tool(name: str, raw: Any, where: str) -> ToolPolicy:
    if not isinstance(raw, Mapping):
        raise PolicyError(f"{where}: expected a mapping")
    unknown = set(raw) - _TOOL_KEYS
    if unknown:
        raise PolicyError(f"{where}: unknown keys {sorted(unknown)}; use {', '.join(sorted(_TOOL_KEYS))}")
    server = raw.get("server")
    if not isinstance(server, str) or not server:
        raise PolicyError(f"{where}: needs the server the tool lives on")
    pin = raw.get("schema_sha256")
    if pin is not None and (not isinstance(pin, str) or len(pin) != 64):
        raise PolicyError(f"{where}.schema_sha256: expected a 64-character hex digest")
    autonomy = Autonomy.parse(raw.get("autonomy", "never"), f"{where}.autonomy")
    return ToolPolicy(
        name=name,
        server=server,
        mcp_tool=str(raw.get("mcp_tool", name)),
        autonomy=autonomy,
        grants=_rules(raw.get("grants"), f"{where}.grants", trusted_only=True),
        limits=_rules(raw.get("limits"), f"{where}.limits", trusted_only=False),
        proposers=_kinds(raw["proposers"], f"{where}.proposers") if "proposers" in raw else DEFAULT_PROPOSERS,
        approval_expires_in_s=_seconds(raw["approval_expires_in"], f"{where}.approval_expires_in")
        if "approval_expires_in" in raw
        else DEFAULT_APPROVAL_EXPIRY_S,
        timeout_s=_seconds(raw["timeout"], f"{where}.timeout") if "timeout" in raw else DEFAULT_TIMEOUT_S,
        schema_sha256=pin,
        description=str(raw.get("description", "")).strip(),
    )


def parse_policy(raw: Any, *, text: str = "", path: Path | None = None) -> Policy:
    where = str(path) if path else "policy"
    if not isinstance(raw, Mapping):
        raise PolicyError(f"{where}: expected a mapping")
    unknown = set(raw) - {"policy", "servers", "data_scopes", "intents", "tools", "escalations"}
    if unknown:
        raise PolicyError(f"{where}: unknown sections {sorted(unknown)}")
    head = raw.get("policy")
    if not isinstance(head, Mapping) or not head.get("tenant"):
        raise PolicyError(f"{where}: needs policy: {{tenant: ..., name: ...}}")
    base = path.parent if path else Path.cwd()
    intents: dict[str, frozenset[str]] = {}
    for intent, spec in (raw.get("intents") or {}).items():
        if not isinstance(spec, Mapping) or "served_by" not in spec:
            raise PolicyError(f"{where}: intents.{intent} needs served_by")
        intents[str(intent)] = _kinds(spec["served_by"], f"{where}: intents.{intent}.served_by")
    tools_raw = raw.get("tools") or {}
    if not isinstance(tools_raw, Mapping):
        raise PolicyError(f"{where}: tools must be a mapping of name -> policy")
    tools = {str(n): _tool(str(n), spec, f"{where}: tools.{n}") for n, spec in tools_raw.items()}
    escalations: list[Escalation] = []
    for i, item in enumerate(raw.get("escalations") or []):
        here = f"{where}: escalations[{i}]"
        if not isinstance(item, Mapping) or not isinstance(item.get("name"), str):
            raise PolicyError(f"{here}: expected {{name, when, to, reason}}")
        target = item.get("to")
        if not isinstance(target, Mapping) or "kind" not in target:
            raise PolicyError(f"{here}.to: expected a handoff target such as {{kind: queue, id: fraud}}")
        escalations.append(
            Escalation(
                item["name"],
                Condition.compile(item.get("when"), f"{here}.when"),
                dict(target),
                str(item.get("reason", item["name"])),
            )
        )
    digest = hashlib.sha256(text.encode()).hexdigest()[:12] if text else "unversioned"
    return Policy(
        tenant_id=str(head["tenant"]),
        name=str(head.get("name", f"{head['tenant']}-policy")),
        digest=digest,
        intents=intents,
        tools=tools,
        escalations=tuple(escalations),
        servers=(base / str(raw["servers"])) if raw.get("servers") else None,
        data_scopes=(base / str(raw["data_scopes"])) if raw.get("data_scopes") else None,
        path=path,
        text=text,
    )


def load_policy(path: Path) -> Policy:
    return _parsed(path, path.read_text())


# A policy is immutable and its version is the digest of its text, so the same text parses to the same policy:
# every runtime of a process (the simulator builds one per journey) shares one instead of compiling its rules
# again. An edited file is new text, so it is parsed anew.
@functools.lru_cache(maxsize=64)
def _parsed(path: Path, text: str) -> Policy:
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise PolicyError(f"{path}: {exc}") from exc
    return parse_policy(raw, text=text, path=path)


def load_policies(root: Path | None = None) -> dict[str, Policy]:
    """Every ``*/policy.yaml`` under ``root`` (the shipped examples by default), by tenant."""
    from tandem.world.world import EXAMPLES_DIR

    root = root or EXAMPLES_DIR
    out: dict[str, Policy] = {}
    for path in sorted(root.glob(f"*/{POLICY_FILE}")):
        policy = load_policy(path)
        if policy.tenant_id in out:
            raise PolicyError(f"{path}: tenant {policy.tenant_id} already has a policy under {root}")
        out[policy.tenant_id] = policy
    return out


# -- versions and pins -------------------------------------------------------------------------------------


def pinned_version(release: str | None) -> str | None:
    """The policy version an interaction's ``release`` names: the whole string, or its ``policy:`` part when
    the release names several components (``"policy:bank-policy@3f1c0a2b9d7e signals:5e2a..."``)."""
    if not release:
        return None
    for token in release.split():
        if token.startswith("policy:"):
            return token[len("policy:") :]
    return release


class PolicyBook:
    """Every policy version seen, immutable, by tenant; one of them active for new interactions.

    With an archive directory, each version's text is kept there once written, so an interaction pinned to
    a version keeps its policy across restarts after the file changed.
    """

    def __init__(self, archive: Path | None = None) -> None:
        self.archive = archive
        self._versions: dict[tuple[str, str], Policy] = {}
        self._active: dict[str, str] = {}
        if archive is not None:
            archive.mkdir(parents=True, exist_ok=True)
            for path in sorted(archive.glob("*/*.yaml")):
                try:
                    self._remember(load_policy(path))
                except PolicyError as exc:
                    log.warning("archived policy %s is unreadable: %s", path, exc)

    def add(self, policy: Policy, *, activate: bool = True) -> Policy:
        self._remember(policy)
        if self.archive is not None and policy.text:
            folder = self.archive / policy.tenant_id
            folder.mkdir(parents=True, exist_ok=True)
            target = folder / f"{policy.version.replace('/', '_')}.yaml"
            if not target.exists():
                tmp = target.with_suffix(".tmp")
                tmp.write_text(policy.text)
                tmp.replace(target)
        if activate:
            self._active[policy.tenant_id] = policy.version
        return policy

    def _remember(self, policy: Policy) -> None:
        key = (policy.tenant_id, policy.version)
        held = self._versions.get(key)
        if held is not None and held.text != policy.text:
            raise PolicyError(f"policy {policy.version} of {policy.tenant_id} already exists with other content")
        # An archived copy carries no source path of its own: keep the one loaded from the release's files.
        if held is None or (policy.servers is not None and held.servers is None):
            self._versions[key] = policy

    def activate(self, tenant_id: str, version: str) -> Policy:
        """Make a version this book holds the one new interactions of the tenant are pinned to."""
        policy = self._versions.get((tenant_id, version))
        if policy is None:
            raise PolicyError(f"tenant {tenant_id} has no policy version {version}")
        self._active[tenant_id] = version
        return policy

    def active(self, tenant_id: str) -> Policy | None:
        version = self._active.get(tenant_id)
        return None if version is None else self._versions[(tenant_id, version)]

    def get(self, tenant_id: str, version: str) -> Policy | None:
        return self._versions.get((tenant_id, version))

    def resolve(self, tenant_id: str, release: str | None) -> Policy | None:
        """The policy an interaction is pinned to; the active one when it was started without a pin."""
        version = pinned_version(release)
        return self.active(tenant_id) if version is None else self.get(tenant_id, version)

    def versions(self, tenant_id: str) -> Iterator[Policy]:
        return (p for (t, _), p in self._versions.items() if t == tenant_id)

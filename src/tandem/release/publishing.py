"""Publishing policy while the deployment runs: immutable versions, activated under a precondition.

The policy file shipped with a tenant (``policy.yaml`` beside its ``world.yaml``) is *deployed* at start. An
admin may then *publish* another policy text (``POST /v1/releases``): it is checked as a file would be, kept
as an immutable version named by the digest of its text, and changes nothing yet. *Activating* a version
(``POST /v1/releases/{id}/activate``) makes it the one new interactions are pinned to; it needs the active
release's ETag in ``If-Match``, so two admins working from the same state cannot overwrite each other's
activation unseen. Interactions already running keep the version they were pinned to, so a conversation
never changes rules halfway.

What may change without a deploy is what people decide: who may serve which intent, each tool's autonomy,
grants, limits and proposers, approval expiry, escalations. What the running processes were built from may
not: the MCP servers, each tool's server, MCP tool, contract pin and timeout, and the data-scope file; a
published text that changes them is refused with the difference named.

Across restarts: every version's text is archived under ``<folder>/<tenant>/`` (``PolicyBook``), beside
``active.json`` (which version is active, and which file version was deployed when it was activated) and
``history.jsonl`` (who deployed, published and activated what, when). A restart with the same file keeps
the activated version; a deploy of a changed file makes the new file active, as a deploy means to.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml

from tandem.release.policy import Policy, PolicyBook, PolicyError, parse_policy

log = logging.getLogger(__name__)

RELEASE_PREFIX = "policy:"
MAX_POLICY_BYTES = 60 * 1024  # within the API's 64 KB body, with room for the JSON around it


class PublishError(ValueError):
    """A publication or activation refused; ``code`` is the API's error code."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True, slots=True)
class Record:
    """One line of a tenant's release history."""

    event: str  # deployed, published, activated
    version: str
    by: str
    at: str

    def to_api(self) -> dict[str, str]:
        return {"event": self.event, "version": self.version, "by": self.by, "at": self.at}


def release_id(policy: Policy) -> str:
    """The release an interaction is pinned to, as ``Interaction.release`` carries it."""
    return f"{RELEASE_PREFIX}{policy.version}"


def etag(policy: Policy) -> str:
    return f'"{release_id(policy)}"'


class Publisher:
    """Each tenant's deployed policy, published versions and the active one, over a ``PolicyBook``."""

    def __init__(self, book: PolicyBook, now: Callable[[], datetime], folder: Path | None = None) -> None:
        self.book = book
        self.now = now
        self.folder = folder if folder is not None else book.archive
        self._deployed: dict[str, Policy] = {}
        # Publishing runs on the API's threads as well as its event loop: one check-then-set at a time.
        self._lock = threading.Lock()

    # -- at start ------------------------------------------------------------------------------------
    def deploy(self, policy: Policy) -> Policy:
        """The tenant's policy file, at start: active, unless a version activated since this very file was
        deployed is on record, which stays active."""
        tenant_id = policy.tenant_id
        self.book.add(policy, activate=False)
        self._deployed[tenant_id] = policy
        state = self._state(tenant_id)
        kept = state.get("active") if state.get("deployed") == policy.version else None
        if isinstance(kept, str) and self.book.get(tenant_id, kept) is not None:
            self.book.activate(tenant_id, kept)
            return policy
        if state.get("deployed") != policy.version:
            self._append(tenant_id, Record("deployed", policy.version, "deploy", self._stamp()))
        self.book.activate(tenant_id, policy.version)
        self._save_state(tenant_id, policy.version, policy.version)
        return policy

    # -- reading -------------------------------------------------------------------------------------
    def deployed(self, tenant_id: str) -> Policy | None:
        return self._deployed.get(tenant_id)

    def active(self, tenant_id: str) -> Policy | None:
        return self.book.active(tenant_id)

    def find(self, tenant_id: str, ident: str) -> Policy | None:
        """A version by its release id (``policy:name@digest``) or its policy version (``name@digest``)."""
        return self.book.get(tenant_id, ident.removeprefix(RELEASE_PREFIX))

    def history(self, tenant_id: str) -> list[Record]:
        path = self._path(tenant_id, "history.jsonl")
        if path is None or not path.exists():
            return []
        records = []
        for line in path.read_text().splitlines():
            try:
                raw = json.loads(line)
                records.append(Record(str(raw["event"]), str(raw["version"]), str(raw["by"]), str(raw["at"])))
            except (ValueError, KeyError, TypeError):
                log.warning("release history of %s: unreadable line skipped", tenant_id)
        return records

    # -- changing ------------------------------------------------------------------------------------
    def publish(self, tenant_id: str, text: str, by: str) -> tuple[Policy, bool]:
        """Check ``text`` and keep it as a version (not active yet): (the version, whether it is new). The same
        text published twice is the same version, and publishing it again changes nothing."""
        deployed = self._deployed.get(tenant_id)
        if deployed is None:
            raise PublishError("publishing_unavailable", f"tenant {tenant_id} has no deployed policy to publish over")
        if len(text.encode()) > MAX_POLICY_BYTES:
            raise PublishError("invalid_policy", f"the policy text is over {MAX_POLICY_BYTES // 1024} KiB")
        try:
            raw = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise PublishError("invalid_policy", f"the policy is not valid YAML: {exc}") from exc
        try:
            # Relative paths (servers, data_scopes) resolve as they do for the deployed file.
            policy = parse_policy(raw, text=text, path=deployed.path)
        except PolicyError as exc:
            raise PublishError("invalid_policy", str(exc)) from exc
        if policy.tenant_id != tenant_id:
            raise PublishError(
                "invalid_policy",
                f"the policy names tenant {policy.tenant_id}; publish it for that tenant, not for {tenant_id}",
            )
        problems = fixed_parts_changed(deployed, policy)
        if problems:
            raise PublishError(
                "invalid_policy",
                "a published policy may change who decides and how, not what the deployment runs (that needs a "
                "deploy): " + "; ".join(problems),
            )
        with self._lock:
            new = self.book.get(tenant_id, policy.version) is None
            if new:
                self.book.add(policy, activate=False)
                self._append(tenant_id, Record("published", policy.version, by, self._stamp()))
        return self.book.get(tenant_id, policy.version) or policy, new

    def activate(self, tenant_id: str, ident: str, by: str, if_match: str | None) -> Policy:
        """Make a version the active one, if ``if_match`` is the active release's ETag."""
        target = self.find(tenant_id, ident)
        if target is None:
            raise PublishError("not_found", f"tenant {tenant_id} has no release {ident}")
        with self._lock:
            current = self.book.active(tenant_id)
            if if_match is None:
                raise PublishError(
                    "precondition_required",
                    "activation needs If-Match: the active release's ETag (GET /v1/release), so that nobody "
                    "else's activation is overwritten unseen",
                )
            tags = {t.strip() for t in if_match.split(",")}
            if current is None or not ({etag(current), "*"} & tags):
                now_active = etag(current) if current is not None else "none"
                raise PublishError(
                    "precondition_failed", f"the active release is {now_active}, not {if_match}: read it again first"
                )
            if current.version != target.version:
                self.book.activate(tenant_id, target.version)
                deployed = self._deployed[tenant_id]
                self._save_state(tenant_id, deployed.version, target.version)
                self._append(tenant_id, Record("activated", target.version, by, self._stamp()))
        return target

    # -- files -----------------------------------------------------------------------------------------
    def _path(self, tenant_id: str, name: str) -> Path | None:
        return None if self.folder is None else self.folder / tenant_id / name

    def _state(self, tenant_id: str) -> dict[str, Any]:
        path = self._path(tenant_id, "active.json")
        if path is None or not path.exists():
            return {}
        try:
            raw = json.loads(path.read_text())
        except ValueError:
            log.warning("release state of %s is unreadable: the deployed policy becomes active", tenant_id)
            return {}
        return raw if isinstance(raw, dict) else {}

    def _save_state(self, tenant_id: str, deployed: str, active: str) -> None:
        path = self._path(tenant_id, "active.json")
        if path is None:
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps({"deployed": deployed, "active": active}))
        tmp.replace(path)  # atomic: a restart reads the old state or the new one, never half

    def _append(self, tenant_id: str, record: Record) -> None:
        path = self._path(tenant_id, "history.jsonl")
        if path is None:
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("a") as f:
            f.write(json.dumps(record.to_api()) + "\n")

    def _stamp(self) -> str:
        return self.now().isoformat()


def fixed_parts_changed(deployed: Policy, published: Policy) -> list[str]:
    """What ``published`` changes of what the running deployment was built from (servers, tool bindings,
    contract pins, timeouts, the data-scope file); empty when it changes none of it."""
    problems: list[str] = []
    if published.servers != deployed.servers:
        problems.append(f"servers: {published.servers} instead of {deployed.servers}")
    if published.data_scopes != deployed.data_scopes:
        problems.append(f"data_scopes: {published.data_scopes} instead of {deployed.data_scopes}")
    added = sorted(set(published.tools) - set(deployed.tools))
    removed = sorted(set(deployed.tools) - set(published.tools))
    if added:
        problems.append(f"tools added: {', '.join(added)}")
    if removed:
        problems.append(f"tools removed: {', '.join(removed)}")
    for name in sorted(set(published.tools) & set(deployed.tools)):
        new, old = published.tools[name], deployed.tools[name]
        for part in ("server", "mcp_tool", "schema_sha256", "timeout_s"):
            if getattr(new, part) != getattr(old, part):
                problems.append(f"tools.{name}.{part}: {getattr(new, part)} instead of {getattr(old, part)}")
    return problems

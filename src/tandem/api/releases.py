"""Releases: the active one, every version, publishing policy and activating it (``tandem.release.publishing``).

``GET /v1/release`` answers with the active release and its ETag; ``POST /v1/releases`` publishes a policy text
as an immutable version; ``POST /v1/releases/{id}/activate`` makes a version active for new interactions,
under ``If-Match`` with the active release's ETag. Interactions already running keep the release they were
pinned to. Reading is for supervisors and admins, changing for admins.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Header, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from tandem import __version__
from tandem.actions.runtime import Actions
from tandem.api.auth import Authenticated, require, runtime_of, tenant_of
from tandem.api.errors import ApiError, not_found
from tandem.api.tokens import Principal
from tandem.release.policy import Policy
from tandem.release.publishing import MAX_POLICY_BYTES, Publisher, PublishError, Record, etag, release_id

router = APIRouter(tags=["releases"])

_STATUS = {
    "invalid_policy": 422,
    "not_found": 404,
    "precondition_required": 428,
    "precondition_failed": 412,
    "publishing_unavailable": 409,
}


class PublishPolicy(BaseModel):
    model_config = ConfigDict(extra="forbid")
    policy: str = Field(
        min_length=1,
        max_length=MAX_POLICY_BYTES,
        description="The policy file's text (YAML), as `tandem policy check` reads it",
    )


def _publisher(request: Request) -> Publisher | None:
    actions: Actions | None = runtime_of(request).actions
    return None if actions is None else actions.publisher


def _changing(request: Request, principal: Principal, doing: str) -> tuple[str, Publisher]:
    """The tenant and its publisher, for an admin changing releases; 409 when there is nothing to change."""
    require(principal, "admin", doing=doing)
    tenant_id = tenant_of(request, principal)
    publisher = _publisher(request)
    if publisher is None:
        raise ApiError(409, "publishing_unavailable", f"this deployment runs without policies: it cannot {doing}")
    return tenant_id, publisher


def _failure(exc: PublishError) -> ApiError:
    return ApiError(_STATUS.get(exc.code, 409), exc.code, str(exc))


def _view(publisher: Publisher, tenant_id: str, policy: Policy, history: list[Record]) -> dict[str, Any]:
    active = publisher.active(tenant_id)
    deployed = publisher.deployed(tenant_id)
    published = next((r for r in history if r.version == policy.version and r.event == "published"), None)
    activated = [r for r in history if r.version == policy.version and r.event in ("activated", "deployed")]
    return {
        "id": release_id(policy),
        "policy": {"name": policy.name, "version": policy.version, "digest": policy.digest},
        "active": active is not None and active.version == policy.version,
        "deployed": deployed is not None and deployed.version == policy.version,
        "published": published.to_api() if published else None,
        "last_activated": activated[-1].to_api() if activated else None,
    }


@router.get("/v1/release", summary="The active release, with its ETag (supervisor, admin)")
async def active_release(request: Request, response: Response, principal: Authenticated) -> dict[str, Any]:
    require(principal, "admin", "supervisor", doing="read the release")
    tenant_id = tenant_of(request, principal)
    publisher = _publisher(request)
    active = publisher.active(tenant_id) if publisher is not None else None
    if publisher is None or active is None:
        # No policy deployed (a deployment without the action layer): every interaction runs the code's
        # built-in behaviour, which this names honestly instead of inventing a release.
        return {"id": None, "version": __version__, "kind": "built-in", "publishing": False}
    response.headers["ETag"] = etag(active)
    view = _view(publisher, tenant_id, active, publisher.history(tenant_id))
    return {**view, "version": __version__, "kind": "policy", "publishing": True}


@router.get("/v1/releases", summary="Every release version of the tenant, and its history (supervisor, admin)")
async def list_releases(request: Request, principal: Authenticated) -> dict[str, Any]:
    require(principal, "admin", "supervisor", doing="read releases")
    tenant_id = tenant_of(request, principal)
    publisher = _publisher(request)
    if publisher is None:
        return {"items": [], "history": []}
    history = publisher.history(tenant_id)
    order = {r.version: i for i, r in enumerate(history)}  # first mention, by the history's order
    versions = sorted(publisher.book.versions(tenant_id), key=lambda p: order.get(p.version, -1))
    return {
        "items": [_view(publisher, tenant_id, p, history) for p in versions],
        "history": [r.to_api() for r in history],
    }


@router.get("/v1/releases/{release}", summary="One release version, with its policy text (admin)")
async def get_release(release: str, request: Request, principal: Authenticated) -> dict[str, Any]:
    require(principal, "admin", doing="read a release's policy text")
    tenant_id = tenant_of(request, principal)
    publisher = _publisher(request)
    policy = publisher.find(tenant_id, release) if publisher is not None else None
    if publisher is None or policy is None:
        raise not_found(f"tenant {tenant_id} has no release {release}")
    return {**_view(publisher, tenant_id, policy, publisher.history(tenant_id)), "text": policy.text}


@router.post("/v1/releases", status_code=201, summary="Publish a policy as a new release version (admin)")
async def publish(
    body: PublishPolicy, request: Request, response: Response, principal: Authenticated
) -> dict[str, Any]:
    tenant_id, publisher = _changing(request, principal, "publish a release")
    try:
        policy, new = publisher.publish(tenant_id, body.policy, principal.id)
    except PublishError as exc:
        raise _failure(exc) from exc
    if not new:
        response.status_code = 200  # the same text is the same immutable version: nothing was created
    response.headers["Location"] = f"/v1/releases/{release_id(policy)}"
    return _view(publisher, tenant_id, policy, publisher.history(tenant_id))


@router.post("/v1/releases/{release}/activate", summary="Make a release active for new interactions (admin)")
async def activate(
    release: str,
    request: Request,
    response: Response,
    principal: Authenticated,
    if_match: Annotated[str | None, Header(alias="If-Match")] = None,
) -> dict[str, Any]:
    tenant_id, publisher = _changing(request, principal, "activate a release")
    try:
        policy = publisher.activate(tenant_id, release, principal.id, if_match)
    except PublishError as exc:
        raise _failure(exc) from exc
    response.headers["ETag"] = etag(policy)
    return _view(publisher, tenant_id, policy, publisher.history(tenant_id))

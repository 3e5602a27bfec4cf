"""One error shape for every failure: ``{"error": {"code", "message", "details"?, "request_id"}}``.

Domain exceptions (a closed interaction, a floor not held, an expired offer) map to statuses here, so the
routers can let them rise; validation errors say which field and why; nothing ever shows a stack trace.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from tandem.actions import approvals
from tandem.case.events import InvalidEventData, UnknownEventType
from tandem.conductor import ConductorError, FloorNotHeld, InteractionClosed
from tandem.routing.offers import AlreadyDecided, CapacityFull, OfferError, OfferExpired, OfferNotFound
from tandem.store.protocol import InteractionNotFound, VersionConflict
from tandem.world.world import WorldError

log = logging.getLogger(__name__)

STATUS_CODES = {
    400: "invalid_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    410: "gone",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "invalid_request",
    429: "rate_limited",
    503: "unavailable",
}


class ApiError(Exception):
    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        details: Any = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.details = status, code, message, details
        self.headers = dict(headers or {})


def unauthorized(message: str) -> ApiError:
    return ApiError(401, "unauthorized", message, headers={"WWW-Authenticate": "Bearer"})


def forbidden(message: str) -> ApiError:
    return ApiError(403, "forbidden", message)


def not_found(message: str) -> ApiError:
    return ApiError(404, "not_found", message)


def invalid(message: str, details: Any = None, status: int = 422) -> ApiError:
    return ApiError(status, "invalid_request", message, details)


def request_id_of(request: Request) -> str:
    return str(getattr(request.state, "request_id", "") or "")


def error_body(code: str, message: str, request_id: str, details: Any = None) -> dict[str, Any]:
    error: dict[str, Any] = {"code": code, "message": message}
    if details is not None:
        error["details"] = details
    error["request_id"] = request_id
    return {"error": error}


def error_response(
    request: Request,
    status: int,
    code: str,
    message: str,
    details: Any = None,
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    body = error_body(code, message, request_id_of(request), details)
    return JSONResponse(body, status_code=status, headers=dict(headers or {}))


# Domain errors the routers let rise: (status, code). The first matching class wins, so subclasses first.
_DOMAIN: tuple[tuple[type[Exception], int, str], ...] = (
    (approvals.ActionNotFound, 404, "not_found"),
    (approvals.AlreadyDecided, 409, "already_decided"),
    (approvals.ApprovalExpired, 410, "approval_expired"),
    (approvals.NotAllowed, 403, "forbidden"),
    (approvals.DigestMismatch, 409, "version_conflict"),
    (InteractionClosed, 409, "interaction_closed"),
    (FloorNotHeld, 409, "floor_not_held"),
    (ConductorError, 409, "version_conflict"),
    (VersionConflict, 409, "version_conflict"),
    (InteractionNotFound, 404, "not_found"),
    (OfferNotFound, 404, "not_found"),
    (OfferExpired, 410, "offer_expired"),
    (AlreadyDecided, 409, "already_decided"),
    (CapacityFull, 409, "capacity_full"),
    (OfferError, 409, "conflict"),
    (WorldError, 400, "invalid_request"),  # a tenant this deployment does not serve (any more)
    (InvalidEventData, 422, "invalid_request"),
    (UnknownEventType, 422, "invalid_request"),
)


_NOT_AN_OBJECT = frozenset({"model_attributes_type", "model_type", "dict_type"})


def _validation_message(error: Mapping[str, Any]) -> str:
    where = ".".join(str(part) for part in error.get("loc", ()) if part != "body") or "body"
    ctx = error.get("ctx") or {}
    match error.get("type"):
        case "string_too_long":
            return f"{where} is too long: at most {ctx.get('max_length')} characters"
        case "extra_forbidden":
            return f"unknown field {where}"
        case "missing":
            return f"{where} is required"
        case _:
            return f"{where}: {error.get('msg', 'is invalid')}"


def install(app: FastAPI) -> None:
    async def api_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, ApiError)
        return error_response(request, exc.status, exc.code, exc.message, exc.details, exc.headers)

    async def validation_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        errors = list(exc.errors())
        if any(e.get("type") == "json_invalid" for e in errors):
            return error_response(request, 400, "invalid_request", "the body is not valid JSON")
        if any(tuple(e.get("loc", ())) == ("body",) and e.get("type") in _NOT_AN_OBJECT for e in errors):
            message = "the body must be a JSON object (Content-Type: application/json)"
            return error_response(request, 400, "invalid_request", message)
        details = [
            {
                "field": ".".join(str(p) for p in e.get("loc", ())),
                "message": _validation_message(e),
                "type": e.get("type"),
            }
            for e in errors
        ]
        message = "; ".join(d["message"] for d in details) or "the request is invalid"
        return error_response(request, 422, "invalid_request", message, details)

    async def http_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        code = STATUS_CODES.get(exc.status_code, "http_error")
        message = str(exc.detail) if exc.detail else code.replace("_", " ")
        if exc.status_code == 404:
            message = f"no such endpoint or resource: {request.method} {request.url.path}"
        return error_response(request, exc.status_code, code, message, headers=exc.headers)

    async def domain_error(request: Request, exc: Exception) -> JSONResponse:
        for kind, status, code in _DOMAIN:
            if isinstance(exc, kind):
                return error_response(request, status, code, str(exc))
        raise exc

    app.add_exception_handler(ApiError, api_error)
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(StarletteHTTPException, http_error)
    for kind, _status, _code in _DOMAIN:
        app.add_exception_handler(kind, domain_error)

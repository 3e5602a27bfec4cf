"""/v1/channels: tokens for trusted integrations (a voice gateway, an SMS provider, a logged-in app),
each scoped to the channel kinds it speaks for. Beside the contract: the contract has channel tokens but
no way to make one."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from tandem.api.auth import Authenticated, require, runtime_of, tenant_of
from tandem.api.schemas import ChannelIn
from tandem.api.tokens import Principal
from tandem.case.envelope import new_id

router = APIRouter(prefix="/v1/channels", tags=["operations"])


@router.post("", status_code=201, summary="Create a channel token scoped to channel kinds (admin)")
async def create_channel(body: ChannelIn, request: Request, principal: Authenticated) -> dict[str, Any]:
    require(principal, "admin", doing="create channel tokens")
    runtime = runtime_of(request)
    tenant_id = tenant_of(request, principal)
    channel_id = new_id("chn")
    kinds = sorted(set(body.kinds))
    token = runtime.tokens.issue(Principal("channel", channel_id, tenant_id, frozenset(kinds)))
    return {"id": channel_id, "kinds": kinds, "tenant": tenant_id, "token": token}

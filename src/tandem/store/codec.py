"""How events become rows and back: JSON, with personal fields sealed under the customer's key.

Each personal value is encrypted with AES-GCM, bound to its event id, so a sealed value cannot be moved
to another event. Once the customer's key is destroyed the value reads as ``ERASED``.
"""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from tandem.case.envelope import Actor, Event, PendingEvent
from tandem.case.events import spec_of

ERASED = "[erased]"
_SEALED = "$sealed"


def new_key() -> bytes:
    return AESGCM.generate_key(bit_length=256)


def seal(key: bytes, aad: str, value: Any) -> dict[str, str]:
    nonce = os.urandom(12)
    blob = AESGCM(key).encrypt(nonce, json.dumps(value).encode(), aad.encode())
    return {_SEALED: base64.b64encode(nonce + blob).decode()}


def unseal(key: bytes | None, aad: str, sealed: Mapping[str, str]) -> Any:
    if key is None:
        return ERASED
    raw = base64.b64decode(sealed[_SEALED])
    try:
        return json.loads(AESGCM(key).decrypt(raw[:12], raw[12:], aad.encode()))
    except InvalidTag:
        return ERASED


def encode_data(event: PendingEvent, key: bytes | None) -> str:
    personal = spec_of(event.type).personal
    data = dict(event.data)
    for name in personal & data.keys():
        if data[name] is None:
            continue
        if key is None:
            # No key means the customer was erased: refuse to write their data in the clear.
            data[name] = ERASED
        else:
            data[name] = seal(key, event.event_id, data[name])
    return json.dumps(data, separators=(",", ":"), default=str)


def decode_data(event_type: str, event_id: str, raw: str, key: bytes | None) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(raw)
    for name in spec_of(event_type).personal & data.keys():
        value = data[name]
        if isinstance(value, dict) and _SEALED in value:
            data[name] = unseal(key, event_id, value)
    return data


def encode_actor(actor: Actor) -> str:
    return json.dumps(actor.to_dict(), separators=(",", ":"))


def build_event(
    *,
    event_id: str,
    tenant_id: str,
    interaction_id: str,
    seq: int,
    position: int,
    type: str,
    schema_version: int,
    occurred_at: str | datetime,
    recorded_at: str | datetime,
    actor: str,
    leg_id: str | None,
    causation_id: str | None,
    correlation_id: str | None,
    floor_epoch: int,
    data: str,
    key: bytes | None,
) -> Event:
    return Event(
        event_id=event_id,
        tenant_id=tenant_id,
        interaction_id=interaction_id,
        seq=seq,
        position=position,
        type=type,
        schema_version=schema_version,
        occurred_at=occurred_at if isinstance(occurred_at, datetime) else datetime.fromisoformat(occurred_at),
        recorded_at=recorded_at if isinstance(recorded_at, datetime) else datetime.fromisoformat(recorded_at),
        actor=Actor.from_dict(json.loads(actor)),
        leg_id=leg_id,
        causation_id=causation_id,
        correlation_id=correlation_id,
        floor_epoch=floor_epoch,
        data=decode_data(type, event_id, data, key),
    )


def seal_snapshot(key: bytes | None, interaction_id: str, state: dict[str, Any]) -> str | None:
    """Snapshots hold decrypted facts, so they are sealed whole; without a key none is written."""
    if key is None:
        return None
    return json.dumps(seal(key, f"snapshot:{interaction_id}", state))


def unseal_snapshot(key: bytes | None, interaction_id: str, raw: str) -> dict[str, Any] | None:
    value = unseal(key, f"snapshot:{interaction_id}", json.loads(raw))
    return None if value == ERASED else dict(value)

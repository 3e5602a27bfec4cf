"""A scenario's own release: the tenant's active policy with the scenario's changes laid over it, published and
activated through the API before the journey starts, as an admin changing policy on a running deployment does.

The change is an overlay rather than a whole policy file, so a scenario states only what it changes (one
grant's limit, say) and follows the shipped policy in everything else.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import yaml

from tandem.sim.client import TandemApi


@dataclass(frozen=True, slots=True)
class Published:
    shipped: str  # the release active before the scenario published its own
    published: str


def overlay(base: Mapping[str, Any], change: Mapping[str, Any]) -> dict[str, Any]:
    """``base`` with ``change`` laid over it: mappings merge key by key; anything else (a list, a value)
    replaces what was there; a key set to null is removed."""
    merged = dict(base)
    for key, value in change.items():
        if value is None:
            merged.pop(key, None)
        elif isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = overlay(merged[key], value)
        else:
            merged[key] = value
    return merged


async def publish_overlay(api: TandemApi, tenant: str, change: Mapping[str, Any], scenario: str) -> Published:
    """Read the active policy, lay ``change`` over it, publish the result and activate it under ``If-Match``."""
    active, tag = await api.active_release(tenant)
    if tag is None or not active.get("id"):
        raise ValueError(f"tenant {tenant} runs without a policy release: there is nothing to change")
    shipped = str(active["id"])
    base = yaml.safe_load(await api.release_text(tenant, shipped))
    text = f"# {scenario}: the shipped policy with the scenario's changes\n" + yaml.safe_dump(
        overlay(base, change), sort_keys=False, allow_unicode=True
    )
    published = await api.publish_policy(tenant, text)
    await api.activate_release(tenant, published, tag)
    return Published(shipped, published)

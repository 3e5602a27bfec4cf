from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from tests.planner.support import Desk, make_desk


@pytest.fixture
async def desks(tmp_path: Path) -> AsyncIterator[Callable[..., Desk]]:
    """Make a desk (one per test is the rule; each gets its own directory); closed at the end."""
    made: list[Desk] = []

    def make(llm: Any, **kw: Any) -> Desk:
        folder = tmp_path / f"desk{len(made)}"
        folder.mkdir()
        desk = make_desk(folder, llm, **kw)
        made.append(desk)
        return desk

    yield make
    for desk in made:
        await desk.store.close()

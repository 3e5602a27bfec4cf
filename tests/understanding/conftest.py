from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tandem.understanding.classifier import ClassifierUnderstander
from tandem.understanding.examples import Example, read_csv
from tandem.world.world import World

DATA = Path(__file__).parent / "data"


@pytest.fixture(scope="session")
def nlu_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("nlu-cache")


@pytest.fixture(scope="session")
def understander(nlu_cache: Path) -> Iterator[ClassifierUnderstander]:
    """The shipped examples' models with n-gram features only: the same on every machine, with or
    without the minilm extra."""
    u = ClassifierUnderstander(World.load(), cache=nlu_cache, use_embeddings=False)
    u.warm()
    yield u


def held_out(kind: str) -> list[Example]:
    return read_csv(DATA / f"{kind}_test.csv")

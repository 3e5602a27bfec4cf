"""The optional MiniLM features: only where the minilm extra is installed."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest

from tandem.case.interaction import Interaction
from tandem.understanding import embeddings
from tandem.understanding.classifier import ClassifierUnderstander
from tandem.world.world import World

pytestmark = pytest.mark.skipif(not embeddings.available(), reason="the minilm extra is not installed")


def test_with_minilm_the_understander_still_trains_from_the_examples_and_answers(tmp_path: Path) -> None:
    u = ClassifierUnderstander(World.load(), cache=tmp_path, use_embeddings=True)
    case = Interaction("int-1", tenant_id="bank", customer_id="C-1", status="open")
    result = u.understand("the shop machine keeps refusing my card", case, datetime(2026, 12, 3))
    assert result.intents[0][0] == "card_declined"
    assert u.embedder is not None
    vectors = u.embedder.encode(["hello", "hi there"])
    assert vectors.shape == (2, embeddings.DIMENSIONS)
    # A second understander finds the model (trained with embeddings) in the cache.
    again = ClassifierUnderstander(World.load(), cache=tmp_path, use_embeddings=True)
    again.embedder = u.embedder  # the loaded MiniLM, rather than loading it a second time
    again.model_for("bank")
    assert len(list((tmp_path / "nlu").glob("*.pkl"))) == 1

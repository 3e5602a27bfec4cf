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


def test_the_traced_int8_graph_gives_the_same_vectors_as_the_eager_model() -> None:
    import numpy as np

    minilm = embeddings.MiniLM()
    texts = ["hi", "", "my card was declined at the shop yesterday and I do not know why", "card " * 400]
    traced = minilm.encode(texts)
    assert minilm._graph is not None, "tracing failed: live turns would run the slower eager path"
    minilm._graph = None
    eager = minilm.encode(texts)
    np.testing.assert_allclose(traced, eager, atol=1e-5)
    assert np.allclose(np.linalg.norm(traced, axis=1), 1.0, atol=1e-5)

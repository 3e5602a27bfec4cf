"""The intent model's live scoring path, against the classifier it was trained as."""

from __future__ import annotations

import hashlib
import pickle

import numpy as np
import numpy.typing as npt
import pytest

from tandem.understanding.examples import read_intents_dir
from tandem.understanding.model import IntentModel, Recipe, _margins
from tandem.world.world import EXAMPLES_DIR
from tests.understanding.conftest import held_out


class HashedEmbedder:
    """Fixed unit vectors derived from the text's digest: deterministic, and a real dense block beside the
    n-grams, so the embedding part of the scoring path is exercised without the minilm extra."""

    name = "hashed-test-vectors"

    def encode(self, texts: list[str]) -> npt.NDArray[np.float32]:
        rows = []
        for text in texts:
            seed = int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big")
            v = np.random.default_rng(seed).normal(size=32)
            rows.append(v / np.linalg.norm(v))
        return np.asarray(rows, dtype=np.float32).reshape(len(texts), 32)


@pytest.mark.parametrize("with_embeddings", [False, True])
def test_live_scores_equal_the_classifiers_own_margins_on_the_stacked_features(with_embeddings: bool) -> None:
    train = read_intents_dir(EXAMPLES_DIR / "bank" / "intents")
    embedder = HashedEmbedder() if with_embeddings else None
    recipe = Recipe(embedding_weight=2.0)
    model = IntentModel.train(train, recipe=recipe, embedder=embedder)
    texts = [t for t, _ in held_out("bank")]
    emb = embedder.encode(texts).astype(np.float64) if embedder is not None else None

    live = model._live_margins(texts, emb)
    stacked = _margins(model.vectorizers, model.classifier, texts, emb, recipe, len(model.labels))

    np.testing.assert_allclose(live, stacked, rtol=1e-9, atol=1e-9)


def test_a_pickled_model_predicts_as_before_and_rebuilds_its_split_weights() -> None:
    train = read_intents_dir(EXAMPLES_DIR / "bank" / "intents")
    model = IntentModel.train(train)
    texts = [t for t, _ in held_out("bank")][:20]
    before = model.predict(texts)
    assert model._blocks is not None

    restored = pickle.loads(pickle.dumps(model))

    assert restored._blocks is None
    assert restored.predict(texts) == before


def test_two_intents_score_like_the_classifiers_single_margin() -> None:
    train = [(f"my card was declined at shop {i}", "card_declined") for i in range(6)]
    train += [(f"what is my balance on account {i}", "balance") for i in range(6)]
    model = IntentModel.train(train)
    texts = ["declined card", "balance please"]

    live = model._live_margins(texts, None)
    stacked = _margins(model.vectorizers, model.classifier, texts, None, model.recipe, len(model.labels))

    np.testing.assert_allclose(live, stacked, rtol=1e-9, atol=1e-9)
    assert [p.label for p in model.predict(texts)] == ["card_declined", "balance"]

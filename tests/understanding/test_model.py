"""The intent model's live scoring path, against the classifier it was trained as."""

from __future__ import annotations

import hashlib
import pickle

import numpy as np
import numpy.typing as npt
import pytest

from tandem.understanding.examples import OUT_OF_SCOPE, read_intents_dir
from tandem.understanding.model import IntentModel, Recipe, _margins, softmax, tune_threshold
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


def test_each_intents_nearest_example_similarity_is_the_best_cosine_among_its_own_examples() -> None:
    train = read_intents_dir(EXAMPLES_DIR / "bank" / "intents")
    embedder = HashedEmbedder()
    model = IntentModel.train(train, recipe=Recipe(neighbour_weight=1.0), embedder=embedder)
    assert model.neighbours is not None
    in_scope_line = next(t for t, label in train if label != OUT_OF_SCOPE)
    texts = [*[t for t, _ in held_out("bank")][:15], in_scope_line]
    emb = embedder.encode(texts).astype(np.float64)

    per_label, nearest = model.neighbours.similarity(emb)

    train_emb = embedder.encode([t for t, _ in train]).astype(np.float64)
    for i, label in enumerate(model.labels):
        rows = [j for j, (_, lab) in enumerate(train) if lab == label]
        np.testing.assert_allclose(per_label[:, i], (emb @ train_emb[rows].T).max(axis=1), atol=1e-5)
    inside = [i for i, label in enumerate(model.labels) if label != OUT_OF_SCOPE]
    np.testing.assert_allclose(nearest, per_label[:, inside].max(axis=1))
    assert nearest[-1] == pytest.approx(1.0, abs=1e-5)  # a training line is its own nearest example


def test_the_nearest_example_scores_are_added_to_the_linear_ones_by_the_recipes_weight() -> None:
    train = read_intents_dir(EXAMPLES_DIR / "bank" / "intents")
    embedder = HashedEmbedder()
    texts = [t for t, _ in held_out("bank")][:10]
    emb = embedder.encode(texts).astype(np.float64)
    model = IntentModel.train(train, recipe=Recipe(neighbour_weight=2.0), embedder=embedder)
    assert model.neighbours is not None

    probs = model.probabilities(texts)

    linear = model._live_margins(texts, emb)
    expected = softmax((linear + 2.0 * model.neighbours.similarity(emb)[0]) / model.temperature)
    np.testing.assert_allclose(probs, expected, rtol=1e-9, atol=1e-9)


def test_the_threshold_counts_closeness_to_a_training_example_as_in_scope_evidence() -> None:
    # Two in-scope lines and two out-of-scope ones (label -1), equally confident: only the nearest
    # example's similarity tells them apart, and the threshold falls between them.
    probs = np.array([[0.6, 0.4], [0.6, 0.4], [0.6, 0.4], [0.6, 0.4]])
    y = [0, 1, -1, -1]
    nearest = np.array([0.9, 0.8, 0.3, 0.2])

    threshold = tune_threshold(probs, y, None, 1.0, nearest)

    evidence = probs.max(axis=1) + nearest
    assert list(evidence < threshold) == [False, False, True, True]
    assert tune_threshold(probs, y, None, 1.0) > 0.6  # without it, every line would be rejected alike


def test_a_pickled_model_with_embeddings_keeps_its_nearest_examples() -> None:
    train = read_intents_dir(EXAMPLES_DIR / "bank" / "intents")
    embedder = HashedEmbedder()
    model = IntentModel.train(train, embedder=embedder)
    texts = [t for t, _ in held_out("bank")][:20]
    before = model.predict(texts)

    restored = pickle.loads(pickle.dumps(model))

    assert restored.embedder is None  # never pickled: re-attached on load
    restored.embedder = embedder
    assert restored.predict(texts) == before


def test_out_of_scope_lines_kept_from_the_classifier_still_set_the_threshold() -> None:
    train = read_intents_dir(EXAMPLES_DIR / "bank" / "intents")
    left_out = [t for t, label in train if label == OUT_OF_SCOPE]
    assert len(left_out) >= 10

    model = IntentModel.train(train, recipe=Recipe(oos_class=False, oos_recall_floor=0.9))

    assert OUT_OF_SCOPE not in model.labels
    rejected = [p.label == OUT_OF_SCOPE for p in model.predict(left_out)]
    assert sum(rejected) >= 0.9 * len(left_out)  # the floor holds on the very lines that set the threshold

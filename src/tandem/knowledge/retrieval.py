"""Retrieval over help articles: BM25 over words, fused with MiniLM similarity where installed.

Lexical matching finds exact product names and terms ("Gold Saver", "PIN"); the embeddings find the same
need in other words ("my card got swallowed by the machine"). Reciprocal-rank fusion combines the two
rankings without having to calibrate one score against the other.
"""

from __future__ import annotations

import importlib
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tandem.knowledge.articles import Passage, read_articles

if TYPE_CHECKING:
    from tandem.understanding.embeddings import Embedder

_WORD = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")
_STOP = frozenset(
    {
        "a", "an", "and", "are", "as", "at", "be", "but", "by", "can", "do", "does", "for", "from", "have", "how",
        "i", "i'm", "if", "in", "is", "it", "its", "me", "my", "of", "on", "or", "our", "so", "that", "the",
        "their", "there", "they", "this", "to", "was", "we", "what", "when", "where", "which", "who", "why",
        "will", "with", "you", "your",
    }
)  # fmt: skip
RRF_K = 60
# BM25 over passages whose title counts ``TITLE_WEIGHT`` times against the body: titles name the product or
# procedure a passage is about ("Silver Rewards Card: ...", "Internal: Processing Credit Card Account Closures").
# Both values were chosen on half of the tau2 bank tasks (bench/knowledge.py: title weights 2, 4, 6, 12 and b
# 0.5, 0.75, 0.9); the weight matters most (recall@5 0.65 at 2, 0.69 at 12), b hardly at all.
TITLE_WEIGHT = 12
B = 0.5


@dataclass(frozen=True, slots=True)
class Hit:
    passage: Passage
    score: float


def tokens(text: str) -> list[str]:
    """Lower-cased words without stop words, with a light suffix stemmer (plurals, -ing, -ed)."""
    out = []
    for word in _WORD.findall(text.lower()):
        word = word.removesuffix("'s")
        if word in _STOP:
            continue
        out.append(_stem(word))
    return out


def _stem(word: str) -> str:
    if len(word) <= 4 or word.isdigit():
        return word
    for suffix in ("ing", "ed", "es", "s"):
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            if suffix == "s" and word.endswith("ss"):
                return word
            return word[: -len(suffix)]
    return word


class KnowledgeBase:
    def __init__(
        self,
        passages: Sequence[Passage],
        *,
        embedder: Embedder | None = None,
        k1: float = 1.2,
        b: float = B,
        title_weight: int = TITLE_WEIGHT,
    ):
        import numpy as np

        if not passages:
            raise ValueError("a knowledge base needs at least one passage")
        if title_weight < 1 or k1 <= 0 or not 0 <= b <= 1:
            raise ValueError(f"BM25 needs title_weight >= 1, k1 > 0 and 0 <= b <= 1, not {title_weight}, {k1}, {b}")
        self.passages = list(passages)
        self.embedder = embedder
        # The section heading counts twice, the title ``title_weight`` times: they say what the passage is about.
        docs = [tokens(" ".join([p.title] * title_weight + [p.section or ""] * 2 + [p.text])) for p in self.passages]
        vocab: dict[str, int] = {}
        rows, cols, vals = [], [], []
        for i, doc in enumerate(docs):
            counts: dict[int, int] = {}
            for tok in doc:
                j = vocab.setdefault(tok, len(vocab))
                counts[j] = counts.get(j, 0) + 1
            for j, c in counts.items():
                rows.append(i)
                cols.append(j)
                vals.append(c)
        sparse: Any = importlib.import_module("scipy.sparse")
        tf = sparse.csr_matrix((np.array(vals, dtype=np.float64), (rows, cols)), shape=(len(docs), len(vocab)))
        lengths = np.array([len(d) for d in docs], dtype=np.float64)
        df = np.bincount(cols, minlength=len(vocab)).astype(np.float64)
        n = len(docs)
        self._idf = np.log(1 + (n - df + 0.5) / (df + 0.5))
        # BM25 term weights precomputed per (passage, term): a query is then one sparse product.
        tf = tf.tocoo()
        norm = k1 * (1 - b + b * lengths[tf.row] / max(lengths.mean(), 1.0))
        weights = tf.data * (k1 + 1) / (tf.data + norm) * self._idf[tf.col]
        self._bm25 = sparse.csr_matrix((weights, (tf.row, tf.col)), shape=tf.shape).T.tocsr()  # terms x passages
        self._vocab = vocab
        self._dense = None
        if embedder is not None:
            self._dense = embedder.encode([f"{p.title}. {p.section or ''}. {p.text}" for p in self.passages])

    @classmethod
    def from_folder(cls, folder: Path, *, embedder: Embedder | None = None) -> KnowledgeBase:
        return cls(read_articles(folder), embedder=embedder)

    def _lexical(self, query: str) -> Any:
        import numpy as np

        ids = [self._vocab[t] for t in tokens(query) if t in self._vocab]
        if not ids:
            return np.zeros(len(self.passages))
        return np.asarray(self._bm25[ids].sum(axis=0)).ravel()

    def search(self, query: str, k: int = 5, *, by_source: bool = False) -> list[Hit]:
        """The best ``k`` passages (or, ``by_source``, the best passage of each of the best ``k`` articles)."""
        import numpy as np

        lexical = self._lexical(query)
        rankings = [np.argsort(-lexical, kind="stable")]
        if self._dense is not None and self.embedder is not None:
            q = self.embedder.encode([query])[0]
            rankings.append(np.argsort(-(self._dense @ q), kind="stable"))
        fused = np.zeros(len(self.passages))
        for ranking in rankings:
            fused[ranking] += 1.0 / (RRF_K + np.arange(1, len(ranking) + 1))
        if not lexical.any() and len(rankings) == 1:
            return []
        order = np.argsort(-fused, kind="stable")
        hits: list[Hit] = []
        seen: set[str] = set()
        for i in order:
            passage = self.passages[int(i)]
            if by_source:
                if passage.source in seen:
                    continue
                seen.add(passage.source)
            hits.append(Hit(passage, float(fused[i])))
            if len(hits) == k:
                break
        return hits

    def answer(self, query: str, *, min_overlap: float = 0.3) -> Hit | None:
        """The single best passage, or None when too little of the question is in it to be worth saying."""
        hits = self.search(query, 1)
        if not hits:
            return None
        asked = set(tokens(query))
        if not asked:
            return None
        passage = hits[0].passage
        found = set(tokens(f"{passage.title} {passage.section or ''} {passage.text}"))
        weight = {t: float(self._idf[self._vocab[t]]) if t in self._vocab else 0.0 for t in asked}
        total = sum(weight.values())
        covered = sum(w for t, w in weight.items() if t in found)
        return hits[0] if total and covered / total >= min_overlap else None


def recall_at(retrieved: Sequence[str], relevant: Sequence[str], k: int) -> float:
    """Share of the relevant items in the first ``k`` retrieved, out of at most ``k`` (capped recall)."""
    if not relevant:
        return math.nan
    top = set(retrieved[:k])
    return len(top & set(relevant)) / min(k, len(set(relevant)))


class TenantKnowledge:
    """Each tenant's articles (``examples/<tenant>/articles``, beside its ``world.yaml``), indexed at first use."""

    def __init__(self, root: Path | None = None, *, embedder: Embedder | None = None) -> None:
        import yaml

        from tandem.world.world import EXAMPLES_DIR

        self.embedder = embedder
        self.folders: dict[str, Path] = {}
        for world_file in sorted((root or EXAMPLES_DIR).glob("*/world.yaml")):
            folder = world_file.parent / "articles"
            tenant_id = ((yaml.safe_load(world_file.read_text()) or {}).get("tenant") or {}).get("id")
            if tenant_id and folder.is_dir():
                self.folders[str(tenant_id)] = folder
        self._bases: dict[str, KnowledgeBase] = {}

    def base(self, tenant_id: str) -> KnowledgeBase | None:
        if tenant_id not in self._bases and tenant_id in self.folders:
            self._bases[tenant_id] = KnowledgeBase.from_folder(self.folders[tenant_id], embedder=self.embedder)
        return self._bases.get(tenant_id)

    def answer(self, tenant_id: str, question: str) -> Hit | None:
        """The passage that answers ``question`` for this tenant, with its source; None when none does."""
        kb = self.base(tenant_id)
        return kb.answer(question) if kb is not None else None

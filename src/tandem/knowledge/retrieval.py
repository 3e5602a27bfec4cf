"""Retrieval over help articles: BM25 over words, fused with MiniLM similarity where installed.

Lexical matching finds exact product names and terms ("Gold Saver", "PIN"); the embeddings find the same
need in other words ("my card got swallowed by the machine"). Reciprocal-rank fusion combines the two
rankings without having to calibrate one score against the other. A lookup also searches again with the
words its first results share and, with embeddings, with their meaning (pseudo-relevance feedback), as a
reader does who learns the articles' own terms from the first pages.
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
# 0.5, 0.75, 0.9); the weight matters most (recall@5 0.66 at 2, 0.70 at 12), b hardly at all (0.699 at 0.5,
# 0.700 at 0.75, 0.696 at 0.9, title weight 12).
TITLE_WEIGHT = 12
B = 0.75
# How many series of the first results a lookup follows (``KnowledgeBase.lookup``), after its feedback list:
# three lists of five for one question is what an agent reads. Not tuned on recall, which always grows with
# more lists, as it does with reading further down one ranking (bench/knowledge.py measures both).
FOLLOW = 1
# A lookup's feedback list searches the question again with the ``FEEDBACK_TERMS`` terms its first results by
# BM25 share most, weighing together ``FEEDBACK_WEIGHT`` times as much as the question's own distinct terms
# (RM3-style expansion). On half of the tau2 bank tasks (bench/knowledge.py) a feedback list in place of the
# second series followed raised lookup recall@5 from 0.84 to 0.90 with BM25 alone, 0.85 to 0.92 fused with
# MiniLM, for as many lists; the same expansion in the first search lowered it (0.700 to 0.690 one search
# each), so the question's own list stays as asked. Weights 0.5, 1 and 2 differ by less than 0.01.
FEEDBACK_TERMS = 10
FEEDBACK_WEIGHT = 1.0
# With embeddings, the feedback list's embedding side moves too: the question's vector plus
# ``DENSE_FEEDBACK_WEIGHT`` times the direction of the first articles' mean vector (Rocchio's feedback on the
# embeddings). On half of the tau2 bank tasks (bench/knowledge.py, weights 0, 0.25, 0.5, 1) lookup recall@5
# rose from 0.921 to 0.935 at 0.25 (0.930 at 0.5, 0.928 at 1); the mean of the best five by BM25 alone or by
# the embeddings alone, rather than of the five shown, gained less (0.927 and 0.933), of the first three or
# ten shown less again (0.921 and 0.930).
DENSE_FEEDBACK_WEIGHT = 0.25
# The share of a question's words (weighed by rarity) a passage must hold to be said as its answer.
MIN_OVERLAP = 0.3


@dataclass(frozen=True, slots=True)
class Hit:
    passage: Passage
    score: float


@dataclass(frozen=True, slots=True)
class Lookup:
    """One list of articles an agent reads: the question's own search (``series`` None, no ``feedback``),
    the question searched again with the terms its first results share (``feedback``: those terms, stemmed),
    or a follow-up through the other articles of a series the first results belong to (``series``)."""

    query: str
    series: str | None
    hits: list[Hit]
    feedback: tuple[str, ...] = ()


_NUMBERED = re.compile(r"[_-]?\d+$")


def series(source: str) -> str:
    """The series an article belongs to, from its source: its folder (``cards/gold.md`` is in ``cards``),
    else the name before its number (``doc_credit_cards_ecocard_004`` is in ``doc_credit_cards_ecocard``).
    A product's pages form a series, and their titles do not always name it ("Prescription discount
    program" is one of the Gold Years Account's pages). An article with neither is a series of its own."""
    folder, _, name = source.rpartition("/")
    if folder:
        return folder
    stem = name.rsplit(".", 1)[0] if "." in name else name
    return _NUMBERED.sub("", stem) or stem


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
        feedback_weight: float = FEEDBACK_WEIGHT,
        dense_feedback_weight: float = DENSE_FEEDBACK_WEIGHT,
    ):
        import numpy as np

        if not passages:
            raise ValueError("a knowledge base needs at least one passage")
        if title_weight < 1 or k1 <= 0 or not 0 <= b <= 1:
            raise ValueError(f"BM25 needs title_weight >= 1, k1 > 0 and 0 <= b <= 1, not {title_weight}, {k1}, {b}")
        if feedback_weight < 0 or dense_feedback_weight < 0:
            raise ValueError(
                "feedback needs feedback_weight >= 0 and dense_feedback_weight >= 0, "
                f"not {feedback_weight} and {dense_feedback_weight}"
            )
        self.passages = list(passages)
        self.embedder = embedder
        self.feedback_weight = feedback_weight
        self.dense_feedback_weight = dense_feedback_weight
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
        self._terms = list(vocab)  # a term id's word (ids were given in insertion order)
        # Each passage's series as a number, so a follow-up picks its series out of a ranking in one step.
        self._series_ids: dict[str, int] = {}
        for p in self.passages:
            self._series_ids.setdefault(series(p.source), len(self._series_ids))
        self._series = np.array([self._series_ids[series(p.source)] for p in self.passages])
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

    def _scores(self, query: str) -> tuple[Any, Any | None, Any | None]:
        """Every passage's BM25 score for ``query`` and, with embeddings, its similarity to it and the
        query's vector."""
        lexical = self._lexical(query)
        if self._dense is None or self.embedder is None:
            return lexical, None, None
        vector = self.embedder.encode([query])[0]
        return lexical, self._dense @ vector, vector

    def _ranked(self, query: str) -> tuple[Any, Any]:
        """The passages that match ``query`` at all, best first (their indices), and every passage's fused
        score; no passage when no word of the query is known and there are no embeddings."""
        lexical, dense, _ = self._scores(query)
        return self._fused(lexical, dense)

    def _fused(self, lexical: Any, dense: Any | None) -> tuple[Any, Any]:
        import numpy as np

        rankings = [np.argsort(-lexical, kind="stable")]
        if dense is not None:
            rankings.append(np.argsort(-dense, kind="stable"))
        fused = np.zeros(len(self.passages))
        if not lexical.any() and len(rankings) == 1:
            return np.zeros(0, dtype=np.int64), fused
        for ranking in rankings:
            fused[ranking] += 1.0 / (RRF_K + np.arange(1, len(ranking) + 1))
        return np.argsort(-fused, kind="stable"), fused

    def _feedback(self, query: str, lexical: Any, k: int) -> tuple[list[str], Any]:
        """The terms the best ``k`` articles by BM25 share beyond the question, and the BM25 scores they add
        to every passage (RM3-style expansion); no terms when nothing matches the question's words.

        The articles are chosen by words alone: the embeddings find articles about the same need in other
        words, whose terms then pull the search away from the question (fused sources did worse on the tau2
        bank tasks). Each article's best passage counts once, each with its own share of term weight, so one
        long page does not choose the terms for all."""
        import numpy as np

        top: list[int] = []
        seen: set[str] = set()
        for i in np.argsort(-lexical, kind="stable"):
            if lexical[i] <= 0 or len(top) == k:
                break
            source = self.passages[int(i)].source
            if source not in seen:
                seen.add(source)
                top.append(int(i))
        asked = {self._vocab[t] for t in tokens(query) if t in self._vocab}
        if not top or not self.feedback_weight:
            return [], np.zeros(len(self.passages))
        weights = self._bm25[:, top].toarray()  # terms x articles
        share = (weights / weights.sum(axis=0, keepdims=True)).mean(axis=1)
        share[list(asked)] = 0.0
        best = [int(j) for j in np.argsort(-share, kind="stable")[:FEEDBACK_TERMS] if share[j] > 0]
        if not best:
            return [], np.zeros(len(self.passages))
        # The added terms weigh together ``feedback_weight`` times the question's own distinct terms, so a long
        # question keeps its words ahead of the feedback as a short one does.
        scale = self.feedback_weight * len(asked) / share[best].sum()
        extra = np.asarray(self._bm25[best].T @ (share[best] * scale)).ravel()
        return [self._terms[j] for j in best], extra

    def _dense_feedback(self, vector: Any, shown: list[int]) -> Any:
        """Every passage's similarity to the question's vector moved towards the ``shown`` passages' mean
        (Rocchio): the embedding side of a lookup's feedback list."""
        import numpy as np

        vectors = self._dense
        if vectors is None:
            raise ValueError("dense feedback needs a knowledge base built with an embedder")
        centroid = vectors[shown].mean(axis=0)
        moved = vector + self.dense_feedback_weight * centroid / max(float(np.linalg.norm(centroid)), 1e-12)
        return vectors @ (moved / max(float(np.linalg.norm(moved)), 1e-12))

    def _picks(self, order: Any, k: int, *, by_source: bool, skip: set[str] | None = None) -> list[int]:
        """The first ``k`` passages of ``order`` (or, ``by_source``, the best passage of each of the first ``k``
        articles), leaving out the articles in ``skip``: their indices."""
        picked: list[int] = []
        seen = set(skip or ())
        for i in order:
            passage = self.passages[int(i)]
            if passage.source in seen:
                continue
            if by_source:
                seen.add(passage.source)
            picked.append(int(i))
            if len(picked) == k:
                break
        return picked

    def _hits(self, order: Any, fused: Any, k: int, *, by_source: bool, skip: set[str] | None = None) -> list[Hit]:
        return [Hit(self.passages[i], float(fused[i])) for i in self._picks(order, k, by_source=by_source, skip=skip)]

    def search(self, query: str, k: int = 5, *, by_source: bool = False) -> list[Hit]:
        """The best ``k`` passages (or, ``by_source``, the best passage of each of the best ``k`` articles)."""
        order, fused = self._ranked(query)
        return self._hits(order, fused, k, by_source=by_source)

    def lookup(self, query: str, k: int = 5, *, follow: int = FOLLOW, feedback: bool = True) -> list[Lookup]:
        """Search as an agent does, learning from what it finds: the best ``k`` articles for ``query``; then,
        with ``feedback``, the best ``k`` articles not shown yet when the question is searched again with the
        terms its first results share (``Lookup.feedback``) and, with embeddings, with its vector moved
        towards theirs; then, for each series among the first results (up
        to ``follow`` series, best first), the best ``k`` articles of that series not shown yet, for the same
        question. The feedback list reaches articles written in the knowledge base's own terms for the need,
        which the customer's words alone missed; a follow-up reaches a product's other pages (a question about
        one card's cash back finds the card's overview first and its cash-back page in the follow-up). Every
        lookup is a list an agent reads, of at most ``k`` articles."""
        lexical, dense, vector = self._scores(query)
        order, fused = self._fused(lexical, dense)
        picked = self._picks(order, k, by_source=True)
        first = [Hit(self.passages[i], float(fused[i])) for i in picked]
        lookups = [Lookup(query, None, first)]
        shown = {h.passage.source for h in first}
        if feedback:
            terms, extra = self._feedback(query, lexical, k)
            if terms:
                moved = dense
                if vector is not None and self.dense_feedback_weight:
                    moved = self._dense_feedback(vector, picked)
                again, scores = self._fused(lexical + extra, moved)
                more = self._hits(again, scores, k, by_source=True, skip=shown)
                if more:
                    lookups.append(Lookup(query, None, more, tuple(terms)))
                    shown |= {h.passage.source for h in more}
        # The follow-ups read the question's own ranking (``order``), not the feedback's.
        for name in list(dict.fromkeys(series(h.passage.source) for h in first))[:follow]:
            members = order[self._series[order] == self._series_ids[name]]
            more = self._hits(members, fused, k, by_source=True, skip=shown)
            if more:
                lookups.append(Lookup(query, name, more))
                shown |= {h.passage.source for h in more}
        return lookups

    def answer(self, query: str, *, min_overlap: float = MIN_OVERLAP) -> Hit | None:
        """The single best passage, or None when too little of the question is in it to be worth saying."""
        hits = self.search(query, 1)
        return hits[0] if hits and self.covers(query, hits[0], min_overlap=min_overlap) else None

    def covers(self, query: str, hit: Hit, *, min_overlap: float = MIN_OVERLAP) -> bool:
        """Whether enough of the question (its words weighed by rarity) is in the passage to be worth saying."""
        asked = set(tokens(query))
        if not asked:
            return False
        passage = hit.passage
        found = set(tokens(f"{passage.title} {passage.section or ''} {passage.text}"))
        weight = {t: float(self._idf[self._vocab[t]]) if t in self._vocab else 0.0 for t in asked}
        total = sum(weight.values())
        covered = sum(w for t, w in weight.items() if t in found)
        return bool(total) and covered / total >= min_overlap


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

    def lookup(self, tenant_id: str, question: str, k: int = 5) -> list[Lookup]:
        """This tenant's articles for ``question``, searched again with the terms of the first ones found and
        following their series (``KnowledgeBase.lookup``); empty for a tenant without articles."""
        kb = self.base(tenant_id)
        return kb.lookup(question, k) if kb is not None else []

    def covers(self, tenant_id: str, question: str, hit: Hit) -> bool:
        """Whether ``hit`` holds enough of ``question`` to be said as its answer (``KnowledgeBase.covers``)."""
        kb = self.base(tenant_id)
        return kb is not None and kb.covers(question, hit)

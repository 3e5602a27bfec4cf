"""The intent model: n-gram TF-IDF (plus MiniLM embeddings where installed), a linear classifier, calibrated
confidences and an out-of-scope threshold.

* Features: word 1-2 grams and character 2-5 grams (within word boundaries), both TF-IDF with sublinear
  term frequency; optionally the utterance's MiniLM embedding, scaled, concatenated beside them.
* Classifier: a linear support-vector machine, one-vs-rest (fast to train, strong on short texts). With
  embeddings, each intent's margin also gets the cosine similarity of the utterance to that intent's nearest
  training example, scaled (a nearest-neighbour vote beside the linear one: it catches phrasings close to
  one example that a single hyperplane per intent averages away).
* Confidence: a softmax of the scores with one temperature fitted on held-out data (temperature scaling,
  Guo et al. 2017), so "0.8" means right about four times in five.
* Out of scope: an explicit ``out_of_scope`` class where the data has examples of it, and a threshold on the
  in-scope evidence, tuned on held-out data: below it the model says it does not know. The evidence is the
  calibrated top confidence plus, with embeddings, the similarity to the nearest in-scope training example:
  an utterance far from every example is out of scope even when one intent beats the others.

Held-out data is a validation split when the caller has one, otherwise out-of-fold predictions on train
(cross-validation), so tuning never sees the test split.
"""

from __future__ import annotations

import functools
import importlib
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from tandem.understanding.examples import OUT_OF_SCOPE, Example

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

    from tandem.understanding.embeddings import Embedder

    Matrix = npt.NDArray[np.float64]
    Vectors = npt.NDArray[np.float32]

RECIPE_VERSION = "svm-tfidf-w12-c25-nn-temp-2"


@dataclass(frozen=True, slots=True)
class Recipe:
    """The choices training makes; the benchmark tunes them on validation data."""

    c: float = 0.5
    embedding_weight: float = 2.0  # scale of the embedding block beside the unit-norm TF-IDF blocks
    neighbour_weight: float = 1.0  # scale of the nearest-example similarity added to each margin (embeddings only)
    oos_recall_floor: float = 0.9  # the threshold rejects at least this share of held-out out-of-scope lines
    folds: int = 5
    # Learn out_of_scope as a class from its training lines (True), or use them only to set the threshold
    # (False: needs a validation split with out-of-scope lines). A class learns the out-of-scope lines it
    # was shown; a threshold also catches the ones nobody foresaw.
    oos_class: bool = True

    @property
    def key(self) -> str:
        return (
            f"{RECIPE_VERSION}:c={self.c}:ew={self.embedding_weight}:nw={self.neighbour_weight}"
            f":oos={self.oos_recall_floor}:k={self.folds}"
            f"{'' if self.oos_class else ':threshold-only'}"
        )


@dataclass(frozen=True, slots=True)
class Prediction:
    label: str  # an intent, or out_of_scope
    confidence: float
    ranked: tuple[tuple[str, float], ...]  # in-scope intents by calibrated probability, best first


class IntentModel:
    def __init__(
        self,
        labels: Sequence[str],
        vectorizers: Sequence[Any],
        classifier: Any,
        temperature: float,
        threshold: float,
        embedder: Embedder | None,
        recipe: Recipe,
        neighbours: Neighbours | None = None,
    ) -> None:
        self.labels = list(labels)
        self.vectorizers = list(vectorizers)
        self.classifier = classifier
        self.temperature = temperature
        self.threshold = threshold
        self.embedder_name = embedder.name if embedder is not None else None
        self.embedder = embedder
        self.recipe = recipe
        self.neighbours = neighbours
        # Weights split by feature block, at first use: n-gram blocks, the embedding block, the intercepts.
        self._blocks: tuple[list[NgramBlock], Matrix, Matrix] | None = None

    # -- training --------------------------------------------------------------------------------------
    @classmethod
    def train(
        cls,
        examples: Sequence[Example],
        *,
        recipe: Recipe | None = None,
        embedder: Embedder | None = None,
        val: Sequence[Example] = (),
        embeddings: Matrix | None = None,
        val_embeddings: Matrix | None = None,
    ) -> IntentModel:
        """Fit on ``examples``; calibrate and set the threshold on ``val`` or, without it, out of fold.

        ``embeddings``/``val_embeddings`` let a caller that trains several recipes embed only once.
        """
        import numpy as np

        recipe = recipe or Recipe()
        left_out: list[Example] = []  # out-of-scope training lines kept from the classifier (oos_class off)
        left_out_embeddings = None
        if not recipe.oos_class:
            keep = [i for i, (_, label) in enumerate(examples) if label != OUT_OF_SCOPE]
            dropped = [i for i, (_, label) in enumerate(examples) if label == OUT_OF_SCOPE]
            left_out = [examples[i] for i in dropped]
            examples = [examples[i] for i in keep]
            if embeddings is not None:
                left_out_embeddings = embeddings[dropped]
                embeddings = embeddings[keep]
        texts = [t for t, _ in examples]
        labels = sorted({label for _, label in examples})
        index = {label: i for i, label in enumerate(labels)}
        y = np.array([index[label] for _, label in examples])
        if embedder is not None and embeddings is None:
            embeddings = embedder.encode(texts).astype(np.float64)
        if val:
            val_texts = [t for t, _ in val]
            if embedder is not None and val_embeddings is None:
                val_embeddings = embedder.encode(val_texts).astype(np.float64)
            vectorizers, clf = _fit(texts, y, embeddings, recipe)
            neighbours = Neighbours.of(embeddings, y, labels)
            held_margins = _margins(vectorizers, clf, val_texts, val_embeddings, recipe, len(labels))
            held_nearest = _add_neighbours(held_margins, neighbours, val_embeddings, recipe)
            held_y = [index.get(label, -1) for _, label in val]
        else:
            held_margins, held_nearest, held_y = _out_of_fold(texts, y, embeddings, recipe, labels)
            vectorizers, clf = _fit(texts, y, embeddings, recipe)
            neighbours = Neighbours.of(embeddings, y, labels)
        if left_out:
            # The classifier never saw them, so they are held-out out-of-scope lines like val's: the threshold
            # is a quantile of few lines (CLINC150's val has 100), and these double them.
            left_texts = [t for t, _ in left_out]
            if embedder is not None and left_out_embeddings is None:
                left_out_embeddings = embedder.encode(left_texts).astype(np.float64)
            more = _margins(vectorizers, clf, left_texts, left_out_embeddings, recipe, len(labels))
            more_nearest = _add_neighbours(more, neighbours, left_out_embeddings, recipe)
            held_margins = np.vstack([held_margins, more])
            if held_nearest is not None and more_nearest is not None:
                held_nearest = np.concatenate([held_nearest, more_nearest])
            held_y = [*held_y, *([-1] * len(left_out))]
        temperature = fit_temperature(held_margins, held_y)
        probs = softmax(held_margins / temperature)
        oos_index = index.get(OUT_OF_SCOPE)
        threshold = tune_threshold(probs, held_y, oos_index, recipe.oos_recall_floor, held_nearest)
        return cls(labels, vectorizers, clf, temperature, threshold, embedder, recipe, neighbours)

    # -- predicting ------------------------------------------------------------------------------------
    def probabilities(self, texts: list[str]) -> Matrix:
        return self._assess(texts)[0]

    def _assess(self, texts: list[str]) -> tuple[Matrix, Matrix | None]:
        """Calibrated probabilities, and each text's similarity to its nearest in-scope training example
        (None without embeddings)."""
        emb = None
        if self.embedder is not None:
            emb = self.embedder.encode(texts).astype("float64")
        elif self.embedder_name is not None:
            raise RuntimeError(f"this model needs its embedder ({self.embedder_name}) attached")
        margins = self._live_margins(texts, emb)
        nearest = _add_neighbours(margins, self.neighbours, emb, self.recipe)
        return softmax(margins / self.temperature), nearest

    def _live_margins(self, texts: list[str], emb: Matrix | None) -> Matrix:
        """The classifier's margins as one product per feature block, with the weights split once.

        Equal to ``decision_function`` on the stacked features, but skips building the stacked sparse
        matrix (the embedding turned sparse, the blocks copied side by side) on every call, which cost
        about as much as the product itself for one utterance; and each n-gram block is weighed from the
        text's own n-grams (see :class:`NgramBlock`) rather than through the vectorizer's sparse matrices.
        """
        import numpy as np

        if self._blocks is None:
            coef = np.asarray(self.classifier.coef_, dtype=np.float64)
            if coef.shape[0] == 1:  # two classes: one margin, for the second class
                coef = np.vstack([-coef, coef])
                intercept = np.array([-1.0, 1.0]) * float(self.classifier.intercept_[0])
            else:
                intercept = np.asarray(self.classifier.intercept_, dtype=np.float64)
            ngrams, start = [], 0
            for vectorizer in self.vectorizers:
                width = len(vectorizer.vocabulary_)
                ngrams.append(NgramBlock(vectorizer, np.ascontiguousarray(coef[:, start : start + width].T)))
                start += width
            # The embedding block, scaled as in training; none without embeddings.
            dense = np.ascontiguousarray(coef[:, start:].T) * self.recipe.embedding_weight
            self._blocks = (ngrams, dense, intercept)
        ngrams, dense, intercept = self._blocks
        out = np.tile(intercept, (len(texts), 1))
        for row, text in enumerate(texts):
            for block in ngrams:
                block.add_scores(text, out[row])
        if emb is not None:
            out += emb @ dense
        raw = out
        if raw.shape[1] == len(self.labels):
            return raw
        full = np.full((raw.shape[0], len(self.labels)), -10.0)
        full[:, self.classifier.classes_] = raw
        return full

    def predict(self, texts: list[str]) -> list[Prediction]:
        import numpy as np

        probs, nearest = self._assess(texts)
        oos = self.labels.index(OUT_OF_SCOPE) if OUT_OF_SCOPE in self.labels else -1
        out: list[Prediction] = []
        for n, row in enumerate(probs):
            order = [int(i) for i in np.argsort(-row) if int(i) != oos]
            ranked = tuple((self.labels[i], round(float(row[i]), 4)) for i in order[:3])
            best = int(np.argmax(row))
            evidence = row[best] + (nearest[n] if nearest is not None else 0.0)
            if best == oos:
                out.append(Prediction(OUT_OF_SCOPE, round(float(row[best]), 4), ranked))
            elif evidence < self.threshold:
                out.append(Prediction(OUT_OF_SCOPE, round(1.0 - float(row[best]), 4), ranked))
            else:
                out.append(Prediction(self.labels[best], round(float(row[best]), 4), ranked))
        return out

    def __getstate__(self) -> dict[str, Any]:
        # The embedder (a torch model) is re-attached on load, never pickled.
        state = dict(self.__dict__)
        state["embedder"] = None
        state["_blocks"] = None  # derived from the classifier; rebuilt at first use
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        state.setdefault("_blocks", None)  # a model pickled before the weights were split by block
        state.setdefault("neighbours", None)  # a model pickled before the nearest-example scores
        self.__dict__.update(state)


def _lib(name: str) -> Any:
    """scikit-learn and SciPy, imported at first use (they cost a second at start-up) and untyped."""
    return importlib.import_module(name)


class NgramBlock:
    """One TF-IDF vectorizer and its slice of the classifier's weights, scoring one text at a time.

    The same arithmetic as ``vectorizer.transform`` (sublinear term frequency times idf, L2-normalised over
    the n-grams in the vocabulary) followed by the product with the weights, done on the text's few dozen
    n-grams: for one utterance, the vectorizer's checks and sparse-matrix assembly cost several times the
    arithmetic.
    """

    def __init__(self, vectorizer: Any, weights: Matrix) -> None:
        self.analyze = vectorizer.build_analyzer()
        self.vocabulary: dict[str, int] = vectorizer.vocabulary_
        self.idf: Matrix = vectorizer.idf_
        self.weights = weights  # (vocabulary, labels)
        if not (vectorizer.sublinear_tf and vectorizer.use_idf and vectorizer.norm == "l2"):
            raise ValueError("NgramBlock scores sublinear, idf-weighted, L2-normalised TF-IDF only")

    def add_scores(self, text: str, out: Matrix) -> None:
        """Add this block's contribution to one text's margins ``out`` in place."""
        import numpy as np

        counts: dict[int, int] = {}
        for gram in self.analyze(text):
            column = self.vocabulary.get(gram)
            if column is not None:
                counts[column] = counts.get(column, 0) + 1
        if not counts:
            return
        columns = np.fromiter(counts, dtype=np.intp, count=len(counts))
        values = (np.log(np.fromiter(counts.values(), dtype=np.float64, count=len(counts))) + 1.0) * self.idf[columns]
        values /= np.sqrt(values @ values)
        out += values @ self.weights[columns]


class Neighbours:
    """The training examples' embeddings, grouped by intent: for each utterance, the cosine similarity to
    each intent's nearest example. One product with every example and a maximum per intent, about a
    millisecond for CLINC150's 15,000 examples."""

    def __init__(self, vectors: Vectors, starts: Any, classes: Any, n_labels: int, in_scope: Any) -> None:
        self.vectors = vectors  # float32, dimensions x examples, the examples grouped by class
        self.starts = starts  # first row of each class present
        self.classes = classes  # those classes' indices
        self.n_labels = n_labels
        self.in_scope = in_scope  # positions in ``classes`` that are intents (not out_of_scope)

    @classmethod
    def of(cls, embeddings: Matrix | None, y: Any, labels: Sequence[str]) -> Neighbours | None:
        import numpy as np

        if embeddings is None:
            return None
        order = np.argsort(y, kind="stable")
        grouped = np.asarray(y)[order]
        classes = np.unique(grouped)
        starts = np.searchsorted(grouped, classes)
        in_scope = np.array([labels[c] != OUT_OF_SCOPE for c in classes])
        # Stored transposed (dimensions x examples): the product with one utterance then reads the matrix
        # in order, about twice as fast as against examples x dimensions.
        vectors = np.ascontiguousarray(embeddings[order].T, dtype=np.float32)
        return cls(vectors, starts, classes, len(labels), in_scope)

    def similarity(self, embeddings: Matrix) -> tuple[Matrix, Matrix]:
        """(per-label similarity to the label's nearest example, 0 for a label without examples; the
        similarity to the nearest in-scope example)."""
        import numpy as np

        query = np.asarray(embeddings, dtype=np.float32)
        if len(query) <= 8:
            # A live turn: one row against every example is too small to gain from BLAS's threads, and on
            # a busy machine waiting for them to be scheduled cost ten times the product (9 ms against 1).
            with _blas_controller().limit(limits=1, user_api="blas"):
                sims = query @ self.vectors
        else:
            sims = query @ self.vectors
        nearest = np.maximum.reduceat(sims, self.starts, axis=1).astype(np.float64)
        full = np.zeros((len(sims), self.n_labels))
        full[:, self.classes] = nearest
        inside = nearest[:, self.in_scope]
        return full, inside.max(axis=1) if inside.shape[1] else np.zeros(len(sims))


@functools.cache
def _blas_controller() -> Any:
    """threadpoolctl's view of the loaded BLAS libraries (a dependency of scikit-learn), found once: looking
    them up costs more than the product it limits."""
    return _lib("threadpoolctl").ThreadpoolController()


def _add_neighbours(
    margins: Matrix, neighbours: Neighbours | None, embeddings: Matrix | None, recipe: Recipe
) -> Matrix | None:
    """Add the scaled nearest-example similarities to ``margins`` in place; the nearest in-scope similarity
    of each row (the out-of-scope evidence), or None without embeddings."""
    if neighbours is None or embeddings is None:
        return None
    per_label, nearest = neighbours.similarity(embeddings)
    margins += recipe.neighbour_weight * per_label
    return nearest


# -- pieces ------------------------------------------------------------------------------------------------
def _vectorizers() -> list[Any]:
    TfidfVectorizer = _lib("sklearn.feature_extraction.text").TfidfVectorizer
    return [
        TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, lowercase=True, token_pattern=r"(?u)\b\w+\b"),
        TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), sublinear_tf=True, lowercase=True, min_df=2),
    ]


def _stack(blocks: list[Any], embeddings: Matrix | None, recipe: Recipe) -> Any:
    sparse = _lib("scipy.sparse")
    if embeddings is not None:
        blocks = [*blocks, sparse.csr_matrix(embeddings * recipe.embedding_weight)]
    return sparse.hstack(blocks, format="csr")


def _fit(texts: list[str], y: Any, embeddings: Matrix | None, recipe: Recipe) -> tuple[list[Any], Any]:
    LinearSVC = _lib("sklearn.svm").LinearSVC
    vectorizers = _vectorizers()
    blocks = [v.fit_transform(texts) for v in vectorizers]
    clf = LinearSVC(C=recipe.c, class_weight=None, max_iter=5000)
    clf.fit(_stack(blocks, embeddings, recipe), y)
    return vectorizers, clf


def _margins(
    vectorizers: list[Any], clf: Any, texts: list[str], embeddings: Matrix | None, recipe: Recipe, n_labels: int
) -> Matrix:
    import numpy as np

    x = _stack([v.transform(texts) for v in vectorizers], embeddings, recipe)
    raw = np.asarray(clf.decision_function(x), dtype=np.float64)
    if raw.ndim == 1:  # two classes: sklearn gives one margin
        raw = np.stack([-raw, raw], axis=1)
    if raw.shape[1] == n_labels:
        return raw
    # A fold may lack a rare class: give it a margin no real class beats.
    full = np.full((raw.shape[0], n_labels), -10.0)
    full[:, clf.classes_] = raw
    return full


def _out_of_fold(
    texts: list[str], y: Any, embeddings: Matrix | None, recipe: Recipe, labels: Sequence[str]
) -> tuple[Matrix, Matrix | None, list[int]]:
    """Each training line's scores (and nearest in-scope similarity) from a model fitted without its fold."""
    import numpy as np

    StratifiedKFold = _lib("sklearn.model_selection").StratifiedKFold

    counts = np.bincount(y)
    folds = max(2, min(recipe.folds, int(counts[counts > 0].min())))
    margins = np.zeros((len(texts), len(labels)))
    nearest = np.zeros(len(texts)) if embeddings is not None else None
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=0)
    for train_idx, held_idx in splitter.split(texts, y):
        fold_texts = [texts[i] for i in train_idx]
        fold_emb = embeddings[train_idx] if embeddings is not None else None
        vectorizers, clf = _fit(fold_texts, y[train_idx], fold_emb, recipe)
        held_emb = embeddings[held_idx] if embeddings is not None else None
        held = _margins(vectorizers, clf, [texts[i] for i in held_idx], held_emb, recipe, len(labels))
        near = _add_neighbours(held, Neighbours.of(fold_emb, y[train_idx], labels), held_emb, recipe)
        margins[held_idx] = held
        if nearest is not None and near is not None:
            nearest[held_idx] = near
    return margins, nearest, [int(v) for v in y]


def softmax(z: Matrix) -> Matrix:
    import numpy as np

    shifted = z - z.max(axis=1, keepdims=True)
    e = np.exp(shifted)
    out: Matrix = e / e.sum(axis=1, keepdims=True)
    return out


def fit_temperature(margins: Matrix, y: Sequence[int]) -> float:
    """The temperature that minimises the negative log-likelihood of held-out labels (golden-section search
    over log T). Held-out lines whose label the model does not know are left out."""
    import numpy as np

    keep = np.array([label >= 0 for label in y])
    if not keep.any():
        return 1.0
    z = margins[keep]
    target = np.array([label for label in y if label >= 0])

    def nll(log_t: float) -> float:
        p = softmax(z / math.exp(log_t))
        return float(-np.log(np.clip(p[np.arange(len(target)), target], 1e-12, None)).mean())

    # Bounded below: a tiny, perfectly separated held-out set would otherwise drive it towards zero and
    # every confidence to 1.0, leaving no room for a threshold.
    lo, hi = math.log(0.05), math.log(20.0)
    ratio = (math.sqrt(5) - 1) / 2
    a, b = hi - ratio * (hi - lo), lo + ratio * (hi - lo)
    fa, fb = nll(a), nll(b)
    for _ in range(60):
        if fa < fb:
            hi, b, fb = b, a, fa
            a = hi - ratio * (hi - lo)
            fa = nll(a)
        else:
            lo, a, fa = a, b, fb
            b = lo + ratio * (hi - lo)
            fb = nll(b)
    return math.exp((lo + hi) / 2)


def tune_threshold(
    probs: Matrix, y: Sequence[int], oos_index: int | None, oos_recall_floor: float, nearest: Matrix | None = None
) -> float:
    """The lowest threshold on the in-scope evidence (the top calibrated probability, plus ``nearest``, the
    similarity to the nearest in-scope training example, where given) that rejects at least
    ``oos_recall_floor`` of the held-out out-of-scope lines: the least in-scope accuracy given up for the
    out-of-scope recall asked for. With no out-of-scope lines held out, nothing is rejected (0.0)."""
    import numpy as np

    oos_rows = [i for i, label in enumerate(y) if label == -1 or (oos_index is not None and label == oos_index)]
    if not oos_rows:
        return 0.0
    best = probs.argmax(axis=1)
    top = probs.max(axis=1) + (nearest if nearest is not None else 0.0)
    # Out-of-scope lines the model already rejects through its own class need no threshold.
    caught = np.array([oos_index is not None and best[i] == oos_index for i in oos_rows])
    needed = math.ceil(oos_recall_floor * len(oos_rows)) - int(caught.sum())
    if needed <= 0:
        return 0.0
    remaining = np.sort(top[oos_rows][~caught])
    # Reject a line when its evidence is below the threshold: take the needed-th smallest, a hair above.
    needed = min(needed, len(remaining))
    return float(min(2.0 if nearest is not None else 1.0, remaining[needed - 1] + 1e-6))

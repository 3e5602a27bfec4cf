"""The intent model: n-gram TF-IDF (plus MiniLM embeddings where installed), a linear classifier, calibrated
confidences and an out-of-scope threshold.

* Features: word 1-2 grams and character 2-5 grams (within word boundaries), both TF-IDF with sublinear
  term frequency; optionally the utterance's MiniLM embedding, scaled, concatenated beside them.
* Classifier: a linear support-vector machine, one-vs-rest (fast to train, strong on short texts).
* Confidence: a softmax of the margins with one temperature fitted on held-out data (temperature scaling,
  Guo et al. 2017), so "0.8" means right about four times in five.
* Out of scope: an explicit ``out_of_scope`` class where the data has examples of it, and a threshold on the
  calibrated top confidence, tuned on held-out data: below it the model says it does not know.

Held-out data is a validation split when the caller has one, otherwise out-of-fold predictions on train
(cross-validation), so tuning never sees the test split.
"""

from __future__ import annotations

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

RECIPE_VERSION = "svm-tfidf-w12-c25-temp-1"


@dataclass(frozen=True, slots=True)
class Recipe:
    """The choices training makes; the benchmark tunes them on validation data."""

    c: float = 0.5
    embedding_weight: float = 1.0  # scale of the embedding block beside the unit-norm TF-IDF blocks
    oos_recall_floor: float = 0.9  # the threshold rejects at least this share of held-out out-of-scope lines
    folds: int = 5
    # Learn out_of_scope as a class from its training lines (True), or use them only to set the threshold
    # (False: needs a validation split with out-of-scope lines). A class learns the out-of-scope lines it
    # was shown; a threshold also catches the ones nobody foresaw.
    oos_class: bool = True

    @property
    def key(self) -> str:
        return (
            f"{RECIPE_VERSION}:c={self.c}:ew={self.embedding_weight}:oos={self.oos_recall_floor}:k={self.folds}"
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
    ) -> None:
        self.labels = list(labels)
        self.vectorizers = list(vectorizers)
        self.classifier = classifier
        self.temperature = temperature
        self.threshold = threshold
        self.embedder_name = embedder.name if embedder is not None else None
        self.embedder = embedder
        self.recipe = recipe
        self._blocks: tuple[list[Matrix], Matrix] | None = None  # weights split by feature block, at first use

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
        if not recipe.oos_class:
            keep = [i for i, (_, label) in enumerate(examples) if label != OUT_OF_SCOPE]
            examples = [examples[i] for i in keep]
            if embeddings is not None:
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
            held_margins = _margins(vectorizers, clf, val_texts, val_embeddings, recipe, len(labels))
            held_y = [index.get(label, -1) for _, label in val]
        else:
            held_margins, held_y = _out_of_fold(texts, y, embeddings, recipe, len(labels))
            vectorizers, clf = _fit(texts, y, embeddings, recipe)
        temperature = fit_temperature(held_margins, held_y)
        probs = softmax(held_margins / temperature)
        oos_index = index.get(OUT_OF_SCOPE)
        threshold = tune_threshold(probs, held_y, oos_index, recipe.oos_recall_floor)
        return cls(labels, vectorizers, clf, temperature, threshold, embedder, recipe)

    # -- predicting ------------------------------------------------------------------------------------
    def probabilities(self, texts: list[str]) -> Matrix:
        emb = None
        if self.embedder is not None:
            emb = self.embedder.encode(texts).astype("float64")
        elif self.embedder_name is not None:
            raise RuntimeError(f"this model needs its embedder ({self.embedder_name}) attached")
        margins = self._live_margins(texts, emb)
        return softmax(margins / self.temperature)

    def _live_margins(self, texts: list[str], emb: Matrix | None) -> Matrix:
        """The classifier's margins as one product per feature block, with the weights split once.

        Equal to ``decision_function`` on the stacked features, but skips building the stacked sparse
        matrix (the embedding turned sparse, the blocks copied side by side) on every call, which cost
        about as much as the product itself for one utterance.
        """
        import numpy as np

        if self._blocks is None:
            coef = np.asarray(self.classifier.coef_, dtype=np.float64)
            if coef.shape[0] == 1:  # two classes: one margin, for the second class
                coef = np.vstack([-coef, coef])
                intercept = np.array([-1.0, 1.0]) * float(self.classifier.intercept_[0])
            else:
                intercept = np.asarray(self.classifier.intercept_, dtype=np.float64)
            weights, start = [], 0
            for vectorizer in self.vectorizers:
                width = len(vectorizer.vocabulary_)
                weights.append(np.ascontiguousarray(coef[:, start : start + width].T))
                start += width
            if start < coef.shape[1]:  # the embedding block, scaled as in training
                weights.append(np.ascontiguousarray(coef[:, start:].T) * self.recipe.embedding_weight)
            self._blocks = (weights, intercept)
        weights, intercept = self._blocks
        out = np.tile(intercept, (len(texts), 1))
        for vectorizer, w in zip(self.vectorizers, weights, strict=False):
            out += np.asarray(vectorizer.transform(texts) @ w)
        if emb is not None:
            out += emb @ weights[-1]
        raw = out
        if raw.shape[1] == len(self.labels):
            return raw
        full = np.full((raw.shape[0], len(self.labels)), -10.0)
        full[:, self.classifier.classes_] = raw
        return full

    def predict(self, texts: list[str]) -> list[Prediction]:
        import numpy as np

        probs = self.probabilities(texts)
        oos = self.labels.index(OUT_OF_SCOPE) if OUT_OF_SCOPE in self.labels else -1
        out: list[Prediction] = []
        for row in probs:
            order = [int(i) for i in np.argsort(-row) if int(i) != oos]
            ranked = tuple((self.labels[i], round(float(row[i]), 4)) for i in order[:3])
            best = int(np.argmax(row))
            if best == oos:
                out.append(Prediction(OUT_OF_SCOPE, round(float(row[best]), 4), ranked))
            elif row[best] < self.threshold:
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
        self.__dict__.update(state)


def _lib(name: str) -> Any:
    """scikit-learn and SciPy, imported at first use (they cost a second at start-up) and untyped."""
    return importlib.import_module(name)


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
    texts: list[str], y: Any, embeddings: Matrix | None, recipe: Recipe, n_labels: int
) -> tuple[Matrix, list[int]]:
    import numpy as np

    StratifiedKFold = _lib("sklearn.model_selection").StratifiedKFold

    counts = np.bincount(y)
    folds = max(2, min(recipe.folds, int(counts[counts > 0].min())))
    margins = np.zeros((len(texts), n_labels))
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=0)
    for train_idx, held_idx in splitter.split(texts, y):
        fold_texts = [texts[i] for i in train_idx]
        fold_emb = embeddings[train_idx] if embeddings is not None else None
        vectorizers, clf = _fit(fold_texts, y[train_idx], fold_emb, recipe)
        held_emb = embeddings[held_idx] if embeddings is not None else None
        margins[held_idx] = _margins(vectorizers, clf, [texts[i] for i in held_idx], held_emb, recipe, n_labels)
    return margins, [int(v) for v in y]


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


def tune_threshold(probs: Matrix, y: Sequence[int], oos_index: int | None, oos_recall_floor: float) -> float:
    """The lowest confidence threshold that rejects at least ``oos_recall_floor`` of the held-out
    out-of-scope lines: the least in-scope accuracy given up for the out-of-scope recall asked for.
    With no out-of-scope lines held out, nothing is rejected (0.0)."""
    import numpy as np

    oos_rows = [i for i, label in enumerate(y) if label == -1 or (oos_index is not None and label == oos_index)]
    if not oos_rows:
        return 0.0
    best = probs.argmax(axis=1)
    top = probs.max(axis=1)
    # Out-of-scope lines the model already rejects through its own class need no threshold.
    caught = np.array([oos_index is not None and best[i] == oos_index for i in oos_rows])
    needed = math.ceil(oos_recall_floor * len(oos_rows)) - int(caught.sum())
    if needed <= 0:
        return 0.0
    remaining = np.sort(top[oos_rows][~caught])
    # Reject a line when its top confidence is below the threshold: take the needed-th smallest, a hair above.
    needed = min(needed, len(remaining))
    return float(min(1.0, remaining[needed - 1] + 1e-6))

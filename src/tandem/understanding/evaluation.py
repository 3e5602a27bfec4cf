"""Train on one set, score on another: what ``tandem nlu eval`` prints and the benchmark records."""

from __future__ import annotations

import random
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from tandem.understanding.embeddings import Embedder
from tandem.understanding.examples import Example, Splits, read_clinc, read_examples
from tandem.understanding.metrics import Latency, Scores, latency, score
from tandem.understanding.model import IntentModel, Recipe


@dataclass(frozen=True, slots=True)
class Report:
    name: str
    scores: Scores
    latency: Latency
    train_s: float
    n_train: int
    temperature: float
    threshold: float

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["scores"] = self.scores.as_dict()
        return out


def load_splits(train: Path, test: Path | None = None) -> Splits:
    """``train`` as any supported layout; a CLINC150 JSON brings its own val and test."""
    if train.suffix.lower() == ".json" and train.is_file():
        splits = read_clinc(train)
        if test is not None:
            return Splits(splits.train, read_examples(test), splits.val, splits.name)
        return splits
    if test is None:
        raise ValueError("--test is needed unless --train is a CLINC150-style JSON with its own test split")
    name = train.parent.name if train.is_dir() and train.name == "intents" else train.stem
    return Splits(read_examples(train), read_examples(test), [], name)


def carve(examples: Sequence[Example], share: float = 0.1, seed: int = 0) -> tuple[list[Example], list[Example]]:
    """A stratified validation split carved from train: (rest, val)."""
    by_label: dict[str, list[Example]] = {}
    for ex in examples:
        by_label.setdefault(ex[1], []).append(ex)
    rng = random.Random(seed)
    rest: list[Example] = []
    val: list[Example] = []
    for label in sorted(by_label):
        items = by_label[label][:]
        rng.shuffle(items)
        k = max(1, round(len(items) * share)) if len(items) > 2 else 0
        val += items[:k]
        rest += items[k:]
    return rest, val


def evaluate(
    splits: Splits,
    *,
    recipe: Recipe | None = None,
    embedder: Embedder | None = None,
    latency_sample: int = 300,
    name: str | None = None,
) -> tuple[IntentModel, Report]:
    """Train on train (calibrating on val when there is one, out of fold otherwise), score on test."""
    start = time.perf_counter()
    model = IntentModel.train(splits.train, recipe=recipe, embedder=embedder, val=splits.val)
    train_s = time.perf_counter() - start
    texts = [t for t, _ in splits.test]
    predictions = model.predict(texts)
    scores = score(
        [label for _, label in splits.test], [p.label for p in predictions], [p.confidence for p in predictions]
    )
    sample = texts[:: max(1, len(texts) // latency_sample)][:latency_sample]
    lat = latency(lambda t: model.predict([t]), sample)
    report = Report(name or splits.name, scores, lat, train_s, len(splits.train), model.temperature, model.threshold)
    return model, report


def render(report: Report) -> list[str]:
    """Plain lines for a terminal."""
    s = report.scores
    lines = [
        f"{report.name}: trained on {report.n_train} examples in {report.train_s:.1f} s, tested on {s.n}",
        f"  accuracy          {s.accuracy:.4f}",
        f"  macro-F1          {s.macro_f1:.4f}",
    ]
    if s.in_scope_accuracy is not None:
        lines.append(f"  in-scope accuracy {s.in_scope_accuracy:.4f}")
    if s.oos_recall is not None:
        lines.append(f"  out-of-scope recall {s.oos_recall:.4f} (threshold {report.threshold:.3f})")
    lines += [
        f"  calibration (ECE) {s.ece:.4f} (temperature {report.temperature:.3f})",
        f"  latency per utterance p50 {report.latency.p50_ms:.2f} ms, p99 {report.latency.p99_ms:.2f} ms",
        "  most confused (true -> predicted: count):",
    ]
    lines += [f"    {t} -> {p}: {c}" for t, p, c in s.confused] or ["    none"]
    return lines

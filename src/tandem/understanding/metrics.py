"""How well an intent model does: accuracy, macro-F1, out-of-scope recall, calibration, confusions, latency."""

from __future__ import annotations

import importlib
import statistics
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from tandem.understanding.examples import OUT_OF_SCOPE


@dataclass(frozen=True, slots=True)
class Scores:
    n: int
    accuracy: float  # over every line, out-of-scope ones counting as a class
    macro_f1: float
    in_scope_accuracy: float | None  # CLINC150's figure: in-scope lines labelled right (a rejection is wrong)
    oos_recall: float | None  # out-of-scope lines rejected; None when the test set has none
    oos_precision: float | None
    ece: float  # expected calibration error of the stated confidence, 15 equal-width bins
    confused: tuple[tuple[str, str, int], ...]  # (true, predicted, count), most frequent first

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def score(
    truth: Sequence[str], predicted: Sequence[str], confidence: Sequence[float], *, top_confused: int = 10
) -> Scores:
    f1_score = importlib.import_module("sklearn.metrics").f1_score
    n = len(truth)
    correct = [t == p for t, p in zip(truth, predicted, strict=True)]
    in_scope = [i for i, t in enumerate(truth) if t != OUT_OF_SCOPE]
    oos = [i for i, t in enumerate(truth) if t == OUT_OF_SCOPE]
    rejected = [i for i, p in enumerate(predicted) if p == OUT_OF_SCOPE]
    labels = sorted(set(truth))
    confusions = Counter((t, p) for t, p in zip(truth, predicted, strict=True) if t != p)
    return Scores(
        n=n,
        accuracy=sum(correct) / n if n else 0.0,
        macro_f1=float(f1_score(list(truth), list(predicted), labels=labels, average="macro", zero_division=0)),
        in_scope_accuracy=sum(correct[i] for i in in_scope) / len(in_scope) if oos and in_scope else None,
        oos_recall=sum(predicted[i] == OUT_OF_SCOPE for i in oos) / len(oos) if oos else None,
        oos_precision=(sum(truth[i] == OUT_OF_SCOPE for i in rejected) / len(rejected)) if oos and rejected else None,
        ece=expected_calibration_error(confidence, correct),
        confused=tuple((t, p, c) for (t, p), c in confusions.most_common(top_confused)),
    )


def expected_calibration_error(confidence: Sequence[float], correct: Sequence[bool], bins: int = 15) -> float:
    """Mean gap between stated confidence and observed accuracy, weighted by how many lines fall in each bin."""
    n = len(confidence)
    if n == 0:
        return 0.0
    totals = [0] * bins
    conf_sum = [0.0] * bins
    right = [0] * bins
    for c, ok in zip(confidence, correct, strict=True):
        b = min(bins - 1, int(c * bins))
        totals[b] += 1
        conf_sum[b] += c
        right[b] += int(ok)
    return sum(abs(conf_sum[b] - right[b]) for b in range(bins) if totals[b]) / n


@dataclass(frozen=True, slots=True)
class Latency:
    p50_ms: float
    p99_ms: float
    n: int


def latency(call: Callable[[str], object], texts: Sequence[str], *, warmup: int = 5) -> Latency:
    """Wall time of ``call`` on one utterance at a time, as a live turn sees it."""
    for text in texts[:warmup]:
        call(text)
    times: list[float] = []
    for text in texts:
        start = time.perf_counter()
        call(text)
        times.append((time.perf_counter() - start) * 1000)
    times.sort()
    p99 = times[min(len(times) - 1, int(len(times) * 0.99))]
    return Latency(p50_ms=statistics.median(times), p99_ms=p99, n=len(times))

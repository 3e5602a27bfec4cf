"""Labelled utterances: the shipped intent folders, Banking77-style CSV and CLINC150-style JSON.

Every reader returns ``(text, label)`` pairs. Out-of-scope utterances carry the label ``out_of_scope``
whatever their source calls them (CLINC150 says ``oos``).
"""

from __future__ import annotations

import csv
import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

OUT_OF_SCOPE = "out_of_scope"
Example = tuple[str, str]


class ExamplesError(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class Splits:
    """A data set as its authors split it. ``val`` may be empty: then tune on a split carved from train."""

    train: list[Example]
    test: list[Example]
    val: list[Example] = field(default_factory=list)
    name: str = ""


def read_intents_dir(path: Path) -> list[Example]:
    """One ``<intent>.txt`` per intent, one utterance a line; ``#`` starts a comment line."""
    files = sorted(path.glob("*.txt"))
    if not files:
        raise ExamplesError(f"no <intent>.txt files in {path}")
    out: list[Example] = []
    for file in files:
        label = file.stem
        for line in file.read_text(encoding="utf-8").splitlines():
            text = line.strip()
            if text and not text.startswith("#"):
                out.append((text, label))
    return out


def read_csv(path: Path) -> list[Example]:
    """``text,category`` with a header (Banking77's layout). Quoted texts may span lines."""
    with path.open(newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        if reader.fieldnames is None or not {"text", "category"} <= set(reader.fieldnames):
            raise ExamplesError(f"{path}: expected a header with the columns text,category")
        return [(row["text"].strip(), row["category"].strip()) for row in reader if row["text"].strip()]


def read_clinc(path: Path) -> Splits:
    """CLINC150's ``data_full.json``: train/val/test plus oos_train/oos_val/oos_test lists of [text, label]."""
    raw = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(raw, dict) or "train" not in raw or "test" not in raw:
        raise ExamplesError(f"{path}: expected CLINC150's layout with train and test lists")

    def part(name: str) -> list[Example]:
        rows = list(raw.get(name) or []) + list(raw.get(f"oos_{name}") or [])
        return [(str(text), OUT_OF_SCOPE if label == "oos" else str(label)) for text, label in rows]

    return Splits(train=part("train"), val=part("val"), test=part("test"), name=path.stem)


def read_examples(path: Path) -> list[Example]:
    """Any supported layout as one list: a folder of intent files, a CSV, or CLINC JSON (all splits' train)."""
    if path.is_dir():
        return read_intents_dir(path)
    if path.suffix.lower() == ".csv":
        return read_csv(path)
    if path.suffix.lower() == ".json":
        return read_clinc(path).train
    raise ExamplesError(f"{path}: expected a folder of <intent>.txt files, a .csv or a CLINC150-style .json")


def data_hash(examples: Iterable[Example], *extra: str) -> str:
    """A stable digest of the examples (in any order) and of anything else the model depends on."""
    digest = hashlib.sha256()
    for part in extra:
        digest.update(part.encode())
        digest.update(b"\x00")
    for text, label in sorted(examples):
        digest.update(label.encode())
        digest.update(b"\x1f")
        digest.update(text.encode())
        digest.update(b"\x1e")
    return digest.hexdigest()


def labels_of(examples: Sequence[Example]) -> list[str]:
    return sorted({label for _, label in examples})

from __future__ import annotations

import json
from pathlib import Path

from tandem.understanding.evaluation import carve, load_splits
from tandem.understanding.examples import OUT_OF_SCOPE, data_hash, read_csv, read_examples


def test_a_banking77_style_csv_keeps_quoted_texts_that_span_lines(tmp_path: Path) -> None:
    path = tmp_path / "train.csv"
    path.write_text(
        'text,category\n"my card\nwas declined, again",declined_card_payment\nlost it,lost_or_stolen_card\n'
    )
    assert read_csv(path) == [
        ("my card\nwas declined, again", "declined_card_payment"),
        ("lost it", "lost_or_stolen_card"),
    ]


def test_a_clinc150_style_json_brings_its_splits_with_oos_named_out_of_scope(tmp_path: Path) -> None:
    path = tmp_path / "data_full.json"
    data = {
        "train": [["what's my balance", "balance"]],
        "val": [["balance please", "balance"]],
        "test": [["how much money do I have", "balance"]],
        "oos_train": [["tell me a joke", "oos"]],
        "oos_val": [["sing", "oos"]],
        "oos_test": [["weather?", "oos"]],
    }
    path.write_text(json.dumps(data))
    splits = load_splits(path)
    assert splits.train == [("what's my balance", "balance"), ("tell me a joke", OUT_OF_SCOPE)]
    assert splits.val[-1] == ("sing", OUT_OF_SCOPE)
    assert splits.test[-1] == ("weather?", OUT_OF_SCOPE)
    assert read_examples(path) == splits.train


def test_the_data_hash_ignores_order_but_not_content() -> None:
    a = [("hi", "greeting"), ("bye", "goodbye")]
    assert data_hash(a) == data_hash(list(reversed(a)))
    assert data_hash(a) != data_hash([*a, ("hello", "greeting")])
    assert data_hash(a, "recipe-1") != data_hash(a, "recipe-2")


def test_a_carved_validation_split_keeps_every_intent_and_leaves_train_disjoint() -> None:
    examples = [(f"{label} {i}", label) for label in ("a", "b", "c") for i in range(20)]
    rest, val = carve(examples, share=0.1)
    assert {label for _, label in val} == {"a", "b", "c"}
    assert len(val) == 6 and not set(rest) & set(val) and len(rest) + len(val) == len(examples)


def test_out_of_scope_lines_can_set_the_threshold_without_being_learnt_as_a_class() -> None:
    from tandem.understanding.model import IntentModel, Recipe

    intents = {
        "balance": ["what's my balance", "how much money do I have", "balance please", "money in checking"],
        "lost_card": ["I lost my card", "my card was stolen", "can't find my card", "card is missing"],
    }
    train = [(t, label) for label, lines in intents.items() for t in lines] + [("tell me a joke", OUT_OF_SCOPE)]
    val = [
        ("how much is in my account", "balance"),
        ("someone took my card", "lost_card"),
        ("what's the weather", OUT_OF_SCOPE),
        ("play a song", OUT_OF_SCOPE),
    ]
    model = IntentModel.train(train, recipe=Recipe(oos_class=False, oos_recall_floor=1.0), val=val)
    assert OUT_OF_SCOPE not in model.labels
    assert model.threshold > 0
    assert [p.label for p in model.predict(["what's the weather", "play a song"])] == [OUT_OF_SCOPE] * 2

from __future__ import annotations

from tandem.sim.questions import asked_facts
from tandem.sim.repeats import Seen, count_from_text


def test_a_question_names_the_facts_it_asks_for() -> None:
    asked, confirmed = asked_facts(
        "Thanks, Maria. To protect your account, please confirm your date of birth and the ZIP code on your account."
    )
    assert asked == {"date_of_birth", "zip"} and confirmed == set()


def test_saying_the_value_back_is_a_confirmation_not_a_question() -> None:
    asked, confirmed = asked_facts("Are you still at ZIP 94110?", {"zip": ["94110"]})
    assert asked == set() and confirmed == {"zip"}


def test_statements_and_anything_else_are_not_questions() -> None:
    assert asked_facts("I have noted your date of birth. Anything else I can help you with?") == (set(), set())


def test_asking_again_on_the_same_leg_is_a_repeat() -> None:
    lines = [
        Seen("bot", "What's the phone number on your account?", 1),
        Seen("customer", "+1 415 555 0134", 1, (("phone", "+1 415 555 0134"),)),
        Seen("human", "Sorry, what's the phone number on your account?", 1),
    ]
    (repeat,) = count_from_text(lines)
    assert (repeat.fact, repeat.by, repeat.where) == ("phone", "human", "line 3")


def test_a_challenge_on_a_new_leg_is_not_a_repeat_but_other_facts_are() -> None:
    lines = [
        Seen("customer", "March 14, 1985", 1, (("date_of_birth", "March 14, 1985"), ("phone", "415 555 0134"))),
        Seen("bot", "To protect your account, please confirm your date of birth.", 2),
        Seen("bot", "And what's your phone number?", 2),
    ]
    assert [r.fact for r in count_from_text(lines)] == ["phone"]


def test_asking_again_after_that_does_not_match_is_not_a_repeat() -> None:
    lines = [
        Seen("customer", "March 15, 1985", 1, (("date_of_birth", "March 15, 1985"),)),
        Seen("bot", "That doesn't match what we have on file.", 1),
        Seen("bot", "To protect your account, please confirm your date of birth.", 1),
    ]
    assert count_from_text(lines) == []

from __future__ import annotations

from datetime import datetime

from tandem.understanding.entities import extract
from tandem.understanding.redaction import redact_card_numbers
from tandem.understanding.rules import sentiment

NOW = datetime(2026, 12, 3, 10, 0)


def test_dates_are_read_in_the_ways_people_write_them_and_relative_to_the_interactions_clock() -> None:
    assert extract("born March 14, 1985", NOW)["date"] == "1985-03-14"
    assert extract("born 14 March 1985", NOW)["date"] == "1985-03-14"
    assert extract("it was 11/30/2026", NOW)["date"] == "2026-11-30"
    assert extract("it happened yesterday", NOW)["date"] == "2026-12-02"


def test_money_card_ending_ids_phone_email_and_zip_are_extracted_and_normalised() -> None:
    found = extract("My card ending 4242 was declined for $86.40; call (415) 555-0134, zip 94110", NOW)
    assert found["amount"] == {"amount_minor": 8640, "currency": "USD"}
    assert found["card_last4"] == "4242"
    assert found["phone"] == "+14155550134"
    assert found["zip"] == "94110"
    assert extract("member MBR-55821 claim CLM-7781", NOW) == {"member_id": "MBR-55821", "claim_id": "CLM-7781"}
    assert extract("write to maria.lopez@example.com", NOW)["email"] == "maria.lopez@example.com"


def test_a_full_card_number_is_masked_to_its_last_four_but_other_long_numbers_are_left_alone() -> None:
    assert redact_card_numbers("my card is 4111 1111 1111 1111 ok") == "my card is [card ending 1111] ok"
    assert redact_card_numbers("ref 1234567890123") == "ref 1234567890123"  # fails Luhn


def test_sentiment_names_the_cue_that_decided_it() -> None:
    assert sentiment("This is ridiculous, third time calling") == (-0.8, "angry", "said 'ridiculous'")
    assert sentiment("I'm stranded abroad")[1] == "distressed"
    assert sentiment("ok")[1] == "neutral"

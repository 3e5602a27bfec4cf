"""Countries in what a customer says, as ISO 3166 alpha-2 codes, and the dates of a trip beside them."""

from __future__ import annotations

from datetime import date, datetime

import pytest

from tandem.understanding.countries import NAMES, country_list, country_name, find_countries
from tandem.understanding.entities import extract, find_dates

TODAY = date(2026, 12, 3)


@pytest.mark.parametrize(
    ("text", "codes"),
    [
        ("I'm going to Portugal from Dec 10 to Dec 20", ["PT"]),
        ("Japan, South Korea and taiwan", ["JP", "KR", "TW"]),
        ("spain then FRANCE", ["ES", "FR"]),
        ("the Netherlands and the Czech Republic", ["NL", "CZ"]),
        ("Côte d'Ivoire and Ivory Coast", ["CI"]),
    ],
)
def test_country_names_are_read_in_the_order_named_each_once(text: str, codes: list[str]) -> None:
    assert find_countries(text) == codes


@pytest.mark.parametrize(
    ("text", "codes"),
    [
        ("a week in the UK", ["GB"]),
        ("back to the States", ["US"]),
        ("flying to the US", ["US"]),
        ("the USA and the U.K.", ["US", "GB"]),
        ("England and Scotland", ["GB"]),
        ("Holland", ["NL"]),
        ("the UAE", ["AE"]),
    ],
)
def test_common_aliases_name_their_country(text: str, codes: list[str]) -> None:
    assert find_countries(text) == codes


def test_the_longest_name_wins_so_a_country_inside_another_is_not_read_twice() -> None:
    assert find_countries("Papua New Guinea, South Sudan and Niger") == ["PG", "SS", "NE"]
    assert find_countries("Nigeria") == ["NG"]
    assert find_countries("the Dominican Republic") == ["DO"]


def test_everyday_words_and_first_names_are_countries_only_when_capitalised() -> None:
    assert find_countries("a turkey sandwich with my friend jordan, and the china set for us") == []
    assert find_countries("Turkey and Jordan") == ["TR", "JO"]


def test_words_that_merely_contain_a_country_and_continents_are_not_countries() -> None:
    assert find_countries("my American Express card, a woman in Omaha") == []
    assert find_countries("a cruise around South America") == []
    assert find_countries("I'm traveling abroad next week") == []


def test_codes_are_said_back_as_names_in_a_sentence() -> None:
    assert country_name("PT") == "Portugal" and country_name("gb") == "the United Kingdom"
    assert country_name("ZZ") == "ZZ"
    assert country_list(["PT"]) == "Portugal"
    assert country_list(["PT", "ES"]) == "Portugal and Spain"
    assert country_list(["JP", "KR", "TW"]) == "Japan, South Korea and Taiwan"


def test_every_code_is_an_alpha_2_code_and_every_name_reads_back_as_its_code() -> None:
    assert all(len(code) == 2 and code.isupper() for code in NAMES)
    for code, name in NAMES.items():
        assert find_countries(f"to {name} soon") == [code], name


def test_extract_gives_a_trips_two_dates_in_the_order_said() -> None:
    found = extract("I'm traveling to Portugal and Spain from Dec 10 to Dec 20", datetime(2026, 12, 3, 9))
    assert found["date"] == "2026-12-10"
    assert found["dates"] == ["2026-12-10", "2026-12-20"]


def test_a_trips_dates_are_read_against_the_interactions_clock() -> None:
    assert find_dates("from December 8th to the 20th", TODAY) == ["2026-12-08", "2026-12-20"]
    assert find_dates("from Dec 28 to Jan 5", TODAY) == ["2026-12-28", "2027-01-05"]
    assert find_dates("tomorrow until in two weeks", TODAY) == ["2026-12-04", "2026-12-17"]

"""Knowledge answers: retrieval over the tenants' help articles returns the passage and where it came from."""

from __future__ import annotations

from pathlib import Path

import pytest

from tandem.knowledge.articles import Passage, read_articles, split_markdown
from tandem.knowledge.retrieval import KnowledgeBase, Lookup, TenantKnowledge, recall_at, series, tokens
from tandem.world.world import EXAMPLES_DIR

ARTICLES = {"bank": EXAMPLES_DIR / "bank" / "articles", "health_plan": EXAMPLES_DIR / "healthcare" / "articles"}
# Written for this test in customers' words, not copied from the articles.
QUESTIONS = {
    "bank": [
        ("someone nicked my purse with my debit card", "lost-or-stolen-card.md"),
        ("how do I stop my card getting frozen when I go on holiday to Italy", "travel-notices.md"),
        ("I want to challenge a payment to a shop I never visited", "disputing-a-charge.md"),
        ("what fee do you charge when I go below zero", "overdraft.md"),
        ("I entered my PIN wrong three times", "reset-pin.md"),
    ],
    "health_plan": [
        ("can I split what I owe into monthly payments", "payment-plans.md"),
        ("how do I appeal a denied claim", "claim-denials-and-appeals.md"),
        ("my job ended, am I still insured", "eligibility-and-coverage.md"),
        ("where do I find a new insurance card", "id-cards.md"),
        ("I need to change the date of my appointment", "rescheduling-appointments.md"),
    ],
}


@pytest.mark.parametrize("kind", sorted(ARTICLES))
def test_each_tenant_ships_fifteen_to_thirty_short_articles(kind: str) -> None:
    sources = {p.source for p in read_articles(ARTICLES[kind])}
    assert 15 <= len(sources) <= 30
    assert "README.md" not in sources


@pytest.mark.parametrize("kind", sorted(ARTICLES))
def test_a_customers_question_finds_the_article_that_answers_it_among_the_first_five(kind: str) -> None:
    kb = KnowledgeBase.from_folder(ARTICLES[kind])
    found = 0
    for question, source in QUESTIONS[kind]:
        hits = kb.search(question, 5, by_source=True)
        found += source in [h.passage.source for h in hits]
    assert found / len(QUESTIONS[kind]) >= 0.8


def test_an_answer_is_a_passage_with_its_source_title_and_section() -> None:
    kb = KnowledgeBase.from_folder(ARTICLES["bank"])
    hit = kb.answer("how long until my replacement card arrives")
    assert hit is not None
    assert hit.passage.source == "lost-or-stolen-card.md"
    assert hit.passage.title == "Lost or stolen card"
    assert hit.passage.section == "How long a replacement takes"
    assert "5 to 7 business days" in hit.passage.text
    assert hit.passage.cite == "lost-or-stolen-card.md#how-long-a-replacement-takes"


def test_a_question_the_articles_do_not_cover_gets_no_answer_rather_than_a_wrong_one() -> None:
    kb = KnowledgeBase.from_folder(ARTICLES["bank"])
    assert kb.answer("what's the best lasagne recipe") is None
    assert kb.search("zzzz qqqq") == []


def test_markdown_is_split_at_headings_and_long_sections_at_paragraphs(tmp_path: Path) -> None:
    long = "\n\n".join(f"Paragraph {i} " + "word " * 60 for i in range(6))
    passages = split_markdown("a.md", f"# Title\n\nIntro line.\n\n## First\nOne.\n\n## Second\n{long}", max_chars=800)
    assert [p.section for p in passages][:2] == [None, "First"]
    assert all(p.title == "Title" for p in passages)
    assert len([p for p in passages if p.section == "Second"]) > 1
    assert all(len(p.text) <= 800 for p in passages if p.section == "Second")


def test_tokens_drop_stop_words_and_fold_simple_suffixes() -> None:
    assert tokens("My cards were declined when I was travelling") == ["card", "were", "declin", "travell"]


def test_capped_recall_counts_at_most_k_relevant_items() -> None:
    assert recall_at(["a", "b", "c"], ["a", "x"], 5) == 0.5
    assert recall_at(["a", "b", "c", "d", "e", "f"], list("abcdefgh"), 5) == 1.0


def test_each_tenant_answers_from_its_own_articles() -> None:
    library = TenantKnowledge()
    assert set(library.folders) >= {"bank", "health"}
    bank = library.answer("bank", "how do I add a travel notice before my trip")
    health = library.answer("health", "can I appeal a denied claim")
    assert bank is not None and bank.passage.source == "travel-notices.md"
    assert health is not None and health.passage.source == "claim-denials-and-appeals.md"
    assert library.answer("nobody", "anything") is None


def test_a_passage_titled_with_the_asked_product_outranks_one_that_only_mentions_it() -> None:
    from tandem.knowledge.articles import Passage

    about = Passage("silver.md", "Silver Rewards Card: getting started", None, "Apply online; approval takes a day.")
    mention = Passage(
        "compare.md",
        "Choosing a card",
        None,
        "The silver rewards card, the gold card and the bronze card differ in fees; the silver rewards card "
        "suits most people, and the silver rewards card has no annual fee.",
    )
    filler = [Passage(f"f{i}.md", f"Topic {i}", None, f"unrelated words about branch hours {i}") for i in range(8)]
    plain = KnowledgeBase([mention, about, *filler], title_weight=1)
    weighted = KnowledgeBase([mention, about, *filler])
    assert plain.search("silver rewards card", 1)[0].passage.source == "compare.md"
    assert weighted.search("silver rewards card", 1)[0].passage.source == "silver.md"


@pytest.mark.parametrize("bad", [{"title_weight": 0}, {"k1": 0.0}, {"b": 1.5}])
def test_bm25_parameters_out_of_range_are_refused_with_the_values_named(bad: dict[str, float]) -> None:
    passages = read_articles(ARTICLES["bank"])
    with pytest.raises(ValueError, match="BM25 needs"):
        KnowledgeBase(passages, **bad)  # type: ignore[arg-type]


def test_an_articles_series_is_its_folder_or_the_name_before_its_number() -> None:
    assert series("cards/gold.md") == "cards"
    assert series("doc_credit_cards_ecocard_004") == "doc_credit_cards_ecocard"
    assert series("doc_bank_accounts_(general)_12") == "doc_bank_accounts_(general)"
    assert series("card-declined.md") == "card-declined"


def _product_pages() -> list[Passage]:
    pages = {
        "gold": ["Gold Card: overview", "Gold Card: annual fee", "Gold Card: cash back", "Gold Card: travel"],
        "silver": ["Silver Card: overview", "Silver Card: annual fee", "Silver Card: cash back on groceries"],
        "branch": ["Branch opening hours", "Branch accessibility"],
    }
    return [
        Passage(f"doc_{product}_{i:03d}", title, None, f"{title}. Details of the {title.split(':')[-1].strip()}.")
        for product, titles in pages.items()
        for i, title in enumerate(titles, 1)
    ]


def test_a_lookup_follows_the_series_of_its_first_results_with_the_same_question() -> None:
    kb = KnowledgeBase(_product_pages())
    first, *follow_ups = kb.lookup("gold card cash back", 2, follow=2, feedback=False)
    assert first.series is None
    assert [h.passage.source for h in first.hits] == [
        h.passage.source for h in kb.search("gold card cash back", 2, by_source=True)
    ]
    assert first.hits[0].passage.source == "doc_gold_003"
    assert [f.series for f in follow_ups] == list(dict.fromkeys(series(h.passage.source) for h in first.hits))
    shown = [h.passage.source for lookup in [first, *follow_ups] for h in lookup.hits]
    assert len(shown) == len(set(shown))  # a follow-up shows only articles not shown yet
    for follow_up in follow_ups:
        assert 0 < len(follow_up.hits) <= 2
        assert all(series(h.passage.source) == follow_up.series for h in follow_up.hits)


def test_a_lookup_that_follows_nothing_is_the_search_alone() -> None:
    kb = KnowledgeBase(_product_pages())
    lookups = kb.lookup("silver card annual fee", 5, follow=0, feedback=False)
    assert len(lookups) == 1
    assert lookups[0].hits == kb.search("silver card annual fee", 5, by_source=True)
    assert kb.lookup("zzzz qqqq") == [Lookup("zzzz qqqq", None, [])]


def test_a_tenant_lookup_reads_that_tenants_articles_only() -> None:
    library = TenantKnowledge()
    lookups = library.lookup("bank", "my wallet was stolen with my card in it")
    assert lookups and lookups[0].hits[0].passage.source == "lost-or-stolen-card.md"
    sources = {p.source for p in library.base("bank").passages}  # type: ignore[union-attr]
    assert {h.passage.source for lookup in lookups for h in lookup.hits} <= sources
    assert library.lookup("nobody", "anything") == []

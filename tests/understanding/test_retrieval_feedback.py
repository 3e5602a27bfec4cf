"""A lookup's feedback list: the question searched again with the terms its first results share."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pytest

from tandem.knowledge.articles import Passage
from tandem.knowledge.retrieval import KnowledgeBase, Lookup, series, tokens

QUESTION = "my card stopped working abroad"


def _travel_pages() -> list[Passage]:
    """Two pages in the customer's words that share the bank's own terms ("travel", "fly"), a third page of
    their series, one page in those terms alone, and pages about other things."""
    about = [
        Passage("doc_abroad_001", "Card stopped working abroad", None, "Set a travel notice before you fly."),
        Passage("doc_abroad_002", "Using your card abroad", None, "Add a travel notice in the app before you fly."),
        Passage("doc_abroad_003", "Foreign fees", None, "A fee applies to purchases abroad."),
    ]
    filler = [
        Passage(f"doc_other{i}_001", title, None, f"{title}: details for members, page {i}.")
        for i, title in enumerate(["Branch opening hours", "Mortgage rates", "Savings interest", "Closing an account"])
    ]
    # Last, so that among the pages matching no word of the question it comes after the filler.
    terms_only = Passage("doc_notices_001", "Travel notices", None, "Tell us when you fly so purchases are approved.")
    return [*about, *filler, terms_only]


def test_a_lookup_searches_again_with_the_terms_its_first_results_share() -> None:
    kb = KnowledgeBase(_travel_pages())
    first, again = kb.lookup(QUESTION, 2, follow=0)
    assert first == Lookup(QUESTION, None, kb.search(QUESTION, 2, by_source=True))
    assert again.series is None and "travel" in again.feedback
    assert not set(again.feedback) & set(tokens(QUESTION))  # only terms the question does not have
    first_words = {t for h in first.hits for t in tokens(f"{h.passage.title} {h.passage.text}")}
    assert set(again.feedback) <= first_words
    # The page in the bank's own terms shares no word with the question: only the feedback reaches it.
    assert again.hits[0].passage.source == "doc_notices_001"
    assert "doc_notices_001" not in [h.passage.source for h in kb.search(QUESTION, 6, by_source=True)]


def test_without_feedback_a_lookup_is_its_search_and_follow_ups_alone() -> None:
    kb = KnowledgeBase(_travel_pages())
    assert kb.lookup(QUESTION, 2, follow=0, feedback=False) == [
        Lookup(QUESTION, None, kb.search(QUESTION, 2, by_source=True))
    ]
    assert len(KnowledgeBase(_travel_pages(), feedback_weight=0).lookup(QUESTION, 2, follow=0)) == 1


def test_the_feedback_list_comes_before_the_series_followed_and_shows_nothing_twice() -> None:
    kb = KnowledgeBase(_travel_pages())
    lookups = kb.lookup(QUESTION, 1, follow=1)
    assert [bool(lookup.feedback) for lookup in lookups] == [False, True, False]
    assert lookups[2].series == series(lookups[0].hits[0].passage.source)
    shown = [h.passage.source for lookup in lookups for h in lookup.hits]
    assert len(shown) == len(set(shown))
    assert all(len(lookup.hits) <= 1 for lookup in lookups)


def test_a_question_matching_no_word_gets_no_feedback_list() -> None:
    assert KnowledgeBase(_travel_pages()).lookup("zzzz qqqq") == [Lookup("zzzz qqqq", None, [])]


def test_a_negative_feedback_weight_is_refused() -> None:
    with pytest.raises(ValueError, match="feedback_weight"):
        KnowledgeBase(_travel_pages(), feedback_weight=-1.0)


class KeywordEmbedder:
    """Vectors by keyword, so the test decides which pages are alike in meaning: the question points one way,
    the pages about working abroad halfway between it and a second direction, the overseas help page along
    that second direction alone (no word of the question, no term of the first pages), everything else
    elsewhere."""

    name = "keywords"

    def encode(self, texts: list[str]) -> npt.NDArray[np.float32]:
        rows = []
        for text in texts:
            if text == QUESTION:
                rows.append([1.0, 0.0, 0.0])
            elif "overseas" in text.lower():
                rows.append([0.0, 1.0, 0.0])
            elif "abroad" in text.lower():
                rows.append([0.7071, 0.7071, 0.0])
            else:
                rows.append([0.0, 0.0, 1.0])
        return np.array(rows, dtype=np.float32)


def _with_overseas_help() -> list[Passage]:
    """The two pages about working abroad, two pages about other things, and the overseas help page: last,
    so that a tie in either ranking puts it behind every other page."""
    pages = _travel_pages()
    return [*pages[:2], *pages[3:5], Passage("doc_overseas_001", "Overseas help", None, "Call us from any country.")]


def test_with_embeddings_the_feedback_list_also_moves_towards_the_first_pages_meaning() -> None:
    moved = KnowledgeBase(_with_overseas_help(), embedder=KeywordEmbedder())
    first, again = moved.lookup(QUESTION, 2, follow=0)
    assert "doc_overseas_001" not in [h.passage.source for h in first.hits]
    assert "doc_overseas_001" in [h.passage.source for h in again.hits]
    # Without the dense feedback the page is as far from the question as any other: it stays last.
    still = KnowledgeBase(_with_overseas_help(), embedder=KeywordEmbedder(), dense_feedback_weight=0)
    first_still, again_still = still.lookup(QUESTION, 2, follow=0)
    assert first_still == first
    assert again_still.feedback == again.feedback
    assert "doc_overseas_001" not in [h.passage.source for h in again_still.hits]


def test_a_negative_dense_feedback_weight_is_refused() -> None:
    with pytest.raises(ValueError, match="dense_feedback_weight"):
        KnowledgeBase(_travel_pages(), dense_feedback_weight=-0.5)

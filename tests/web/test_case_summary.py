"""The agent desktop shows the case summary written for the handoff, first on the card (Chromium, a real server)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.web.conftest import Server
from tests.web.test_pages import BANK_SKILLS, WAIT_MS, pages, sign_in_agent, start_anonymous_chat

pytestmark = pytest.mark.browser
__all__ = ["pages"]  # the two browser contexts, shared with the other page tests


def test_the_agent_reads_the_handoff_summary_at_the_top_of_the_case_card(server: Server, pages: Any) -> None:
    from playwright.sync_api import expect

    customer, agent_page = pages
    agent = server.create_agent("bank", "Alex Morgan", BANK_SKILLS)
    sign_in_agent(agent_page, server, agent)

    start_anonymous_chat(customer, server, "My card was declined and I want to talk to a person")

    offer = agent_page.get_by_role("article").filter(has_text="Offer:")
    expect(offer).to_be_visible(timeout=WAIT_MS)
    offer.get_by_role("button", name="Accept").click()

    # Written after the turn that asked for a person: the case card shows it as soon as it is there, first.
    card = agent_page.locator("#card")
    summary = card.locator("dt", has_text="Summary")
    expect(summary).to_be_visible(timeout=WAIT_MS)
    expect(card.locator("dt").first).to_have_text("Summary")
    expect(card.locator("dd").first).to_contain_text("Handed over to", timeout=WAIT_MS)
    expect(card.locator("dd").first).to_contain_text("the customer asked for a person")

"""The customer chat and the agent desktop, driven in Chromium against a real server.

Every wait is on something visible (Playwright's expect polls with a timeout); nothing sleeps.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from tests.web.conftest import Server

pytestmark = pytest.mark.browser

BANK_SKILLS = ["cards", "fraud", "disputes", "accounts"]
WAIT_MS = 15_000
SCREENSHOTS = Path(os.environ.get("TANDEM_SCREENSHOTS", "/tmp"))


@pytest.fixture
def pages(browser: Any) -> Any:
    """Two separate browser contexts: the customer's and the agent's, sharing nothing (as two devices)."""
    customer_ctx = browser.new_context(viewport={"width": 900, "height": 1000})
    agent_ctx = browser.new_context(viewport={"width": 1400, "height": 1300})
    errors: list[str] = []
    customer, agent = customer_ctx.new_page(), agent_ctx.new_page()
    for page in (customer, agent):
        page.on("pageerror", lambda exc: errors.append(str(exc)))
    yield customer, agent
    customer_ctx.close()
    agent_ctx.close()
    assert errors == [], f"the pages raised: {errors}"


def sign_in_agent(page: Any, server: Server, agent: dict[str, Any]) -> None:
    from playwright.sync_api import expect

    page.goto(f"{server.url}/agent")
    page.get_by_label("Agent token").fill(agent["token"])
    page.get_by_label("Agent id").fill(agent["id"])
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_text(f"Signed in as {agent['id']}")).to_be_visible(timeout=WAIT_MS)
    page.get_by_label("Available").check()
    expect(page.get_by_role("status").filter(has_text="You are available.")).to_be_visible(timeout=WAIT_MS)
    expect(page.locator("#live")).to_have_text("On", timeout=WAIT_MS)


def start_anonymous_chat(page: Any, server: Server, line: str, name: str = "Maria") -> None:
    """A customer opens the bank's chat without signing in, gives a name and, once greeted, says ``line``."""
    from playwright.sync_api import expect

    page.goto(f"{server.url}/chat?tenant=bank")
    page.get_by_label("Your name").fill(name)
    page.get_by_role("button", name="Start chat").click()
    expect(page.get_by_role("log")).to_contain_text("How can I help you today?", timeout=WAIT_MS)
    page.get_by_label("Your message").fill(line)
    page.get_by_label("Your message").press("Enter")


def test_a_customer_asks_for_a_person_and_the_agent_takes_over_live_then_hands_back(server: Server, pages: Any) -> None:
    from playwright.sync_api import expect

    customer, agent_page = pages
    agent = server.create_agent("bank", "Alex Morgan", BANK_SKILLS)
    sign_in_agent(agent_page, server, agent)

    # The customer starts an anonymous chat; the assistant greets them.
    customer.goto(f"{server.url}/chat?tenant=bank")
    expect(customer.get_by_role("heading", name="Chat with Harbor Bank")).to_be_visible()
    customer.get_by_label("Your name").fill("Maria")
    customer.get_by_role("button", name="Start chat").click()
    log = customer.get_by_role("log")
    expect(log).to_contain_text("How can I help you today?", timeout=WAIT_MS)
    expect(customer.locator("#status")).to_have_text("With the assistant")

    # They ask for a person in their own words.
    customer.get_by_label("Your message").fill("My card was declined and I want to talk to a person")
    customer.get_by_label("Your message").press("Enter")
    expect(log).to_contain_text("My card was declined", timeout=WAIT_MS)
    expect(customer.locator("#status")).to_have_text("Waiting for an agent", timeout=WAIT_MS)

    # The offer reaches the agent live, with the handoff card.
    offer = agent_page.get_by_role("article").filter(has_text="Offer:")
    expect(offer).to_be_visible(timeout=WAIT_MS)
    for label in ("Who", "Why", "Known", "Tried", "Pending", "Sentiment", "Suggested next step"):
        expect(offer.locator("dt", has_text=label).first).to_be_visible()
    expect(offer).to_contain_text("Maria")
    expect(offer).to_contain_text("My card was declined")
    agent_page.screenshot(path=str(SCREENSHOTS / "tandem-agent-offer.png"), full_page=True)
    offer.get_by_role("button", name="Accept").click()

    # The agent sees the conversation so far and the case file; the customer sees they have a person.
    agent_log = agent_page.get_by_role("log")
    expect(agent_log).to_contain_text("How can I help you today?", timeout=WAIT_MS)
    expect(agent_log).to_contain_text("My card was declined")
    expect(agent_page.locator("#case-status")).to_contain_text("you hold the floor", timeout=WAIT_MS)
    expect(agent_page.get_by_role("table")).to_contain_text("Source")
    expect(customer.locator("#status")).to_have_text("With an agent", timeout=WAIT_MS)

    # Messages go both ways, live.
    agent_page.get_by_label("Message to the customer").fill("Hello Maria, this is Alex. I can help with the card.")
    agent_page.get_by_role("button", name="Send", exact=True).click()
    expect(log).to_contain_text("this is Alex", timeout=WAIT_MS)
    expect(log.locator("li.human")).to_contain_text("Agent")

    customer.get_by_label("Your message").fill("Thank you Alex, it was at a grocery store")
    customer.get_by_role("button", name="Send", exact=True).click()
    expect(agent_log).to_contain_text("grocery store", timeout=WAIT_MS)
    customer.screenshot(path=str(SCREENSHOTS / "tandem-chat.png"), full_page=True)
    agent_page.screenshot(path=str(SCREENSHOTS / "tandem-agent-case.png"), full_page=True)

    # The agent hands back to the assistant with a goal, then wraps up.
    agent_page.get_by_label("Flow").fill("card_declined")
    agent_page.get_by_label("Goal").fill("Confirm the grocery purchase and lift the hold")
    agent_page.get_by_label("Instructions for the AI").fill("The customer confirmed the purchase is theirs.")
    agent_page.get_by_role("button", name="Hand back").click()
    expect(agent_page.get_by_text("Handed back to the AI.")).to_be_visible(timeout=WAIT_MS)
    expect(customer.locator("#status")).to_have_text("With the assistant", timeout=WAIT_MS)
    expect(agent_page.get_by_label("Message to the customer")).to_be_disabled()

    agent_page.get_by_label("Notes").fill("Declined at a grocery store; handed back to lift the hold.")
    agent_page.get_by_role("button", name="Wrap up").click()
    expect(agent_page.get_by_text("Wrapped up.")).to_be_visible(timeout=WAIT_MS)
    expect(agent_page.locator("#case")).to_be_hidden()


def test_a_trusted_channel_identifies_the_customer_so_the_card_shows_verified_facts_with_their_sources(
    server: Server, pages: Any
) -> None:
    from playwright.sync_api import expect

    customer, agent_page = pages
    agent = server.create_agent("bank", "Sam Rivera", BANK_SKILLS)
    sign_in_agent(agent_page, server, agent)
    token = server.create_chat_channel("bank")

    customer.goto(f"{server.url}/chat?tenant=bank&token={token}")
    customer.get_by_label("Your phone number").fill("+14155550134")
    customer.get_by_role("button", name="Start chat").click()
    log = customer.get_by_role("log")
    expect(log).to_contain_text("Hi Maria", timeout=WAIT_MS)
    for line, answer in [
        ("my card was declined", "date of birth"),
        ("March 14 1985", "ZIP code"),
        ("94110", "connecting you with a person"),
    ]:
        customer.get_by_label("Your message").fill(line)
        customer.get_by_label("Your message").press("Enter")
        expect(log.locator("li.customer").last).to_contain_text(line, timeout=WAIT_MS)
        expect(log.locator("li").last).to_contain_text(answer, timeout=WAIT_MS)
    expect(customer.locator("#status")).to_have_text("Waiting for an agent", timeout=WAIT_MS)

    offer = agent_page.get_by_role("article").filter(has_text="Offer:")
    expect(offer).to_contain_text("Maria Lopez", timeout=WAIT_MS)
    expect(offer).to_contain_text("verified by security questions")
    expect(offer).to_contain_text("ZIP code: 94110")
    agent_page.screenshot(path=str(SCREENSHOTS / "tandem-agent-offer-verified.png"), full_page=True)
    offer.get_by_role("button", name="Accept").click()

    facts = agent_page.get_by_role("table")
    zip_row = facts.get_by_role("row").filter(has=agent_page.get_by_role("rowheader", name="zip"))
    expect(zip_row).to_contain_text("94110", timeout=WAIT_MS)
    expect(zip_row).to_contain_text("yes")
    expect(customer.locator("#status")).to_have_text("With an agent", timeout=WAIT_MS)
    agent_page.screenshot(path=str(SCREENSHOTS / "tandem-agent-case-verified.png"), full_page=True)


def test_a_customer_can_chat_with_the_keyboard_alone_and_a_reload_continues_the_same_chat(
    server: Server, pages: Any
) -> None:
    from playwright.sync_api import expect

    customer, _ = pages
    customer.goto(f"{server.url}/chat?tenant=health")
    expect(customer.get_by_role("heading", name="Chat with Blue Harbor Health")).to_be_visible()
    # The name field has focus on arrival, Enter starts, and the message box has focus once started.
    expect(customer.get_by_label("Your name")).to_be_focused()
    customer.keyboard.type("Aisha")
    customer.keyboard.press("Enter")
    expect(customer.get_by_label("Your message")).to_be_focused(timeout=WAIT_MS)
    customer.keyboard.type("hello there")
    customer.keyboard.press("Enter")
    log = customer.get_by_role("log")
    expect(log).to_contain_text("hello there", timeout=WAIT_MS)
    customer.keyboard.press("Tab")  # Send
    customer.keyboard.press("Tab")  # Ask for a person
    expect(customer.get_by_role("button", name="Ask for a person")).to_be_focused()
    customer.keyboard.press("Enter")
    expect(customer.locator("#status")).to_have_text("Waiting for an agent", timeout=WAIT_MS)

    customer.reload()
    expect(log).to_contain_text("hello there", timeout=WAIT_MS)
    expect(log.locator("li", has_text="hello there")).to_have_count(1)
    expect(customer.locator("#status")).to_have_text("Waiting for an agent")
    customer.get_by_role("button", name="End chat").press("Enter")
    expect(customer.locator("#status")).to_have_text("Chat ended", timeout=WAIT_MS)
    expect(customer.get_by_role("button", name="Start chat")).to_be_visible()


def test_the_agent_approves_the_dispute_the_bot_proposed_over_its_limit_and_sees_it_run(
    server_with_actions: Server, pages: Any
) -> None:
    import re

    from playwright.sync_api import expect

    server = server_with_actions
    customer, agent_page = pages
    agent = server.create_agent("bank", "Dana Brooks", BANK_SKILLS)
    sign_in_agent(agent_page, server, agent)
    token = server.create_chat_channel("bank")

    customer.goto(f"{server.url}/chat?tenant=bank&token={token}")
    customer.get_by_label("Your phone number").fill("+12125550199")
    customer.get_by_role("button", name="Start chat").click()
    log = customer.get_by_role("log")
    expect(log).to_contain_text("James", timeout=WAIT_MS)
    for line in ["I want to dispute a charge", "07/02/1990", "10001", "the ElectroMart one for $1,250"]:
        customer.get_by_label("Your message").fill(line)
        customer.get_by_label("Your message").press("Enter")
        expect(log.locator("li.customer").last).to_contain_text(line, timeout=WAIT_MS)
        expect(log.locator("li").last).not_to_have_class(re.compile(r"\bcustomer\b"), timeout=WAIT_MS)
    expect(customer.locator("#status")).to_have_text("Waiting for an agent", timeout=WAIT_MS)

    offer = agent_page.get_by_role("article").filter(has_text="Offer:")
    expect(offer).to_contain_text("James Chen", timeout=WAIT_MS)
    offer.get_by_role("button", name="Accept").click()

    # The proposed dispute waits for the agent, its amount shown as money, with the policy's rule.
    panel = agent_page.get_by_role("region", name="Actions")
    action = panel.get_by_role("article", name="open dispute")
    expect(action).to_contain_text("awaiting your approval", timeout=WAIT_MS)
    expect(action).to_contain_text("$1,250.00")
    expect(action).to_contain_text("rule")
    agent_page.screenshot(path=str(SCREENSHOTS / "tandem-agent-action-awaiting.png"), full_page=True)
    action.get_by_role("button", name="Approve").click()

    # Approved, then run by the worker through the example MCP server; the live events refresh the panel.
    expect(action.locator("dd").first).to_have_text(re.compile(r"^(approved|running|succeeded)$"), timeout=WAIT_MS)
    expect(action.get_by_role("button", name="Approve")).to_have_count(0)
    expect(agent_page.locator("#error")).to_have_text("")
    expect(action.locator("dd").first).to_have_text("succeeded", timeout=WAIT_MS)
    agent_page.screenshot(path=str(SCREENSHOTS / "tandem-agent-action-done.png"), full_page=True)


# WCAG contrast of each element's own text against the first opaque background behind it.
LOWEST_CONTRAST = r"""() => {
  const channel = (v) => (v /= 255) <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4;
  const luminance = (css) => {
    const [r, g, b] = css.match(/[\d.]+/g).map(Number);
    return 0.2126 * channel(r) + 0.7152 * channel(g) + 0.0722 * channel(b);
  };
  const background = (el) => {
    for (; el; el = el.parentElement) {
      const c = getComputedStyle(el).backgroundColor;
      if (c !== "rgba(0, 0, 0, 0)" && c !== "transparent") return c;
    }
    return "rgb(255, 255, 255)";
  };
  let lowest = [99, ""];
  for (const el of document.querySelectorAll("body *")) {
    const ownText = [...el.childNodes].some((n) => n.nodeType === 3 && n.textContent.trim());
    if (!ownText || !el.getClientRects().length) continue;
    const [a, b] = [luminance(getComputedStyle(el).color), luminance(background(el))];
    const ratio = (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
    if (ratio < lowest[0]) lowest = [ratio, el.outerHTML.slice(0, 80)];
  }
  return lowest;
}"""


@pytest.mark.parametrize("path", ["/", "/chat?tenant=bank", "/agent"])
def test_every_control_has_a_name_a_screen_reader_can_say_and_text_has_aa_contrast(
    server: Server, pages: Any, path: str
) -> None:
    customer, _ = pages
    customer.goto(server.url + path)
    customer.wait_for_load_state("networkidle")
    # Reveal the parts that appear later (the chat after starting, the desk after signing in) for the check.
    customer.evaluate("document.querySelectorAll('[hidden]').forEach((el) => el.removeAttribute('hidden'))")
    unnamed = customer.evaluate(
        """() => [...document.querySelectorAll('input, select, textarea, button, a[href]')]
            .filter((el) => el.type !== 'hidden')
            .filter((el) => {
              const byLabel = el.labels && [...el.labels].some((l) => l.textContent.trim());
              const byAria = el.getAttribute('aria-label') || el.getAttribute('aria-labelledby');
              const byText = ['BUTTON', 'A'].includes(el.tagName) && el.textContent.trim();
              return !(byLabel || byAria || byText);
            })
            .map((el) => el.outerHTML.slice(0, 120))"""
    )
    assert unnamed == []
    ratio, element = customer.evaluate(LOWEST_CONTRAST)
    assert ratio >= 4.5, f"text contrast {ratio:.2f} is below WCAG AA in {element}"
    assert customer.evaluate("document.documentElement.lang") == "en"
    assert customer.locator("h1").count() == 1
    if path.startswith("/chat"):
        assert customer.get_by_role("log").get_attribute("aria-live") == "polite"
    name = {"/": "index", "/chat?tenant=bank": "chat-start", "/agent": "agent-sign-in"}[path]
    customer.reload()
    customer.wait_for_load_state("networkidle")
    customer.screenshot(path=str(SCREENSHOTS / f"tandem-{name}.png"), full_page=True)


def test_a_case_view_that_arrives_after_the_wrap_up_is_dropped_quietly(server: Server, pages: Any) -> None:
    """The desk refreshes the case in the background; a view still on its way when the agent wraps up
    must not touch the case that is gone (the page once raised on it)."""
    from playwright.sync_api import expect

    customer, agent_page = pages
    agent = server.create_agent("bank", "Robin Hale", BANK_SKILLS)
    sign_in_agent(agent_page, server, agent)
    start_anonymous_chat(customer, server, "I want to talk to a person")
    agent_page.get_by_role("article").filter(has_text="Offer:").get_by_role("button", name="Accept").click()
    expect(agent_page.locator("#case-status")).to_contain_text("you hold the floor", timeout=WAIT_MS)

    # Hold back every view of the case from here on, hand back (which asks for a view), then wrap up.
    held: list[Any] = []
    holding = [True]

    def hold_views(route: Any) -> None:
        if holding[0] and route.request.method == "GET":
            held.append(route)
        else:
            route.continue_()

    agent_page.route("**/v1/interactions/*", hold_views)
    agent_page.get_by_role("button", name="Hand back").click()
    expect(agent_page.get_by_text("Handed back to the AI.")).to_be_visible(timeout=WAIT_MS)
    agent_page.get_by_role("button", name="Wrap up").click()
    expect(agent_page.get_by_text("Wrapped up.")).to_be_visible(timeout=WAIT_MS)
    assert held, "the hand-back asked for no view of the case"

    # Now the held views arrive, late.
    holding[0] = False
    for route in held:
        with agent_page.expect_response(lambda response, request=route.request: response.request == request) as late:
            route.continue_()
        late.value.finished()
    agent_page.evaluate("() => new Promise((done) => requestAnimationFrame(() => done(null)))")
    expect(agent_page.locator("#case")).to_be_hidden()
    expect(agent_page.locator("#error")).to_have_text("")

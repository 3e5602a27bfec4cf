// The agent desktop: sign in, set presence, take offers, talk with the customer, hand back, wrap up.
import { api, ApiError, LiveStream, appendLine, formatTime, speakerName } from "/static/api.js";

const $ = (id) => document.getElementById(id);
const log = $("log");
const CONVERSATION = new Set(["CustomerSaid", "AgentSaid", "ReplySent"]);

// Kept per tab, so an agent can reload without signing in again or losing the case they are working on.
let me = JSON.parse(sessionStorage.getItem("tandem.agent") || "null"); // {token, id}
let active = JSON.parse(sessionStorage.getItem("tandem.agent.case") || "null"); // {id, card}
let stream = null;
let offers = [];
const seenSeqs = new Map(); // seq -> whether the line on screen has its time

const call = (method, path, body) => api(method, path, { token: me.token, body });

function keep() {
  sessionStorage.setItem("tandem.agent", JSON.stringify(me));
  if (active) sessionStorage.setItem("tandem.agent.case", JSON.stringify(active));
  else sessionStorage.removeItem("tandem.agent.case");
}

function showError(error) {
  $("error").textContent = error ? `${error.message || error}` : "";
}

function notice(text) {
  $("notice").textContent = text;
}

// -- the handoff card ---------------------------------------------------------------------------------------

// The server builds the card from the case file (tandem.routing.card). It is laid out in the order an
// agent reads it before saying hello: the case summary (once written), who, why, what is known, what was
// tried, what is pending, mood, next.

function el(tag, text, className) {
  const node = document.createElement(tag);
  if (text != null) node.textContent = text;
  if (className) node.className = className;
  return node;
}

function list(items) {
  const ul = el("ul");
  for (const item of items) ul.append(el("li", item));
  return items.length ? ul : el("span", "none", "no");
}

const words = (s) => String(s ?? "").replaceAll("_", " ");
// Assurance levels (tandem.case.legs) in an agent's words: how far we know who is on the line.
const ASSURANCE = {
  none: "not verified",
  identified: "identified, not verified",
  knowledge_verified: "verified by security questions",
  strong: "strongly authenticated",
};
const assured = (level) => ASSURANCE[level] || words(level || "none");
const percent = (x) => (x == null ? "" : `${Math.round(Number(x) * 100)}%`);

// Values in the case file are mostly plain, sometimes money or small records.
function textOf(value) {
  if (value == null || value === "") return "—";
  if (typeof value !== "object") return String(value);
  if ("amount_minor" in value && "currency" in value) {
    return new Intl.NumberFormat(undefined, { style: "currency", currency: value.currency }).format(value.amount_minor / 100);
  }
  if (Array.isArray(value)) return value.map(textOf).join(", ");
  return Object.entries(value).map(([k, v]) => `${words(k)}: ${textOf(v)}`).join("; ");
}

function factLine(fact) {
  const how = [fact.source, fact.verified ? "verified" : "not verified", percent(fact.confidence)];
  if (fact.status && fact.status !== "known") how.push(fact.status.toUpperCase());
  return `${fact.label || words(fact.name)}: ${textOf(fact.value)} (${how.filter(Boolean).join(", ")})`;
}

function who(card) {
  return card?.who?.name || card?.who?.customer_id || "unidentified customer";
}

// Beside the live conversation and the facts table (inCase), the card leaves out what they already show.
function renderCard(card = {}, { inCase = false } = {}) {
  const dl = el("dl");
  const row = (label, content) => {
    const dd = el("dd");
    dd.append(content);
    dl.append(el("dt", label), dd);
  };
  const tried = card.tried || {};
  // Written just after the handoff was requested (a moment after the offer, at worst): see refreshCase.
  if (tried.summary) row("Summary", tried.summary);
  const w = card.who || {};
  const legs = (w.legs || []).map((l) => `${l.channel}: ${assured(l.assurance)}${l.verified_by ? ` (${words(l.verified_by)})` : ""}`);
  row("Who", list([
    `${w.name || "name not known"}${w.customer_id ? ` — customer ${w.customer_id}` : ""}`,
    `identity ${assured(w.assurance)}${w.identified_by ? `, identified by ${words(w.identified_by)}` : ""}`,
    ...legs,
  ]));
  const why = card.why || {};
  row("Why", [why.reason, why.intent && `intent ${words(why.intent.name)} (${percent(why.intent.confidence)})`, why.queue && `queue ${why.queue}`]
    .filter(Boolean).join(" — ") || "—");
  if (!inCase) row("Known", list((card.known || []).map(factLine)));
  const triedItems = [];
  if (tried.asked?.length) triedItems.push(`asked for ${tried.asked.map(words).join(", ")}`);
  for (const line of inCase ? [] : tried.last_lines || []) triedItems.push(`${speakerName(line.from, "agent")}: “${line.text}”`);
  for (const r of tried.refused || []) triedItems.push(`refused ${words(r.command)}: ${r.reason}`);
  row("Tried", list(triedItems));
  const pending = card.pending || {};
  row("Pending", list([
    ...(pending.actions || []).map((a) => `${words(a.tool)} — ${words(a.status)}`),
    ...(pending.questions || []).map((q) => `unanswered: ${words(q)}`),
  ]));
  const mood = card.sentiment;
  row("Sentiment", mood ? `${mood.label} (${mood.score})${mood.reason ? ` — ${mood.reason}` : ""}` : "not assessed");
  row("Suggested next step", card.suggested_next_step || "—");
  return dl;
}

// -- offers ---------------------------------------------------------------------------------------------------

async function refreshOffers() {
  const before = new Set(offers.map((o) => o.id));
  offers = (await call("GET", `/v1/agents/${me.id}/offers`)).items || [];
  const fresh = offers.filter((o) => !before.has(o.id));
  if (fresh.length) notice(`New offer: ${who(fresh[0].card)} — ${fresh[0].card?.why?.reason ?? "needs help"}`);
  const empty = el("p", "No offers right now. Set yourself available to receive them.", "hint");
  $("offers").replaceChildren(...(offers.length ? offers.map(offerView) : [empty]));
}

function offerView(offer) {
  const article = el("article", null, "panel offer card");
  const title = el("h3", `Offer: ${who(offer.card)}`);
  title.id = `offer-${offer.id}`;
  article.setAttribute("aria-labelledby", title.id);
  const buttons = el("div", null, "row");
  for (const [verb, label, style] of [["accept", "Accept", ""], ["decline", "Decline", "secondary"]]) {
    const button = el("button", label, style);
    button.setAttribute("aria-describedby", title.id); // "Accept, Offer: Maria Lopez" to a screen reader
    button.addEventListener("click", () => decide(offer, verb));
    buttons.append(button);
  }
  const expires = el("p", offer.expires_at ? `Expires at ${formatTime(offer.expires_at)}` : "", "hint");
  article.append(title, renderCard(offer.card), expires, buttons);
  return article;
}

async function decide(offer, verb) {
  showError(null);
  try {
    const answer = await call("POST", `/v1/offers/${offer.id}/${verb}`, {});
    if (verb === "accept") {
      active = { id: answer.interaction_id, card: offer.card };
      keep();
      await openCase();
      notice(`You are now talking with ${who(offer.card)}.`);
      $("message").focus();
    } else {
      notice("Offer declined.");
    }
  } catch (error) {
    if (error instanceof ApiError && error.status === 410) notice("That offer has expired.");
    else showError(error);
  }
  await refreshOffers().catch(showError);
}

// -- the case being worked ----------------------------------------------------------------------------------

// Lines come from the case's transcript, from the agent stream and from our own sends; each has its seq.
function show(line) {
  const timed = seenSeqs.get(line.seq);
  if (line.text == null || timed || (timed === false && !line.at)) return;
  seenSeqs.set(line.seq, Boolean(line.at)); // a second copy may add the time our own line lacked
  appendLine(log, line, "agent");
}

function lineOf(event) {
  const from = event.type === "CustomerSaid" ? "customer" : event.actor?.kind || "ai";
  const text = event.data?.text ?? (event.data?.digits ? `[keys] ${event.data.digits}` : null);
  return { seq: event.seq, from, text, at: event.occurred_at };
}

async function openCase() {
  $("case").hidden = false;
  log.replaceChildren();
  seenSeqs.clear();
  $("actions").dataset.key = "";
  $("card").replaceChildren(renderCard(active.card, { inCase: true }));
  await refreshCase();
}

async function refreshCase() {
  const current = active;
  if (!current) return;
  let view;
  try {
    view = await call("GET", `/v1/interactions/${current.id}`);
  } catch (error) {
    // After a hand-back or close the agent may no longer see the case; keep what is on screen.
    if (error instanceof ApiError && (error.status === 403 || error.status === 404)) return;
    if (active !== current) return;
    return showError(error);
  }
  // The agent may have wrapped up (or taken another case) while the view was on its way: drop it.
  if (active !== current) return;
  const holding = view.floor?.kind === "human" && (!view.floor.participant_id || view.floor.participant_id === me.id);
  const state = view.status === "closed" ? "closed" : holding ? "you hold the floor" : `floor: ${view.floor?.kind}`;
  $("case-status").textContent = `(${state})`;
  $("message").disabled = !holding || view.status === "closed";
  $("send-button").disabled = $("message").disabled;
  if (view.summary && view.summary !== active.card?.tried?.summary) {
    // A summary written after the offer (or at close) replaces the one the card was opened with.
    active.card = { ...(active.card || {}), tried: { ...(active.card?.tried || {}), summary: view.summary } };
    keep();
    $("card").replaceChildren(renderCard(active.card, { inCase: true }));
  }
  renderFacts(view.facts || {});
  renderActions(view.actions || [], view.status !== "closed");
  // The transcript fills in whatever the stream did not bring (the history, or a gap while reconnecting).
  for (const line of view.transcript || []) show(line);
}

function renderFacts(facts) {
  const rows = Object.entries(facts).map(([name, fact]) => {
    const tr = document.createElement("tr");
    // "card_hold[card:4242]": the fact, then what it is about, on a line of its own.
    const [factName, subject] = name.split(/\[(.*)\]$/);
    const cells = [
      words(factName),
      textOf(fact.value),
      fact.status,
      fact.source,
      fact.confidence == null ? "—" : `${Math.round(fact.confidence * 100)}%`,
      fact.verified ? "yes" : "no",
      fact.at ? formatTime(fact.at) : "—",
    ];
    cells.forEach((text, i) => {
      const cell = el(i === 0 ? "th" : "td", text);
      if (i === 0) {
        cell.scope = "row";
        if (subject) cell.append(el("span", subject, "hint subject"));
      }
      if (i === 2 && fact.status !== "known") cell.className = `fact-${fact.status}`;
      if (i === 5) cell.className = fact.verified ? "yes" : "no";
      tr.append(cell);
    });
    if (fact.disagreements?.length) {
      const note = el("div", null, "hint");
      note.textContent = fact.disagreements.map((d) => `${d.source} said ${textOf(d.value)}`).join("; ");
      tr.children[1].append(note);
    }
    return tr;
  });
  if (!rows.length) {
    const tr = document.createElement("tr");
    const td = document.createElement("td");
    td.colSpan = 7;
    td.textContent = "Nothing known yet.";
    tr.append(td);
    rows.push(tr);
  }
  $("facts").replaceChildren(...rows);
}

// -- actions the AI proposed ------------------------------------------------------------------------------------

// Each action with its arguments, status, the policy's decision and the result; those awaiting approval
// carry Approve and Reject. Approve sends the args digest shown, so it binds to exactly these arguments.
const STATUS_WORDS = { awaiting_approval: "awaiting your approval" };

function actionView(action) {
  const article = el("article", null, `action action-${action.status}`);
  const title = el("h4", words(action.tool));
  title.id = `action-${action.id}`;
  article.setAttribute("aria-labelledby", title.id);
  const dl = el("dl");
  const row = (label, text) => dl.append(el("dt", label), el("dd", text));
  row("Status", STATUS_WORDS[action.status] || words(action.status));
  const args = Object.entries(action.args || {});
  row("Arguments", args.length ? args.map(([k, v]) => `${words(k)}: ${textOf(v)}`).join("; ") : "none");
  const decision = action.decision || {};
  if (decision.outcome) {
    const policy = [words(decision.outcome), decision.rule && `rule ${decision.rule}`,
      decision.requires && `needs ${decision.requires} approval`].filter(Boolean).join(" — ");
    row("Policy", policy);
    if (decision.reasons?.length) row("Reasons", decision.reasons.map(textOf).join("; "));
  }
  if (action.approval) {
    const a = action.approval;
    row("Decided by", `${textOf(a.by || a.role)}${a.reason ? ` — ${a.reason}` : ""}`);
  }
  if (action.result != null) row("Result", textOf(action.result));
  article.append(title, dl);
  if (action.status === "awaiting_approval" && actionsOpen) {
    const buttons = el("div", null, "row");
    for (const [verb, label, style] of [["approve", "Approve", ""], ["reject", "Reject", "danger"]]) {
      const button = el("button", label, style);
      button.type = "button";
      button.setAttribute("aria-describedby", title.id); // "Approve, open dispute"
      button.addEventListener("click", () => decideAction(action, verb, buttons));
      buttons.append(button);
    }
    article.append(buttons);
  }
  return article;
}

let actionsOpen = true;
function renderActions(actions, open) {
  actionsOpen = open;
  // Re-rendering would drop focus from a button being used; keep it when nothing changed.
  const key = JSON.stringify([actions, open]);
  if ($("actions").dataset.key === key) return;
  $("actions").dataset.key = key;
  const empty = el("p", "No actions proposed.", "hint");
  $("actions").replaceChildren(...(actions.length ? actions.map(actionView) : [empty]));
}

async function decideAction(action, verb, buttons) {
  showError(null);
  for (const b of buttons.querySelectorAll("button")) b.disabled = true;
  const body = verb === "approve" ? { args_digest: action.args_digest } : {};
  try {
    await call("POST", `/v1/interactions/${active.id}/actions/${action.id}/${verb}`, body);
    notice(`${words(action.tool)} ${verb === "approve" ? "approved" : "rejected"}.`);
  } catch (error) {
    if (error instanceof ApiError && error.code === "already_decided") showError("That action was already decided.");
    else if (error instanceof ApiError && error.status === 410) showError("That approval has expired.");
    else if (error instanceof ApiError && error.code === "version_conflict") {
      showError("The action's arguments changed since they were shown; check them again.");
    } else showError(error);
  }
  $("actions").dataset.key = "";
  await refreshCase();
  $("actions-title").setAttribute("tabindex", "-1");
  $("actions-title").focus(); // the buttons are gone; keyboard users continue at the panel
}

// Many events change what the case file shows; fetching the view once for a burst of them is enough.
let refreshTimer = null;
function refreshSoon() {
  clearTimeout(refreshTimer);
  refreshTimer = setTimeout(refreshCase, 150);
}
let offersTimer = null;
function offersSoon() {
  clearTimeout(offersTimer);
  offersTimer = setTimeout(() => refreshOffers().catch(showError), 150);
}

function onEvent(event) {
  if (active && event.interaction_id === active.id) {
    if (CONVERSATION.has(event.type)) show(lineOf(event));
    else refreshSoon(); // Action* events among them: the actions panel follows the view
    if (event.type === "InteractionClosed") notice("The customer has ended the chat. Please wrap up.");
  }
  // Offers come and go with handoff events on any interaction; the list endpoint is the truth.
  if (!active || event.interaction_id !== active.id || event.type?.startsWith("Handoff")) offersSoon();
}

// -- signing in -----------------------------------------------------------------------------------------------

async function signIn() {
  await refreshOffers(); // also proves the token and id belong together
  $("sign-in").hidden = true;
  $("desk").hidden = false;
  $("whoami").hidden = false;
  $("live-field").hidden = false;
  $("sign-out").hidden = false;
  $("agent-label").textContent = me.id;
  if (me.presence) document.querySelector(`input[name=presence][value=${me.presence}]`).checked = true;
  stream = new LiveStream(`/v1/agents/${me.id}/stream`, me.token, onEvent, (state) => {
    const live = $("live");
    live.dataset.state = state === "live" ? "agent" : "offline";
    live.textContent = state === "live" ? "On" : state === "denied" ? "Refused" : "Reconnecting…";
    // Anything missed while reconnecting is picked up from the list and the view.
    if (state === "live") {
      offersSoon();
      refreshSoon();
    }
  });
  stream.open();
  if (active) await openCase();
}

function signOut() {
  stream?.close();
  me = null;
  active = null;
  sessionStorage.removeItem("tandem.agent");
  sessionStorage.removeItem("tandem.agent.case");
  location.reload();
}

$("sign-in").addEventListener("submit", async (e) => {
  e.preventDefault();
  showError(null);
  me = { token: $("token").value.trim(), id: $("agent-id").value.trim() };
  try {
    await signIn();
    keep();
  } catch (error) {
    me = null;
    if (error instanceof ApiError && error.status === 401) showError("That token was not accepted.");
    else if (error instanceof ApiError && error.status === 403) showError("That agent id does not belong to this token.");
    else showError(error);
  }
});

$("sign-out").addEventListener("click", signOut);

$("presence").addEventListener("change", async (e) => {
  showError(null);
  try {
    const answer = await call("PUT", `/v1/agents/${me.id}/presence`, { status: e.target.value });
    me.presence = answer.status;
    keep();
    notice(`You are ${answer.status}.`);
    offersSoon();
  } catch (error) {
    showError(error);
  }
});

$("send").addEventListener("submit", async (e) => {
  e.preventDefault();
  const box = $("message");
  const text = box.value.trim();
  if (!text) return;
  showError(null);
  try {
    const answer = await call("POST", `/v1/interactions/${active.id}/messages`, { text });
    box.value = "";
    show({ seq: answer.seq, from: "human", text, at: null });
  } catch (error) {
    showError(error);
  }
  box.focus();
});

$("message").addEventListener("keydown", (e) => {
  if (e.key === "Enter" && !e.shiftKey && !e.isComposing) {
    e.preventDefault();
    $("send").requestSubmit();
  }
});

$("handback").addEventListener("submit", async (e) => {
  e.preventDefault();
  showError(null);
  const body = {};
  for (const key of ["flow", "step", "goal", "instructions"]) {
    const value = $(`hb-${key}`).value.trim();
    if (value) body[key] = value;
  }
  try {
    await call("POST", `/v1/interactions/${active.id}/handback`, body);
    notice("Handed back to the AI. Wrap up when you are done.");
    $("disposition").value = "handed_back";
    await refreshCase();
  } catch (error) {
    showError(error);
  }
});

$("wrapup").addEventListener("submit", async (e) => {
  e.preventDefault();
  showError(null);
  try {
    const notes = $("notes").value.trim();
    await call("POST", `/v1/interactions/${active.id}/wrapup`, { disposition: $("disposition").value, ...(notes && { notes }) });
    active = null;
    clearTimeout(refreshTimer);
    keep();
    $("case").hidden = true;
    notice("Wrapped up. Ready for the next customer.");
    $("offers-title").focus(); // the form that had focus is gone; keyboard users continue at the offers
  } catch (error) {
    showError(error);
  }
});

if (me) {
  signIn().catch((error) => {
    showError(error);
    $("sign-in").hidden = false;
  });
} else {
  $("sign-in").hidden = false;
}

// The customer web chat: start (or continue) an interaction, send lines, show what Tandem and the agent say.
import { api, ApiError, LiveStream, appendLine } from "/static/api.js";

const params = new URLSearchParams(location.search);
const tenant = params.get("tenant") || "bank";
// A channel token (printed by the demo) makes this page a trusted channel, which may pass a phone number
// for identification. Without it the chat is anonymous and starts unauthenticated.
const channelToken = params.get("token");
const storageKey = `tandem.chat.${tenant}`;
// The example worlds' names (examples/*/world.yaml); an unknown tenant is shown by its id.
const TENANT_NAMES = { bank: "Harbor Bank", health: "Blue Harbor Health" };
const STATUS_LABELS = {
  assistant: "With the assistant",
  waiting: "Waiting for an agent",
  agent: "With an agent",
  closed: "Chat ended",
  offline: "Not connected",
};

const $ = (id) => document.getElementById(id);
const log = $("log");

// Only the interaction and its customer token are kept (per tab), so a reload continues the chat: the
// lines themselves come back from the server, which is the record.
let session = JSON.parse(sessionStorage.getItem(storageKey) || "null");
let stream = null;
// Every line carries its seq, and both the synchronous answer and the stream deliver it: show it once,
// or twice when the second copy adds the time our own line lacked. Maps seq -> whether it has a time.
const shown = new Map();

function save() {
  if (session) sessionStorage.setItem(storageKey, JSON.stringify(session));
  else sessionStorage.removeItem(storageKey);
}

function showError(error) {
  $("error").textContent = error ? `Sorry, something went wrong: ${error.message || error}` : "";
}

function setStatus(state) {
  const status = $("status");
  if (status.dataset.state === state) return;
  status.dataset.state = state;
  status.textContent = STATUS_LABELS[state];
}

function statusOf(view) {
  if (view.status === "closed") return "closed";
  if (["human", "supervisor"].includes(view.floor?.kind)) return "agent";
  if (view.handoff && view.handoff.status !== "connected") return "waiting";
  return "assistant";
}

function show(line) {
  const timed = shown.get(line.seq);
  if (line.text == null || timed || (timed === false && !line.at)) return;
  shown.set(line.seq, Boolean(line.at));
  appendLine(log, line, "customer");
}

// The customer's stream carries only what a customer may see: lines, and changes of status.
function onEvent(event) {
  show(event);
  if (event.floor) setStatus(statusOf({ floor: event.floor }));
  if (event.handoff?.status === "queued") setStatus("waiting");
  if (event.handoff?.status === "connected") setStatus("agent");
  if (event.status === "closed") ended();
}

function follow(afterSeq) {
  stream?.close();
  stream = new LiveStream(`/v1/interactions/${session.id}/stream`, session.customer_token, onEvent, (state) => {
    if (state === "denied") forget("This chat can no longer be continued. Please start a new one.");
  });
  stream.lastId = afterSeq;
  stream.open();
}

// Draw the conversation so far and follow it live from there.
function present(view) {
  openChat();
  for (const line of view.transcript || []) show(line);
  setStatus(statusOf(view));
  if (view.status === "closed") ended();
  else follow(view.seq);
}

function openChat() {
  $("start").hidden = true;
  $("chat").hidden = false;
  for (const id of ["message", "send-button", "ask-person", "end"]) $(id).disabled = false;
  $("message").focus();
}

function ended() {
  if (!session) return;
  setStatus("closed");
  stream?.close();
  appendLine(log, { from: "system", text: "This chat has ended. Thank you." }, "customer");
  for (const id of ["message", "send-button", "ask-person", "end"]) $(id).disabled = true;
  session = null;
  save();
  $("start").hidden = false;
}

function forget(message) {
  stream?.close();
  session = null;
  save();
  log.replaceChildren();
  shown.clear();
  $("chat").hidden = true;
  $("start").hidden = false;
  setStatus("offline");
  if (message) $("error").textContent = message;
}

// -- what the customer does ------------------------------------------------------------------------------

async function start(customer) {
  // An anonymous chat names its tenant; a channel token already belongs to one.
  const path = channelToken ? "/v1/interactions" : `/v1/interactions?tenant=${encodeURIComponent(tenant)}`;
  const created = await api("POST", path, { token: channelToken || undefined, body: { channel: "chat", customer } });
  session = { id: created.id, leg_id: created.leg_id, customer_token: created.customer_token };
  save();
  log.replaceChildren();
  shown.clear();
  present(created.state);
}

async function send(text) {
  const answer = await api("POST", `/v1/interactions/${session.id}/messages`, {
    token: session.customer_token,
    body: { text, leg_id: session.leg_id },
  });
  show({ seq: answer.seq, from: "customer", text, at: null });
  for (const reply of answer.replies || []) show(reply);
  if (answer.floor && ["human", "supervisor"].includes(answer.floor.kind)) setStatus("agent");
}

$("title").textContent = `Chat with ${TENANT_NAMES[tenant] || tenant}`;
document.title = `${$("title").textContent} — Tandem`;
$("phone-field").hidden = !channelToken;

$("start").addEventListener("submit", async (e) => {
  e.preventDefault();
  showError(null);
  const customer = {};
  const name = $("name").value.trim();
  const phone = $("phone").value.trim();
  if (name) customer.name = name;
  if (phone && channelToken) customer.phone = phone;
  try {
    await start(customer);
  } catch (error) {
    showError(error);
  }
});

// Lines go out one after another, in the order typed, even when the customer types faster than the
// answers come back; the box is free again at once.
let sending = Promise.resolve();
$("send").addEventListener("submit", (e) => {
  e.preventDefault();
  const box = $("message");
  const text = box.value.trim();
  if (!text || !session) return;
  box.value = "";
  showError(null);
  sending = sending.then(async () => {
    if (!session) return;
    try {
      await send(text);
    } catch (error) {
      if (error instanceof ApiError && error.code === "interaction_closed") ended();
      else {
        showError(error);
        if (!box.value) box.value = text; // give it back to try again
      }
    }
  });
});

// Enter sends, as in every chat; Shift+Enter keeps the newline for longer messages.
$("message").addEventListener("keydown", (e) => {
  if (e.key === "Enter" && !e.shiftKey && !e.isComposing) {
    e.preventDefault();
    $("send").requestSubmit();
  }
});

$("ask-person").addEventListener("click", async () => {
  showError(null);
  try {
    const { handoff } = await api("POST", `/v1/interactions/${session.id}/handoff`, {
      token: session.customer_token,
      body: { target: { kind: "human" }, reason: "The customer asked for a person." },
    });
    if (handoff && handoff.status !== "connected") setStatus("waiting");
  } catch (error) {
    showError(error);
  }
});

$("end").addEventListener("click", async () => {
  showError(null);
  try {
    await api("POST", `/v1/interactions/${session.id}/close`, { token: session.customer_token, body: {} });
    ended();
  } catch (error) {
    showError(error);
  }
});

// Continue this tab's chat if there is one; otherwise offer to start one.
async function resume() {
  if (!session) {
    $("start").hidden = false;
    $("name").focus();
    return;
  }
  try {
    present(await api("GET", `/v1/interactions/${session.id}`, { token: session.customer_token }));
  } catch (error) {
    if (error instanceof ApiError && [401, 403, 404].includes(error.status)) forget();
    else showError(error);
  }
}

resume();

// The two things both pages need from the Tandem HTTP API: JSON requests and live event streams.

export class ApiError extends Error {
  constructor(status, error) {
    super(error?.message || `HTTP ${status}`);
    this.status = status;
    this.code = error?.code || "http_error";
  }
}

// crypto.randomUUID exists only in secure contexts; a phone opening the demo over plain http on the LAN
// is not one, so build the key from getRandomValues, which works everywhere.
function randomKey() {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

export async function api(method, path, { token, body } = {}) {
  const headers = { Accept: "application/json" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (token) headers.Authorization = `Bearer ${token}`;
  // One key per user action: if the network drops the answer we retry once with the same key, and the
  // API replays its first answer instead of, say, sending the customer's message twice.
  if (method !== "GET") headers["Idempotency-Key"] = randomKey();
  const init = { method, headers, body: body === undefined ? undefined : JSON.stringify(body) };
  let response;
  try {
    response = await fetch(path, init);
  } catch {
    response = await fetch(path, init);
  }
  const data = response.status === 204 ? null : await response.json().catch(() => null);
  if (!response.ok) throw new ApiError(response.status, data?.error);
  return data;
}

// A live stream of server-sent events. EventSource cannot send an Authorization header, so each
// connection first trades the bearer token for a short-lived ticket. Because a ticket is single-use and
// short-lived, the browser's own reconnect would fail; on any error we close and reconnect ourselves with
// a fresh ticket, resuming after the last event id we saw.
export class LiveStream {
  constructor(path, token, onEvent, onState = () => {}) {
    Object.assign(this, { path, token, onEvent, onState });
    this.lastId = null;
    this.closed = false;
    this.delay = 500;
  }

  async open() {
    if (this.closed) return;
    try {
      const { ticket } = await api("POST", "/v1/stream-tickets", { token: this.token, body: { path: this.path } });
      const url = new URL(this.path, location.href);
      url.searchParams.set("ticket", ticket);
      if (this.lastId !== null) url.searchParams.set("last_event_id", this.lastId);
      this.source = new EventSource(url);
      this.source.onopen = () => {
        this.delay = 500;
        this.onState("live");
      };
      // Events carry no "event:" name (the JSON has the type), so onmessage sees them all.
      this.source.onmessage = (message) => this.receive(message);
      this.source.onerror = () => this.retry();
    } catch (error) {
      if (error instanceof ApiError && [401, 403, 404].includes(error.status)) {
        this.onState("denied");
        return;
      }
      this.retry();
    }
  }

  receive(message) {
    if (message.lastEventId) this.lastId = message.lastEventId;
    let data;
    try {
      data = JSON.parse(message.data);
    } catch {
      return; // a keep-alive or anything that is not an event
    }
    this.onEvent(data);
  }

  retry() {
    this.source?.close();
    if (this.closed) return;
    this.onState("reconnecting");
    setTimeout(() => this.open(), this.delay);
    this.delay = Math.min(this.delay * 2, 10000);
  }

  close() {
    this.closed = true;
    this.source?.close();
  }
}

// Who a line is from, in words a customer or an agent would use.
export function speakerName(kind, audience) {
  if (kind === "customer") return audience === "customer" ? "You" : "Customer";
  if (kind === "human") return audience === "agent" ? "You (agent)" : "Agent";
  if (kind === "supervisor") return "Supervisor";
  if (kind === "system") return "Tandem";
  return "Assistant";
}

// Lines are kept in seq order: the history and the live stream can arrive interleaved.
export function appendLine(list, { seq, from, text, at }, audience) {
  const item = document.createElement("li");
  item.className = from;
  if (seq != null) item.dataset.seq = seq;
  const who = document.createElement("span");
  who.className = "who";
  who.textContent = speakerName(from, audience) + (at ? ` · ${formatTime(at)}` : "");
  const body = document.createElement("span");
  body.className = "text";
  body.textContent = text;
  item.append(who, body);
  // A line seen again with more detail (its time, from the stream) replaces the first copy.
  const twin = seq == null ? null : list.querySelector(`li[data-seq="${seq}"]`);
  if (twin) {
    twin.replaceWith(item);
    return item;
  }
  const later = seq == null ? null : [...list.children].find((li) => Number(li.dataset.seq) > seq);
  list.insertBefore(item, later ?? null);
  list.scrollTop = list.scrollHeight;
  return item;
}

export function formatTime(at) {
  const date = new Date(at);
  return Number.isNaN(date.getTime()) ? String(at) : date.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
}

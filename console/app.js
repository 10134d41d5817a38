// Rewind console: plain JavaScript over the public HTTP API (/v1), no build step and no dependencies.
"use strict";

const $ = (id) => document.getElementById(id);

// ---------------------------------------------------------------------------------------------------------------
// Token: kept in sessionStorage (this tab only); sent as `Authorization: Bearer` on fetch and as the
// `rewind_token` cookie for EventSource, which cannot set headers (the cookie keeps it out of URLs and logs).

const TOKEN_KEY = "rewind.token";

function currentToken() {
  return sessionStorage.getItem(TOKEN_KEY) || "";
}

function setTokenCookie(token) {
  const secure = location.protocol === "https:" ? "; Secure" : "";
  if (token) {
    document.cookie = `rewind_token=${encodeURIComponent(token)}; Path=/; SameSite=Strict${secure}`;
  } else {
    document.cookie = `rewind_token=; Path=/; Max-Age=0; SameSite=Strict${secure}`;
  }
}

function useToken(token) {
  if (token) sessionStorage.setItem(TOKEN_KEY, token);
  else sessionStorage.removeItem(TOKEN_KEY);
  setTokenCookie(token);
  hideAuthBanner();
  streams.refresh();
  tail.restartIfRunning();
}

// ---------------------------------------------------------------------------------------------------------------
// HTTP: JSON in and out; every failure becomes an ApiError with the problem+json `title`, `status`, `detail`.

class ApiError extends Error {
  constructor(status, title, detail) {
    super(detail ? `${title}: ${detail}` : title);
    this.status = status;
    this.title = title;
    this.detail = detail;
  }

  /// What a person should read: 401 and 403 say what to do about the token.
  get explanation() {
    const detail = this.detail ? ` (${this.detail})` : "";
    if (this.status === 401) {
      return `401 Unauthorized: this server needs a valid token. Paste one into “Token” at the top${detail}.`;
    }
    if (this.status === 403) {
      return `403 Forbidden: the token does not allow this${detail}.`;
    }
    if (this.status === 0) return `The server did not answer${detail}.`;
    return `${this.status} ${this.title}${detail}`;
  }
}

async function api(path, { method = "GET", headers = {}, body, accept = "application/json" } = {}) {
  const all = { Accept: accept, ...headers };
  const token = currentToken();
  if (token) all.Authorization = `Bearer ${token}`;
  let response;
  try {
    response = await fetch(path, { method, headers: all, body, cache: "no-store", credentials: "same-origin" });
  } catch (error) {
    throw new ApiError(0, "Network error", error.message);
  }
  const text = await response.text();
  let json = null;
  try {
    json = text ? JSON.parse(text) : null;
  } catch {
    json = null;
  }
  if (!response.ok) {
    const problem = json && typeof json === "object" ? json : {};
    const error = new ApiError(response.status, problem.title || response.statusText || "Error",
      problem.detail || (json ? "" : text.slice(0, 300)));
    if (error.status === 401) showAuthBanner(error);
    throw error;
  }
  return { status: response.status, headers: response.headers, json };
}

function showAuthBanner(error) {
  const banner = $("auth-banner");
  banner.textContent = error.explanation;
  banner.hidden = false;
}

function hideAuthBanner() {
  $("auth-banner").hidden = true;
}

// ---------------------------------------------------------------------------------------------------------------
// Small helpers.

function element(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === undefined || value === null || value === false) continue;
    if (name === "class") node.className = value;
    else if (name === "text") node.textContent = value;
    else node.setAttribute(name, value === true ? "" : value);
  }
  for (const child of children) {
    if (child !== null && child !== undefined) node.append(child);
  }
  return node;
}

/// Pretty-printed JSON when the data is JSON, else the text as it is.
function prettyData(data) {
  if (typeof data !== "string") return JSON.stringify(data, null, 2);
  const trimmed = data.trim();
  if (trimmed.startsWith("{") || trimmed.startsWith("[")) {
    try {
      return JSON.stringify(JSON.parse(trimmed), null, 2);
    } catch {
      return data;
    }
  }
  return data;
}

/// The JSON read returns JSON-published data as JSON and text as a string; both shown the way they were sent.
function dataText(data) {
  return typeof data === "string" ? data : JSON.stringify(data);
}

/// "2026-11-21T18:25:22.634666Z" shown as "2026-11-21 18:25:22.634666".
function commitTime(time) {
  return String(time || "").replace("T", " ").replace(/Z$/, "");
}

function clockTime(date) {
  const pad = (n, width = 2) => String(n).padStart(width, "0");
  return `${pad(date.getHours())}:${pad(date.getMinutes())}:${pad(date.getSeconds())}.${pad(date.getMilliseconds(), 3)}`;
}

function splitList(text) {
  return text.split(/[\s,]+/).map((s) => s.trim()).filter(Boolean);
}

/// A datetime-local value read as UTC, in RFC 3339.
function utcTime(value) {
  if (!value) return "";
  const withSeconds = value.length === 16 ? `${value}:00` : value;
  return `${withSeconds}Z`;
}

function query(pairs) {
  const params = new URLSearchParams();
  for (const [name, value] of pairs) {
    if (value !== undefined && value !== null && value !== "") params.append(name, String(value));
  }
  return params.toString();
}

// ---------------------------------------------------------------------------------------------------------------
// Views: one visible at a time, chosen by the URL's fragment (#overview, #streams, #tail, #history, #publish).
// The overview is drawn by overview.js (an ES module), which follows the same fragment.

const VIEWS = ["overview", "streams", "tail", "history", "publish"];

function showView() {
  const name = VIEWS.includes(location.hash.slice(1)) ? location.hash.slice(1) : "overview";
  for (const view of VIEWS) $(`view-${view}`).hidden = view !== name;
  for (const link of document.querySelectorAll("nav a[data-view]")) {
    if (link.dataset.view === name) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  document.title = `${$(`${name}-title`).textContent} · Rewind console`;
  if (name === "streams") streams.refresh();
}

// ---------------------------------------------------------------------------------------------------------------
// Streams: GET /v1/streams every 2 s; events per minute from the counts this page has seen, and a sparkline of
// that rate over the last 10 minutes (no other request: the counts the table reads anyway, kept longer).

const SPARK_MS = 10 * 60_000;

const streams = {
  samples: [], // [{at: ms, counts: Map(name -> count)}], the last 10 minutes
  timer: null,
  busy: false,
  charts: null, // chart.js, loaded as a module

  start() {
    import("/console/chart.js").then((module) => {
      this.charts = module;
    });
    this.refresh();
    this.timer = setInterval(() => {
      if (!document.hidden) this.refresh();
    }, 2000);
  },

  rate(name, count, now) {
    const oldest = this.samples.find((s) => now - s.at <= 60_000 && s.counts.has(name));
    if (!oldest || now - oldest.at < 1500) return "–";
    const perMinute = (Math.max(0, count - oldest.counts.get(name)) * 60_000) / (now - oldest.at);
    return perMinute >= 10 ? String(Math.round(perMinute)) : perMinute.toFixed(1);
  },

  async refresh() {
    if (this.busy) return;
    this.busy = true;
    try {
      const { json } = await api("/v1/streams");
      const now = Date.now();
      this.samples.push({ at: now, counts: new Map(json.map((s) => [s.name, s.count])) });
      this.samples = this.samples.filter((s) => now - s.at <= SPARK_MS + 61_000);
      this.render(json, now);
      $("streams-status").textContent = `${json.length} stream${json.length === 1 ? "" : "s"}, updated ${clockTime(new Date(now))}`;
      $("streams-status").className = "status";
    } catch (error) {
      // A 401 is explained once, in the banner at the top.
      $("streams-status").textContent = error.status === 401 ? "No streams shown until a token is given." : error.explanation;
      $("streams-status").className = "status error-text";
    } finally {
      this.busy = false;
    }
  },

  /// Events per minute of one stream at each sample of the last 10 minutes: the count at that sample less the
  /// count about a minute before it (at least 4 s before, so the first minute has points too).
  sparkline(name, now) {
    if (!this.charts) return "–";
    const points = [];
    let j = 0;
    for (let i = 0; i < this.samples.length; i += 1) {
      const sample = this.samples[i];
      while (j < i && sample.at - this.samples[j].at > 60_000) j += 1;
      const before = this.samples[j];
      if (!sample.counts.has(name) || sample.at - before.at < 4000 || now - sample.at > SPARK_MS) continue;
      const delta = Math.max(0, sample.counts.get(name) - (before.counts.get(name) || 0));
      points.push([sample.at, (delta * 60_000) / (sample.at - before.at)]);
    }
    const latest = points.length ? Math.round(points[points.length - 1][1]) : 0;
    // Like the overview's charts, the line spans what the page has seen: one to ten minutes.
    const from = Math.min(now - 60_000, Math.max(now - SPARK_MS, this.samples[0].at));
    return this.charts.sparkline(points, { from, to: now,
      label: `${name}: events per minute over the last 10 minutes, now ${latest}` });
  },

  render(list, now) {
    const body = $("streams-rows");
    const rows = list.map((s) => {
      const tailButton = element("button", { type: "button", class: "link", text: "Tail" });
      tailButton.setAttribute("aria-label", `Tail ${s.name}`);
      tailButton.addEventListener("click", () => tail.startFor(s.name));
      const historyButton = element("button", { type: "button", class: "link", text: "History" });
      historyButton.setAttribute("aria-label", `History of ${s.name}`);
      historyButton.addEventListener("click", () => historyView.openStream(s.name));
      return element("tr", { "data-stream": s.name },
        element("th", { scope: "row", class: "mono", text: s.name }),
        element("td", { class: "num", text: String(s.count) }),
        element("td", { class: "num", text: s.last_id === null || s.last_id === undefined ? "–" : String(s.last_id) }),
        element("td", { text: s.last_time ? commitTime(s.last_time) : "–" }),
        element("td", { class: "num", text: this.rate(s.name, s.count, now) }),
        element("td", { class: "spark" }, this.sparkline(s.name, now)),
        element("td", {}, element("span", { class: "actions" }, tailButton, historyButton)));
    });
    // Keep the focused button across the refresh, so keyboard users do not lose their place.
    const focused = document.activeElement && body.contains(document.activeElement)
      ? document.activeElement.getAttribute("aria-label") : null;
    body.replaceChildren(...rows);
    if (focused) body.querySelector(`[aria-label="${CSS.escape(focused)}"]`)?.focus();
    $("streams-empty").hidden = list.length > 0;
    $("stream-names").replaceChildren(...list.map((s) => element("option", { value: s.name })));
  },
};

// ---------------------------------------------------------------------------------------------------------------
// Live tail: one EventSource on /v1/events?stream=…&type=…&after=…. Rows carry the SSE frame's id, type and data;
// the stream and commit time come from the JSON read of the same ids (SSE frames carry neither).
//
// EventSource only reports frames whose `event:` it has a listener for, and without a type filter the types are
// not known in advance: the same JSON read also finds events of types not yet listened to, shows them and adds a
// listener, so later ones arrive through the EventSource.

const MAX_ROWS = 500;

const tail = {
  source: null,
  filter: null, // {streams: [...], types: [...]}
  startedAfter: 0, // the cursor the tail began after
  lastId: null, // the last id received (what a reconnect resumes after)
  scanned: 0, // every event of the subscription up to this id has been looked at by the JSON read
  listening: new Set(),
  rows: new Map(), // id -> {node, via: "sse" | "read", detailed}
  received: [], // ids in the order EventSource delivered them (duplicates included)
  duplicates: 0,
  paused: false,
  syncTimer: null,
  pollTimer: null,
  syncing: false,
  generation: 0, // bumps on every (re)start, so answers for an old tail are dropped

  setState(kind, text) {
    const state = $("tail-state");
    state.className = `state ${kind}`;
    state.textContent = text;
    state.dataset.state = kind;
  },

  updateButtons() {
    const running = this.filter !== null;
    $("tail-pause").disabled = !running;
    $("tail-pause").textContent = this.paused ? "Resume" : "Pause";
    $("tail-stop").disabled = !running;
  },

  startFor(name) {
    $("tail-streams").value = name;
    $("tail-types").value = "";
    $("tail-after").value = "";
    location.hash = "#tail";
    this.start();
  },

  /// Starts a new tail (a new list), or with `resume` goes on with the same list after its last id.
  async start({ resume = false } = {}) {
    const streamsList = splitList($("tail-streams").value);
    const types = splitList($("tail-types").value);
    const afterText = $("tail-after").value.trim();
    if (streamsList.length === 0) {
      this.setState("closed", "name at least one stream or pattern");
      return;
    }
    if (afterText && !/^\d+$/.test(afterText)) {
      this.setState("closed", "“Resume after id” must be a whole number");
      return;
    }
    this.close();
    if (!resume) this.clear();
    const generation = ++this.generation;
    this.filter = { streams: streamsList, types };
    this.paused = false;
    this.listening = new Set(["message", ...types]);
    this.updateButtons();
    this.setState("connecting", "connecting…");
    let after = afterText ? Number(afterText) : null;
    if (after === null) {
      // "From now on" is pinned to the head's id before connecting, so a reconnect before the first event still
      // resumes there instead of at a later head.
      try {
        const { json } = await api(`/v1/events?${this.query([["from", "latest"], ["limit", 1]])}`);
        after = json.head;
      } catch (error) {
        if (generation !== this.generation) return;
        this.fail(error);
        return;
      }
    }
    if (generation !== this.generation) return;
    this.startedAfter = after;
    this.lastId = after;
    this.scanned = after;
    this.open(after);
  },

  query(extra) {
    return query([
      ...this.filter.streams.map((s) => ["stream", s]),
      ...this.filter.types.map((t) => ["type", t]),
      ...extra,
    ]);
  },

  open(after) {
    const generation = this.generation;
    const source = new EventSource(`/v1/events?${this.query([["after", after]])}`);
    this.source = source;
    this.setState("connecting", `connecting (after id ${after})…`);
    source.addEventListener("open", () => {
      if (generation !== this.generation) return;
      this.setState("live", `live${this.lastId !== null ? ` (after id ${this.lastId})` : ""}`);
      this.scheduleSync();
    });
    source.addEventListener("error", () => {
      if (generation !== this.generation) return;
      if (source.readyState === EventSource.CONNECTING) {
        this.setState("reconnecting", `reconnecting… (last id ${this.lastId ?? "none"})`);
      } else {
        this.explainClosed(generation);
      }
    });
    for (const type of this.listening) this.listen(type);
    source.addEventListener("rewind.gap", (event) => this.signal("gap", event));
    source.addEventListener("rewind.reset", (event) => this.signal("reset", event));
    clearInterval(this.pollTimer);
    this.pollTimer = setInterval(() => this.sync(), 3000);
  },

  listen(type) {
    this.listening.add(type);
    if (this.source) this.source.addEventListener(type, (event) => this.onFrame(event));
  },

  /// The EventSource gave up (an answer other than 200 text/event-stream): the same read as JSON says why.
  async explainClosed(generation) {
    this.source?.close();
    this.source = null;
    clearInterval(this.pollTimer);
    try {
      await api(`/v1/events?${this.query([["after", this.lastId ?? 0], ["limit", 1]])}`);
      if (generation !== this.generation) return;
      this.setState("closed", `closed by the server after id ${this.lastId} (the streams may have been deleted)`);
    } catch (error) {
      if (generation !== this.generation) return;
      this.fail(error);
    }
  },

  fail(error) {
    this.close();
    this.setState("closed", `closed: ${error.explanation}`);
  },

  onFrame(event) {
    const id = Number(event.lastEventId);
    this.received.push(id);
    const existing = this.rows.get(id);
    if (existing && existing.via === "read") {
      existing.via = "sse"; // shown already from the JSON read; this is the same event, not a duplicate
    } else {
      if (existing) this.duplicates++;
      this.addRow({ id, type: event.type, data: event.data, received: new Date(), duplicate: Boolean(existing) });
    }
    this.lastId = Math.max(this.lastId ?? 0, id);
    this.showLive();
    this.scheduleSync();
  },

  showLive() {
    if (this.source && this.source.readyState === EventSource.OPEN) this.setState("live", `live (last id ${this.lastId})`);
  },

  signal(kind, event) {
    let info = {};
    try {
      info = JSON.parse(event.data);
    } catch {
      info = {};
    }
    const text = kind === "gap"
      ? `Gap: events after id ${info.after} were removed by retention; continuing with id ${info.earliest}, the earliest still kept.`
      : `Reset: id ${info.after} is beyond the log's last id ${info.head} (a restored or different log); continuing after ${info.head}.`;
    if (kind === "reset" && Number.isFinite(info.head)) {
      this.lastId = info.head;
      this.scanned = info.head;
    }
    const close = element("button", { type: "button", text: "Dismiss" });
    const banner = element("div", { class: `banner warn signal-${kind}`, role: "alert" },
      element("span", { text: `rewind.${kind}: ${text}` }), close);
    close.addEventListener("click", () => banner.remove());
    $("tail-banners").append(banner);
  },

  addRow({ id, type, data, received, stream, time, duplicate = false, via = "sse" }) {
    const list = $("tail-events");
    const node = element("li", { "data-id": String(id), class: duplicate ? "duplicate" : null },
      element("div", { class: "meta" },
        element("span", { class: "id", text: `#${id}` }),
        element("span", { class: "stream", text: stream ?? "" }),
        element("span", { class: "type", text: type }),
        element("span", { class: "time", text: time ? `committed ${commitTime(time)} UTC` : `received ${clockTime(received)} (this browser)` }),
        duplicate ? element("strong", { text: "duplicate id" }) : null),
      element("pre", { class: "data", text: prettyData(data) }));
    if (!duplicate) this.rows.set(id, { node, via, detailed: Boolean(time) });
    // Newest first: before the first row with a smaller id (almost always the top).
    let before = list.firstElementChild;
    while (before && Number(before.dataset.id) > id) before = before.nextElementSibling;
    list.insertBefore(node, before);
    while (list.childElementCount > MAX_ROWS) {
      const last = list.lastElementChild;
      this.rows.delete(Number(last.dataset.id));
      last.remove();
    }
    this.updateCount();
  },

  updateCount() {
    const shown = $("tail-events").childElementCount;
    $("tail-count").textContent = `${shown} event${shown === 1 ? "" : "s"} shown${shown >= MAX_ROWS ? ` (the newest ${MAX_ROWS})` : ""}` +
      (this.duplicates ? `; ${this.duplicates} duplicate id${this.duplicates === 1 ? "" : "s"} received` : "");
  },

  scheduleSync() {
    if (this.syncTimer) return;
    this.syncTimer = setTimeout(() => {
      this.syncTimer = null;
      this.sync();
    }, 200);
  },

  /// Reads the same subscription as JSON from the last id it has looked at (or an older row still without its
  /// details): fills in stream and commit time, and shows events the EventSource did not report, which are those
  /// of types it had no listener for; it listens for them from then on. When the EventSource reports one later,
  /// the row is already there and is not repeated.
  async sync() {
    if (this.syncing || this.filter === null || this.paused) return;
    this.syncing = true;
    const generation = this.generation;
    try {
      for (let page = 0; page < 10; page++) {
        let after = this.scanned;
        for (const [id, row] of this.rows) if (!row.detailed && id - 1 < after) after = id - 1;
        const { json } = await api(`/v1/events?${this.query([["after", after], ["limit", 500]])}`);
        if (generation !== this.generation) return;
        if (json.events.length) this.scanned = Math.max(this.scanned, json.events[json.events.length - 1].id);
        for (const event of json.events) {
          const row = this.rows.get(event.id);
          if (row) {
            if (!row.detailed) {
              row.detailed = true;
              row.node.querySelector(".stream").textContent = event.stream;
              row.node.querySelector(".time").textContent = `committed ${commitTime(event.time)} UTC`;
            }
          } else {
            // Not received through the EventSource (yet): most often a type it had no listener for.
            if (!this.listening.has(event.type)) this.listen(event.type);
            this.addRow({ ...event, data: dataText(event.data), via: "read" });
            this.lastId = Math.max(this.lastId ?? 0, event.id);
            this.showLive();
          }
        }
        if (json.events.length < 500) break;
      }
    } catch {
      // The connection state already tells; the next turn tries again.
    } finally {
      this.syncing = false;
    }
  },

  pause() {
    if (this.filter === null) return;
    if (!this.paused) {
      this.paused = true;
      this.source?.close();
      this.source = null;
      clearInterval(this.pollTimer);
      this.setState("paused", `paused at id ${this.lastId}`);
    } else {
      this.paused = false;
      this.generation++;
      this.open(this.lastId ?? this.startedAfter);
    }
    this.updateButtons();
  },

  close() {
    this.generation++;
    this.source?.close();
    this.source = null;
    clearInterval(this.pollTimer);
    clearTimeout(this.syncTimer);
    this.syncTimer = null;
    this.filter = null;
    this.paused = false;
    this.updateButtons();
  },

  stop() {
    const last = this.lastId;
    this.close();
    this.setState("idle", last !== null ? `stopped at id ${last}` : "not started");
    if (last !== null) $("tail-after").value = String(last);
  },

  clear() {
    $("tail-events").replaceChildren();
    $("tail-banners").replaceChildren();
    this.rows.clear();
    this.received = [];
    this.duplicates = 0;
    this.updateCount();
  },

  restartIfRunning() {
    if (this.filter === null && $("tail-state").dataset.state !== "closed") return;
    if (!$("tail-streams").value.trim()) return;
    if (this.lastId !== null) $("tail-after").value = String(this.lastId);
    this.start({ resume: true });
  },
};

// ---------------------------------------------------------------------------------------------------------------
// History: the JSON read pages forwards (`after`), so a page backwards reads forwards from a cursor far enough
// back to hold a page, widening the window until it does or reaches the stream's first event.

const historyView = {
  stream: null,
  pages: [], // stack of {before}: the page shown is the last; `before` null for the newest
  firstId: 1,
  events: [],
  selected: null,

  openStream(name) {
    $("history-stream").value = name;
    location.hash = "#history";
    this.showNewest();
  },

  filters() {
    return [
      ...splitList($("history-types").value).map((t) => ["type", t]),
      ["since", utcTime($("history-since").value)],
      ["until", utcTime($("history-until").value)],
    ];
  },

  async showNewest() {
    this.stream = $("history-stream").value.trim();
    if (!this.stream) return;
    this.pages = [{ before: null }];
    await this.load();
  },

  async load() {
    const status = $("history-status");
    const { before } = this.pages[this.pages.length - 1];
    const size = Number($("history-size").value);
    status.textContent = "Loading…";
    try {
      const path = `/v1/streams/${encodeURIComponent(this.stream)}`;
      const { json: info } = await api(path);
      this.firstId = info.first_id ?? 1;
      if (!info.count) {
        this.events = [];
        this.render();
        status.textContent = `${this.stream} holds no events`;
        $("history-older").disabled = true;
        $("history-newer").disabled = this.pages.length <= 1;
        return;
      }
      const end = before ?? info.last_id + 1;
      const { events, more } = await this.pageBefore(path, end, size);
      this.events = events;
      this.render();
      const range = events.length ? `ids ${events[events.length - 1].id}–${events[0].id}` : "no events";
      status.textContent = `${this.stream}: ${range}${more ? "" : ", the oldest page"} (${info.count} in the stream)`;
      $("history-older").disabled = !more || events.length === 0;
      $("history-newer").disabled = this.pages.length <= 1;
    } catch (error) {
      status.textContent = error.explanation;
      this.events = [];
      this.render();
      $("history-older").disabled = true;
    }
  },

  /// The last `size` matching events with ids below `end`, newest first, and whether older ones may exist.
  async pageBefore(path, end, size) {
    let span = size * 4;
    for (let attempt = 0; attempt < 30; attempt++) {
      const start = Math.max(this.firstId - 1, end - 1 - span);
      const found = [];
      let cursor = start;
      for (let read = 0; read < 50; read++) {
        const { json } = await api(`${path}/events?${query([["after", cursor], ["limit", 1000], ...this.filters()])}`);
        const events = json.events.filter((e) => e.id < end);
        found.push(...events);
        if (json.events.length < 1000 || events.length < json.events.length) break;
        cursor = json.next_after;
      }
      if (found.length >= size || start <= this.firstId - 1) {
        const page = found.slice(-size).reverse();
        return { events: page, more: found.length > size || start > this.firstId - 1 };
      }
      span *= 4;
    }
    throw new ApiError(0, "History", "could not find a page of events within 30 reads");
  },

  older() {
    if (!this.events.length) return;
    this.pages.push({ before: this.events[this.events.length - 1].id });
    this.load();
  },

  newer() {
    if (this.pages.length <= 1) return;
    this.pages.pop();
    this.load();
  },

  render() {
    const body = $("history-rows");
    body.replaceChildren(...this.events.map((event) => {
      const open = element("button", { type: "button", class: "link mono", text: String(event.id) });
      open.setAttribute("aria-label", `Open event ${event.id}`);
      open.addEventListener("click", () => this.open(event));
      return element("tr", { "data-id": String(event.id), class: this.selected === event.id ? "selected" : null },
        element("td", { class: "num" }, open),
        element("td", { class: "mono", text: event.type }),
        element("td", { text: commitTime(event.time) }),
        element("td", { class: "data", text: dataText(event.data) }));
    }));
    $("history-table").hidden = this.events.length === 0;
  },

  async open(summary) {
    this.selected = summary.id;
    this.render();
    const detail = $("history-detail");
    let event = summary;
    try {
      ({ json: event } = await api(`/v1/streams/${encodeURIComponent(this.stream)}/events/${summary.id}`));
    } catch (error) {
      $("history-status").textContent = error.explanation;
    }
    const fields = [["id", event.id], ["stream", event.stream], ["type", event.type], ["time", `${commitTime(event.time)} UTC`]];
    if (event.key) fields.push(["idempotency key", event.key]);
    $("detail-fields").replaceChildren(...fields.flatMap(([name, value]) =>
      [element("dt", { text: name }), element("dd", { text: String(value) })]));
    $("detail-data").textContent = prettyData(event.data);
    $("detail-title").textContent = `Event ${event.id}`;
    $("detail-copied").textContent = "";
    detail.hidden = false;
    detail.focus();
  },

  async copyId() {
    const id = String(this.selected ?? "");
    try {
      await navigator.clipboard.writeText(id);
      $("detail-copied").textContent = `Copied id ${id}`;
    } catch {
      // No clipboard access (an insecure origin, or refused): leave the id selected for Ctrl+C.
      const dd = $("detail-fields").querySelector("dd");
      const range = document.createRange();
      range.selectNodeContents(dd);
      getSelection().removeAllRanges();
      getSelection().addRange(range);
      $("detail-copied").textContent = `Id ${id} selected: press Ctrl+C to copy`;
    }
  },

  closeDetail() {
    $("history-detail").hidden = true;
    const button = $("history-rows").querySelector(`tr[data-id="${this.selected}"] button`);
    this.selected = null;
    this.render();
    button?.focus();
  },
};

// ---------------------------------------------------------------------------------------------------------------
// Publish: one event, JSON or text, with an optional type and idempotency key.

async function publish(form) {
  const result = $("publish-result");
  const stream = $("publish-stream").value.trim();
  const type = $("publish-type").value.trim();
  const key = $("publish-key").value.trim();
  const format = form.elements.namedItem("format").value;
  const text = $("publish-data").value;
  const headers = {};
  if (key) headers["Idempotency-Key"] = key;
  let body;
  let path = `/v1/streams/${encodeURIComponent(stream)}/events`;
  if (format === "json") {
    let data;
    try {
      data = JSON.parse(text);
    } catch (error) {
      result.className = "result error";
      result.textContent = `Data is not valid JSON (${error.message}). Choose “Text” to send it as text.`;
      return;
    }
    headers["Content-Type"] = "application/json";
    body = JSON.stringify(type ? { type, data } : { data });
  } else {
    headers["Content-Type"] = "text/plain; charset=utf-8";
    body = text;
    if (type) path += `?${query([["type", type]])}`;
  }
  $("publish-submit").disabled = true;
  try {
    const { status, headers: answer, json } = await api(path, { method: "POST", headers, body });
    const replayed = answer.get("Idempotent-Replayed") === "true";
    const ids = json.ids.length === 1 ? `id ${json.first_id}` : `ids ${json.first_id}–${json.last_id}`;
    result.className = "result ok";
    result.dataset.id = String(json.first_id);
    result.textContent = replayed
      ? `Already published with this idempotency key: ${ids} on ${json.stream} (${status}, nothing appended).`
      : `Published ${ids} on ${json.stream} at ${commitTime(json.time)} UTC (${status} Created).`;
  } catch (error) {
    result.className = "result error";
    delete result.dataset.id;
    result.textContent = error.explanation;
  } finally {
    $("publish-submit").disabled = false;
  }
}

// ---------------------------------------------------------------------------------------------------------------

function init() {
  const token = currentToken();
  $("token").value = token;
  setTokenCookie(token); // the cookie follows this tab's token, also when a stale one lingers
  $("token-form").addEventListener("submit", (event) => {
    event.preventDefault();
    useToken($("token").value.trim());
  });
  $("token-forget").addEventListener("click", () => {
    $("token").value = "";
    useToken("");
  });
  $("tail-form").addEventListener("submit", (event) => {
    event.preventDefault();
    tail.start();
  });
  $("tail-pause").addEventListener("click", () => tail.pause());
  $("tail-stop").addEventListener("click", () => tail.stop());
  $("tail-clear").addEventListener("click", () => tail.clear());
  $("history-form").addEventListener("submit", (event) => {
    event.preventDefault();
    historyView.showNewest();
  });
  $("history-older").addEventListener("click", () => historyView.older());
  $("history-newer").addEventListener("click", () => historyView.newer());
  $("detail-copy").addEventListener("click", () => historyView.copyId());
  $("detail-close").addEventListener("click", () => historyView.closeDetail());
  $("history-detail").addEventListener("keydown", (event) => {
    if (event.key === "Escape") historyView.closeDetail();
  });
  $("publish-form").addEventListener("submit", (event) => {
    event.preventDefault();
    publish(event.target);
  });
  window.addEventListener("hashchange", showView);
  showView();
  streams.start();
}

// For scripts and the browser's devtools: the tail's state (what was received, in order).
window.rewindConsole = { tail, streams, history: historyView };

init();

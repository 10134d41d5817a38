// Live tail: one EventSource on /v1/events?stream=…&type=…&after=…. Rows carry the SSE frame's id, type and data;
// the stream and commit time come from the JSON read of the same ids (SSE frames carry neither).
//
// EventSource only reports frames whose `event:` it has a listener for, and without a type filter the types are
// not known in advance: the same JSON read also finds events of types not yet listened to, shows them and adds a
// listener, so later ones arrive through the EventSource.

import { api } from "./api.js";
import { $, clockTime, commitTime, dataText, element, prettyData, query, splitList } from "./util.js";

const MAX_ROWS = 500;

export const tail = {
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

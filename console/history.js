// History: the JSON read pages forwards (`after`), so a page backwards reads forwards from a cursor far enough
// back to hold a page, widening the window until it does or reaches the stream's first event.

import { ApiError, api } from "./api.js";
import { $, commitTime, dataText, element, prettyData, query, splitList, utcTime } from "./util.js";

export const historyView = {
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

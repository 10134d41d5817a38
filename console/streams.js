// Streams: GET /v1/streams every 2 s; events per minute from the counts this page has seen, and a sparkline of
// that rate over the last 10 minutes (no other request: the counts the table reads anyway, kept longer).

import { api } from "./api.js";
import { sparkline } from "./chart.js";
import { historyView } from "./history.js";
import { tail } from "./tail.js";
import { $, clockTime, commitTime, element } from "./util.js";

const SPARK_MS = 10 * 60_000;

export const streams = {
  samples: [], // [{at: ms, counts: Map(name -> count)}], the last 10 minutes
  timer: null,
  busy: false,

  start() {
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
    return sparkline(points, { from, to: now,
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

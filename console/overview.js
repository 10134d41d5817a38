// Overview: GET /metrics every 2 s, the last 10 minutes kept in the page, drawn as charts with units; one line per
// node when the metrics carry a `node` label.

import { COLORS, drawChart } from "./chart.js";
import { KEEP_MS, MetricsHistory } from "./metrics.js";

const POLL_MS = 2000;

function short(value) {
  const abs = Math.abs(value);
  if (abs >= 1e9) return `${trim(value / 1e9)}G`;
  if (abs >= 1e6) return `${trim(value / 1e6)}M`;
  if (abs >= 1e4) return `${trim(value / 1e3)}k`;
  return trim(value);
}

function trim(value) {
  if (Number.isInteger(value)) return String(value);
  const abs = Math.abs(value);
  return String(Number(value.toFixed(abs >= 100 ? 0 : abs >= 10 ? 1 : abs >= 1 ? 2 : 3)));
}

const perSecond = (value) => `${short(value)}/s`;
const count = (value) => short(value);

function seconds(value) {
  if (value === 0) return "0 ms";
  if (value < 0.001) return `${trim(value * 1e6)} µs`;
  if (value < 1) return `${trim(value * 1e3)} ms`;
  return `${trim(value)} s`;
}

function bytes(value) {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return `${trim(value)} ${units[unit]}`;
}

/// The charts: what each shows, in which unit, from which figures of the scrapes.
const CHARTS = [
  {
    id: "publish-rate", title: "Publish rate", unit: "events per second, committed", format: perSecond,
    lines: (history, node) => [{ label: "events", points: history.rate(node, "events") },
      { label: "requests", points: history.rate(node, "publishes") }],
  },
  {
    id: "deliveries", title: "Deliveries", unit: "events per second, written to subscribers", format: perSecond,
    lines: (history, node) => [{ label: "deliveries", points: history.rate(node, "deliveries") }],
  },
  {
    id: "subscribers", title: "Subscribers", unit: "open SSE streams", format: count, whole: true,
    lines: (history, node) => [{ label: "live", points: history.gauge(node, "live") },
      { label: "catching up", points: history.gauge(node, "catchingUp") }],
  },
  {
    id: "publish-latency", title: "Publish latency", unit: "request received → response written", format: seconds,
    smallest: 0.001,
    lines: (history, node) => [{ label: "p50", points: history.quantile(node, "publishBuckets", 0.5) },
      { label: "p99", points: history.quantile(node, "publishBuckets", 0.99) }],
  },
  {
    id: "delivery-lag", title: "Delivery lag", unit: "commit → written to a live subscriber's socket", format: seconds,
    smallest: 0.001,
    lines: (history, node) => [{ label: "p99", points: history.quantile(node, "lagBuckets", 0.99) }],
  },
  {
    id: "log-head", title: "Log head", unit: "id of the newest event", format: count, whole: true,
    lines: (history, node) => [{ label: "head", points: history.gauge(node, "head") }],
  },
  {
    id: "log-size", title: "Log size", unit: "database on disk", format: bytes, smallest: 1024,
    lines: (history, node) => [{ label: "size", points: history.gauge(node, "size") }],
  },
];

const $ = (id) => document.getElementById(id);

function element(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (name === "text") node.textContent = value;
    else node.setAttribute(name, value);
  }
  node.append(...children);
  return node;
}

const overview = {
  history: new MetricsHistory(),
  cards: new Map(), // chart id -> {svg, legend, figure}
  busy: false,
  error: null,
  polls: 0,

  start() {
    const curl = $("overview-curl");
    curl.textContent = curl.textContent.replace("{origin}", location.origin);
    const grid = $("overview-charts");
    for (const chart of CHARTS) {
      const svg = document.createElementNS("http://www.w3.org/2000/svg", "svg");
      svg.setAttribute("role", "img");
      svg.classList.add("chart-plot");
      const legend = element("ul", { class: "legend", "aria-label": `${chart.title}, latest values` });
      const figure = element("figure", { class: "chart", "data-chart": chart.id },
        element("figcaption", {},
          element("h2", { id: `chart-${chart.id}-title`, text: chart.title }),
          element("span", { class: "unit", text: chart.unit })),
        element("div", { class: "plot" }, svg),
        legend);
      grid.append(figure);
      this.cards.set(chart.id, { svg, legend, figure });
    }
    new ResizeObserver(() => this.render()).observe(grid);
    window.addEventListener("hashchange", () => this.render());
    this.poll();
    setInterval(() => {
      if (!document.hidden) this.poll();
    }, POLL_MS);
  },

  get visible() {
    return !$("view-overview").hidden;
  },

  async poll() {
    if (this.busy) return;
    this.busy = true;
    try {
      const response = await fetch("/metrics", { cache: "no-store", headers: { Accept: "text/plain" } });
      if (!response.ok) throw new Error(`GET /metrics answered ${response.status}`);
      this.history.add(Date.now(), await response.text());
      this.error = null;
      this.polls += 1;
    } catch (error) {
      this.error = error.message;
    } finally {
      this.busy = false;
    }
    this.render();
  },

  render() {
    if (!this.visible) return;
    const latest = this.history.latest;
    const status = $("overview-status");
    if (this.error) {
      status.textContent = `Could not read /metrics: ${this.error}. Retrying every 2 s.`;
      status.className = "status error-text";
    } else if (latest) {
      const time = new Date(latest.at).toLocaleTimeString([], { hour12: false });
      status.textContent = `Updated ${time}; ${this.history.scrapes.length} reading${
        this.history.scrapes.length === 1 ? "" : "s"} kept.`;
      status.className = "status";
    }
    if (!latest) return;
    const nodes = this.history.nodes();
    let events = 0;
    let subscribers = 0;
    for (const digest of latest.nodes.values()) {
      events += digest.events + digest.head;
      subscribers += digest.live + digest.catchingUp;
    }
    $("overview-empty").hidden = events > 0 || subscribers > 0;
    // The time axis spans what the page has read, from one minute up to the 10 minutes it keeps.
    const to = latest.at;
    const from = Math.min(to - 60_000, Math.max(to - KEEP_MS, this.history.scrapes[0].at));
    for (const chart of CHARTS) {
      const card = this.cards.get(chart.id);
      const series = [];
      for (const node of nodes) {
        for (const line of chart.lines(this.history, node)) {
          const label = nodes.length > 1 || node ? `${node} ${line.label}` : line.label;
          series.push({ label, points: line.points, color: COLORS[series.length % COLORS.length] });
        }
      }
      drawChart(card.svg, { series, from, to, format: chart.format, smallest: chart.smallest ?? 1,
        whole: chart.whole ?? false });
      const items = series.map((line) => {
        const last = [...line.points].reverse().find(([, value]) => value !== null && value !== undefined);
        const shown = last ? chart.format(last[1]) : "no data yet";
        const swatch = document.createElementNS("http://www.w3.org/2000/svg", "svg");
        swatch.setAttribute("width", "14");
        swatch.setAttribute("height", "4");
        swatch.setAttribute("aria-hidden", "true");
        const bar = document.createElementNS("http://www.w3.org/2000/svg", "rect");
        for (const [name, value] of Object.entries({ width: 14, height: 4, fill: line.color })) bar.setAttribute(name, value);
        swatch.append(bar);
        return element("li", { "data-series": line.label, "data-value": last ? String(last[1]) : "" },
          swatch, element("span", { text: `${line.label}: ` }), element("strong", { class: "value", text: shown }));
      });
      card.legend.replaceChildren(...items);
      card.svg.setAttribute("aria-label", `${chart.title} (${chart.unit}), last 10 minutes: ${
        items.map((item) => item.textContent).join(", ")}`);
    }
  },
};

// For scripts and the browser's devtools: the kept readings and what each chart shows.
window.rewindOverview = overview;
overview.start();

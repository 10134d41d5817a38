// Reading GET /metrics: the Prometheus text format parsed in the page, and the last 10 minutes of scrapes turned
// into the series the overview draws (rates, quantiles from histogram buckets, gauges), one per node.

/// Parses the Prometheus text exposition format into samples {name, labels, value}; comments and blank lines are
/// skipped, a line that does not parse is skipped too (the page shows what it can read).
export function parsePrometheus(text) {
  const samples = [];
  const line = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)(?:\s+-?\d+)?$/;
  const label = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g;
  for (const raw of text.split("\n")) {
    const trimmed = raw.trim();
    if (!trimmed || trimmed.startsWith("#")) continue;
    const match = line.exec(trimmed);
    if (!match) continue;
    const labels = {};
    if (match[2]) {
      for (const [, name, value] of match[2].matchAll(label)) {
        labels[name] = value.replace(/\\(["\\n])/g, (_, c) => (c === "n" ? "\n" : c));
      }
    }
    samples.push({ name: match[1], labels, value: parseValue(match[3]) });
  }
  return samples;
}

function parseValue(text) {
  if (text === "+Inf") return Infinity;
  if (text === "-Inf") return -Infinity;
  return Number(text);
}

/// The figures the overview needs from one scrape, per node (the `node` label; "" when there is none).
function digest(samples) {
  const nodes = new Map();
  const node = (labels) => {
    const key = labels.node || "";
    if (!nodes.has(key)) {
      nodes.set(key, {
        events: 0, publishes: 0, deliveries: 0, live: 0, catchingUp: 0, head: 0, size: 0,
        publishBuckets: new Map(), lagBuckets: new Map(),
      });
    }
    return nodes.get(key);
  };
  for (const { name, labels, value } of samples) {
    switch (name) {
      case "rewind_events_appended_total": node(labels).events += value; break;
      case "rewind_publish_duration_seconds_count": node(labels).publishes += value; break;
      case "rewind_deliveries_total": node(labels).deliveries += value; break;
      case "rewind_subscribers":
        if (labels.state === "live") node(labels).live += value;
        else if (labels.state === "catching_up") node(labels).catchingUp += value;
        break;
      case "rewind_log_head": node(labels).head = Math.max(node(labels).head, value); break;
      case "rewind_log_size_bytes": node(labels).size += value; break;
      case "rewind_publish_duration_seconds_bucket": addBucket(node(labels).publishBuckets, labels.le, value); break;
      case "rewind_delivery_lag_seconds_bucket": addBucket(node(labels).lagBuckets, labels.le, value); break;
      default: break;
    }
  }
  return nodes;
}

function addBucket(buckets, le, value) {
  const bound = parseValue(le);
  buckets.set(bound, (buckets.get(bound) || 0) + value);
}

/// The `q` quantile of the observations between two bucket snapshots, interpolated inside its bucket the way
/// Prometheus' histogram_quantile does; null when nothing was observed in between.
export function quantile(q, before, after) {
  const bounds = [...after.keys()].sort((a, b) => a - b);
  const counts = bounds.map((bound) => Math.max(0, after.get(bound) - (before ? before.get(bound) || 0 : 0)));
  const total = counts[counts.length - 1];
  if (!total) return null;
  const rank = q * total;
  for (let i = 0; i < bounds.length; i += 1) {
    if (counts[i] >= rank) {
      if (bounds[i] === Infinity) return bounds[i - 1] ?? null;
      const lower = i === 0 ? 0 : bounds[i - 1];
      const below = i === 0 ? 0 : counts[i - 1];
      const inBucket = counts[i] - below;
      return inBucket > 0 ? lower + ((bounds[i] - lower) * (rank - below)) / inBucket : bounds[i];
    }
  }
  return null;
}

export const KEEP_MS = 10 * 60_000;
/// Rates and quantiles are taken over the last 10 s of scrapes, so a 2 s poll does not make them jump.
const SPAN_MS = 10_000;

/// The last 10 minutes of scrapes, and the series drawn from them.
export class MetricsHistory {
  constructor() {
    this.scrapes = []; // [{at: ms, nodes: Map(node -> digest)}], oldest first
  }

  add(at, text) {
    this.scrapes.push({ at, nodes: digest(parsePrometheus(text)) });
    while (this.scrapes.length && at - this.scrapes[0].at > KEEP_MS + SPAN_MS) this.scrapes.shift();
  }

  get latest() {
    return this.scrapes[this.scrapes.length - 1] || null;
  }

  /// Every node seen in the kept scrapes, sorted ("" alone for a server without a node label).
  nodes() {
    const names = new Set();
    for (const scrape of this.scrapes) for (const name of scrape.nodes.keys()) names.add(name);
    return [...names].sort();
  }

  /// For each scrape, the earlier scrape about SPAN_MS before it (at least the previous one).
  *pairs() {
    let j = 0;
    for (let i = 1; i < this.scrapes.length; i += 1) {
      while (j < i - 1 && this.scrapes[i].at - this.scrapes[j + 1].at >= SPAN_MS) j += 1;
      yield [this.scrapes[j], this.scrapes[i]];
    }
  }

  /// Per-second rate of a counter of the digest; a counter that went down (a restart) gives no point.
  rate(node, field) {
    const points = [];
    for (const [before, after] of this.pairs()) {
      const a = before.nodes.get(node);
      const b = after.nodes.get(node);
      if (!a || !b || b[field] < a[field]) {
        points.push([after.at, null]);
        continue;
      }
      points.push([after.at, ((b[field] - a[field]) * 1000) / (after.at - before.at)]);
    }
    return points;
  }

  /// A quantile of a histogram's observations over the span before each scrape; null where there were none.
  quantile(node, field, q) {
    const points = [];
    for (const [before, after] of this.pairs()) {
      const b = after.nodes.get(node);
      const a = before.nodes.get(node);
      points.push([after.at, b ? quantile(q, a && a[field], b[field]) : null]);
    }
    return points;
  }

  gauge(node, field) {
    return this.scrapes.map((scrape) => [scrape.at, scrape.nodes.has(node) ? scrape.nodes.get(node)[field] : null]);
  }
}

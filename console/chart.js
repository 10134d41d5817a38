// Line charts and sparklines in SVG, drawn by the page itself: time on x, a value with its unit on y.

const SVG = "http://www.w3.org/2000/svg";

/// Line colours, each at least 4.5:1 against the white chart background.
export const COLORS = ["#1d4ed8", "#b45309", "#047857", "#7c3aed", "#be123c", "#0e7490", "#4d7c0f", "#9d174d"];

function svg(tag, attributes = {}, text) {
  const node = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, String(value));
  if (text !== undefined) node.textContent = text;
  return node;
}

/// A step of 1, 2 or 5 times a power of ten, so that about `count` steps cover `max`.
function niceStep(max, count) {
  const raw = max / count;
  const power = 10 ** Math.floor(Math.log10(raw));
  const fraction = raw / power;
  return (fraction <= 1 ? 1 : fraction <= 2 ? 2 : fraction <= 5 ? 5 : 10) * power;
}

function pad(n) {
  return String(n).padStart(2, "0");
}

/// Draws `series` ([{label, color, points: [[ms, value | null]]}]) into `target` (an <svg>), over [from, to].
/// `format(value)` writes a value with its unit, for the y axis; `smallest` is the y range when every value is 0;
/// `whole` keeps the y ticks on whole numbers (counts).
/// A gap (null, or no point for 3 polls) breaks the line instead of joining across it.
export function drawChart(target, { series, from, to, format, smallest = 1, whole = false, gapMs = 6500 }) {
  const width = Math.max(240, Math.round(target.parentElement.clientWidth || 320));
  const height = 170;
  const left = 64;
  const right = 10;
  const top = 10;
  const bottom = 24;
  target.setAttribute("viewBox", `0 0 ${width} ${height}`);
  target.setAttribute("width", width);
  target.setAttribute("height", height);
  const plotWidth = width - left - right;
  const plotHeight = height - top - bottom;

  let max = 0;
  for (const line of series) for (const [, value] of line.points) if (value !== null && value > max) max = value;
  const step = whole ? Math.max(1, niceStep(Math.max(max, smallest), 4)) : niceStep(Math.max(max, smallest), 4);
  const yMax = Math.max(step, Math.ceil(Math.max(max, smallest) / step) * step);
  const x = (t) => left + ((t - from) / (to - from)) * plotWidth;
  const y = (v) => top + plotHeight - (v / yMax) * plotHeight;

  const children = [];
  children.push(svg("rect", { x: left, y: top, width: plotWidth, height: plotHeight, fill: "#ffffff", stroke: "#d1d5db" }));
  for (let v = 0; v <= yMax + step / 2; v += step) {
    children.push(svg("line", { x1: left, x2: left + plotWidth, y1: y(v), y2: y(v), stroke: "#e5e7eb" }));
    children.push(svg("text", { x: left - 6, y: y(v) + 4, "text-anchor": "end", class: "tick y" }, format(v)));
  }
  // Time ticks on round clock times, as many as fit (about one per 70 px), with seconds when they are apart by less
  // than a minute.
  const fit = Math.max(2, Math.floor(plotWidth / 70));
  const every = [10_000, 15_000, 30_000, 60_000, 120_000, 300_000, 600_000].find((s) => (to - from) / s <= fit) || 600_000;
  for (let t = Math.ceil(from / every) * every; t <= to; t += every) {
    const date = new Date(t);
    const seconds = every < 60_000 ? `:${pad(date.getSeconds())}` : "";
    children.push(svg("line", { x1: x(t), x2: x(t), y1: top, y2: top + plotHeight, stroke: "#f3f4f6" }));
    children.push(svg("text", { x: x(t), y: height - 6, "text-anchor": "middle", class: "tick x" },
      `${pad(date.getHours())}:${pad(date.getMinutes())}${seconds}`));
  }
  for (const line of series) {
    let path = "";
    let last = null;
    const dots = [];
    for (const [t, value] of line.points) {
      if (t < from) continue;
      if (value === null || value === undefined || Number.isNaN(value)) {
        last = null;
        continue;
      }
      const joined = last !== null && t - last <= gapMs;
      path += `${joined ? "L" : "M"}${x(t).toFixed(1)},${y(value).toFixed(1)}`;
      if (!joined) dots.push([t, value]);
      last = t;
    }
    if (path) {
      children.push(svg("path", { d: path, fill: "none", stroke: line.color, "stroke-width": 2,
        "stroke-linejoin": "round", class: "line", "data-series": line.label }));
    }
    // A lone point has no line to show it.
    for (const [t, value] of dots) children.push(svg("circle", { cx: x(t), cy: y(value), r: 2, fill: line.color }));
  }
  target.replaceChildren(...children);
}

/// A small line of `points` ([[ms, value]]) over [from, to] with no axes; `label` is its accessible name.
export function sparkline(points, { from, to, label, width = 120, height = 26 }) {
  const node = svg("svg", { width, height, viewBox: `0 0 ${width} ${height}`, role: "img", class: "sparkline",
    "aria-label": label });
  node.append(svg("title", {}, label));
  const max = Math.max(1, ...points.map(([, value]) => value));
  const x = (t) => 1 + ((t - from) / (to - from)) * (width - 2);
  const y = (v) => height - 2 - (v / max) * (height - 4);
  node.append(svg("line", { x1: 1, x2: width - 1, y1: height - 2, y2: height - 2, stroke: "#d1d5db" }));
  const shown = points.filter(([t]) => t >= from);
  if (shown.length > 0) {
    const path = shown.map(([t, v], i) => `${i ? "L" : "M"}${x(t).toFixed(1)},${y(v).toFixed(1)}`).join("");
    node.append(svg("path", { d: path, fill: "none", stroke: COLORS[0], "stroke-width": 1.5, class: "line" }));
  }
  return node;
}

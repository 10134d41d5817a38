// Small helpers every view uses: DOM lookup and building, and how ids, times, data and lists are shown and read.

export const $ = (id) => document.getElementById(id);

export function element(tag, attributes = {}, ...children) {
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
export function prettyData(data) {
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
export function dataText(data) {
  return typeof data === "string" ? data : JSON.stringify(data);
}

/// "2026-11-21T18:25:22.634666Z" shown as "2026-11-21 18:25:22.634666".
export function commitTime(time) {
  return String(time || "").replace("T", " ").replace(/Z$/, "");
}

export function clockTime(date) {
  const pad = (n, width = 2) => String(n).padStart(width, "0");
  return `${pad(date.getHours())}:${pad(date.getMinutes())}:${pad(date.getSeconds())}.${pad(date.getMilliseconds(), 3)}`;
}

export function splitList(text) {
  return text.split(/[\s,]+/).map((s) => s.trim()).filter(Boolean);
}

/// A datetime-local value read as UTC, in RFC 3339.
export function utcTime(value) {
  if (!value) return "";
  const withSeconds = value.length === 16 ? `${value}:00` : value;
  return `${withSeconds}Z`;
}

export function query(pairs) {
  const params = new URLSearchParams();
  for (const [name, value] of pairs) {
    if (value !== undefined && value !== null && value !== "") params.append(name, String(value));
  }
  return params.toString();
}

// Publish: one event, JSON or text, with an optional type and idempotency key.

import { api } from "./api.js";
import { $, commitTime, query } from "./util.js";

export async function publish(form) {
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

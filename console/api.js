// HTTP: JSON in and out; every failure becomes an ApiError with the problem+json `title`, `status`, `detail`.
//
// Token: kept in sessionStorage (this tab only); sent as `Authorization: Bearer` on fetch and as the
// `rewind_token` cookie for EventSource, which cannot set headers (the cookie keeps it out of URLs and logs).

import { $ } from "./util.js";

const TOKEN_KEY = "rewind.token";

export function currentToken() {
  return sessionStorage.getItem(TOKEN_KEY) || "";
}

/// Keeps `token` for this tab (or forgets it when empty) and sends it as the cookie from now on.
export function storeToken(token) {
  if (token) sessionStorage.setItem(TOKEN_KEY, token);
  else sessionStorage.removeItem(TOKEN_KEY);
  setTokenCookie(token);
}

export function setTokenCookie(token) {
  const secure = location.protocol === "https:" ? "; Secure" : "";
  if (token) {
    document.cookie = `rewind_token=${encodeURIComponent(token)}; Path=/; SameSite=Strict${secure}`;
  } else {
    document.cookie = `rewind_token=; Path=/; Max-Age=0; SameSite=Strict${secure}`;
  }
}

export class ApiError extends Error {
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

export async function api(path, { method = "GET", headers = {}, body, accept = "application/json" } = {}) {
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

export function hideAuthBanner() {
  $("auth-banner").hidden = true;
}

// Rewind console: plain JavaScript modules over the public HTTP API (/v1), no build step and no dependencies. This
// one wires the views together: api.js (HTTP and the token), streams.js, tail.js, history.js, publish.js, and
// overview.js (loaded by the page itself), with util.js and the charts' chart.js and metrics.js.

import { currentToken, hideAuthBanner, setTokenCookie, storeToken } from "./api.js";
import { historyView } from "./history.js";
import { publish } from "./publish.js";
import { streams } from "./streams.js";
import { tail } from "./tail.js";
import { $ } from "./util.js";

function useToken(token) {
  storeToken(token);
  hideAuthBanner();
  streams.refresh();
  tail.restartIfRunning();
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

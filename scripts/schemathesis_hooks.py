"""Schemathesis hooks for scripts/schemathesis-run.sh (loaded through SCHEMATHESIS_HOOKS).

- NDJSON request bodies: the schema describes them as an array of event objects; they are sent one per line.
- The two event URLs answer SSE or JSON by `Accept`, which OpenAPI cannot describe as a parameter: each
  generated request gets one of the two at random, so both forms are checked against the description.
- An SSE subscription stays open until `limit` events or, with `live=false`, until it is caught up. So that no
  request can hang, every SSE request whose `live` would keep it open gets `live=false` (a `live` value that is
  not a boolean is left alone: the server refuses it with 400 before streaming).
- `wait` (JSON long-poll, up to 60 s) is capped at 1 s so the run stays short.
- `POST /v1/events` gets the same treatment in its JSON body (`live: false`, `wait` capped).
- Two rules of the server depend on what OpenAPI cannot tie a parameter to, so valid (positive) requests are
  kept inside them: the JSON read's page is at most 10 000 events while SSE's `limit` has no such bound (the two
  differ by `Accept` only), so a valid request with a larger `limit` is sent as SSE; and publish's `type` query
  parameter is the type of a text body, refused next to a JSON or NDJSON body (which carries its types in its
  events), so it is left out of valid publishes with such bodies. Swift tests cover both refusals.
"""
import json
import random

import schemathesis

EVENT_PATHS = ("/v1/streams/{stream}/events", "/v1/events")
TRUE_WORDS = ("true", "1", "yes")


@schemathesis.serializer("application/x-ndjson")
def ndjson(ctx, value):
    if isinstance(value, list):
        return "".join(json.dumps(item) + "\n" for item in value).encode()
    if isinstance(value, bytes):
        return value
    return str(value).encode()


def _keeps_open(live):
    if live is None or live is True:
        return True
    if isinstance(live, list):
        return any(_keeps_open(item) for item in live)
    return isinstance(live, str) and live.lower() in TRUE_WORDS


def _wants_json(accept):
    return "json" in accept and "event-stream" not in accept


def _cap_wait(container):
    wait = container.get("wait")
    try:
        if wait is not None and not isinstance(wait, bool) and 1 < float(wait) <= 60:
            container["wait"] = 1
    except (TypeError, ValueError):
        pass


MAX_JSON_PAGE = 10_000


def _is_positive(case):
    meta = getattr(case, "meta", None)
    try:
        return meta is not None and meta.generation.mode.is_positive
    except AttributeError:
        return False


def _limit_over_page(container):
    limit = container.get("limit")
    try:
        return limit is not None and not isinstance(limit, bool) and int(limit) > MAX_JSON_PAGE
    except (TypeError, ValueError):
        return False


@schemathesis.hook
def before_call(context, case, kwargs):
    method = case.method.upper()
    if method == "POST" and case.operation.path == "/v1/streams/{stream}/events":
        if _is_positive(case) and case.query and "type" in case.query and "text/" not in (case.media_type or ""):
            del case.query["type"]
        return
    if case.operation.path not in EVENT_PATHS or method not in ("GET", "POST"):
        return
    posted = method == "POST"
    if posted and case.operation.path != "/v1/events":
        return
    if case.headers is None:
        case.headers = {}
    container = case.body if posted else case.query
    if container is None and not posted:
        case.query = container = {}
    if "Accept" not in case.headers:
        case.headers["Accept"] = random.choice(["application/json", "text/event-stream"])
        if isinstance(container, dict) and _is_positive(case) and _limit_over_page(container):
            case.headers["Accept"] = "text/event-stream"
    if not isinstance(container, dict):
        return  # a POST body that is not an object is refused before streaming
    if _wants_json(case.headers["Accept"]):
        _cap_wait(container)
    elif posted:
        # Only a valid `live` that keeps the stream open is replaced; any other value is refused before streaming.
        if container.get("live", True) is True:
            container["live"] = False
    elif _keeps_open(container.get("live")):
        container["live"] = "false"

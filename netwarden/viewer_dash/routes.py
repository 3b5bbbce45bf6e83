"""The JSON API on the page's server, and the token gate in front of everything."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from urllib.parse import urlencode

import dash
from flask import Response, jsonify, redirect, request

from netwarden.metrics.counting import StoreCounter
from netwarden.metrics.exposition import CONTENT_TYPE
from netwarden.metrics.scrape import scrape
from netwarden.store import device_queries, event_queries, traffic_queries
from netwarden.store.read_source import ReadSource
from netwarden.store.traffic_queries import QueryError
from netwarden.view.devices import device_key
from netwarden.view.labels import NO_DISCOVERY_TABLES
from netwarden.viewer_dash.api import (
    TOKEN_COOKIE,
    ApiError,
    parse_devices_query,
    parse_events_query,
    parse_flows_query,
    parse_view,
    parse_watch_span,
    token_matches,
)
from netwarden.viewer_dash.source import DashSettings, StoreProblem, reading


def _is_api(path: str) -> bool:
    """Read by programs, which send the token as a header (no cookie set from ?token=)."""
    return path.startswith("/api/") or path == "/metrics"


def register_api(app: dash.Dash, settings: DashSettings) -> None:
    server = app.server

    @server.before_request
    def require_token():  # type: ignore[no-untyped-def]
        if not settings.token:
            return None
        offered = request.args.get("token")
        if offered is not None and request.method == "GET" and \
                not _is_api(request.path) and token_matches(settings.token, None,
                                                                       offered):
            # A page link with ?token=T sets the cookie once and drops T from the address.
            rest = {k: v for k, v in request.args.items(multi=True) if k != "token"}
            target = request.path + ("?" + urlencode(rest) if rest else "")
            response = redirect(target)
            response.set_cookie(TOKEN_COOKIE, settings.token, httponly=True, samesite="Strict")
            return response
        if token_matches(settings.token, request.headers.get("Authorization"),
                         request.cookies.get(TOKEN_COOKIE)):
            return None
        response = jsonify(error="a bearer token is required (Authorization: Bearer TOKEN; "
                                 "for the page, open it once with ?token=TOKEN)")
        response.status_code = 401
        response.headers["WWW-Authenticate"] = 'Bearer realm="netwarden"'
        return response

    def answer(build: Callable[[sqlite3.Connection], object]) -> Response:
        try:
            with reading(settings.db_path, settings.server) as conn:
                return jsonify(build(conn))
        except (ApiError, QueryError) as exc:
            response = jsonify(error=str(exc))
            response.status_code = 400
            return response
        except StoreProblem as exc:
            response = jsonify(error=str(exc))
            response.status_code = 503
            return response

    def args() -> dict[str, list[str]]:
        return {key: request.args.getlist(key) for key in request.args}

    @server.route("/api/v1/flows")
    def api_flows() -> Response:
        def build(conn: sqlite3.Connection) -> object:
            query = parse_flows_query(args(), settings.clock())
            meta = {"since": query.view.since, "until": query.view.until,
                    "filters": [f.__dict__ for f in query.view.filters]}
            if query.group:
                rows = traffic_queries.traffic_totals(conn, query.group, query.view)
                page = rows[query.page * query.limit:(query.page + 1) * query.limit]
                return {**meta, "group": query.group, "rows": [
                    {"value": r.value, "sent": r.sent, "recv": r.recv,
                     "first_seen": r.first_seen, "last_seen": r.last_seen} for r in page]}
            flows = traffic_queries.view_flows(conn, query.view, query.limit,
                                       query.page * query.limit)
            return {**meta, "rows": [f._asdict() for f in flows]}
        return answer(build)

    @server.route("/api/v1/executables")
    def api_executables() -> Response:
        def build(conn: sqlite3.Connection) -> object:
            view = parse_view(args(), settings.clock())
            return {"since": view.since, "until": view.until,
                    "rows": [r._asdict() for r in traffic_queries.view_executables(conn, view)]}
        return answer(build)

    @server.route("/api/v1/events")
    def api_events() -> Response:
        def build(conn: sqlite3.Connection) -> object:
            query = parse_events_query(args())
            rows = event_queries.view_events(conn, query.since, query.until, query.kinds,
                                             query.path, query.limit, query.after_id)
            return {"rows": [r._asdict() for r in rows]}
        return answer(build)

    @server.route("/api/v1/devices")
    def api_devices() -> Response:
        def build(conn: sqlite3.Connection) -> object:
            query = parse_devices_query(args(), settings.clock())
            if not device_queries.has_discovery_tables(conn):
                raise StoreProblem(NO_DISCOVERY_TABLES)
            rows = [r for r in device_queries.devices(conn, settings.known_devices)
                    if query.mac is None or r.mac == query.mac]
            windows: dict[str, list[dict[str, object]]] = {}
            for w in device_queries.presence_windows(conn, query.mac, query.since or 0,
                                                     query.until):
                windows.setdefault(device_key(w), []).append(
                    {"start": w.start, "last_seen": w.last_seen, "end": w.end})
            return {"since": query.since, "until": query.until, "rows": [
                {**r.as_record(), "presence": windows.get(device_key(r), [])} for r in rows]}
        return answer(build)

    @server.route("/api/v1/watch")
    def api_watch() -> Response:
        """The connectivity watch: targets as `netwarden watch status --json` prints them,
        and the outages overlapping [since, until] (default: the last week)."""
        def build(source: ReadSource) -> object:
            from netwarden.store import watch_queries
            from netwarden.view.watch import NO_WATCH_TABLES
            if source.remote or not watch_queries.has_watch_tables(source.conn):
                raise StoreProblem(NO_WATCH_TABLES)
            now = settings.clock()
            since, until = parse_watch_span(args(), now)
            return {"since": since, "until": until,
                    "targets": [r.as_record() for r in watch_queries.statuses(source.conn,
                                                                              now)],
                    "outages": [o.as_record() for o in watch_queries.outages(
                        source.conn, since, until)]}
        return answer(build)

    counter = StoreCounter(settings.metrics_top_n, settings.clock)
    if settings.server is None:
        scrape(counter, settings.db_path)   # counting starts with the server, not a scrape

    @server.route("/metrics")
    def metrics() -> Response:
        """Prometheus metrics (docs/metrics.md), behind the same token as the JSON API."""
        if settings.server is not None:
            return Response("/metrics reads a local store; this viewer reads a server "
                            "(--db URL): run `netwarden metrics` on each host instead\n",
                            status=501, mimetype="text/plain")
        return Response(scrape(counter, settings.db_path), content_type=CONTENT_TYPE)

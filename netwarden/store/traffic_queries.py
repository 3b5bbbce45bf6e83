"""The traffic views both viewers and the JSON API read: totals by a grouping, series over
time, flow pages, executables; written once for the local store and a fleet's server."""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

from netwarden.model import family_label
from netwarden.store import rollups
from netwarden.store.dialects import DialectName
from netwarden.store.export_queries import FLOWS_SQL, ExportedFlow
from netwarden.store.read_source import Reader, ReadSource, as_source, marks
from netwarden.store.rollups import Family, Part, Rollup

# A view is a time window, include/exclude filters and a grouping ("dimension"). Every query
# first sums the narrow flows table by the flow column a dimension needs (process id, address
# id, port, ...), with filters as conditions on flows alone (ids looked up in the small
# tables), and only then joins the few resulting keys to their labels. So a recent window
# reads only its rows through the time index, and no per-row join is made.

# Written once for the local store and a fleet's server (store/read_source.py's markers:
# on a server, ids are only unique within one host and store).
_PROCESS_LOOKUP = ("SELECT [[ids p id]] FROM processes p "
                   "JOIN [[current executables]] e ON e.id = p.exe_id[[same e p]] "
                   "LEFT JOIN [[current executables]] pe ON pe.id = p.parent_exe_id[[same pe p]] "
                   "WHERE {expr} IN ({marks})")
_PROCESS_JOINS = ("JOIN processes p ON p.id = t.k[[same p t]] "
                  "JOIN [[current executables]] e ON e.id = p.exe_id[[same e p]] "
                  "LEFT JOIN [[current executables]] pe ON pe.id = p.parent_exe_id[[same pe p]]")


@dataclass(frozen=True)
class Dimension:
    """A grouping of traffic: how to key flows by it, label the keys and look values up."""

    name: str              # the API's and the filters' name for it
    title: str             # what a viewer calls it
    flow_key: str          # SQL over `flows f`: what rows are summed by
    label: str             # SQL over the summed keys `t.k` (and `joins`): the group's value
    joins: str = ""
    lookup: str = ""       # SQL giving flow_key values for a value list ({marks}); "" = direct
    numeric: bool = False  # values are integers (ports, uids)


def _process_dimension(name: str, title: str, expr: str, numeric: bool = False) -> Dimension:
    return Dimension(name, title, "f.process_id", expr, _PROCESS_JOINS,
                     _PROCESS_LOOKUP.replace("{expr}", expr), numeric)


DIMENSIONS: dict[str, Dimension] = {d.name: d for d in (
    _process_dimension("exe", "executable", "e.path"),
    _process_dimension("name", "name", "p.name"),
    _process_dimension("sha256", "sha256", "e.sha256"),
    _process_dimension("parent", "parent", "COALESCE(pe.path, '')"),
    # Flows with no known name have domain_id NULL; 0 stands for them (ids start at 1).
    Dimension("domain", "domain", "COALESCE(f.domain_id,0)", "COALESCE(d.name, '')",
              "LEFT JOIN domains d ON d.id = t.k[[same d t]]",
              "SELECT [[ids d id]] FROM domains d WHERE name IN ({marks})"),
    Dimension("raddr", "remote address", "f.raddr_id", "a.addr",
              "JOIN addresses a ON a.id = t.k[[same a t]]",
              "SELECT [[ids a id]] FROM addresses a WHERE addr IN ({marks})"),
    Dimension("rport", "remote port", "f.rport", "t.k", numeric=True),
    Dimension("lport", "local port", "f.lport", "t.k", numeric=True),
    _process_dimension("user", "user", "p.uid", numeric=True),
    _process_dimension("container", "container", "p.container"),
    Dimension("host", "host", "f.host_id", "h.name", "JOIN hosts h ON h.id = t.k",
              "SELECT id FROM hosts WHERE name IN ({marks})"),
)}

#: On a server the host is each row's own column (the login role that shipped it).
_SERVER_HOST = Dimension("host", "host", "f.host", "t.k", numeric=False)


def _for(source: ReadSource, dimension: Dimension) -> Dimension:
    return _SERVER_HOST if source.remote and dimension.name == "host" else dimension


class QueryError(ValueError):
    """A view asked for something that does not exist (a dimension, a non-numeric port)."""


@dataclass(frozen=True)
class Filter:
    """Keep (or, with exclude, drop) the traffic whose `dimension` has `value` (as text)."""

    dimension: str
    value: str
    exclude: bool = False

    def __post_init__(self) -> None:
        dimension = DIMENSIONS.get(self.dimension)
        if dimension is None:
            raise QueryError(f"unknown grouping {self.dimension!r}; known: "
                             + ", ".join(DIMENSIONS))
        if dimension.numeric and not _is_int(self.value):
            raise QueryError(f"{dimension.title} must be a number, got {self.value!r}")


def _is_int(text: str) -> bool:
    return text.lstrip("-").isdigit()


@dataclass(frozen=True)
class TrafficView:
    """Which flows a query reads: window starts in [since, until), and the filters.

    Include filters on one dimension are alternatives (OR); different dimensions and every
    exclude filter must all hold (AND).
    """

    since: int | None = None
    until: int | None = None
    filters: tuple[Filter, ...] = ()
    # False: sum raw rows only, never rollups (the property test compares the two).
    rollups: bool = True


def _filter_condition(dimension: Dimension, values: list[str],
                      exclude: bool) -> tuple[str, list[object]]:
    params: list[object] = [int(v) if dimension.numeric else v for v in values]
    negate = "NOT " if exclude else ""
    if not dimension.lookup:
        return f"{dimension.flow_key} {negate}IN ({marks(len(params))})", params
    lookup = dimension.lookup.replace("{marks}", marks(len(params)))
    condition = f"[[keyed f {dimension.flow_key}]] IN ({lookup})"
    if dimension.name == "domain" and "" in values:
        condition = f"({dimension.flow_key} = 0 OR {condition})"
    return f"{negate}{condition}", params


#: Beyond this share of the recorded time span, a window is read by scanning the table.
WIDE_WINDOW = 0.25


def _is_wide(conn: Reader, view: TrafficView) -> bool:
    """True when the view's window holds much of the table.

    Reading most rows through the time index costs a random row lookup each (on 10M rows,
    24 s against 7 s for a scan), so a wide window's time condition is written `+f.time`,
    which no index serves; filters on processes or ports can still use theirs.
    """
    if view.since is None and view.until is None:
        return True
    bounds = flow_time_bounds(conn)
    if bounds is None:
        return False
    low, high = bounds
    since = low if view.since is None else max(view.since, low)
    until = high + 1 if view.until is None else min(view.until, high + 1)
    return (until - since) / (high - low + 1) > WIDE_WINDOW


def _where(source: ReadSource, view: TrafficView,
           wide: bool = False) -> tuple[str, list[object]]:
    conditions: list[str] = []
    params: list[object] = []
    time_column = "+f.time" if wide else "f.time"
    if view.since is not None:
        conditions.append(f"{time_column} >= ?")
        params.append(view.since)
    if view.until is not None:
        conditions.append(f"{time_column} < ?")
        params.append(view.until)
    grouped: dict[tuple[str, bool], list[str]] = {}
    for item in view.filters:
        grouped.setdefault((item.dimension, item.exclude), []).append(item.value)
    for (name, exclude), values in grouped.items():
        sql, values_params = _filter_condition(_for(source, DIMENSIONS[name]), values, exclude)
        conditions.append(sql)
        params.extend(values_params)
    return (" AND ".join(conditions) or "1 = 1"), params


def _dimension(name: str, source: ReadSource) -> Dimension:
    try:
        return _for(source, DIMENSIONS[name])
    except KeyError:
        raise QueryError(f"unknown grouping {name!r}; known: " + ", ".join(DIMENSIONS)) \
            from None


class TrafficTotal(NamedTuple):
    """One group's traffic in a view. `value` is text, or an int for ports and users."""

    value: object
    sent: int
    recv: int
    first_seen: int    # start of the first window with traffic
    last_seen: int     # start of the last one

    @property
    def total(self) -> int:
        return self.sent + self.recv


@dataclass(frozen=True)
class _Rows:
    """What a query sums: ``FROM {table} WHERE {where}`` (params in that order), and the
    columns holding a row's first and last window start."""

    table: str
    where: str
    params: list[object]
    first: str = "f.time"
    last: str = "f.time"


def _has_rollups(source: ReadSource) -> bool:
    """Whether the source keeps rollups: a local store from schema 7 on; a PostgreSQL
    server (schema 3 on, which readers require). MariaDB servers have none (docs)."""
    if source.remote:
        return source.dialect.name is DialectName.POSTGRESQL
    return source.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?",
                          (rollups.ROLLUPS[0].table,)).fetchone() is not None


def _rows(source: ReadSource, view: TrafficView, keys: list[str],
          origin: int | None = None, bucket_s: int | None = None) -> _Rows:
    """The rows answering ``view`` for a query keyed by ``keys`` (flow keys): rollups
    where the window, the keys, the filters and the series' buckets allow, else raw rows."""
    family = (rollups.covering_family([*keys, *(_for(source, DIMENSIONS[f.dimension]).flow_key
                                                for f in view.filters)])
              if view.rollups else None)
    if family is not None and _has_rollups(source):
        parts = _parts(view, family, origin, bucket_s)
        if any(part.rollup is not None for part in parts):
            table, params = _union(source, family, parts)
            where, filter_params = _where(source, TrafficView(filters=view.filters))
            return _Rows(table, where, params + filter_params, "f.first_time", "f.last_time")
    where, params = _where(source, view, _is_wide(source, view))
    return _Rows("flows f", where, params)


def reads_rollups(conn: Reader, dimension: str, view: TrafficView, origin: int | None = None,
                  bucket_s: int | None = None) -> bool:
    """Whether a query grouped by ``dimension`` (a series: with these buckets) reads rollups
    (for tests and benchmarks: they must know that a comparison compares something)."""
    source = as_source(conn)
    return _rows(source, view, [_dimension(dimension, source).flow_key], origin,
                 bucket_s).table != "flows f"


def _parts(view: TrafficView, family: Family, origin: int | None,
           bucket_s: int | None) -> list[Part]:
    usable = rollups.usable(family, origin, bucket_s)
    if origin is not None and (view.since is None or view.since < origin):
        # Before the origin, C-style division puts a period and its rows in other buckets.
        until = view.until
        if until is not None and until <= origin:
            return [Part(None, view.since, until)]
        return [Part(None, view.since, origin)] + rollups.plan(origin, until, usable)
    return rollups.plan(view.since, view.until, usable)


def _union(source: ReadSource, family: Family, parts: list[Part]) -> tuple[str, list[object]]:
    """The parts as one table ``f``: time, first_time, last_time, the host, the family's
    key, sent, recv."""
    host = "host, source_id" if source.remote else "host_id"
    selects, params = [], []
    for part in parts:
        conditions = []
        for bound, op in ((part.since, ">="), (part.until, "<")):
            if bound is not None:
                conditions.append(f"time {op} ?")
                params.append(bound)
        where = " WHERE " + " AND ".join(conditions) if conditions else ""
        selects.append(_part_select(part.rollup, family, host) + where)
    return f"({' UNION ALL '.join(selects)}) f", params


def _part_select(rollup: Rollup | None, family: Family, host: str) -> str:
    column = family.column
    if rollup is None:
        return (f"SELECT time, time AS first_time, time AS last_time, {host}, "
                f"{family.raw} AS {column}, sent, recv FROM flows")
    return (f"SELECT time, first_time, last_time, {host}, {column}, sent, recv "
            f"FROM {rollup.table}")


def _grouping(conn: Reader, dimension: str, view: TrafficView, origin: int | None = None,
              bucket_s: int | None = None) -> tuple[ReadSource, Dimension, _Rows]:
    """What a grouped query needs: the source, the grouping as it spells, the rows."""
    source = as_source(conn)
    dim = _dimension(dimension, source)
    return source, dim, _rows(source, view, [dim.flow_key], origin, bucket_s)


def traffic_totals(conn: Reader, dimension: str,
                   view: TrafficView) -> list[TrafficTotal]:
    """Sent, received, first and last seen per value of `dimension`, largest total first."""
    source, dim, rows = _grouping(conn, dimension, view)
    # GROUP BY +k: summing by walking an index in key order looks up every row at random.
    sql = (f"SELECT {dim.label} AS v, SUM(t.sent), SUM(t.recv), MIN(t.first), MAX(t.last) "
           f"FROM (SELECT [[scope f]]{dim.flow_key} AS k, SUM(f.sent) AS sent, "
           f"SUM(f.recv) AS recv, MIN({rows.first}) AS first, MAX({rows.last}) AS last "
           f"FROM {rows.table} WHERE {rows.where} GROUP BY [[grouped k]]) t {dim.joins} "
           "GROUP BY v ORDER BY SUM(t.sent) + SUM(t.recv) DESC, v")
    return [TrafficTotal(*row) for row in source.execute(sql, rows.params)]


class SeriesPoint(NamedTuple):
    time: int          # bucket start, epoch seconds
    value: object
    sent: int
    recv: int


def traffic_series(conn: Reader, dimension: str, view: TrafficView,
                   origin: int, bucket_s: int) -> list[SeriesPoint]:
    """Bytes per bucket of `bucket_s` seconds (counted from `origin`) and value, by time."""
    if bucket_s < 1:
        raise QueryError(f"bucket must be at least 1 s, got {bucket_s}")
    source, dim, rows = _grouping(conn, dimension, view, origin, bucket_s)
    sql = (f"SELECT ? + t.b * ?, {dim.label} AS v, SUM(t.sent), SUM(t.recv) "
           f"FROM (SELECT [[scope f]](f.time - ?) [[div]] ? AS b, {dim.flow_key} AS k, "
           f"SUM(f.sent) AS sent, SUM(f.recv) AS recv FROM {rows.table} WHERE {rows.where} "
           f"GROUP BY b, [[grouped k]]) t {dim.joins} GROUP BY t.b, v ORDER BY t.b, v")
    # The bucket expression comes before the table in the text: its params first.
    return [SeriesPoint(int(t), v, int(sent), int(recv)) for t, v, sent, recv in
            source.execute(sql, [origin, bucket_s, origin, bucket_s, *rows.params])]


def flow_time_bounds(conn: Reader) -> tuple[int, int] | None:
    """The first and last window start recorded (None when no flow is)."""
    # Two subqueries: SQLite answers a lone MIN() or MAX() from the index, both at once by
    # scanning the table.
    low, high = as_source(conn).execute("SELECT (SELECT MIN(time) FROM flows), "
                                        "(SELECT MAX(time) FROM flows)").fetchone()
    return None if low is None else (int(low), int(high))


def view_flows(conn: Reader, view: TrafficView, limit: int,
               offset: int = 0) -> list[ExportedFlow]:
    """The view's flow rows as `export` prints them, newest first, a page at a time."""
    source = as_source(conn)
    where, params = _where(source, view)
    sql = FLOWS_SQL.replace("WHERE f.time >= ?", f"WHERE {where}").replace(
        "ORDER BY f.time, [[seq f]]", "ORDER BY f.time DESC, [[seqdesc f]] LIMIT ? OFFSET ?")
    flows = []
    for row in source.execute(sql, [*params, limit, offset]):
        values = list(row)
        values[8] = family_label(values[8])
        flows.append(ExportedFlow(*values))
    return flows


class ExecutableRow(NamedTuple):
    """One (path, sha256) the sensor has seen, and its traffic in a view."""

    path: str
    sha256: str
    first_seen: int
    first_flow: int | None
    sent: int
    recv: int
    last_seen: int | None


def view_executables(conn: Reader, view: TrafficView) -> list[ExecutableRow]:
    """Executables with traffic in the view, largest total first (on a server, a path and
    hash seen on several hosts is one row: first seen and first flow the earliest)."""
    source = as_source(conn)
    rows = _rows(source, view, ["f.process_id"])
    sql = ("SELECT e.path, e.sha256, MIN(e.first_seen), MIN(e.first_flow), SUM(t.sent), "
           "SUM(t.recv), MAX(t.last) FROM (SELECT [[scope f]]f.process_id AS k, "
           f"SUM(f.sent) AS sent, SUM(f.recv) AS recv, MAX({rows.last}) AS last "
           f"FROM {rows.table} WHERE {rows.where} GROUP BY [[grouped k]]) t "
           "JOIN processes p ON p.id = t.k[[same p t]] "
           "JOIN [[current executables]] e ON e.id = p.exe_id[[same e p]] "
           "GROUP BY e.path, e.sha256 ORDER BY SUM(t.sent) + SUM(t.recv) DESC, e.path, e.sha256")
    return [ExecutableRow(*row) for row in source.execute(sql, rows.params)]


class ExecutableVersion(NamedTuple):
    """One content (sha256) of an executable path, and when it had traffic."""

    sha256: str
    first_seen: int
    first_flow: int | None
    first_traffic: int | None
    last_traffic: int | None
    sent: int
    recv: int


def executable_versions(conn: Reader, path: str) -> list[ExecutableVersion]:
    """Every sha256 recorded for `path`, oldest first (hashes over time)."""
    rows = as_source(conn).execute(
        "SELECT e.sha256, MIN(e.first_seen), MIN(e.first_flow), MIN(f.time), MAX(f.time), "
        "COALESCE(SUM(f.sent), 0), COALESCE(SUM(f.recv), 0) FROM [[current executables]] e "
        "LEFT JOIN processes p ON p.exe_id = e.id[[same p e]] "
        "LEFT JOIN flows f ON f.process_id = p.id[[same f p]] "
        "WHERE e.path = ? GROUP BY e.sha256 ORDER BY MIN(e.first_seen), e.sha256", (path,))
    return [ExecutableVersion(*row) for row in rows]

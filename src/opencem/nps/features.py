"""Per-subscriber features "as of" a day: the experience a customer remembers when asked.

Every feature is computed from days strictly before the as-of day, so a survey answered on day D is
explained by what happened up to D-1 and a score for "now" uses every complete day. Windows: the
last 7 and 28 days, two exponential memories (half-life about 2 and 5.4 days) and the worst days.

Each feature belongs to a node: an indicator-tree node (``overall``, ``video``, ``video.stall``), a
radio node, a care category or a customer attribute. Explanations use the node to say what drove a
score and whether it is a network matter (:data:`NETWORK`), a non-network one (:data:`NON_NETWORK`)
or the customer's profile (:data:`PROFILE`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import duckdb
import pyarrow as pa

from ..indicators.tree import Tree

NETWORK, NON_NETWORK, PROFILE = "network", "non-network", "profile"
WINDOW_DAYS = 28
FAST, SLOW = 0.7, 0.88  # daily decay of the two memories
CARE_NETWORK = ("coverage", "data_speed", "voice_quality", "device")
CARE_OTHER = ("billing", "price", "other")
CATEGORICAL = ("plan", "device_model", "device_capability", "age_band", "home_area")
POOR_CEI = 60.0  # a day below this CEI counts as a poor day


@dataclass(frozen=True)
class Feature:
    name: str
    node: str
    kind: str  # NETWORK, NON_NETWORK or PROFILE
    meaning: str
    sql: str  # aggregate expression in its source CTE
    source: str  # CTE the expression runs in


def feature_list(tree: Tree) -> list[Feature]:
    f: list[Feature] = []

    def add(name, node, kind, meaning, sql, source):
        f.append(Feature(name, node, kind, meaning, sql, source))

    # network experience: overall CEI
    add("cei_fast", "overall", NETWORK, "CEI, recent memory (half-life 2 days)", _ema("cei", FAST), "sd")
    add("cei_slow", "overall", NETWORK, "CEI, memory with half-life 5.4 days", _ema("cei", SLOW), "sd")
    add("cei_mean_28", "overall", NETWORK, "mean daily CEI over 28 days", "avg(cei)", "sd")
    add("cei_min_7", "overall", NETWORK, "worst daily CEI in the last 7 days", "min(CASE WHEN age <= 7 THEN cei END)", "sd")
    add("cei_min_28", "overall", NETWORK, "worst daily CEI in 28 days", "min(cei)", "sd")
    add("cei_worst_memory", "overall", NETWORK, "worst day, fading by 0.8 a day (100 - CEI)",
        "max((100 - cei) * pow(0.8, age - 1))", "sd")
    add("poor_days_28", "overall", NETWORK, f"days with CEI below {POOR_CEI:g} in 28 days",
        f"sum(CASE WHEN cei < {POOR_CEI} THEN 1 ELSE 0 END)", "sd")
    add("cei_trend", "overall", NETWORK, "CEI of the last 3 days minus the 28-day mean",
        "avg(CASE WHEN age <= 3 THEN cei END) - avg(cei)", "sd")
    # per service and per KQI (tree nodes)
    for s, node in tree.services.items():
        add(f"{s}_slow", s, NETWORK, f"{s} CEI, memory with half-life 5.4 days", _ema(f"cei_{s}", SLOW), "sd")
        add(f"{s}_min_28", s, NETWORK, f"worst daily {s} CEI in 28 days", f"min(cei_{s})", "sd")
        for k in node.kqis:
            col = f"CASE WHEN service = '{s}' THEN score_{k.name} END"
            add(f"{s}_{k.name}_slow", f"{s}.{k.name}", NETWORK, f"{s} {k.name} score, memory with half-life 5.4 days",
                _ema(col, SLOW), "svc")
            add(f"{s}_{k.name}_min_28", f"{s}.{k.name}", NETWORK, f"worst daily {s} {k.name} score in 28 days",
                f"min({col})", "svc")
    # radio
    add("rsrp_mean", "radio.coverage", NETWORK, "mean RSRP of the subscriber's measurement reports (dBm)", "avg(rsrp_dbm)", "mr")
    add("rsrp_poor_share", "radio.coverage", NETWORK, "share of reports with RSRP below -110 dBm",
        "avg(CASE WHEN rsrp_dbm < -110 THEN 1E0 ELSE 0E0 END)", "mr")
    add("sinr_mean", "radio.interference", NETWORK, "mean SINR (dB)", "avg(sinr_db)", "mr")
    add("sinr_poor_share", "radio.interference", NETWORK, "share of reports with SINR below 0 dB",
        "avg(CASE WHEN sinr_db < 0 THEN 1E0 ELSE 0E0 END)", "mr")
    # usage
    add("active_days_28", "usage", PROFILE, "days with sessions in 28 days", "count(*)", "sd")
    add("sessions_28", "usage", PROFILE, "sessions in 28 days", "sum(sessions_total)", "sd")
    # care contacts
    for c in CARE_NETWORK + CARE_OTHER:
        kind = NETWORK if c in CARE_NETWORK else NON_NETWORK
        add(f"care_{c}_28", f"care.{c}", kind, f"care contacts about {c} in 28 days",
            f"sum(CASE WHEN category = '{c}' THEN 1 ELSE 0 END)", "care")
    add("care_complaints_28", "care.complaints", NON_NETWORK, "complaints in 28 days",
        "sum(CASE WHEN is_complaint THEN 1 ELSE 0 END)", "care")
    add("care_unresolved_28", "care.unresolved", NON_NETWORK, "contacts not resolved at first contact in 28 days",
        "sum(CASE WHEN NOT resolved THEN 1 ELSE 0 END)", "care")
    add("care_days_since", "care.recency", NON_NETWORK, "days since the last care contact (99 if none)",
        "min(age)", "care")
    add("plan_price_contacts", "care.price", NON_NETWORK,
        "price contacts per 1,000 subscribers of the same plan in the last 14 days (a price change shows here)",
        "plan_price_contacts", "plan")
    # customer attributes
    for name, meaning in (("arpu_monthly", "ARPU (EUR/month)"), ("tenure_months", "tenure (months)")):
        add(name, "profile", PROFILE, meaning, name, "bss")
    for name in CATEGORICAL:
        add(name, "profile", PROFILE, name.replace("_", " "), name, "bss")
    return f


def _ema(col: str, decay: float) -> str:
    """Exponential memory of a daily value: weight decay^(age-1), days without a value skipped."""
    w = f"pow({decay}, age - 1)"
    return f"sum({w} * ({col})) / NULLIF(sum(CASE WHEN ({col}) IS NOT NULL THEN {w} END), 0)"


def features_sql(features: list[Feature]) -> str:
    """SQL over the views ``requests(subscriber_id, as_of)``, the measure tables and the lake tables."""
    by_source: dict[str, list[str]] = {}
    for f in features:
        if f.source != "bss":
            by_source.setdefault(f.source, []).append(f'{f.sql} AS "{f.name}"')

    def agg(src: str) -> str:
        return ", ".join(by_source[src])

    def windowed(name: str, src: str, table: str) -> str:
        return f"""{name} AS (
  SELECT subscriber_id, as_of, {agg(src)} FROM (
    SELECT t.*, r.as_of, date_diff('day', t.day, r.as_of) AS age FROM requests r JOIN {table} t
      ON t.subscriber_id = r.subscriber_id AND t.day < r.as_of AND t.day >= r.as_of - INTERVAL {WINDOW_DAYS} DAY)
  GROUP BY subscriber_id, as_of)"""

    ctes = ",\n".join([
        windowed("sd", "sd", "cei_subscriber_day"),
        windowed("svc", "svc", "cei_service_day"),
        windowed("mr", "mr", "radio_day"),
        windowed("care", "care", "care_day"),
    ])
    return f"""
WITH {ctes},
plan AS (
  SELECT a.as_of, s.plan, 1000E0 * count(c.subscriber_id) / any_value(n.n) AS plan_price_contacts
  FROM (SELECT DISTINCT as_of FROM requests) a
  CROSS JOIN subscribers s
  JOIN (SELECT plan, count(*) AS n FROM subscribers GROUP BY plan) n ON n.plan = s.plan
  LEFT JOIN care_contacts c ON c.subscriber_id = s.subscriber_id AND c.category = 'price'
    AND CAST(c.contact_time AS DATE) < a.as_of AND CAST(c.contact_time AS DATE) >= a.as_of - INTERVAL 14 DAY
  GROUP BY a.as_of, s.plan
)
SELECT r.subscriber_id, r.as_of, {_select(features)}
FROM requests r
JOIN subscribers b ON b.subscriber_id = r.subscriber_id
LEFT JOIN sd ON sd.subscriber_id = r.subscriber_id AND sd.as_of = r.as_of
LEFT JOIN svc ON svc.subscriber_id = r.subscriber_id AND svc.as_of = r.as_of
LEFT JOIN mr ON mr.subscriber_id = r.subscriber_id AND mr.as_of = r.as_of
LEFT JOIN care ON care.subscriber_id = r.subscriber_id AND care.as_of = r.as_of
LEFT JOIN plan ON plan.plan = b.plan AND plan.as_of = r.as_of
ORDER BY r.subscriber_id, r.as_of
"""


def _select(features: list[Feature]) -> str:
    out = []
    for f in features:
        alias = {"bss": "b"}.get(f.source, f.source)
        expr = f'{alias}."{f.name}"'
        if f.source == "care":  # no contact is a real zero, not missing
            expr = f"COALESCE({expr}, {99 if f.name == 'care_days_since' else 0})"
        if f.name in ("active_days_28", "sessions_28"):
            expr = f"COALESCE({expr}, 0)"
        if f.name not in CATEGORICAL:  # rounded: parallel sums differ in the last bit, and a tree split must not
            expr = f"round(CAST({expr} AS DOUBLE), 6)"
        out.append(f'{expr} AS "{f.name}"')
    return ", ".join(out)


def connect(workspace: Path) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB with views over a workspace's lake and measure tables."""
    ws = Path(workspace)
    con = duckdb.connect()
    con.sql("SET enable_progress_bar = false")
    for name in ("cei_subscriber_day", "cei_service_day", "kqi_pspu_day", "kpi_cell_15min"):
        _view(con, name, ws / "measure" / name)
    for name in ("subscribers", "care_contacts", "surveys", "radio_samples", "xdr", "cells"):
        _view(con, name, ws / "lake" / name)
    if any((ws / "lake" / "portouts").rglob("*.parquet")):
        _view(con, "portouts", ws / "lake" / "portouts")
    else:  # nobody left
        con.sql("CREATE VIEW portouts AS SELECT CAST(NULL AS VARCHAR) AS subscriber_id, CAST(NULL AS DATE) AS portout_date WHERE false")
    con.sql("""CREATE VIEW radio_day AS SELECT subscriber_id, CAST(sample_time AS DATE) AS day,
                   rsrp_dbm, sinr_db FROM radio_samples""")
    con.sql("CREATE VIEW care_day AS SELECT *, CAST(contact_time AS DATE) AS day FROM care_contacts")
    return con


def _view(con: duckdb.DuckDBPyConnection, name: str, folder: Path) -> None:
    if not folder.is_dir() or not any(folder.rglob("*.parquet")):
        raise FileNotFoundError(f"{folder}: no table '{name}' here; run `opencem measure` on this workspace first")
    glob = str(folder / "**" / "*.parquet")
    con.sql(f"CREATE VIEW {name} AS SELECT * FROM read_parquet('{glob}', hive_partitioning = true)")


def build_features(con: duckdb.DuckDBPyConnection, requests: pa.Table, features: list[Feature]) -> pa.Table:
    """Features for each (subscriber_id, as_of) row of ``requests``."""
    con.register("requests_in", requests)
    con.sql("CREATE OR REPLACE TEMP TABLE requests AS SELECT DISTINCT subscriber_id, CAST(as_of AS DATE) AS as_of FROM requests_in")
    con.unregister("requests_in")
    return con.sql(features_sql(features)).to_arrow_table()


def one(con: duckdb.DuckDBPyConnection, sql: str) -> tuple:
    """The single row of a query (fetched to the end, so the connection is free again)."""
    return con.execute(sql).fetchall()[0]


def base_requests(con: duckdb.DuckDBPyConnection, as_of, every: int = 1) -> pa.Table:
    """(subscriber_id, as_of) for every customer still in the base on ``as_of`` (port-outs leave it);
    ``every`` > 1 keeps a deterministic 1-in-``every`` sample."""
    return con.sql(f"""SELECT subscriber_id, DATE '{as_of}' AS as_of FROM (
        SELECT subscriber_id, row_number() OVER (ORDER BY subscriber_id) AS i FROM subscribers
        WHERE subscriber_id NOT IN (SELECT subscriber_id FROM portouts WHERE portout_date < DATE '{as_of}'))
        WHERE i % {every} = 0 ORDER BY subscriber_id""").to_arrow_table()

"""Per-subscriber features "as of" a day: the experience a customer remembers when asked.

Every feature is computed from days strictly before the as-of day, so a survey answered on day D is
explained by what happened up to D-1 and a score for "now" uses every complete day. Windows: the
last 7 and 28 days, an exponential memory (half-life about 2 days) and the worst days.

Each feature belongs to a node: an indicator-tree node (``overall``, ``video``, ``video.stall``), a
radio node, a care category or a customer attribute. Explanations use the node to say what drove a
score and whether it is a network matter (:data:`NETWORK`), a non-network one (:data:`NON_NETWORK`)
or the customer's profile (:data:`PROFILE`).
"""

from __future__ import annotations

from dataclasses import dataclass

import pyarrow as pa

from ..engine import Engine
from ..engine.base import exact_sum, quote_ident, quote_literal
from ..engine.pipeline import sql_file
from ..indicators.tree import Tree, service_score_column
from ..vocabulary import POOR_RSRP_DBM, POOR_SINR_DB

NETWORK, NON_NETWORK, PROFILE = "network", "non-network", "profile"
WINDOW_DAYS = 28
FAST = 0.7  # daily decay of the experience memory (half-life about 2 days)
CARE_NETWORK = ("coverage", "data_speed", "voice_quality", "device")
CARE_OTHER = ("billing", "price", "other")  # "other": every category not named here
CATEGORICAL = ("plan", "device_model", "device_capability", "age_band", "home_area")
RECENT_DAYS = 7  # the worst days are those of the last 7
# the sources whose days before as_of the features aggregate: CTE name -> (daily table, days). The subscriber's
# day is read twice: its CEI and sessions over the whole window, every service and KQI score over the last 7
# days only, so a longer window costs a few columns more, not every column
WINDOWED_SOURCES = {"sd": ("cei_subscriber_day", WINDOW_DAYS), "sd7": ("cei_subscriber_day", RECENT_DAYS),
                    "mr": ("radio_subscriber_day", WINDOW_DAYS), "care": ("care_day", WINDOW_DAYS)}


@dataclass(frozen=True)
class Feature:
    name: str
    node: str
    kind: str  # NETWORK, NON_NETWORK or PROFILE
    meaning: str
    sql: str  # aggregate expression in its source CTE
    source: str  # CTE the expression runs in
    direction: int = 0  # +1: a higher value can only raise the answer, -1: only lower it, 0: either (the model holds to it)


def feature_list(tree: Tree) -> list[Feature]:
    """The features, each history-invariant: shares, rates and memories rather than counts and extremes
    over the window, so a customer with 10 days of data and one with 28 are on the same scale."""
    f: list[Feature] = []

    def add(name, node, kind, meaning, sql, source, direction=0):
        f.append(Feature(name, node, kind, meaning, sql, source, direction))

    up, down = 1, -1
    # network experience: overall CEI. Only short memories and recent extremes: with slower memories
    # (a 5.4-day half-life, the 28-day mean, the share of poor days) beside them, the fit gave them much of
    # the weight, and a fix, which moves the recent days first, moved the estimate by about 0.6 of what
    # customers felt on the seed the model was built on; without them about 0.8-1.0, at the same accuracy
    # (docs/nps.md, "Where the lift loses its size").
    add("cei_fast", "overall", NETWORK, "CEI, recent memory (half-life 2 days)", _ema("cei", FAST), "sd", up)
    add("cei_min_7", "overall", NETWORK, "worst daily CEI in the last 7 days", "min(cei)", "sd7", up)
    add("cei_worst_memory", "overall", NETWORK, "worst day, fading by 0.8 a day (100 - CEI)",
        "max((100 - cei) * pow(0.8, age - 1))", "sd", down)
    add("cei_trend", "overall", NETWORK, "CEI of the last 3 days minus the 28-day mean",
        f"{_exact_mean('CASE WHEN age <= 3 THEN cei END')} - {_exact_mean('cei')}", "sd", up)
    # per service and per KQI (tree nodes): the worst day of the last 7
    for s, node in tree.services.items():
        add(f"{s}_min_7", s, NETWORK, f"worst daily {s} CEI in the last 7 days", f"min(cei_{s})", "sd7", up)
        for k in node.kqis:
            add(f"{s}_{k.name}_min_7", f"{s}.{k.name}", NETWORK, f"worst daily {s} {k.name} score in the last 7 days",
                f"min({service_score_column(s, k.name)})", "sd7", up)
    # radio, from the daily sums of the subscriber's measurement reports (radio_subscriber_day)
    add("rsrp_mean", "radio.coverage", NETWORK, "mean RSRP of the subscriber's measurement reports (dBm)",
        f"{exact_sum('rsrp_sum')} / NULLIF(sum(rsrp_reports), 0)", "mr", up)
    add("rsrp_poor_share", "radio.coverage", NETWORK, f"share of reports with RSRP below {POOR_RSRP_DBM} dBm",
        "sum(rsrp_poor) * 1E0 / sum(reports)", "mr", down)
    add("sinr_mean", "radio.interference", NETWORK, "mean SINR (dB)", f"{exact_sum('sinr_sum')} / NULLIF(sum(sinr_reports), 0)",
        "mr", up)
    add("sinr_poor_share", "radio.interference", NETWORK, f"share of reports with SINR below {POOR_SINR_DB} dB",
        "sum(sinr_poor) * 1E0 / sum(reports)", "mr", down)
    # usage (per day of history)
    add("active_day_share", "usage", PROFILE, "share of days with sessions", "count(*) / any_value(history_days)", "sd")
    add("sessions_per_day", "usage", PROFILE, "sessions per day of history", "sum(sessions_total) / any_value(history_days)", "sd")
    # care contacts, per 28 days of history
    per_28 = f"* {WINDOW_DAYS}E0 / any_value(history_days)"
    named = CARE_NETWORK + CARE_OTHER[:-1]
    for c in CARE_NETWORK + CARE_OTHER:
        kind = NETWORK if c in CARE_NETWORK else NON_NETWORK
        # the operator's own categories (an open vocabulary) count as "other", a non-network matter
        cond = f"category = {quote_literal(c)}" if c in named else f"category NOT IN ({', '.join(map(quote_literal, named))})"
        add(f"care_{c}_rate", f"care.{c}", kind, f"care contacts about {c if c in named else 'any other category'} per 28 days",
            f"sum(CASE WHEN {cond} THEN 1 ELSE 0 END) {per_28}", "care", down)
    add("care_complaint_rate", "care.complaints", NON_NETWORK, "complaints per 28 days",
        f"sum(CASE WHEN is_complaint THEN 1 ELSE 0 END) {per_28}", "care", down)
    add("care_unresolved_rate", "care.unresolved", NON_NETWORK, "contacts not resolved at first contact per 28 days",
        f"sum(CASE WHEN NOT resolved THEN 1 ELSE 0 END) {per_28}", "care", down)
    add("care_recent_7", "care.recency", NON_NETWORK, "care contacts in the last 7 days",
        "sum(CASE WHEN age <= 7 THEN 1 ELSE 0 END)", "care", down)
    add("plan_price_contacts", "care.price", NON_NETWORK,
        "price contacts per 1,000 subscribers of the same plan in the last 14 days (a price change shows here)",
        "plan_price_contacts", "plan", down)
    # price: the subscriber's plan in the tariff history
    add("price_rise_pct_90", "price", NON_NETWORK, "rise of the plan's monthly price over the last 90 days (%)",
        "price_rise_pct_90", "price", down)
    add("price_change_days", "price", NON_NETWORK, "days since the plan's price last changed (365 at most)",
        "price_change_days", "price")
    # the customer's own earlier answers (surveys or the tracker): a personal baseline
    add("last_answer", "profile.answers", PROFILE, "the customer's latest earlier answer (0-10) in the last year",
        "last_answer", "prior", up)
    # customer attributes
    for name, meaning in (("arpu_monthly", "ARPU (EUR/month)"), ("tenure_months", "tenure (months)")):
        add(name, "profile", PROFILE, meaning, name, "bss")
    for name in CATEGORICAL:
        add(name, "profile", PROFILE, name.replace("_", " "), name, "bss")
    return f


def _ema(col: str, decay: float) -> str:
    """Exponential memory of a daily value: weight decay^(age-1), days without a value skipped."""
    w = f"pow({decay}, age - 1)"
    return f"{exact_sum(f'{w} * ({col})')} / NULLIF({exact_sum(f'CASE WHEN ({col}) IS NOT NULL THEN {w} END')}, 0)"


def _exact_mean(expr: str) -> str:
    return f"{exact_sum(expr)} / count({expr})"


def features_sql(features: list[Feature], whole_days: bool = False) -> str:
    """SQL over the table ``requests(subscriber_id, as_of, history_days)``, the measure tables, the lake
    tables and the views of :func:`feature_views`. ``whole_days``: each window reads its days for every
    subscriber instead of joining each daily row to its request, which is cheaper when the requests are
    (most of) the base on one day, and gives the same features."""
    by_source: dict[str, list[str]] = {}
    for f in features:
        if f.source not in ("bss", "plan", "price", "prior"):  # those are columns of their CTE already
            by_source.setdefault(f.source, []).append(f"{f.sql} AS {quote_ident(f.name)}")
    # history_days depends on as_of only (requests.sql), so the distinct days carry it
    pairs, match = (("(SELECT DISTINCT as_of, history_days FROM requests) r", "") if whole_days
                    else ("requests r", "t.subscriber_id = r.subscriber_id AND "))
    windowed = ",\n".join(sql_file("opencem.nps", "windowed").format(name=src, table=table, days=days, pairs=pairs, match=match,
                                                                     aggregates=", ".join(by_source[src]))
                           for src, (table, days) in WINDOWED_SOURCES.items())
    joins = "\n".join(f"LEFT JOIN {src} ON {src}.subscriber_id = r.subscriber_id AND {src}.as_of = r.as_of" for src in WINDOWED_SOURCES)
    return sql_file("opencem.nps", "features").format(windowed=windowed, joins=joins, select=_select(features))


def _select(features: list[Feature]) -> str:
    out = []
    for f in features:
        alias = {"bss": "b"}.get(f.source, f.source)
        expr = f"{alias}.{quote_ident(f.name)}"
        if f.source == "care" or f.node == "usage":  # no contact, no session: a real zero, not missing
            expr = f"COALESCE({expr}, 0)"
        if f.name not in CATEGORICAL:
            # rounded, as the engines' float sums and divisions may differ in the last bit; a mean of reports
            # often lies exactly half-way (617.9 / 64 = 9.6546875), and 1e-9 puts it past the half in both
            expr = f"round(CAST({expr} AS DOUBLE) + 1e-9, 6)"
        out.append(f"{expr} AS {quote_ident(f.name)}")
    return ", ".join(out)


def feature_views(engine: Engine) -> None:
    """The by-day view of care contacts the windowed features read (idempotent)."""
    engine.create_view("care_day", sql_file("opencem.nps", "care_day"))


def build_features(engine: Engine, requests: pa.Table, features: list[Feature], whole_days: bool | None = None) -> pa.Table:
    """Features for each (subscriber_id, as_of) row of ``requests``, on a workspace session. ``whole_days``
    (see :func:`features_sql`) is chosen when left out: for requests on one day that hold at least half the
    subscribers (a score of the base)."""
    feature_views(engine)
    first_day = engine.query_row(sql_file("opencem.nps", "measured_days"), step="measured_days")[0]
    engine.register_arrow("requests_in", requests)
    engine.create_table("requests", sql_file("opencem.nps", "requests"), {"window_days": WINDOW_DAYS, "first_day": first_day})
    engine.drop("requests_in")
    if whole_days is None:
        days, rows, base = engine.query_row("SELECT count(DISTINCT as_of), count(*), (SELECT count(*) FROM subscribers) FROM requests",
                                            step="requests_shape")
        whole_days = days == 1 and 2 * rows >= base
    return engine.query_arrow(features_sql(features, whole_days), step="features")


def base_requests(engine: Engine, as_of, every: int = 1) -> pa.Table:
    """(subscriber_id, as_of) for every customer still in the base on ``as_of`` (port-outs leave it);
    ``every`` > 1 keeps a deterministic 1-in-``every`` sample."""
    return engine.query_arrow(sql_file("opencem.nps", "base_requests"), {"as_of": as_of, "every": every},
                              step="base_requests")

"""SQL generated from the indicator tree (service, subscriber and journey CEI; the poor-session test), and
the numpy computation of the service CEI that checks its SQL.

SQL is DuckDB dialect restricted to a subset that ``sqlglot`` transpiles to Spark SQL: CASE,
COALESCE, arithmetic, SUM / MAX, CAST, GROUP BY, joins, ``date - INTERVAL 'n' DAY``; numeric literals in
exponent form so both engines type them DOUBLE; no GREATEST / LEAST (they skip NULLs), no FILTER, no
QUALIFY.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ...engine.base import exact_sum
from .. import qoe
from .model import CareStage, KqiNode, Tree

_lit = qoe.sql_double  # DOUBLE literal (exponent form: a plain 0.5 is DECIMAL on both engines)


def _score_sql(k: KqiNode) -> str:
    f = qoe.score_logistic_sql if k.curve == "logistic" else qoe.score_linear_sql
    return f(k.column, k.good, k.bad)


def _wmean_sql(pairs: list[tuple[str, float]]) -> str:
    """Weighted mean of the non-NULL expressions, weights renormalised; NULL when no weight is left."""
    pairs = [(e, w) for e, w in pairs if w > 0]
    num = " + ".join(f"COALESCE({_lit(w)} * {e}, {_lit(0.0)})" for e, w in pairs)
    den = " + ".join(f"(CASE WHEN {e} IS NULL THEN {_lit(0.0)} ELSE {_lit(w)} END)" for e, w in pairs)
    return f"(CASE WHEN ({den}) > {_lit(0.0)} THEN ({num}) / ({den}) END)"


def cei_service_sql(tree: Tree, kqi_table: str = "kqi_pspu_day", keys: str = "subscriber_id, day") -> str:
    """Per subscriber x day x service: the KQI scores and the service CEI (0-100).

    Columns: ``subscriber_id, day, service, sessions, volume_mb``, one ``score_<kqi>`` per KQI name
    (NULL for services without that KQI and where the KQI column is NULL), ``cei`` = weighted mean of
    the service's non-NULL scores (weights renormalised over them; NULL when none is left). Services of
    the table that the tree does not score keep their rows with NULL scores and CEI. ``keys`` replaces
    ``subscriber_id, day`` for other grains (the twin's grid x hour).
    """
    arms: dict[str, list[str]] = {n: [] for n in tree.kqi_names()}
    for svc, node in tree.services.items():
        for k in node.kqis:
            arms[k.name].append(f"WHEN '{svc}' THEN {_score_sql(k)}")
    scores = ",\n    ".join(f"CASE service {' '.join(a)} END AS score_{n}" for n, a in arms.items())
    cei_arms = "\n    ".join(
        f"WHEN '{svc}' THEN {_wmean_sql([(f'score_{k.name}', k.weight) for k in node.kqis])}"
        for svc, node in tree.services.items()
    )
    cols = ", ".join(tree.score_columns())
    return (
        f"SELECT {keys}, service, sessions, volume_mb, {cols},\n"
        f"  CASE service\n    {cei_arms}\n  END AS cei\n"
        f"FROM (\n  SELECT {keys}, service, sessions, volume_mb,\n    {scores}\n  FROM {kqi_table}\n) s"
    )


def cei_subscriber_sql(tree: Tree, cei_service_table: str = "cei_service_day", keys: str = "subscriber_id, day") -> str:
    """Per subscriber x day: the overall network CEI, one CEI per service and each service's KQI scores.

    Columns: ``subscriber_id, day, sessions_total, cei, cei_<service>..., score_<service>_<kqi>...``.
    ``cei`` is the mean of the non-NULL service CEIs weighted by usage x importance (usage =
    ``overall.usage``, sessions by default; services not in the tree weigh 0); NULL when no weight is
    left. ``cei_<service>`` and ``score_<service>_<kqi>`` are NULL when the service was not used that day
    (or the value is NULL). ``sessions_total`` counts every service. The KQI scores are here as well as
    in ``cei_service_day`` so that a window over a subscriber's days reads one row a day, not one per
    service (the NPS features).
    """
    imp = " ".join(f"WHEN '{s}' THEN {_lit(n.importance)}" for s, n in tree.services.items())
    w = f"(CASE WHEN cei IS NULL THEN {_lit(0.0)} ELSE CAST({tree.overall.usage} AS DOUBLE) * (CASE service {imp} ELSE {_lit(0.0)} END) END)"
    per = [f"MAX(CASE WHEN service = '{s}' THEN cei END) AS cei_{s}" for s in tree.services]
    per += [f"MAX(CASE WHEN service = '{s}' THEN score_{k.name} END) AS {service_score_column(s, k.name)}"
            for s, node in tree.services.items() for k in node.kqis]
    per = ",\n  ".join(per)
    # the weighted sums in fixed point: in floating point the CEI differed in its last bits between two runs
    # on the same input (the order the engine's threads add a subscriber's services in), and so did the NPS
    return (
        f"SELECT {keys}, SUM(sessions) AS sessions_total,\n"
        f"  CASE WHEN SUM({w}) > {_lit(0.0)} THEN {exact_sum(f'{w} * cei')} / {exact_sum(w)} END AS cei,\n"
        f"  {per}\n"
        f"FROM {cei_service_table}\nGROUP BY {keys}"
    )


def service_score_column(service: str, kqi: str) -> str:
    """The column of ``cei_subscriber_day`` with one service's score of one KQI."""
    return f"score_{service}_{kqi}"


def _in(categories: list[str]) -> str:
    return "category IN (" + ", ".join(f"'{c}'" for c in categories) + ")"


def _care_score_sql(st: CareStage, prefix: str) -> str:
    s = (
        f"({_lit(100.0)} - {_lit(st.contact_penalty)} * {prefix}_contacts"
        f" - {_lit(st.complaint_penalty)} * {prefix}_complaints"
        f" - {_lit(st.unresolved_penalty)} * {prefix}_unresolved)"
    )
    return f"(CASE WHEN {s} < {_lit(0.0)} THEN {_lit(0.0)} ELSE {s} END)"


def journey_sql(tree: Tree, cei_subscriber_table: str = "cei_subscriber_day", care_table: str = "care_contacts") -> str:
    """Per subscriber x day of ``cei_subscriber_table``: journey stage scores and the journey CEI.

    Columns: ``subscriber_id, day, cei_use, cei_get_help, cei_choose_interact, cei_journey,
    care_contacts_window, care_complaints_window``. The window is the ``journey.window_days`` calendar
    days ending on ``day`` (``CAST(contact_time AS DATE) BETWEEN day - (window_days - 1) days AND day``).
    ``cei_use`` is the overall network CEI; the care stages are 100 minus their penalties (floored at
    0; 100 without contacts); ``cei_journey`` is the mean of the non-NULL stages weighted by the stage
    weights (NULL when no weight is left).
    """
    st = tree.journey.stages
    back = tree.journey.window_days - 1
    one, zero = _lit(1.0), _lit(0.0)
    unresolved = f"(CASE WHEN NOT resolved THEN {one} ELSE {zero} END)"
    complaint = f"(CASE WHEN is_complaint THEN {one} ELSE {zero} END)"

    def counts(stage: CareStage, p: str) -> str:
        cond = _in(stage.categories)
        return (
            f"SUM(CASE WHEN {cond} THEN {one} ELSE {zero} END) AS {p}_contacts,\n"
            f"    SUM(CASE WHEN {cond} THEN {complaint} ELSE {zero} END) AS {p}_complaints,\n"
            f"    SUM(CASE WHEN {cond} THEN {unresolved} ELSE {zero} END) AS {p}_unresolved"
        )

    names = [f"{p}_{c}" for p in ("h", "i") for c in ("contacts", "complaints", "unresolved")] + ["all_contacts", "all_complaints"]
    windowed = ",\n    ".join(f"COALESCE(SUM(c.{n}), {zero}) AS {n}" for n in names)
    stages = [("cei_use", st.use.weight), ("cei_get_help", st.get_help.weight), ("cei_choose_interact", st.choose_interact.weight)]
    return (
        f"WITH c AS (\n"
        f"  SELECT subscriber_id, CAST(contact_time AS DATE) AS contact_day,\n"
        f"    {counts(st.get_help, 'h')},\n"
        f"    {counts(st.choose_interact, 'i')},\n"
        f"    SUM({one}) AS all_contacts,\n"
        f"    SUM({complaint}) AS all_complaints\n"
        f"  FROM {care_table}\n"
        f"  GROUP BY subscriber_id, CAST(contact_time AS DATE)\n"
        f"), w AS (\n"
        f"  SELECT u.subscriber_id, u.day, MAX(u.cei) AS cei,\n"
        f"    {windowed}\n"
        f"  FROM {cei_subscriber_table} u\n"
        f"  LEFT JOIN c ON c.subscriber_id = u.subscriber_id\n"
        f"    AND c.contact_day BETWEEN u.day - INTERVAL {back} DAY AND u.day\n"
        f"  GROUP BY u.subscriber_id, u.day\n"
        f"), s AS (\n"
        f"  SELECT subscriber_id, day, cei AS cei_use,\n"
        f"    {_care_score_sql(st.get_help, 'h')} AS cei_get_help,\n"
        f"    {_care_score_sql(st.choose_interact, 'i')} AS cei_choose_interact,\n"
        f"    all_contacts, all_complaints\n"
        f"  FROM w\n"
        f")\n"
        f"SELECT subscriber_id, day, cei_use, cei_get_help, cei_choose_interact,\n"
        f"  {_wmean_sql(stages)} AS cei_journey,\n"
        f"  CAST(all_contacts AS BIGINT) AS care_contacts_window,\n"
        f"  CAST(all_complaints AS BIGINT) AS care_complaints_window\n"
        f"FROM s"
    )



def poor_session_sql(tree: Tree) -> str:
    """SQL that is true for a poor session row of xDR: it failed, or a condition of its service's
    ``poor_session`` list holds."""
    whens = []
    for name, svc in tree.services.items():
        tests = " OR ".join(["NOT success"] + [c.sql() for c in svc.poor_session])
        whens.append(f"  WHEN '{name}' THEN {tests}")
    return "CASE service\n" + "\n".join(whens) + "\n  ELSE NOT success END"


# ---------------------------------------------------------------------------
# numpy reference
# ---------------------------------------------------------------------------


def _np_column(table: Any, name: str) -> np.ndarray:
    col = table.column(name)
    if hasattr(col, "to_numpy"):
        try:
            return np.asarray(col.to_numpy(), dtype=float)
        except TypeError:  # pyarrow ChunkedArray with nulls in older versions
            return np.asarray(col.to_pylist(), dtype=float)
    return np.asarray(col, dtype=float)


def score_kqis_numpy(tree: Tree, kqi_table: Any) -> dict[str, np.ndarray]:
    """Independent numpy computation of :func:`cei_service_sql` over a pyarrow table (row order kept).

    Returns ``{'score_<kqi>': array, ..., 'cei': array}``, NaN where the SQL gives NULL.
    """
    service = np.asarray(kqi_table.column("service").to_pylist(), dtype=object)
    n = len(service)
    out = {c: np.full(n, np.nan) for c in tree.score_columns()}
    num, den = np.zeros(n), np.zeros(n)
    for svc, node in tree.services.items():
        m = service == svc
        for k in node.kqis:
            x = _np_column(kqi_table, k.column)[m]
            f = qoe.score_logistic if k.curve == "logistic" else qoe.score_linear
            s = np.asarray(f(x, k.good, k.bad), dtype=float)
            out[f"score_{k.name}"][m] = s
            if k.weight > 0:
                ok = ~np.isnan(s)
                num[m] += np.where(ok, k.weight * s, 0.0)
                den[m] += np.where(ok, k.weight, 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        out["cei"] = np.where(den > 0, num / np.where(den > 0, den, 1.0), np.nan)
    return out


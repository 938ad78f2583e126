"""Verify an executed fix: the change of the subscribers it touched against a matched control group.

Treated: subscribers with at least MIN_SESSIONS sessions on the fix's cells (or on the device model)
in the ``days`` before the fix. Controls: subscribers who used none of the cells of the same sites or
transport links in either window (so the fix cannot reach them), matched to each treated subscriber
on their before-window NPS estimate, CEI, poor-session share, usage and ARPU (the CONTROLS nearest,
standardised). Per metric, each treated subscriber's after - before change minus the mean change of
their controls is one difference-in-differences; the estimate is their mean, with a normal 95 %
interval. The placebo runs the same estimate on the ``days`` before, when nothing was done: its
interval should hold 0.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pyarrow as pa
from sklearn.neighbors import NearestNeighbors

from ..indicators.tree import load_tree
from ..nps.features import build_features, connect, feature_list
from ..nps.model import NpsModel
from ..nps.score import POOR_SESSION, model_dir
from ..twin.whatif import scope_sql

MIN_SESSIONS = 3
CONTROLS = 5
METRICS = ("nps", "cei", "poor_share", "throughput_kbps", "rtt_ms", "dou_mb", "complaints", "churned", "revenue_eur")
MATCH_ON = ("nps", "cei", "poor_share", "log_sessions", "arpu_monthly")
Z95 = 1.959964
MIN_GROUP = 20  # treated subscribers a segment or area needs before its deltas are shown


def _scope_sql(cells: list[str], device_model: str | None, buffer: bool) -> str:
    """Sessions the fix touches; with ``buffer`` also those on the same sites or transport links."""
    if device_model or not buffer:
        return scope_sql(cells, device_model)
    listed = ", ".join(repr(c) for c in cells)
    return f"""cell_id IN (SELECT cell_id FROM cells WHERE site_id IN (SELECT site_id FROM cells WHERE cell_id IN ({listed}))
                 OR transport_link_id IN (SELECT transport_link_id FROM cells WHERE cell_id IN ({listed})))"""


def _window(con, model: NpsModel, feats, who: pa.Table, start: dt.date, end: dt.date) -> dict[str, np.ndarray]:
    """Every metric per subscriber of ``who`` over start <= day < end (NaN where they had no sessions)."""
    days = (end - start).days
    win = f"start_time >= TIMESTAMP '{start}' AND start_time < TIMESTAMP '{end}'"
    con.register("who_in", who)
    t = con.sql(f"""
      WITH x AS (SELECT subscriber_id, count(*) AS n, avg(CASE WHEN {POOR_SESSION} THEN 1E0 ELSE 0E0 END) AS poor_share,
                        avg(throughput_dl_kbps) AS throughput_kbps, avg(rtt_ms) AS rtt_ms,
                        CAST(sum(volume_dl_bytes + volume_ul_bytes) AS DOUBLE) / 1e6 / {days} AS dou_mb
                 FROM xdr WHERE {win} GROUP BY 1),
           c AS (SELECT subscriber_id, avg(cei) AS cei FROM cei_subscriber_day WHERE day >= DATE '{start}' AND day < DATE '{end}' GROUP BY 1),
           k AS (SELECT subscriber_id, count(*) AS complaints FROM care_contacts
                 WHERE is_complaint AND contact_time >= TIMESTAMP '{start}' AND contact_time < TIMESTAMP '{end}' GROUP BY 1),
           p AS (SELECT subscriber_id, min(portout_date) AS portout_date FROM portouts GROUP BY 1)
      SELECT w.subscriber_id, x.n, x.poor_share, x.throughput_kbps, x.rtt_ms, coalesce(x.dou_mb, 0) AS dou_mb, c.cei,
             CAST(coalesce(k.complaints, 0) AS DOUBLE) AS complaints,
             CASE WHEN p.portout_date >= DATE '{start}' AND p.portout_date < DATE '{end}' THEN 1E0 ELSE 0E0 END AS churned,
             CASE WHEN p.portout_date < DATE '{end}' THEN 0E0 ELSE s.arpu_monthly END AS revenue_eur, s.arpu_monthly
      FROM who_in w JOIN subscribers s USING (subscriber_id) LEFT JOIN x USING (subscriber_id) LEFT JOIN c USING (subscriber_id)
        LEFT JOIN k USING (subscriber_id) LEFT JOIN p USING (subscriber_id)
      ORDER BY w.subscriber_id""").to_arrow_table()
    con.unregister("who_in")
    out = {c: t[c].to_numpy(zero_copy_only=False).astype(float) for c in t.column_names if c != "subscriber_id"}
    req = pa.table({"subscriber_id": t["subscriber_id"], "as_of": pa.array([end] * t.num_rows, pa.date32())})
    p = model.proba(model.encoder.matrix(build_features(con, req, feats)))
    out["nps"] = 100 * (p[:, 2] - p[:, 0])
    out["log_sessions"] = np.log1p(np.nan_to_num(out.pop("n")))
    return out


def did(con, model: NpsModel, feats, cells: list[str], device_model: str | None, pre: tuple[dt.date, dt.date],
        post: tuple[dt.date, dt.date]) -> dict:
    """Matched difference-in-differences of every metric between the ``pre`` and ``post`` windows."""
    win = f"start_time >= TIMESTAMP '{pre[0]}' AND start_time < TIMESTAMP '{pre[1]}'"
    both = f"start_time >= TIMESTAMP '{pre[0]}' AND start_time < TIMESTAMP '{post[1]}'"
    t = con.sql(f"""
      WITH act AS (SELECT subscriber_id, count(*) FILTER (WHERE {_scope_sql(cells, device_model, False)}) AS on_scope
                   FROM xdr WHERE {win} GROUP BY 1),
           near AS (SELECT DISTINCT subscriber_id FROM xdr WHERE {both} AND {_scope_sql(cells, device_model, True)})
      SELECT subscriber_id, on_scope >= {MIN_SESSIONS} AS treated FROM act
      WHERE on_scope >= {MIN_SESSIONS} OR subscriber_id NOT IN (SELECT subscriber_id FROM near)
      ORDER BY subscriber_id""").to_arrow_table()
    treated = t["treated"].to_numpy(zero_copy_only=False)
    if treated.sum() < 10 or (~treated).sum() < CONTROLS:
        raise ValueError(f"too few subscribers to verify: {int(treated.sum())} treated, {int((~treated).sum())} possible controls")
    who = t.select(["subscriber_id"])
    a, b = _window(con, model, feats, who, *pre), _window(con, model, feats, who, *post)
    x = np.column_stack([np.nan_to_num(a[c], nan=np.nanmedian(a[c])) for c in MATCH_ON])
    x = (x - x.mean(0)) / np.where(x.std(0) > 0, x.std(0), 1)
    ctrl = np.flatnonzero(~treated)
    nn = NearestNeighbors(n_neighbors=CONTROLS).fit(x[ctrl])
    match = ctrl[nn.kneighbors(x[treated], return_distance=False)]  # (treated, CONTROLS)
    effects, per_sub = [], {}
    for m in METRICS:
        delta = b[m] - a[m]
        d = delta[treated] - np.nanmean(delta[match], axis=1)
        per_sub[m] = d
        ok = d[np.isfinite(d)]
        est, se = float(ok.mean()), float(ok.std(ddof=1) / np.sqrt(len(ok))) if len(ok) > 1 else float("nan")
        effects.append({"metric": m, "estimate": round(est, 4), "ci_low": round(est - Z95 * se, 4), "ci_high": round(est + Z95 * se, 4),
                        "subscribers": int(len(ok)), "treated_before": round(float(np.nanmean(a[m][treated])), 4),
                        "treated_after": round(float(np.nanmean(b[m][treated])), 4)})
    ids = np.array(who["subscriber_id"].to_pylist(), dtype=object)[treated]
    return {"subscribers": int(treated.sum()), "controls": int(len(np.unique(match))), "effects": effects,
            "treated_ids": ids, "per_subscriber": per_sub}


def verify(workspace: Path, fix: dict, days: int = 7, model: NpsModel | None = None) -> dict:
    """``fix``: fix_id, cells, device_model, fix_date (the first day it was in place), optionally
    expected_nps_lift. Returns the effects, the placebo and the deltas by segment and location."""
    ws = Path(workspace)
    model = model or NpsModel.load(model_dir(ws))
    feats = feature_list(load_tree())
    con = connect(ws)
    try:
        first, last = con.execute("SELECT min(CAST(start_time AS DATE)), max(CAST(start_time AS DATE)) FROM xdr").fetchall()[0]
        day = dt.date.fromisoformat(str(fix["fix_date"]))
        n = min(days, (last - day).days + 1, (day - first).days // 2)
        if n < 2:
            raise ValueError(f"fix {fix['fix_id']} on {day}: need at least 2 days before and after it in {first} .. {last}")
        w = dt.timedelta(days=n)
        cells, model_name = list(fix.get("cells") or []), fix.get("device_model")
        real = did(con, model, feats, cells, model_name, (day - w, day), (day, day + w))
        placebo = did(con, model, feats, cells, model_name, (day - 2 * w, day - w), (day - w, day))
        deltas = _deltas(con, real)
    finally:
        con.close()
    nps = next(e for e in real["effects"] if e["metric"] == "nps")
    return {"fix_id": fix["fix_id"], "fix_date": str(day), "window_days": n, "subscribers": real["subscribers"],
            "controls": real["controls"], "effects": real["effects"],
            "placebo": next(e for e in placebo["effects"] if e["metric"] == "nps"), "placebo_effects": placebo["effects"],
            "predicted_nps_lift": fix.get("expected_nps_lift"), "realised_nps_lift": nps["estimate"], "deltas": deltas}


def _deltas(con, real: dict) -> list[dict]:
    """The per-subscriber differences-in-differences averaged by plan (segment) and home area (location),
    for groups of at least MIN_GROUP treated subscribers."""
    con.register("treated_in", pa.table({"subscriber_id": real["treated_ids"].tolist(),
                                         **{m: pa.array(real["per_subscriber"][m], from_pandas=True) for m in METRICS}}))
    rows = []
    for dim, col in (("segment", "plan"), ("location", "home_area")):
        rows += con.sql(f"""SELECT '{dim}' AS dimension, s.{col} AS "group", count(*) AS subscribers,
                 round(avg(nps), 2) AS nps, round(avg(cei), 2) AS cei, round(avg(dou_mb), 2) AS dou_mb,
                 round(1000 * avg(complaints), 2) AS complaints_per_1k, round(100 * avg(churned), 3) AS churn_pct,
                 round(sum(revenue_eur), 2) AS revenue
               FROM treated_in t JOIN subscribers s USING (subscriber_id) GROUP BY 1, 2
               HAVING count(*) >= {MIN_GROUP} ORDER BY 2""").to_arrow_table().to_pylist()
    con.unregister("treated_in")
    return rows

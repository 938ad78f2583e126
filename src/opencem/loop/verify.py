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

from ..engine import Engine
from ..engine.base import quote_ident
from ..engine.pipeline import sql_file
from ..errors import InputError
from ..indicators.tree import load_tree, poor_session_sql
from ..nps.features import Feature, build_features, feature_list
from ..nps.model import NpsModel
from ..twin.whatif import scope_sql
from ..workspace import Workspace

MIN_SESSIONS = 3
CONTROLS = 5
METRICS = ("nps", "cei", "poor_share", "throughput_kbps", "rtt_ms", "dou_mb", "complaints", "churned", "revenue_eur")
MATCH_ON = ("nps", "cei", "poor_share", "log_sessions", "arpu_monthly")
Z95 = 1.959964
MIN_GROUP = 20  # treated subscribers a segment or area needs before its deltas are shown


# sessions on the other cells of the fix's sites or transport links (``scope``: a condition on cell_id)
NEAR_CELLS = ("cell_id IN (SELECT cell_id FROM cells WHERE site_id IN (SELECT site_id FROM cells WHERE {scope})\n"
              "  OR transport_link_id IN (SELECT transport_link_id FROM cells WHERE {scope}))")


def _window(engine: Engine, model: NpsModel, feats: list[Feature], who: pa.Table, start: dt.date, end: dt.date) -> dict[str, np.ndarray]:
    """Every metric per subscriber of ``who`` over start <= day < end (NaN where they had no sessions)."""
    engine.register_arrow("who_in", who)
    sql = sql_file("opencem.loop", "subscriber_window").format(poor_session=poor_session_sql(load_tree()))
    t = engine.query_arrow(sql, {"start": start, "end": end, "days": (end - start).days}, step="subscriber_window")
    engine.drop("who_in")
    out = {c: t[c].to_numpy(zero_copy_only=False).astype(float) for c in t.column_names if c != "subscriber_id"}
    req = pa.table({"subscriber_id": t["subscriber_id"], "as_of": pa.array([end] * t.num_rows, pa.date32())})
    p = model.proba(model.encoder.matrix(build_features(engine, req, feats)))
    out["nps"] = 100 * (p[:, 2] - p[:, 0])
    out["log_sessions"] = np.log1p(np.nan_to_num(out.pop("n")))
    return out


def did(engine: Engine, model: NpsModel, feats: list[Feature], cells: list[str], device_model: str | None,
        pre: tuple[dt.date, dt.date], post: tuple[dt.date, dt.date]) -> dict:
    """Matched difference-in-differences of every metric between the ``pre`` and ``post`` windows."""
    scope, scope_params = scope_sql(cells, device_model)
    near = scope if device_model else NEAR_CELLS.format(scope=scope)  # a device campaign reaches only its model
    sql = sql_file("opencem.loop", "fix_subjects").format(scope=scope, near=near)
    t = engine.query_arrow(sql, {"start": pre[0], "end": pre[1], "post_end": post[1], "min_sessions": MIN_SESSIONS, **scope_params},
                           step="fix_subjects")
    treated = t["treated"].to_numpy(zero_copy_only=False)
    if treated.sum() < 10 or (~treated).sum() < CONTROLS:
        raise InputError(f"too few subscribers to verify: {int(treated.sum())} treated, {int((~treated).sum())} possible controls")
    who = t.select(["subscriber_id"])
    a, b = _window(engine, model, feats, who, *pre), _window(engine, model, feats, who, *post)
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
    ws = Workspace(workspace)
    model = model or NpsModel.load(ws.model("nps"))
    feats = feature_list(load_tree())
    with ws.session() as engine:
        first, last = engine.query_row(sql_file("opencem.loop", "session_days"), step="session_days")
        day = dt.date.fromisoformat(str(fix["fix_date"]))
        n = min(days, (last - day).days + 1, (day - first).days // 2)
        if n < 2:
            raise InputError(f"fix {fix['fix_id']} on {day}: need at least 2 days before and after it in {first} .. {last}")
        w = dt.timedelta(days=n)
        cells, model_name = list(fix.get("cells") or []), fix.get("device_model")
        real = did(engine, model, feats, cells, model_name, (day - w, day), (day, day + w))
        placebo = did(engine, model, feats, cells, model_name, (day - 2 * w, day - w), (day - w, day))
        deltas = _deltas(engine, real)
    nps = next(e for e in real["effects"] if e["metric"] == "nps")
    return {"fix_id": fix["fix_id"], "fix_date": str(day), "window_days": n, "subscribers": real["subscribers"],
            "controls": real["controls"], "effects": real["effects"],
            "placebo": next(e for e in placebo["effects"] if e["metric"] == "nps"), "placebo_effects": placebo["effects"],
            "predicted_nps_lift": fix.get("expected_nps_lift"), "realised_nps_lift": nps["estimate"], "deltas": deltas}


def _deltas(engine: Engine, real: dict) -> list[dict]:
    """The per-subscriber differences-in-differences averaged by plan (segment) and home area (location),
    for groups of at least MIN_GROUP treated subscribers."""
    engine.register_arrow("treated_in", pa.table({"subscriber_id": real["treated_ids"].tolist(),
                                                  **{m: pa.array(real["per_subscriber"][m], from_pandas=True) for m in METRICS}}))
    rows = []
    for dim, col in (("segment", "plan"), ("location", "home_area")):
        sql = sql_file("opencem.loop", "fix_deltas").format(column=quote_ident(col))
        rows += engine.query_arrow(sql, {"dimension": dim, "min_group": MIN_GROUP}, step="fix_deltas").to_pylist()
    engine.drop("treated_in")
    return rows

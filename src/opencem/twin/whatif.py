"""What-if on the twin: change a network condition, predict the sessions' KQIs, the subscribers' CEI
and their network NPS.

The condition -> session relation is learned from the workspace's own sessions (LightGBM on a
sample): P(poor session), ln RTT and ln DL throughput from the service, RAT, hour, the serving cell's
PRB load and UL interference in that 15 minutes (PM), the subscriber's RSRP / SINR on that cell in
that hour (MR), the cell-hour's median RTT and failure share (the transport / core context) and the
device model's poor share that day (the device context). A fix sets its condition back to normal:

- ``add_capacity``: the cells' PRB load x ``factor`` (0.5: a second carrier of the same size);
- ``fix_transport``: the cells' RTT context to the network's at the same hour of day;
- ``clear_interference``: the cells' UL interference and their users' SINR to the cell's quiet level;
- ``fix_core``: the cells' failure context to the network's quiet level;
- ``fix_device``: the model's daily poor share to the other models' that day;
- ``restore_coverage``: the users' RSRP and SINR on the cells to the scope's good level (70th percentile).

CEI follows the poor-session share through a slope fitted on subscriber-days; the NPS change comes
from the NPS model scoring the subscribers' features with their CEI days replaced.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import lightgbm as lgb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ..contracts.xdr import SERVICES
from ..indicators.tree import load_tree
from ..nps.features import build_features, connect, feature_list
from ..nps.model import NpsModel
from ..nps.score import POOR_SESSION, model_dir

ACTIONS = ("add_capacity", "fix_transport", "clear_interference", "fix_core", "fix_device", "restore_coverage")
NUMERIC = ("hod", "prb_util_dl", "ul_interference_dbm", "rsrp_dbm", "sinr_db", "ctx_log_rtt", "ctx_fail", "ctx_device_poor")
CATEGORICAL = ("service", "rat")
SAMPLE_EVERY = 20  # one session in 20 trains the relation
PARAMS = {"objective": "binary", "learning_rate": 0.1, "num_leaves": 31, "min_data_in_leaf": 100, "verbose": -1,
          "deterministic": True, "num_threads": 2, "seed": 1}
ROUNDS = 150


@dataclass
class WhatIf:
    action: str
    scope: str
    sessions: int
    subscribers: int
    kqi_before: dict
    kqi_after: dict
    cei_change: float  # mean over the subscriber-days touched
    nps_before: float  # the touched subscribers' predicted NPS
    nps_after: float

    @property
    def nps_lift(self) -> float:
        return self.nps_after - self.nps_before


def _sessions_sql(where: str) -> str:
    """Sessions with their conditions (the learned relation's inputs) and outcomes."""
    return f"""
      WITH x AS (SELECT * FROM xdr WHERE {where}),
      ctx AS (SELECT cell_id, date_trunc('hour', start_time) AS h, median(ln(greatest(rtt_ms, 1))) AS ctx_log_rtt,
                     avg(CASE WHEN success THEN 0E0 ELSE 1E0 END) AS ctx_fail
              FROM xdr WHERE cell_id IN (SELECT DISTINCT cell_id FROM x)
                AND CAST(start_time AS DATE) BETWEEN (SELECT min(CAST(start_time AS DATE)) FROM x) AND (SELECT max(CAST(start_time AS DATE)) FROM x)
              GROUP BY ALL),
      dev AS (SELECT s.device_model, CAST(x.start_time AS DATE) AS day, avg(CASE WHEN {POOR_SESSION} THEN 1E0 ELSE 0E0 END) AS ctx_device_poor
              FROM xdr x JOIN subscribers s USING (subscriber_id)
              WHERE CAST(x.start_time AS DATE) BETWEEN (SELECT min(CAST(start_time AS DATE)) FROM x) AND (SELECT max(CAST(start_time AS DATE)) FROM x)
              GROUP BY ALL),
      radio AS (SELECT subscriber_id, cell_id, date_trunc('hour', sample_time) AS h, median(rsrp_dbm) AS rsrp_dbm, median(sinr_db) AS sinr_db
                FROM radio_samples WHERE cell_id IN (SELECT DISTINCT cell_id FROM x) GROUP BY ALL)
      SELECT x.session_id, x.subscriber_id, x.cell_id, CAST(x.start_time AS DATE) AS day, x.service, x.rat, sub.device_model,
             hour(x.start_time) AS hod, k.prb_util_dl, k.ul_interference_dbm, r.rsrp_dbm, r.sinr_db,
             ctx.ctx_log_rtt, ctx.ctx_fail, dev.ctx_device_poor,
             CASE WHEN {POOR_SESSION} THEN 1 ELSE 0 END AS poor,
             ln(greatest(x.rtt_ms, 1)) AS log_rtt, ln(greatest(x.throughput_dl_kbps, 1)) AS log_thp
      FROM x JOIN subscribers sub USING (subscriber_id)
      LEFT JOIN kpi_cell_15min k ON k.cell_id = x.cell_id AND k.period_start = time_bucket(INTERVAL 15 MINUTE, x.start_time)
      LEFT JOIN ctx ON ctx.cell_id = x.cell_id AND ctx.h = date_trunc('hour', x.start_time)
      LEFT JOIN dev ON dev.device_model = sub.device_model AND dev.day = CAST(x.start_time AS DATE)
      LEFT JOIN radio r ON r.subscriber_id = x.subscriber_id AND r.cell_id = x.cell_id AND r.h = date_trunc('hour', x.start_time)
      ORDER BY x.session_id"""


def _floats(t: pa.Table, name: str) -> np.ndarray:
    return pc.fill_null(pc.cast(t[name], pa.float64()), np.nan).to_numpy()


def _matrix(t: pa.Table) -> np.ndarray:
    cols = [_floats(t, c) for c in NUMERIC]
    cols += [pc.index_in(t["service"], value_set=pa.array(SERVICES)).fill_null(-1).to_numpy().astype(float),
             pc.equal(t["rat"], "NR").fill_null(False).to_numpy(zero_copy_only=False).astype(float)]
    return np.stack(cols, axis=1)


class SessionModel:
    """The learned condition -> (P(poor), ln RTT, ln throughput) relation."""

    def fit(self, t: pa.Table) -> SessionModel:
        x = _matrix(t)
        cat = [len(NUMERIC), len(NUMERIC) + 1]
        self.models_ = {}
        for target, objective in (("poor", "binary"), ("log_rtt", "regression"), ("log_thp", "regression")):
            y = t[target].to_numpy(zero_copy_only=False).astype(float)
            ok = ~np.isnan(y)
            ds = lgb.Dataset(x[ok], y[ok], categorical_feature=cat, free_raw_data=True)
            self.models_[target] = lgb.train({**PARAMS, "objective": objective}, ds, ROUNDS)
        return self

    def predict(self, t: pa.Table) -> dict[str, np.ndarray]:
        x = _matrix(t)
        return {k: m.predict(x, num_threads=PARAMS["num_threads"]) for k, m in self.models_.items()}


def _set(t: pa.Table, name: str, values: np.ndarray) -> pa.Table:
    return t.set_column(t.schema.get_field_index(name), name, pa.array(values, pa.float64()))


def _counterfactual(con, t: pa.Table, action: str, factor: float) -> pa.Table:
    col = {c: _floats(t, c) for c in NUMERIC}
    if action == "add_capacity":
        return _set(t, "prb_util_dl", col["prb_util_dl"] * factor)
    if action == "fix_transport":
        net = np.full(24, np.nan)
        for h, v in con.execute("SELECT hour(start_time), median(ln(greatest(rtt_ms, 1))) FROM xdr GROUP BY 1").fetchall():
            net[h] = v
        return _set(t, "ctx_log_rtt", np.minimum(col["ctx_log_rtt"], net[col["hod"].astype(int)]))
    if action == "fix_core":
        quiet = con.execute("SELECT quantile_cont(f, 0.3) FROM (SELECT avg(CASE WHEN success THEN 0E0 ELSE 1E0 END) AS f "
                            "FROM xdr GROUP BY cell_id, date_trunc('hour', start_time))").fetchall()[0][0]
        return _set(t, "ctx_fail", np.minimum(col["ctx_fail"], quiet))
    if action == "clear_interference":
        ul_q, sinr_q = con.execute("SELECT quantile_cont(ul_interference_dbm, 0.3) FROM kpi_cell_15min").fetchall()[0][0], \
            np.nanquantile(col["sinr_db"], 0.7) if np.isfinite(col["sinr_db"]).any() else np.nan
        t = _set(t, "ul_interference_dbm", np.minimum(col["ul_interference_dbm"], ul_q))
        return _set(t, "sinr_db", np.maximum(col["sinr_db"], sinr_q))
    if action == "restore_coverage":
        for c in ("rsrp_dbm", "sinr_db"):
            good = np.nanquantile(col[c], 0.7) if np.isfinite(col[c]).any() else np.nan
            t = _set(t, c, np.maximum(col[c], good))
        return t
    if action == "fix_device":
        # every device's poor share that day, joined to the sessions in the engine rather than row by row
        con.register("cf_days", t.select(["session_id", "day"]))
        network = _floats(con.sql(f"""SELECT d.session_id, n.share FROM cf_days d LEFT JOIN (
              SELECT CAST(start_time AS DATE) AS day, avg(CASE WHEN {POOR_SESSION} THEN 1E0 ELSE 0E0 END) AS share FROM xdr GROUP BY 1) n
            USING (day) ORDER BY d.session_id""").to_arrow_table(), "share")
        con.unregister("cf_days")
        return _set(t, "ctx_device_poor", np.minimum(col["ctx_device_poor"], network))
    raise ValueError(f"unknown what-if action '{action}'; choose one of {', '.join(ACTIONS)}")


def _cei_slope(con, days_where: str) -> float:
    """CEI points per unit of poor-session share, fitted on subscriber-days (least squares)."""
    b = con.execute(f"""SELECT regr_slope(c.cei, p.share) FROM cei_subscriber_day c JOIN (
          SELECT subscriber_id, CAST(start_time AS DATE) AS day, avg(CASE WHEN {POOR_SESSION} THEN 1E0 ELSE 0E0 END) AS share
          FROM xdr WHERE {days_where} GROUP BY ALL) p USING (subscriber_id, day)""").fetchall()[0][0]
    return float(b)


def _check(action: str, cells: list[str] | None, device_model: str | None) -> None:
    if action not in ACTIONS:
        raise ValueError(f"unknown what-if action '{action}'; choose one of {', '.join(ACTIONS)}")
    if (action == "fix_device") != bool(device_model) or (action != "fix_device" and not cells):
        raise ValueError("fix_device needs --device-model; the other actions need --cells")


def scope_sql(cells: list[str] | None, device_model: str | None) -> str:
    """The xDR sessions a change touches: those on ``cells``, or of the subscribers with ``device_model``."""
    if device_model:
        return f"subscriber_id IN (SELECT subscriber_id FROM subscribers WHERE device_model = '{device_model.replace(chr(39), '')}')"
    return f"cell_id IN ({', '.join(repr(c) for c in cells)})"


class WhatIfEngine:
    """What-ifs over one window of a workspace: the session relation is learned once and every
    scenario reuses it (prioritising scores many candidate fixes)."""

    def __init__(self, workspace: Path, start: dt.date, end: dt.date, model: NpsModel | None = None):
        self.ws, self.start, self.end = Path(workspace), start, end
        self.con = connect(self.ws)
        self.win = f"start_time >= TIMESTAMP '{start}' AND start_time < TIMESTAMP '{end}'"
        self.sm = SessionModel().fit(self.con.sql(_sessions_sql(f"{self.win} AND hash(session_id) % {SAMPLE_EVERY} = 0")).to_arrow_table())
        self.slope = _cei_slope(self.con, self.win)
        self.model = model or NpsModel.load(model_dir(self.ws))
        self.feats = feature_list(load_tree())

    def close(self) -> None:
        self.con.close()

    def __enter__(self) -> WhatIfEngine:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def run(self, action: str, cells: list[str] | None = None, device_model: str | None = None, factor: float = 0.5,
            subscribers: list[str] | None = None) -> WhatIf:
        """Predict what ``action`` on ``cells`` (or ``device_model``) over the window would have changed;
        NPS is scored as of the window's end for the subscribers touched (or ``subscribers``)."""
        _check(action, cells, device_model)
        con, win = self.con, self.win
        if action == "fix_device":
            scope = f"device model {device_model}"
        else:
            scope = ", ".join(cells[:4]) + (f" (+{len(cells) - 4})" if len(cells) > 4 else "")
        where = f"{win} AND {scope_sql(cells, device_model)}"
        before_t = con.sql(_sessions_sql(where)).to_arrow_table()
        if before_t.num_rows == 0:
            raise ValueError(f"no sessions on {scope} between {self.start} and {self.end}")
        after_t = _counterfactual(con, before_t, action, factor)
        pb, pa_ = self.sm.predict(before_t), self.sm.predict(after_t)

        def kqi(p):
            return {"poor_share": float(np.mean(p["poor"])), "rtt_ms": float(np.mean(np.exp(p["log_rtt"]))),
                    "throughput_kbps": float(np.mean(np.exp(p["log_thp"])))}

        # per subscriber-day: change in the poor-session share over all their sessions that day
        con.register("delta_in", pa.table({"subscriber_id": before_t["subscriber_id"], "day": before_t["day"], "d_poor": pa_["poor"] - pb["poor"]}))
        con.sql(f"""CREATE OR REPLACE TEMP TABLE cei_delta AS
          SELECT d.subscriber_id, d.day, {self.slope} * sum(d.d_poor) / n.n AS d_cei
          FROM delta_in d JOIN (SELECT subscriber_id, CAST(start_time AS DATE) AS day, count(*) AS n FROM xdr WHERE {win} GROUP BY ALL) n
            USING (subscriber_id, day) GROUP BY d.subscriber_id, d.day, n.n""")
        con.unregister("delta_in")
        who = subscribers or sorted(set(before_t["subscriber_id"].to_pylist()))
        req = pa.table({"subscriber_id": who, "as_of": [self.end] * len(who)})
        p_before = self.model.proba(self.model.encoder.matrix(build_features(con, req, self.feats)))
        con.sql("ALTER VIEW cei_subscriber_day RENAME TO cei_subscriber_day_observed")
        con.sql("""CREATE VIEW cei_subscriber_day AS SELECT c.* REPLACE (
                     CASE WHEN c.cei IS NULL THEN NULL ELSE least(100, greatest(0, c.cei + coalesce(d.d_cei, 0))) END AS cei)
                   FROM cei_subscriber_day_observed c LEFT JOIN cei_delta d USING (subscriber_id, day)""")
        try:
            p_after = self.model.proba(self.model.encoder.matrix(build_features(con, req, self.feats)))
        finally:  # back to the observed view for the next scenario
            con.sql("DROP VIEW cei_subscriber_day")
            con.sql("ALTER VIEW cei_subscriber_day_observed RENAME TO cei_subscriber_day")
        d_cei = con.execute("SELECT avg(d_cei) FROM cei_delta").fetchall()[0][0] or 0.0

        def nps(p):
            return float(100 * (p[:, 2].mean() - p[:, 0].mean()))

        return WhatIf(action, scope, before_t.num_rows, len(who), kqi(pb), kqi(pa_), float(d_cei), nps(p_before), nps(p_after))


def whatif(workspace: Path, action: str, start: dt.date, end: dt.date, cells: list[str] | None = None,
           device_model: str | None = None, factor: float = 0.5, subscribers: list[str] | None = None,
           model: NpsModel | None = None) -> WhatIf:
    """One what-if over ``start`` <= day < ``end`` (see WhatIfEngine.run)."""
    _check(action, cells, device_model)  # before the relation is learned
    with WhatIfEngine(workspace, start, end, model) as engine:
        return engine.run(action, cells, device_model, factor, subscribers)


def fix_scenarios(workspace: Path, truth: Path) -> list[dict]:
    """Predicted vs realised change for each fix the synthetic operator made: the what-if runs on the
    days before the fix, for the subscribers the truth says the fix touched (pseudonymised)."""
    import pyarrow.parquet as pq

    from ..ingest.pseudonym import Pseudonymiser, load_key

    ws = Path(workspace)
    pseudo = Pseudonymiser(load_key(ws / ".secrets" / "pseudonym.key"))
    fixes = pq.read_table(Path(truth) / "fixes.parquet").to_pylist()
    affected = pq.read_table(Path(truth) / "fix_affected.parquet")
    con = connect(ws)
    first = con.execute("SELECT min(CAST(start_time AS DATE)) FROM xdr").fetchall()[0][0]
    con.close()
    out = []
    for fx in fixes:
        action = {"add_carrier": "add_capacity", "repair_backhaul": "fix_transport"}[fx["action"]]
        cells = [fx["target"]] if action == "add_capacity" else fx["cells"].split(";")
        raw = affected.filter(pa.compute.equal(affected["fix_id"], fx["fix_id"]))["subscriber_id"]
        who = sorted(set(pseudo.column(raw).to_pylist()))
        w = whatif(ws, action, first, dt.date.fromisoformat(fx["fix_date"]), cells=cells, subscribers=who)
        realised_nps = fx["nps_with"] - fx["nps_without"]
        out.append({
            "fix": fx["fix_id"], "action": action, "cells": len(cells), "subscribers": len(who),
            "predicted_nps_lift": round(w.nps_lift, 2), "realised_nps_lift": round(realised_nps, 2),
            "lift_error_pct": round(100 * (w.nps_lift - realised_nps) / realised_nps, 1) if realised_nps else None,
            "predicted_throughput_ratio": round(w.kqi_after["throughput_kbps"] / w.kqi_before["throughput_kbps"], 3),
            "realised_throughput_ratio": round(fx["mean_throughput_kbps_with"] / fx["mean_throughput_kbps_without"], 3),
            "predicted_rtt_ratio": round(w.kqi_after["rtt_ms"] / w.kqi_before["rtt_ms"], 3),
            "realised_rtt_ratio": round(fx["mean_rtt_ms_with"] / fx["mean_rtt_ms_without"], 3),
            "predicted_poor_share": [round(w.kqi_before["poor_share"], 4), round(w.kqi_after["poor_share"], 4)],
            "realised_bad_share": [round(fx["bad_session_share_without"], 4), round(fx["bad_session_share_with"], 4)],
            "cei_change": round(w.cei_change, 2),
        })
    return out

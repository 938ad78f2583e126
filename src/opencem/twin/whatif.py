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
from functools import cache
from pathlib import Path

import lightgbm as lgb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ..engine import Engine
from ..engine.pipeline import sql_file
from ..indicators.tree import load_tree, poor_session_sql
from ..nps.features import build_features, feature_list
from ..nps.model import NpsModel
from ..vocabulary import FIX_ACTIONS, SERVICES
from ..workspace import Workspace

NUMERIC = ("hod", "prb_util_dl", "ul_interference_dbm", "rsrp_dbm", "sinr_db", "ctx_log_rtt", "ctx_fail", "ctx_device_poor")
CATEGORICAL = ("service", "rat")
SAMPLE_EVERY = 20  # one session in 20 trains the relation
SAMPLE = "hash(session_id) % $sample_every = 0"  # the scope of the sessions the relation learns from
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


def _sql(name: str, **fragments: str) -> str:
    """The template ``twin/sql/<name>.sql`` with its generated fragments filled in."""
    sql = sql_file("opencem.twin", name)
    return sql.format(**fragments) if fragments else sql


@cache
def _poor_session() -> str:
    """What makes a session poor: the default tree's conditions."""
    return poor_session_sql(load_tree())


def _sessions(engine: Engine, window: dict, scope: str, params: dict) -> pa.Table:
    """Sessions of ``window`` in ``scope`` (a condition on xdr with ``params``) with their conditions
    (the learned relation's inputs) and outcomes."""
    sql = _sql("whatif_sessions", scope=scope, poor_session=_poor_session())
    return engine.query_arrow(sql, {**window, **params}, step="whatif_sessions")


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


def _counterfactual(engine: Engine, t: pa.Table, action: str, factor: float) -> pa.Table:
    col = {c: _floats(t, c) for c in NUMERIC}
    if action == "add_capacity":
        return _set(t, "prb_util_dl", col["prb_util_dl"] * factor)
    if action == "fix_transport":
        net = np.full(24, np.nan)
        by_hour = engine.query_arrow(_sql("network_log_rtt"), step="network_log_rtt")
        for h, v in zip(by_hour["hod"].to_pylist(), by_hour["log_rtt"].to_pylist()):
            net[h] = v
        return _set(t, "ctx_log_rtt", np.minimum(col["ctx_log_rtt"], net[col["hod"].astype(int)]))
    if action == "fix_core":
        (quiet,) = engine.query_row(_sql("quiet_fail_share"), step="quiet_fail_share")
        return _set(t, "ctx_fail", np.minimum(col["ctx_fail"], quiet))
    if action == "clear_interference":
        (ul_q,) = engine.query_row(_sql("quiet_ul_interference"), step="quiet_ul_interference")
        sinr_q = np.nanquantile(col["sinr_db"], 0.7) if np.isfinite(col["sinr_db"]).any() else np.nan
        t = _set(t, "ul_interference_dbm", np.minimum(col["ul_interference_dbm"], ul_q))
        return _set(t, "sinr_db", np.maximum(col["sinr_db"], sinr_q))
    if action == "restore_coverage":
        for c in ("rsrp_dbm", "sinr_db"):
            good = np.nanquantile(col[c], 0.7) if np.isfinite(col[c]).any() else np.nan
            t = _set(t, c, np.maximum(col[c], good))
        return t
    if action == "fix_device":
        # every device's poor share that day, joined to the sessions in the engine rather than row by row
        engine.register_arrow("cf_days", t.select(["session_id", "day"]))
        network = _floats(engine.query_arrow(_sql("network_poor_share", poor_session=_poor_session()), step="network_poor_share"), "share")
        engine.drop("cf_days")
        return _set(t, "ctx_device_poor", np.minimum(col["ctx_device_poor"], network))
    raise ValueError(f"unknown what-if action '{action}'; choose one of {', '.join(FIX_ACTIONS)}")


def _cei_slope(engine: Engine, window: dict) -> float:
    """CEI points per unit of poor-session share, fitted on subscriber-days (least squares)."""
    return float(engine.query_row(_sql("cei_slope", poor_session=_poor_session()), window, step="cei_slope")[0])


def _check(action: str, cells: list[str] | None, device_model: str | None) -> None:
    if action not in FIX_ACTIONS:
        raise ValueError(f"unknown what-if action '{action}'; choose one of {', '.join(FIX_ACTIONS)}")
    if (action == "fix_device") != bool(device_model) or (action != "fix_device" and not cells):
        raise ValueError("fix_device needs --device-model; the other actions need --cells")


def scope_sql(cells: list[str] | None, device_model: str | None) -> tuple[str, dict]:
    """The xDR sessions a change touches, as a condition on ``xdr`` and its parameters: those on ``cells``
    (``$scope_cells``), or of the subscribers with ``device_model`` (``$scope_device_model``)."""
    if device_model:
        return ("subscriber_id IN (SELECT subscriber_id FROM subscribers WHERE device_model = $scope_device_model)",
                {"scope_device_model": device_model})
    return "cell_id IN (SELECT unnest($scope_cells))", {"scope_cells": list(cells)}


class WhatIfEngine:
    """What-ifs over one window of a workspace: the session relation is learned once and every
    scenario reuses it (prioritising scores many candidate fixes).

    ``engine`` is the workspace session the scenarios run on; ``window`` its parameters ``$start`` and
    ``$end`` (days, ``start`` <= day < ``end``)."""

    def __init__(self, workspace: Path, start: dt.date, end: dt.date, model: NpsModel | None = None):
        ws = Workspace(workspace)
        self.ws, self.start, self.end = ws.root, start, end
        self.window = {"start": start, "end": end}
        self.engine = ws.session()
        # the observed CEI days under a second name: a scenario swaps cei_subscriber_day for its own
        self._observed = ws.measure_files("cei_subscriber_day")
        self.engine.register_parquet("cei_subscriber_day_observed", self._observed)
        self.sm = SessionModel().fit(_sessions(self.engine, self.window, SAMPLE, {"sample_every": SAMPLE_EVERY}))
        self.slope = _cei_slope(self.engine, self.window)
        self.model = model or NpsModel.load(ws.model("nps"))
        self.feats = feature_list(load_tree())

    def close(self) -> None:
        self.engine.close()

    def __enter__(self) -> WhatIfEngine:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def run(self, action: str, cells: list[str] | None = None, device_model: str | None = None, factor: float = 0.5,
            subscribers: list[str] | None = None) -> WhatIf:
        """Predict what ``action`` on ``cells`` (or ``device_model``) over the window would have changed;
        NPS is scored as of the window's end for the subscribers touched (or ``subscribers``)."""
        _check(action, cells, device_model)
        engine = self.engine
        if action == "fix_device":
            scope = f"device model {device_model}"
        else:
            scope = ", ".join(cells[:4]) + (f" (+{len(cells) - 4})" if len(cells) > 4 else "")
        before_t = _sessions(engine, self.window, *scope_sql(cells, device_model))
        if before_t.num_rows == 0:
            raise ValueError(f"no sessions on {scope} between {self.start} and {self.end}")
        after_t = _counterfactual(engine, before_t, action, factor)
        pb, pa_ = self.sm.predict(before_t), self.sm.predict(after_t)

        def kqi(p):
            return {"poor_share": float(np.mean(p["poor"])), "rtt_ms": float(np.mean(np.exp(p["log_rtt"]))),
                    "throughput_kbps": float(np.mean(np.exp(p["log_thp"])))}

        # per subscriber-day: change in the poor-session share over all their sessions that day
        engine.register_arrow("delta_in", pa.table({"subscriber_id": before_t["subscriber_id"], "day": before_t["day"],
                                                    "d_poor": pa_["poor"] - pb["poor"]}))
        engine.create_table("cei_delta", _sql("cei_delta"), {**self.window, "slope": self.slope})
        engine.drop("delta_in")
        who = subscribers or sorted(set(before_t["subscriber_id"].to_pylist()))
        req = pa.table({"subscriber_id": who, "as_of": [self.end] * len(who)})
        p_before = self.model.proba(self.model.encoder.matrix(build_features(engine, req, self.feats)))
        engine.create_view("cei_subscriber_day", _sql("cei_subscriber_day_whatif"))
        try:
            p_after = self.model.proba(self.model.encoder.matrix(build_features(engine, req, self.feats)))
        finally:  # back to the observed days for the next scenario
            engine.register_parquet("cei_subscriber_day", self._observed)
        d_cei = engine.query_row(_sql("mean_cei_change"), step="mean_cei_change")[0] or 0.0

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

    ws = Workspace(workspace)
    pseudo = Pseudonymiser(load_key(ws.pseudonym_key))
    fixes = pq.read_table(Path(truth) / "fixes.parquet").to_pylist()
    affected = pq.read_table(Path(truth) / "fix_affected.parquet")
    with ws.session(tables=("xdr",)) as engine:
        first = engine.query_row(_sql("xdr_days"), step="xdr_days")[0]
    out = []
    for fx in fixes:
        action = {"add_carrier": "add_capacity", "repair_backhaul": "fix_transport"}[fx["action"]]
        cells = [fx["target"]] if action == "add_capacity" else fx["cells"].split(";")
        raw = affected.filter(pa.compute.equal(affected["fix_id"], fx["fix_id"]))["subscriber_id"]
        who = sorted(set(pseudo.column(raw).to_pylist()))
        w = whatif(ws.root, action, first, dt.date.fromisoformat(fx["fix_date"]), cells=cells, subscribers=who)
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

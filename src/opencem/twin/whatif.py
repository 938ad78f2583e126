"""What-if on the twin: change a network condition, replay the sessions it touches, and measure and score
the result through the same SQL and model as `opencem measure` and `opencem score`.

1. **Conditions.** Each session of the window comes with the conditions it met: the serving cell's channel
   bandwidth (cells), its PRB load and UL interference in that 15 minutes (PM), the subscriber's RSRP / SINR
   on that cell in that hour (MR), the cell-hour's median RTT and failure share (the transport / core
   context) and the device model's poor share that day (the device context). A fix sets its condition
   back to normal:

   - ``add_capacity``: the cells' PRB load x ``factor`` (0.5: a second carrier of the same size), and their
     RTT context down by the queueing delay that load explains on the network's cells (the median
     cell-hour RTT per tenth of load);
   - ``fix_transport``: the RTT context of the cell-hours whose RTT stood at least TRANSPORT_LOG_RTT above the
     network's at the same hour of day, to the network's;
   - ``clear_interference``: the cells' UL interference to the network's quiet level, and the SINR of the sessions
     that met UL interference at least INTERFERENCE_UL_DB above it to the scope's 70th percentile;
   - ``fix_core``: the cells' failure context to the network's quiet level;
   - ``fix_device``: the model's sessions take other handset models' outcomes under the same conditions, with
     the device context of the other models (their median poor share);
   - ``restore_coverage``: the users' RSRP and SINR on the cells to the scope's good level (70th percentile).

   A radio fix (``clear_interference``, ``restore_coverage``) raises the subscribers' measurement reports on
   the cells to the same levels, so the radio features move too.
2. **Replay.** Every session in scope is replayed twice from a donor pool of the window's own sessions (one
   in :data:`DONOR_EVERY`): once with the outcome columns of the nearest donor of the same service and RAT
   under the conditions it met, once under the changed conditions. Nearest is in the standardised
   condition space. Comparing the two replays, rather than a replay with the observed session, cancels
   what the conditions do not capture about a session.
3. **Measure and score.** Each replay's sessions, with the subscribers' other sessions, go through
   measure's KQI -> service CEI -> subscriber CEI steps (the same SQL), a radio fix's reports go through
   measure's radio_subscriber_day step, the NPS features are built on those days (the same SQL) and the
   NPS model scores them. The lift is the difference of the two scores.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from scipy.spatial import cKDTree

from ..contracts.xdr import XDR
from ..engine import Engine
from ..engine.pipeline import sql_file
from ..errors import InputError
from ..indicators.tree import cei_service_sql, cei_subscriber_sql, load_tree, poor_session_sql
from ..measure.steps import kqi_sql, radio_day_sql
from ..nps.features import build_features, feature_list
from ..nps.model import NpsModel, critical_value, nps_of
from ..vocabulary import FIX_ACTIONS
from ..workspace import Workspace
from .cause import INTERFERENCE_UL_DB, TRANSPORT_LOG_RTT
from .run import tree_of

NUMERIC = ("hod", "log_bandwidth", "prb_util_dl", "ul_interference_dbm", "rsrp_dbm", "sinr_db", "ctx_log_rtt", "ctx_fail", "ctx_device_poor")
CONDITIONS = NUMERIC + ("device_model", "poor", "log_rtt", "log_thp")  # columns whatif_sessions adds to xDR's
SUMMARY = ["poor", "log_rtt", "log_thp"]  # what the what-if reports of the sessions it replays
# xDR columns that describe what happened in a session (the replay takes them from a donor); the rest say
# which session it was, whose, where, of what service and on which RAT, and stay
CONTEXT = ("session_id", "subscriber_id", "service", "start_time", "end_time", "cell_id", "rat", "volume_dl_bytes",
           "volume_ul_bytes", "codec", "day")
OUTCOMES = [c.name for c in XDR.columns if c.name not in CONTEXT]
# the measure tables a scenario shows its own days of, under their names (the observed ones get a suffix)
SCENARIO_TABLES = ("cei_subscriber_day", "radio_subscriber_day")
DONOR_EVERY = 10  # one session in 10 of the window lends its outcomes
SAMPLE = "hash(session_id) % $sample_every = 0"  # the donor pool


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
    replica_lifts: tuple[float, ...] = ()  # the lift by each of the model's bootstrap replicas

    @property
    def nps_lift(self) -> float:
        return self.nps_after - self.nps_before

    @property
    def nps_lift_interval(self) -> tuple[float, float]:
        """The lift's 95 % interval for the model's error: how far refits on resampled answers, each with its
        own sensitivity to experience, move it (not the replay's own error). Without replicas, the lift."""
        return lift_interval(self.nps_lift, np.asarray(self.replica_lifts))


def lift_interval(lift: float, replicas: np.ndarray) -> tuple[float, float]:
    """``lift`` +- Student's t x the standard deviation of its ``replicas`` (one value per bootstrap refit)."""
    if len(replicas) < 2:
        return lift, lift
    var = float(np.var(replicas, ddof=1))
    half = float(critical_value([(var, len(replicas) - 1)])) * var ** 0.5
    return lift - half, lift + half


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


class Donors:
    """The window's sessions (a sample) that lend their outcomes to replayed sessions: for each service x
    RAT, a k-d tree over the standardised conditions (missing conditions sit at the median)."""

    def __init__(self, t: pa.Table):
        self.table = t.select(OUTCOMES + SUMMARY)
        self.device = np.asarray(t["device_model"].fill_null("").to_pylist(), dtype=object)
        self.x = np.stack([_floats(t, c) for c in NUMERIC], axis=1)
        # a condition with no value at all (a counter the operator does not have) sits at 0 with scale 1
        seen = np.isfinite(self.x).any(axis=0)
        self.centre, q75, q25 = np.zeros(len(NUMERIC)), np.zeros(len(NUMERIC)), np.zeros(len(NUMERIC))
        self.centre[seen] = np.nanmedian(self.x[:, seen], axis=0)
        q75[seen], q25[seen] = np.nanpercentile(self.x[:, seen], [75, 25], axis=0)
        self.scale = np.where((q75 - q25) > 0, q75 - q25, 1.0)
        self.strata = _strata(t)
        self._trees: dict = {}

    def typical(self, condition: str, not_device: str) -> float:
        """The median of ``condition`` over the donors of every handset model but ``not_device``."""
        x = self.x[self.device != not_device, NUMERIC.index(condition)]
        return float(np.nanmedian(x)) if np.isfinite(x).any() else np.nan

    def _points(self, x: np.ndarray) -> np.ndarray:
        z = (x - self.centre) / self.scale
        return np.where(np.isnan(z), 0.0, z)

    def _tree(self, key: str, device: str | None, same_device: bool):
        """The k-d tree of one stratum, over all donors or only those of (or not of) one device model."""
        cache = (key, device, same_device)
        if cache not in self._trees:
            rows = self.strata.get(key, np.array([], dtype=np.int64))
            if device is not None:
                rows = rows[(self.device[rows] == device) == same_device]
            self._trees[cache] = (cKDTree(self._points(self.x[rows])), rows) if len(rows) else None
        return self._trees[cache]

    def replay(self, sessions: pa.Table, device: str | None = None, same_device: bool = True) -> pa.Table:
        """``sessions`` with every outcome column taken from its nearest donor of the same service and RAT
        (with ``device``: only donors of that handset model, or with ``same_device=False`` of any other)."""
        x = self._points(np.stack([_floats(sessions, c) for c in NUMERIC], axis=1))
        pick = np.full(sessions.num_rows, -1)
        for key, rows in _strata(sessions).items():
            found = self._tree(key, device, same_device)
            if found is not None:
                tree, donors = found
                pick[rows] = donors[tree.query(x[rows])[1]]
        kept = pick >= 0  # a service x RAT without donors keeps its observed outcomes
        donor = self.table.take(pa.array(np.where(kept, pick, 0)))
        out = sessions.combine_chunks()
        for c in OUTCOMES + SUMMARY:
            i = out.schema.get_field_index(c)
            out = out.set_column(i, c, pc.if_else(pa.array(kept), donor[c].cast(out.schema.field(c).type).combine_chunks(), out[c].combine_chunks()))
        return out


def _strata(t: pa.Table) -> dict[tuple, np.ndarray]:
    keys = np.char.add(np.asarray(t["service"].to_pylist(), dtype=str), "|" + np.asarray(t["rat"].fill_null("").to_pylist(), dtype=str))
    uniq, inv = np.unique(keys, return_inverse=True)
    return {str(k): np.flatnonzero(inv == i) for i, k in enumerate(uniq)}


def _set(t: pa.Table, name: str, values: np.ndarray) -> pa.Table:
    return t.set_column(t.schema.get_field_index(name), name, pa.array(values, pa.float64()))


def _counterfactual(network: Callable[[str], pa.Table], t: pa.Table, action: str, factor: float) -> tuple[pa.Table, dict]:
    """The sessions ``t`` under the changed conditions, and the floors a radio fix sets on the scope's
    measurement reports (``rsrp_floor`` / ``sinr_floor``, None: unchanged); ``network(name)`` gives the
    result of one of the network-wide queries the conditions are reset to."""
    col = {c: _floats(t, c) for c in NUMERIC}
    radio = {"rsrp_floor": None, "sinr_floor": None}
    if action == "add_capacity":
        # the RTT context falls with the load by the network's queueing curve (never below where it is)
        by_band = network("load_log_rtt")
        centres = (by_band["band"].to_numpy().astype(float) + 0.5) / 10
        curve = np.maximum.accumulate(by_band["log_rtt"].to_numpy().astype(float))
        load, new_load = col["prb_util_dl"], col["prb_util_dl"] * factor
        queueing = np.interp(load, centres, curve) - np.interp(new_load, centres, curve) if len(curve) else 0.0
        t = _set(t, "ctx_log_rtt", col["ctx_log_rtt"] - np.nan_to_num(np.maximum(queueing, 0.0)))
        return _set(t, "prb_util_dl", new_load), radio
    if action == "fix_transport":
        net = np.full(24, np.nan)
        by_hour = network("network_log_rtt")
        for h, v in zip(by_hour["hod"].to_pylist(), by_hour["log_rtt"].to_pylist()):
            net[h] = v
        at_hour, rtt = net[col["hod"].astype(int)], col["ctx_log_rtt"]
        # as for interference: only the cell-hours whose RTT stood as far above the network's as the twin calls a
        # transport fault get the network's back, so a link that is merely slower than the median gains nothing
        hit = rtt > at_hour + TRANSPORT_LOG_RTT
        return _set(t, "ctx_log_rtt", np.where(hit, at_hour, rtt)), radio
    if action == "fix_core":
        quiet = network("quiet_fail_share").column(0)[0].as_py()
        return _set(t, "ctx_fail", np.minimum(col["ctx_fail"], quiet)), radio
    if action == "clear_interference":
        ul_q = network("quiet_ul_interference").column(0)[0].as_py()
        ul_q = np.nan if ul_q is None else ul_q  # no UL interference counter: SINR alone says it
        ul = col["ul_interference_dbm"]
        # the interferer is where the cells' UL interference stood INTERFERENCE_UL_DB above the quiet level: only
        # those sessions get their UL interference and SINR back, so a cell without one, or whose interferer has
        # stopped, gains nothing (before stop 55 every session did: all five clearances the loops bought repaired nothing)
        hit = ul > ul_q + INTERFERENCE_UL_DB if np.isfinite(ul_q) and np.isfinite(ul).any() else np.ones(len(ul), dtype=bool)
        sinr_q = np.nanquantile(col["sinr_db"], 0.7) if np.isfinite(col["sinr_db"]).any() else np.nan
        t = _set(t, "ul_interference_dbm", np.where(hit, np.minimum(ul, ul_q), ul))
        t = _set(t, "sinr_db", np.where(hit, np.maximum(col["sinr_db"], sinr_q), col["sinr_db"]))
        return t, {**radio, "sinr_floor": _or_none(sinr_q) if hit.any() else None}
    if action == "restore_coverage":
        for c, floor in (("rsrp_dbm", "rsrp_floor"), ("sinr_db", "sinr_floor")):
            good = np.nanquantile(col[c], 0.7) if np.isfinite(col[c]).any() else np.nan
            t, radio[floor] = _set(t, c, np.maximum(col[c], good)), _or_none(good)
        return t, radio
    raise InputError(f"unknown what-if action '{action}'; choose one of {', '.join(FIX_ACTIONS)}")


def _or_none(x: float) -> float | None:
    return float(x) if np.isfinite(x) else None


def _check(action: str, cells: list[str] | None, device_model: str | None) -> None:
    if action not in FIX_ACTIONS:
        raise InputError(f"unknown what-if action '{action}'; choose one of {', '.join(FIX_ACTIONS)}")
    if (action == "fix_device") != bool(device_model) or (action != "fix_device" and not cells):
        raise InputError("fix_device needs --device-model; the other actions need --cells")


def scope_sql(cells: list[str] | None, device_model: str | None) -> tuple[str, dict]:
    """The xDR sessions a change touches, as a condition on ``xdr`` and its parameters: those on ``cells``
    (``$scope_cells``), or of the subscribers with ``device_model`` (``$scope_device_model``)."""
    if device_model:
        return ("subscriber_id IN (SELECT subscriber_id FROM subscribers WHERE device_model = $scope_device_model)",
                {"scope_device_model": device_model})
    return "cell_id IN (SELECT unnest($scope_cells))", {"scope_cells": list(cells)}


class WhatIfEngine:
    """What-ifs over one window of a workspace: the donor pool is drawn once and every scenario reuses it
    (prioritising scores many candidate fixes).

    ``engine`` is the workspace session the scenarios run on; ``window`` its parameters ``$start`` and
    ``$end`` (days, ``start`` <= day < ``end``)."""

    def __init__(self, workspace: Path, start: dt.date, end: dt.date, model: NpsModel | None = None):
        ws = Workspace(workspace)
        self.ws, self.start, self.end = ws.root, start, end
        self.window = {"start": start, "end": end}
        self.engine = ws.session()
        # the observed daily tables under second names: a scenario shows its own days in their place
        for name in SCENARIO_TABLES:
            self.engine.register_parquet(f"{name}_observed", ws.measure_files(name))
        self.tree = tree_of(ws)
        self.donors = Donors(_sessions(self.engine, self.window, SAMPLE, {"sample_every": DONOR_EVERY}))
        self.model = model or NpsModel.load(ws.model("nps"))
        self.feats = feature_list(load_tree())
        self._network: dict[str, pa.Table] = {}

    def network(self, name: str) -> pa.Table:
        """A network-wide query's result (the normal conditions a fix resets to), once per window."""
        if name not in self._network:
            self._network[name] = self.engine.query_arrow(_sql(name), step=name)
        return self._network[name]

    def close(self) -> None:
        self.engine.close()

    def __enter__(self) -> WhatIfEngine:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def run(self, action: str, cells: list[str] | None = None, device_model: str | None = None, factor: float = 0.5,
            subscribers: list[str] | None = None, horizon_days: int | None = None) -> WhatIf:
        """Predict what ``action`` on ``cells`` (or ``device_model``) would have changed had it been made
        ``horizon_days`` before the window's end (default: at its start), for the subscribers touched (or
        ``subscribers``): the mean over the days after the change of their NPS as of each day."""
        _check(action, cells, device_model)
        if action == "fix_device":
            scope = f"device model {device_model}"
        else:
            scope = ", ".join(cells[:4]) + (f" (+{len(cells) - 4})" if len(cells) > 4 else "")
        horizon = min(horizon_days or (self.end - self.start).days, (self.end - self.start).days)
        since = self.end - dt.timedelta(days=horizon)
        observed = _sessions(self.engine, {"start": since, "end": self.end}, *scope_sql(cells, device_model))
        if observed.num_rows == 0:
            raise InputError(f"no sessions on {scope} between {since} and {self.end}")
        who = subscribers or sorted(set(observed["subscriber_id"].to_pylist()))
        radio = None  # the reports' floors of a radio fix
        if action == "fix_device":  # the model's sessions replayed by its own sessions, then by other handsets'
            before = self.donors.replay(observed, device_model)
            # a fixed model's sessions meet the device context the other models have
            healthy = np.minimum(_floats(observed, "ctx_device_poor"), self.donors.typical("ctx_device_poor", device_model))
            after = self.donors.replay(_set(observed, "ctx_device_poor", healthy), device_model, same_device=False)
        else:
            before = self.donors.replay(observed)
            changed, floors = _counterfactual(self.network, observed, action, factor)
            after = self.donors.replay(changed)
            radio = {**floors, "scope_cells": list(cells)} if any(v is not None for v in floors.values()) else None
        days = [since + dt.timedelta(days=i) for i in range(horizon)]
        p_before, rep_before, cei_before = self._measure_and_score(before, who, days)
        p_after, rep_after, cei_after = self._measure_and_score(after, who, days, radio)

        def kqi(t: pa.Table) -> dict:
            return {"poor_share": float(np.nanmean(_floats(t, "poor"))), "rtt_ms": float(np.nanmean(np.exp(_floats(t, "log_rtt")))),
                    "throughput_kbps": float(np.nanmean(np.exp(_floats(t, "log_thp"))))}

        return WhatIf(action, scope, observed.num_rows, len(who), kqi(before), kqi(after), float(np.nanmean(cei_after - cei_before)),
                      nps_of(p_before), nps_of(p_after), tuple((100 * (rep_after - rep_before)).tolist()))

    def _measure_and_score(self, replay: pa.Table, who: list[str], days: list[dt.date], radio: dict | None = None
                           ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Measure ``who``'s ``days`` with ``replay``'s sessions in place of theirs (measure's own steps) and,
        for a radio fix (``radio``: the scope's cells and report floors), with their changed measurement
        reports; build their features as of each day after the first on those days and score them; returns
        the class probabilities, each bootstrap replica's mean P(promoter) - P(detractor) over them, and the
        CEI of each replayed subscriber-day (in a stable order, so two replays compare day by day)."""
        engine, tree = self.engine, self.tree
        engine.register_arrow("whatif_days", pa.table({"subscriber_id": np.repeat(who, len(days)),
                                                       "day": pa.array(np.tile(days, len(who)), pa.date32())}))
        engine.register_arrow("whatif_replay", replay.select([c for c in replay.column_names if c not in CONDITIONS]))
        span = {"start": days[0], "end": days[-1] + dt.timedelta(days=1)}
        engine.create_table("whatif_xdr", _sql("whatif_xdr"), span)
        engine.create_table("whatif_kqi", kqi_sql(source="whatif_xdr"))
        engine.create_table("whatif_cei_service", cei_service_sql(tree, "whatif_kqi"))
        engine.create_table("whatif_cei_subscriber", cei_subscriber_sql(tree, "whatif_cei_service"))
        scenario = {"cei_subscriber_day": "whatif_cei_subscriber"}
        if radio:
            engine.create_table("whatif_radio_samples", _sql("whatif_radio_samples"), {**span, **radio})
            engine.create_table("whatif_radio_day", radio_day_sql("whatif_radio_samples"))
            scenario["radio_subscriber_day"] = "whatif_radio_day"
        for name, table in scenario.items():
            engine.create_view(name, _sql("whatif_scenario_view", observed=f"{name}_observed", scenario=table))
        try:
            as_of = [d + dt.timedelta(days=1) for d in days]
            req = pa.table({"subscriber_id": np.repeat(who, len(as_of)), "as_of": pa.array(np.tile(as_of, len(who)), pa.date32())})
            x = self.model.encoder.matrix(build_features(engine, req, self.feats))
            p, replicas = self.model.proba(x), self.model.replica_nps(x).mean(axis=1)
            cei = _floats(engine.query_arrow(_sql("whatif_cei_days"), step="whatif_cei_days"), "cei")
        finally:  # back to the observed days for the next scenario
            for name in scenario:
                engine.create_view(name, f"SELECT * FROM {name}_observed")
        return p, replicas, cei


def whatif(workspace: Path, action: str, start: dt.date, end: dt.date, cells: list[str] | None = None,
           device_model: str | None = None, factor: float = 0.5, subscribers: list[str] | None = None,
           model: NpsModel | None = None, horizon_days: int | None = None) -> WhatIf:
    """One what-if over ``start`` <= day < ``end`` (see WhatIfEngine.run)."""
    _check(action, cells, device_model)  # before the donor pool is drawn
    with WhatIfEngine(workspace, start, end, model) as engine:
        return engine.run(action, cells, device_model, factor, subscribers, horizon_days)


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
        first, last = engine.query_row(_sql("xdr_days"), step="xdr_days")
    out = []
    for fx in fixes:
        action = {"add_carrier": "add_capacity", "repair_backhaul": "fix_transport"}[fx["action"]]
        cells = [fx["target"]] if action == "add_capacity" else fx["cells"].split(";")
        raw = affected.filter(pa.compute.equal(affected["fix_id"], fx["fix_id"]))["subscriber_id"]
        who = sorted(set(pseudo.column(raw).to_pylist()))
        fixed = dt.date.fromisoformat(fx["fix_date"])  # the truth compares the days from the fix to the end
        w = whatif(ws.root, action, first, fixed, cells=cells, subscribers=who, horizon_days=(last - fixed).days + 1)
        realised_nps = fx["nps_census_with"] - fx["nps_census_without"]  # as surveys would show it
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

"""`opencem score`: every subscriber's predicted NPS answer as of a day, the NPS of the base and of every
segment, grid and cell, the drivers behind each score and the potential detractors.

Scoring needs no retraining: it reads the saved model and the workspace's latest complete days, so
running it after each `opencem measure` refreshes the picture. Each as-of day is stored as its own
partition ``WS/nps/<table>/as_of=YYYY-MM-DD``; risk flags compare with the previous partition.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from ..engine.files import atomic_dir
from ..indicators.tree import load_tree
from ..geo import DEFAULT_RESOLUTION, grid_of
from .features import (
    NETWORK,
    NON_NETWORK,
    base_requests,
    build_features,
    connect,
    feature_list,
    one,
)
from .model import CLASSES, NpsModel

VALUE_TIERS = ((15.0, "low"), (40.0, "mid"), (math.inf, "high"))  # ARPU EUR/month upper bounds
DETRACTOR_P = 0.5  # a potential detractor is more likely than not to answer 0-6
SEGMENTS = ("plan", "value_tier", "device_model", "home_area", "grid", "cell")
TOP_DRIVERS = 3
MIN_POOR_SESSIONS = 3  # poor sessions on one cell in the last 7 days before a network cause is named
MIN_NETWORK_PUSH = 0.3  # log-odds towards detractor the network drivers must add


@dataclass
class ScoreResult:
    as_of: dt.date
    scores: pa.Table
    segments: pa.Table
    detractors: pa.Table
    folder: Path

    @property
    def base(self) -> dict:
        return self.segments.filter(pc.equal(self.segments["dimension"], "base")).to_pylist()[0]


def model_dir(workspace: Path) -> Path:
    return Path(workspace) / "models" / "nps"


def score(workspace: Path, as_of: dt.date | None = None, model: NpsModel | None = None,
          progress: Callable[[str], None] | None = None) -> ScoreResult:
    say = progress or (lambda _msg: None)
    ws = Path(workspace)
    model = model or NpsModel.load(model_dir(ws))
    feats = feature_list(load_tree())
    if [f.name for f in feats] != model.encoder.names:
        raise ValueError(f"{model_dir(ws)}: the model was trained on other features; run `opencem train nps` again")
    con = connect(ws)
    last = one(con, "SELECT max(day) FROM cei_subscriber_day")[0]
    as_of = as_of or (last + dt.timedelta(days=1))
    say(f"features of every subscriber as of {as_of}")
    req = base_requests(con, as_of)
    x_table = build_features(con, req, feats)
    x = model.encoder.matrix(x_table)
    say(f"scoring {x_table.num_rows:,} subscribers")
    pred = model.predict(x)
    p = pred["p"]
    contrib = model.contributions(x)
    places = _places(con, as_of)
    scores = _score_table(x_table, p, pred["expected_score"], contrib, feats, places)
    say("potential detractors: evidence and network cause")
    detractors = _potential_detractors(con, scores, as_of)
    scores = _risk_flags(ws, scores, as_of)
    segments = nps_by_segment(scores)
    con.close()
    folder = ws / "nps"
    for name, table in (("scores", scores), ("segments", segments), ("potential_detractors", detractors)):
        _write_partition(folder / name, as_of, table)
    return ScoreResult(as_of, scores, segments, detractors, folder)


# -- places: main cell and main grid ----------------------------------------------------------------
def _places(con, as_of: dt.date) -> pa.Table:
    """Each subscriber's main cell (most sessions in 28 days) and main grid (most GPS-located reports,
    else the main cell's site)."""
    win = f"day < DATE '{as_of}' AND day >= DATE '{as_of}' - INTERVAL 28 DAY"
    t = con.sql(f"""
      WITH c AS (SELECT subscriber_id, first(cell_id ORDER BY n DESC, cell_id) AS main_cell FROM (
                   SELECT subscriber_id, cell_id, count(*) AS n FROM xdr WHERE {win} GROUP BY ALL) GROUP BY ALL),
           g AS (SELECT subscriber_id, first(lat ORDER BY n DESC, lat, lon) AS lat, first(lon ORDER BY n DESC, lat, lon) AS lon FROM (
                   SELECT subscriber_id, round(lat, 3) AS lat, round(lon, 3) AS lon, count(*) AS n
                   FROM radio_samples WHERE lat IS NOT NULL AND CAST(sample_time AS DATE) < DATE '{as_of}'
                     AND CAST(sample_time AS DATE) >= DATE '{as_of}' - INTERVAL 28 DAY GROUP BY ALL) GROUP BY ALL)
      SELECT c.subscriber_id, c.main_cell, COALESCE(g.lat, cells.lat) AS lat, COALESCE(g.lon, cells.lon) AS lon
      FROM c LEFT JOIN g USING (subscriber_id) LEFT JOIN cells ON cells.cell_id = c.main_cell""").to_arrow_table()
    # a subscriber's main place is snapped to 1e-3 degrees (about 100 m) before the hexagon lookup
    lat, lon = (np.round(pc.fill_null(pc.cast(t[c], pa.float64()), float("nan")).to_numpy(), 3) for c in ("lat", "lon"))
    grid = grid_of(lat, lon, DEFAULT_RESOLUTION)
    return pa.table({"subscriber_id": t["subscriber_id"], "main_cell": t["main_cell"], "grid": pa.array(grid, pa.string())})


# -- per-subscriber table ------------------------------------------------------------------------------
def _score_table(x_table, p, expected, contrib, feats, places) -> pa.Table:
    nodes = sorted({f.node for f in feats})
    node_of = np.array([nodes.index(f.node) for f in feats])
    kind_of = {f.node: f.kind for f in feats}
    by_node = np.zeros((len(p), len(nodes)))
    for j in range(len(feats)):
        by_node[:, node_of[j]] += contrib[:, j]
    net_cols = [i for i, n in enumerate(nodes) if kind_of[n] == NETWORK]
    non_cols = [i for i, n in enumerate(nodes) if kind_of[n] == NON_NETWORK]

    def top(cols: list[int]) -> tuple[list[str], list[str]]:
        sub = by_node[:, cols]
        order = np.argsort(-sub, axis=1)[:, :TOP_DRIVERS]
        names, text = [], []
        for i in range(len(sub)):
            picked = [(nodes[cols[j]], sub[i, j]) for j in order[i] if sub[i, j] > 0.02]
            names.append(picked[0][0] if picked else None)
            text.append("; ".join(f"{describe(n)} (+{v:.2f})" for n, v in picked))
        return names, text

    net_top, net_text = top(net_cols)
    non_top, non_text = top(non_cols)
    net_push = np.clip(by_node[:, net_cols], 0, None).sum(axis=1)
    non_push = np.clip(by_node[:, non_cols], 0, None).sum(axis=1)
    arpu = x_table["arpu_monthly"].to_numpy()
    t = pa.table({
        "subscriber_id": x_table["subscriber_id"], "as_of": x_table["as_of"],
        "p_detractor": p[:, 0], "p_passive": p[:, 1], "p_promoter": p[:, 2],
        "expected_score": expected, "predicted_class": np.array(CLASSES)[p.argmax(axis=1)],
        "plan": x_table["plan"], "arpu_monthly": arpu, "value_tier": value_tier(arpu),
        "device_model": x_table["device_model"], "home_area": x_table["home_area"],
        "cei_28": x_table["cei_mean_28"],
        "network_push": net_push, "nonnetwork_push": non_push,
        "top_network_driver": pa.array(net_top, pa.string()), "network_drivers": net_text,
        "top_nonnetwork_driver": pa.array(non_top, pa.string()), "nonnetwork_drivers": non_text,
    })
    return _left_join(t, places, "subscriber_id")


def value_tier(arpu: np.ndarray) -> np.ndarray:
    bounds = np.array([b for b, _ in VALUE_TIERS[:-1]])
    return np.array([n for _, n in VALUE_TIERS])[np.searchsorted(bounds, arpu, side="right")]


WORDS = {
    "overall": "overall network experience", "radio.coverage": "weak coverage (RSRP)",
    "radio.interference": "interference (SINR)", "usage": "usage", "care.price": "price contacts",
    "care.billing": "billing contacts", "care.complaints": "complaints", "care.unresolved": "unresolved care contacts",
    "care.recency": "a recent care contact", "care.other": "other care contacts", "care.coverage": "coverage complaints",
    "care.data_speed": "data speed complaints", "care.voice_quality": "voice quality complaints",
    "care.device": "device complaints", "web.page_load": "slow page loads", "web.slow_pages": "pages over 5 s",
    "video.stall": "video stalls", "video.stalled_sessions": "videos that stall", "video.startup": "slow video start",
    "video.resolution": "low video resolution", "voice.mos": "poor voice quality", "voice.drops": "dropped calls",
    "voice.setup_success": "failed call setups", "voice.setup_time": "slow call setup", "gaming.rtt": "gaming latency",
    "gaming.jitter": "gaming jitter", "social.rtt": "social app latency", "social.throughput": "social app speed",
    "file_transfer.throughput": "download speed",
}


def describe(node: str) -> str:
    if node in WORDS:
        return WORDS[node]
    if node.endswith(".success"):
        return f"{node.split('.')[0].replace('_', ' ')} failures"
    return f"{node.replace('_', ' ').replace('.', ' ')} experience"


# -- NPS of groups -------------------------------------------------------------------------------------
def nps_by_segment(scores: pa.Table) -> pa.Table:
    """NPS (-100..100) of the base and of every segment with a 95 % interval.

    The interval is that of the NPS a census would give if every subscriber answered with the predicted
    probabilities: each answer is a draw, so Var(NPS) = sum_i (pP + pD - (pP - pD)^2) / n^2. It leaves
    out the model's own error (measured separately against surveys and truth)."""
    pp = scores["p_promoter"].to_numpy()
    pd = scores["p_detractor"].to_numpy()
    v = pp + pd - (pp - pd) ** 2
    rows = [_nps_row("base", "all", pp, pd, v)]
    for dim in SEGMENTS:
        col = "main_cell" if dim == "cell" else dim
        keys = np.array(scores[col].to_pylist(), dtype=object)
        ok = np.array([k is not None for k in keys], dtype=bool)
        uniq, inv = np.unique(keys[ok].astype(str), return_inverse=True)
        for k, name in enumerate(uniq):
            m = np.flatnonzero(ok)[inv == k]
            rows.append(_nps_row(dim, name, pp[m], pd[m], v[m]))
    return pa.Table.from_pylist(rows)


def _nps_row(dim: str, seg: str, pp: np.ndarray, pd: np.ndarray, v: np.ndarray) -> dict:
    n = len(pp)
    nps = 100 * (pp.mean() - pd.mean())
    half = 196 * math.sqrt(v.sum()) / n
    return {"dimension": dim, "segment": seg, "subscribers": n, "nps": round(float(nps), 2),
            "ci_low": round(float(nps - half), 2), "ci_high": round(float(nps + half), 2),
            "p_promoter": round(float(pp.mean()), 4), "p_detractor": round(float(pd.mean()), 4)}


# -- potential detractors with a network cause ------------------------------------------------------------
POOR_SESSION = """CASE service
  WHEN 'web' THEN NOT success OR page_load_ms > 5000
  WHEN 'video' THEN NOT success OR stall_ms > 0 OR initial_buffer_ms > 5000
  WHEN 'voice' THEN NOT success OR call_dropped OR packet_loss_pct > 3
  WHEN 'gaming' THEN NOT success OR rtt_ms > 120 OR jitter_ms > 40
  ELSE NOT success OR throughput_dl_kbps < 1000 END"""


def _potential_detractors(con, scores: pa.Table, as_of: dt.date) -> pa.Table:
    """Subscribers more likely than not to answer 0-6, ranked by value, each with the network evidence
    (the cell, days and hours of their poor sessions in the last 7 days and that cell's state then) and
    a cause; the cause is non-network when non-network drivers outweigh network ones or no poor
    session stands out."""
    cand = scores.filter(pc.greater_equal(scores["p_detractor"], DETRACTOR_P))
    con.register("cand", cand.select(["subscriber_id", "top_network_driver"]))
    win = f"x.day < DATE '{as_of}' AND x.day >= DATE '{as_of}' - INTERVAL 7 DAY"
    ev = con.sql(f"""
      WITH s AS (
        SELECT x.subscriber_id, x.cell_id, x.service, x.start_time, x.rtt_ms, x.success, x.day,
               ({POOR_SESSION}) AS poor
        FROM xdr x JOIN cand USING (subscriber_id) WHERE {win}),
      top AS (
        SELECT subscriber_id, first(cell_id ORDER BY n_poor DESC, cell_id) AS cell_id, max(n_poor) AS poor_sessions FROM (
          SELECT subscriber_id, cell_id, sum(CASE WHEN poor THEN 1 ELSE 0 END) AS n_poor FROM s GROUP BY ALL)
        GROUP BY ALL HAVING max(n_poor) > 0),
      ps AS (SELECT s.* FROM s JOIN top USING (subscriber_id, cell_id) WHERE s.poor),
      kpi AS (
        SELECT ps.subscriber_id, avg(k.prb_util_dl) AS prb_util, avg(k.ul_interference_dbm) AS ul_interf
        FROM ps JOIN kpi_cell_15min k ON k.cell_id = ps.cell_id
          AND k.period_start = time_bucket(INTERVAL 15 MINUTE, ps.start_time) GROUP BY ALL),
      radio AS (
        SELECT ps.subscriber_id, avg(r.rsrp_dbm) AS rsrp, avg(r.sinr_db) AS sinr
        FROM (SELECT DISTINCT subscriber_id, cell_id, date_trunc('hour', start_time) AS h FROM ps) ps
        JOIN radio_samples r ON r.subscriber_id = ps.subscriber_id AND r.cell_id = ps.cell_id
          AND date_trunc('hour', r.sample_time) = ps.h GROUP BY ALL),
      rtt AS (
        SELECT ps.subscriber_id, avg(ps.rtt_ms) / NULLIF(any_value(b.rtt_p50), 0) AS rtt_ratio,
               avg(CASE WHEN ps.service IN ('web', 'social') AND NOT ps.success THEN 1E0 ELSE 0E0 END) AS web_fail_share,
               avg(CASE WHEN ps.service = 'voice' THEN 1E0 ELSE 0E0 END) AS voice_share,
               min(ps.day) AS first_day, max(ps.day) AS last_day
        FROM ps LEFT JOIN (SELECT cell_id, median(rtt_ms) AS rtt_p50 FROM xdr x WHERE {win} GROUP BY ALL) b
          ON b.cell_id = ps.cell_id GROUP BY ALL),
      hours AS (
        SELECT subscriber_id, first(band ORDER BY n DESC, band) AS when_ FROM (
          SELECT subscriber_id, CASE WHEN hour(start_time) < 6 THEN 'night' WHEN hour(start_time) < 12 THEN 'mornings'
                 WHEN hour(start_time) < 17 THEN 'afternoons' ELSE 'evenings' END AS band, count(*) AS n
          FROM ps GROUP BY ALL) GROUP BY ALL),
      dev AS (  -- poor-session rate of each device model against the rest over the same week
        SELECT b.device_model, avg(CASE WHEN ({POOR_SESSION}) THEN 1E0 ELSE 0E0 END) AS poor_rate
        FROM xdr x JOIN subscribers b USING (subscriber_id) WHERE {win} GROUP BY ALL)
      SELECT top.subscriber_id, top.cell_id AS evidence_cell, top.poor_sessions, rtt.first_day, rtt.last_day,
             hours.when_ AS hours, kpi.prb_util, kpi.ul_interf, radio.rsrp, radio.sinr, rtt.rtt_ratio,
             rtt.web_fail_share, rtt.voice_share, dev.poor_rate / (SELECT avg(poor_rate) FROM dev) AS device_ratio
      FROM top LEFT JOIN kpi USING (subscriber_id) LEFT JOIN radio USING (subscriber_id)
      LEFT JOIN rtt USING (subscriber_id) LEFT JOIN hours USING (subscriber_id) JOIN subscribers b USING (subscriber_id)
      LEFT JOIN dev ON dev.device_model = b.device_model""").to_arrow_table()
    con.unregister("cand")
    out = _left_join(cand.select(["subscriber_id", "p_detractor", "expected_score", "arpu_monthly", "value_tier", "plan",
                                  "network_push", "nonnetwork_push", "top_network_driver", "network_drivers",
                                  "top_nonnetwork_driver", "nonnetwork_drivers", "grid"]), ev, "subscriber_id")
    cause, reason = [], []
    for r in out.to_pylist():
        c = network_cause(r)
        cause.append(c)
        reason.append(_reason(r, c))
    out = out.append_column("cause", pa.array(cause, pa.string())).append_column("reason", pa.array(reason, pa.string()))
    out = out.append_column("network_cause", pc.not_equal(out["cause"], "non-network"))
    order = pc.sort_indices(out, [("network_cause", "descending"), ("arpu_monthly", "descending"), ("subscriber_id", "ascending")])
    out = out.take(order)
    return out.append_column("rank", pa.array(np.arange(1, out.num_rows + 1)))


def network_cause(r: dict) -> str:
    """The cause a network engineer would read from the evidence; thresholds are documented in docs/nps.md."""
    if (r.get("poor_sessions") or 0) < MIN_POOR_SESSIONS or r["network_push"] < max(r["nonnetwork_push"], MIN_NETWORK_PUSH):
        return "non-network"
    if r["rsrp"] is not None and r["rsrp"] < -112:
        return "coverage"
    if (r["ul_interf"] is not None and r["ul_interf"] > -105) or (r["sinr"] is not None and r["sinr"] < 0):
        return "interference"
    if r["prb_util"] is not None and r["prb_util"] > 0.8:
        return "congestion"
    if r["device_ratio"] is not None and r["device_ratio"] > 2.5:
        return "device"
    if r["rtt_ratio"] is not None and r["rtt_ratio"] > 1.8:
        return "transport"
    if r["web_fail_share"] is not None and r["web_fail_share"] > 0.5:
        return "core"
    return "network (unclear)"


def _reason(r: dict, cause: str) -> str:
    drivers = r["network_drivers"] if cause != "non-network" else r["nonnetwork_drivers"]
    main = drivers.split(" (+")[0] if drivers else "overall experience"
    if cause == "non-network" or not r.get("evidence_cell"):
        return f"{main}; no network problem stands out"
    days = f"{r['first_day']:%d %b}" + (f"-{r['last_day']:%d %b}" if r["last_day"] != r["first_day"] else "")
    state = {"coverage": f"RSRP {r['rsrp']:.0f} dBm" if r["rsrp"] is not None else "weak signal",
             "interference": "high interference", "congestion": f"PRB load {100 * (r['prb_util'] or 0):.0f} %",
             "transport": f"round trip {r['rtt_ratio']:.1f}x the cell's normal" if r["rtt_ratio"] else "slow transport",
             "device": f"this handset has {r['device_ratio']:.1f}x the poor sessions of others" if r["device_ratio"] else "handset",
             "core": "web sessions failing (DNS / core)"}.get(cause, "poor sessions")
    return f"{main}, {r['hours']} of {days}, cell {r['evidence_cell']}: {cause} ({state})"


# -- risk flags and storage ---------------------------------------------------------------------------------
def _risk_flags(ws: Path, scores: pa.Table, as_of: dt.date) -> pa.Table:
    """Flag subscribers whose predicted class fell to detractor since the previous scoring."""
    prev = _previous(ws / "nps" / "scores", as_of)
    if prev is None:
        prev = pa.table({"subscriber_id": pa.array([], pa.string()), "predicted_class": pa.array([], pa.string())})
    out = _left_join(scores, prev.select(["subscriber_id", "predicted_class"]).rename_columns(["subscriber_id", "previous_class"]),
                     "subscriber_id")
    fell = pc.and_(pc.equal(out["predicted_class"], "detractor"), pc.not_equal(out["previous_class"], "detractor"))
    return out.append_column("risk_flag", pc.fill_null(fell, False))


def _previous(folder: Path, as_of: dt.date) -> pa.Table | None:
    if not folder.is_dir():
        return None
    older = sorted(p for p in folder.glob("as_of=*") if p.name[6:] < str(as_of))
    return pq.read_table(older[-1] / "part.parquet") if older else None


def _write_partition(folder: Path, as_of: dt.date, table: pa.Table) -> None:
    """Write one as-of partition atomically: a re-run replaces it whole."""
    with atomic_dir(folder / f"as_of={as_of}") as tmp:
        tmp.mkdir()
        pq.write_table(table, tmp / "part.parquet")


def _left_join(left: pa.Table, right: pa.Table, key: str) -> pa.Table:
    """Left join (right keys unique) keeping the left table's row order."""
    joined = left.append_column("_row", pa.array(np.arange(left.num_rows))).join(right, key, join_type="left outer")
    return joined.sort_by("_row").drop_columns(["_row"])

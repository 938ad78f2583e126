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

from .. import vocabulary
from ..engine import Engine
from ..engine.files import atomic_dir
from ..engine.pipeline import sql_file
from ..errors import InputError
from ..indicators.tree import load_tree
from ..workspace import Workspace
from .features import NETWORK, NON_NETWORK, base_requests, build_features, feature_list
from .model import CLASSES, NpsModel, critical_value
from .places import main_places

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


def score(workspace: Path, as_of: dt.date | None = None, model: NpsModel | None = None,
          progress: Callable[[str], None] | None = None, engine: str = "duckdb", spark_master: str | None = None) -> ScoreResult:
    """Score every subscriber still in the base as of ``as_of``; the SQL (features, places, evidence) runs on
    ``engine`` (duckdb, or spark at ``spark_master``), the model in this process."""
    say = progress or (lambda _msg: None)
    ws = Workspace(workspace)
    model = model or NpsModel.load(ws.model("nps"))
    feats = feature_list(load_tree())
    if [f.name for f in feats] != model.encoder.names:
        raise InputError(f"{ws.model('nps')}: the model was trained on other features; run `opencem train nps` again")
    with ws.session(engine, spark_master=spark_master) as engine:
        last = engine.query_row(sql_file("opencem.nps", "measured_days"), step="measured_days")[1]
        as_of = as_of or (last + dt.timedelta(days=1))
        say(f"features of every subscriber as of {as_of}")
        req = base_requests(engine, as_of)
        x_table = build_features(engine, req, feats)
        x = model.encoder.matrix(x_table)
        say(f"scoring {x_table.num_rows:,} subscribers with the model and its {len(model.replicas)} replicas")
        pred = model.predict(x)
        p = pred["p"]
        replicas = model.replica_nps(x)
        # drivers are explained for the likely detractors only: TreeSHAP costs far more than a prediction
        explained = np.flatnonzero(p[:, 0] >= DETRACTOR_P)
        say(f"drivers of the {len(explained):,} likely detractors")
        contrib = model.contributions(x[explained])
        say("main cell and place of every subscriber")
        places = main_places(engine, ws, as_of)
        scores = _score_table(x_table, p, pred["expected_score"], explained, contrib, feats, places)
        say("potential detractors: evidence and network cause")
        detractors = _potential_detractors(engine, scores, as_of)
    say("NPS of the base and of every segment, grid and cell")
    scores = _risk_flags(ws, scores, as_of)
    segments = nps_by_segment(scores, replicas, model.level)
    folder = ws.nps
    for name, table in (("scores", scores), ("segments", segments), ("potential_detractors", detractors)):
        _write_partition(folder / name, as_of, table)
    return ScoreResult(as_of, scores, segments, detractors, folder)


# -- per-subscriber table ------------------------------------------------------------------------------
def drivers(contrib: np.ndarray, feats, rows: np.ndarray, n: int) -> dict[str, pa.Array]:
    """The drivers of the rows ``rows`` of ``n`` (TreeSHAP ``contrib``, in that order), summed by node: the
    top network and non-network nodes, their text, and the push of each kind; null for the other rows."""
    nodes = sorted({f.node for f in feats})
    node_of = np.array([nodes.index(f.node) for f in feats])
    kind_of = {f.node: f.kind for f in feats}
    by_node = np.zeros((len(rows), len(nodes)))
    for j in range(len(feats)):
        by_node[:, node_of[j]] += contrib[:, j]
    net_cols = [i for i, nd in enumerate(nodes) if kind_of[nd] == NETWORK]
    non_cols = [i for i, nd in enumerate(nodes) if kind_of[nd] == NON_NETWORK]

    def top(cols: list[int]) -> tuple[pa.Array, pa.Array]:
        sub = by_node[:, cols]
        order = np.argsort(-sub, axis=1)[:, :TOP_DRIVERS]
        names, text = [None] * n, [None] * n
        for i, row in enumerate(rows):
            picked = [(nodes[cols[j]], sub[i, j]) for j in order[i] if sub[i, j] > 0.02]
            names[row] = picked[0][0] if picked else None
            text[row] = "; ".join(f"{describe(nd)} (+{v:.2f})" for nd, v in picked)
        return pa.array(names, pa.string()), pa.array(text, pa.string())

    def push(cols: list[int]) -> pa.Array:
        out = np.full(n, np.nan)
        out[rows] = np.clip(by_node[:, cols], 0, None).sum(axis=1)
        return pa.array(out, mask=np.isnan(out))

    (net_top, net_text), (non_top, non_text) = top(net_cols), top(non_cols)
    return {"network_push": push(net_cols), "nonnetwork_push": push(non_cols),
            "top_network_driver": net_top, "network_drivers": net_text,
            "top_nonnetwork_driver": non_top, "nonnetwork_drivers": non_text}


def _score_table(x_table, p, expected, explained, contrib, feats, places) -> pa.Table:
    """One row per subscriber; the rows ``explained`` (with TreeSHAP ``contrib``, in that order) also get
    their drivers, the others none."""
    arpu = x_table["arpu_monthly"].to_numpy()
    t = pa.table({
        "subscriber_id": x_table["subscriber_id"], "as_of": x_table["as_of"],
        "p_detractor": p[:, 0], "p_passive": p[:, 1], "p_promoter": p[:, 2],
        "expected_score": expected, "predicted_class": np.array(CLASSES)[p.argmax(axis=1)],
        "plan": x_table["plan"], "arpu_monthly": arpu, "value_tier": value_tier(arpu),
        "device_model": x_table["device_model"], "home_area": x_table["home_area"],
        "cei_recent": x_table["cei_fast"], **drivers(contrib, feats, explained, len(p)),
    })
    return _left_join(t, places, "subscriber_id")


def value_tier(arpu: np.ndarray) -> np.ndarray:
    bounds = np.array([b for b, _ in VALUE_TIERS[:-1]])
    return np.array([n for _, n in VALUE_TIERS])[np.searchsorted(bounds, arpu, side="right")]


WORDS = {
    "overall": "overall network experience", "radio.coverage": "weak coverage (RSRP)",
    "radio.interference": "interference (SINR)", "usage": "usage", "care.price": "price contacts",
    "care.billing": "billing contacts", "price": "a price rise of the plan", "care.complaints": "complaints", "care.unresolved": "unresolved care contacts",
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
def nps_by_segment(scores: pa.Table, replicas: np.ndarray, level: str) -> pa.Table:
    """NPS (-100..100) of the base and of every segment with a 95 % interval, and the level it is at.

    The interval holds two errors. The model's: the spread of the segment's NPS over the bootstrap
    replicas (refits on resampled answers and tracker), with Student's t for the few replicas it is read
    from. The individual customers': a segment's customers differ from their predictions in ways no data
    shows, bounded by the variance of one answer drawn with the predicted probabilities,
    sum_i (pP + pD - (pP - pD)^2) / n^2. ``replicas``: P(promoter) -
    P(detractor) per replica (rows) and subscriber (columns, in the order of ``scores``)."""
    pp = scores["p_promoter"].to_numpy()
    pd = scores["p_detractor"].to_numpy()
    v = pp + pd - (pp - pd) ** 2
    groups = [("base", np.array(["all"], dtype=object), np.zeros(len(pp), dtype=np.int64))]
    for dim in SEGMENTS:
        codes = pc.dictionary_encode(pc.cast(scores["main_cell" if dim == "cell" else dim], pa.string()).combine_chunks())
        words = np.asarray(codes.dictionary.to_pylist(), dtype=object)
        order = np.argsort(words)  # segments in sorted order
        rank = np.empty(len(order), dtype=np.int64)
        rank[order] = np.arange(len(order))
        idx = pc.fill_null(codes.indices, -1).to_numpy()
        inv = np.full(len(idx), -1)  # a row without a value is in no segment of this dimension
        inv[idx >= 0] = rank[idx[idx >= 0]]
        groups.append((dim, words[order], inv))
    out = {k: [] for k in ("dimension", "segment", "subscribers", "nps", "ci_low", "ci_high", "p_promoter", "p_detractor")}
    for dim, uniq, inv in groups:
        ok = inv >= 0
        n = np.bincount(inv[ok], minlength=len(uniq)).astype(float)
        keep = n > 0

        def total(w):
            return np.bincount(inv[ok], w[ok], minlength=len(uniq))

        def mean(w):
            return total(w) / np.maximum(n, 1)

        nps = 100 * (mean(pp) - mean(pd))
        answer_var = 100**2 * total(v) / np.maximum(n, 1) ** 2
        model_var = np.var([100 * mean(r) for r in replicas], axis=0, ddof=1) if len(replicas) > 1 else 0.0
        crit = critical_value([(answer_var, np.inf), (model_var, len(replicas) - 1)])
        half = crit * np.sqrt(answer_var + model_var)
        out["dimension"] += [dim] * int(keep.sum())
        out["segment"] += uniq[keep].tolist()
        out["subscribers"] += n[keep].astype(np.int64).tolist()
        out["nps"] += np.round(nps[keep], 2).tolist()
        out["ci_low"] += np.round((nps - half)[keep], 2).tolist()
        out["ci_high"] += np.round((nps + half)[keep], 2).tolist()
        out["p_promoter"] += np.round(mean(pp)[keep], 4).tolist()
        out["p_detractor"] += np.round(mean(pd)[keep], 4).tolist()
    t = pa.table(out)
    return t.append_column("level", pa.array([level] * t.num_rows, pa.string()))


# -- potential detractors with a network cause ------------------------------------------------------------
def _potential_detractors(engine: Engine, scores: pa.Table, as_of: dt.date) -> pa.Table:
    """Subscribers more likely than not to answer 0-6, ranked by value, each with the network evidence
    (the cell, days and hours of their poor sessions in the last 7 days and that cell's state then) and
    a cause; the cause is non-network when non-network drivers outweigh network ones or no poor
    session stands out."""
    cand = scores.filter(pc.greater_equal(scores["p_detractor"], DETRACTOR_P))
    engine.register_arrow("cand", cand.select(["subscriber_id", "top_network_driver"]))
    ev = engine.query_arrow(sql_file("opencem.nps", "potential_detractor_evidence"), {"as_of": as_of},
                            step="potential_detractor_evidence")
    engine.drop("cand")
    out = _left_join(cand.select(["subscriber_id", "p_detractor", "expected_score", "arpu_monthly", "value_tier", "plan",
                                  "network_push", "nonnetwork_push", "top_network_driver", "network_drivers",
                                  "top_nonnetwork_driver", "nonnetwork_drivers", "grid"]), ev, "subscriber_id")
    cause, reason = [], []
    for r in out.to_pylist():
        c = network_cause(r)
        cause.append(c)
        reason.append(_reason(r, c))
    out = out.append_column("cause", pa.array(cause, pa.string())).append_column("reason", pa.array(reason, pa.string()))
    out = out.append_column("network_cause", pc.not_equal(out["cause"], vocabulary.NON_NETWORK))
    order = pc.sort_indices(out, [("network_cause", "descending"), ("arpu_monthly", "descending"), ("subscriber_id", "ascending")])
    out = out.take(order)
    return out.append_column("rank", pa.array(np.arange(1, out.num_rows + 1)))


def network_cause(r: dict) -> str:
    """The cause a network engineer would read from the evidence; thresholds are documented in docs/nps.md."""
    if (r.get("poor_sessions") or 0) < MIN_POOR_SESSIONS or r["network_push"] < max(r["nonnetwork_push"], MIN_NETWORK_PUSH):
        return vocabulary.NON_NETWORK
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
        return "core_dns"
    return "network (unclear)"


def _reason(r: dict, cause: str) -> str:
    drivers = r["network_drivers"] if cause != vocabulary.NON_NETWORK else r["nonnetwork_drivers"]
    main = drivers.split(" (+")[0] if drivers else "overall experience"
    if cause == vocabulary.NON_NETWORK or not r.get("evidence_cell"):
        return f"{main}; no network problem stands out"
    days = f"{r['first_day']:%d %b}" + (f"-{r['last_day']:%d %b}" if r["last_day"] != r["first_day"] else "")
    state = {"coverage": f"RSRP {r['rsrp']:.0f} dBm" if r["rsrp"] is not None else "weak signal",
             "interference": "high interference", "congestion": f"PRB load {100 * (r['prb_util'] or 0):.0f} %",
             "transport": f"round trip {r['rtt_ratio']:.1f}x the cell's normal" if r["rtt_ratio"] else "slow transport",
             "device": f"this handset has {r['device_ratio']:.1f}x the poor sessions of others" if r["device_ratio"] else "handset",
             "core_dns": "web sessions failing (DNS / core)"}.get(cause, "poor sessions")
    return f"{main}, {r['hours']} of {days}, cell {r['evidence_cell']}: {cause} ({state})"


# -- risk flags and storage ---------------------------------------------------------------------------------
def _risk_flags(ws: Workspace, scores: pa.Table, as_of: dt.date) -> pa.Table:
    """Flag subscribers whose predicted class fell to detractor since the previous scoring."""
    prev = _previous(ws.nps / "scores", as_of)
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

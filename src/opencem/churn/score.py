"""`opencem score churn`: every subscriber's chance to port out in each of the 4 months after a day, the
cause behind the likely churners with evidence in words, and the retention list.

- **scores**: per subscriber ``p_month1`` .. ``p_month4`` and ``p_4m`` (= 1 - prod(1 - h_k), the sum of the
  monthly ones), plan, ARPU, contract; for the explained rows (the riskiest :data:`EXPLAIN_SHARE` of the
  base, or all with ``explain_share=1``) the ``cause``, its ``push`` and ``evidence``.
- **retention**: the explained subscribers ranked by expected value saved = ``p_4m`` x ARPU x
  ``value_months`` x the save rate of the action their cause calls for (:data:`ACTIONS`); the rates are an
  assumption, stated in every row and configurable (a YAML file of action: rate, or ``save_rates=``).

**Cause.** The model's TreeSHAP contributions (averaged over the four months, weighted by each month's
port-out probability) are summed per cause group of the feature's node and kind
(:func:`opencem.churn.features.cause_group`): network, price, billing, care, contract_end, other. The
cause is what can be acted on: the largest of the network, price, billing, care and contract groups when
it pushes towards churn by at least :data:`MIN_PUSH` log-odds, else ``other``. The profile (tenure, ARPU,
age band, earlier answers) says who is at risk, not why they would leave.
The NPS estimate (when a model exists) is a summary of everything a customer feels; its push goes to the
network when the subscriber's network features push harder than the non-network ones, else to ``other``.

Each as-of day is a partition ``WS/churn/<table>/as_of=YYYY-MM-DD/``; a re-run replaces it whole.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import yaml

from ..engine.files import atomic_dir
from ..engine.pipeline import sql_file
from ..errors import InputError
from ..indicators.tree import load_tree
from ..nps.features import base_requests
from ..nps.score import describe
from ..workspace import Workspace
from .features import CAUSES, NPS, build, cause_group, churn_features
from .model import HORIZON_MONTHS, ChurnModel
from .train import use_nps

EXPLAIN_SHARE = 0.2  # the riskiest share of the base whose cause is explained (TreeSHAP costs 4 predictions each)
MIN_PUSH = 0.05  # log-odds a cause group must add towards churn to be named
EVIDENCE_DAYS = 28
VALUE_MONTHS = 12.0  # months of ARPU a kept customer is worth
ACTIONS = {  # cause -> recommended action
    "network": "network fix pending", "price": "price offer", "billing": "care call-back", "care": "care call-back",
    "contract_end": "contract renewal offer", "other": "retention offer",
}
SAVE_RATES = {  # assumed share of would-be churners an action keeps (stated, configurable)
    "network fix pending": 0.30, "price offer": 0.25, "care call-back": 0.20, "contract renewal offer": 0.35,
    "retention offer": 0.10,
}


@dataclass
class ChurnScore:
    as_of: dt.date
    scores: pa.Table
    retention: pa.Table
    folder: Path
    save_rates: dict = field(default_factory=dict)


def load_save_rates(path: Path | None) -> dict[str, float]:
    """The save rate per action: the defaults, overridden by a YAML mapping ``action: rate`` (0..1)."""
    rates = dict(SAVE_RATES)
    if path is None:
        return rates
    data = yaml.safe_load(Path(path).read_text()) or {}
    if not isinstance(data, dict):
        raise InputError(f"{path}: expected a mapping of action: save rate, e.g. 'price offer: 0.25'")
    for k, v in data.items():
        if k not in rates:
            raise InputError(f"{path}: unknown action {k!r}; known: {', '.join(rates)}")
        if not isinstance(v, (int, float)) or not 0 <= v <= 1:
            raise InputError(f"{path}: save rate of {k!r} is {v!r}; expected a number in 0..1")
        rates[k] = float(v)
    return rates


def score_churn(workspace: Path, as_of: dt.date | None = None, model: ChurnModel | None = None,
                save_rates: dict[str, float] | None = None, value_months: float = VALUE_MONTHS,
                explain_share: float = EXPLAIN_SHARE, write: bool = True,
                progress: Callable[[str], None] | None = None) -> ChurnScore:
    """Score every subscriber in the base on ``as_of`` (default: the day after the last data)."""
    say = progress or (lambda _msg: None)
    ws = Workspace(workspace)
    model = model or ChurnModel.load(ws.model("churn"))
    rates = save_rates or dict(SAVE_RATES)
    if value_months <= 0:
        raise InputError(f"--value-months {value_months}: must be positive")
    tree = load_tree()
    names = [f.name for f in churn_features(tree)]
    nps_model = use_nps(ws, names) if NPS in model.nodes.values() else None
    if NPS in model.nodes.values() and nps_model is None:
        raise InputError(f"{ws.model('nps')}: the churn model uses the NPS estimate and no NPS model is here; train nps, then churn")
    feats = churn_features(tree, with_nps=nps_model is not None)
    if [f.name for f in feats] != model.encoder.names:
        raise InputError(f"{ws.model('churn')}: the model was trained on other features; run `opencem train churn` again")
    with ws.session() as engine:
        first, last = engine.query_row(sql_file("opencem.nps", "measured_days"), step="measured_days")
        as_of = as_of or (last + dt.timedelta(days=1))
        if first is None or not first < as_of <= last + dt.timedelta(days=1):
            raise InputError(f"--as-of {as_of}: outside the measured data ({first} .. {last}); score a day after "
                             f"{first} and at most {last + dt.timedelta(days=1) if last else '?'}")
        say(f"features of every subscriber as of {as_of}")
        x_table = build(engine, base_requests(engine, as_of), tree, nps_model)
        x = model.encoder.matrix(x_table)
        pred = model.predict(x)
        n_explain = int(np.ceil(explain_share * len(x)))
        explained = np.sort(np.argsort(-pred["p_total"], kind="stable")[:n_explain])
        say(f"causes of the {len(explained):,} riskiest subscribers")
        contrib = model.contributions(x[explained], pred["p_month"][explained])
        cause, push, groups = causes(model, contrib)
        engine.register_arrow("cand", x_table.take(explained).select(["subscriber_id"]))
        ev = engine.query_arrow(sql_file("opencem.churn", "network_evidence"), {"as_of": as_of, "days": EVIDENCE_DAYS},
                                step="network_evidence")
        engine.drop("cand")
    scores = _score_table(x_table, pred, explained, cause, push, groups, model, contrib, ev)
    retention = retention_list(scores, rates, value_months)
    if write:
        for name, table in (("scores", scores), ("retention", retention)):
            _write_partition(ws.churn / name, as_of, table)
    return ChurnScore(as_of, scores, retention, ws.churn, rates)


def causes(model: ChurnModel, contrib: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per explained row: the cause, its push (log-odds) and the push of every group (rows, CAUSES)."""
    names = model.encoder.names
    groups = np.zeros((len(contrib), len(CAUSES)))
    nps_push = np.zeros(len(contrib))
    for j, n in enumerate(names):
        node, kind = model.nodes[n], model.kinds[n]
        if node == NPS:
            nps_push += contrib[:, j]
        else:
            groups[:, CAUSES.index(cause_group(node, kind))] += contrib[:, j]
    # the NPS estimate summarises the experience: its push joins the network when the network pushes most
    net, non_net = groups[:, CAUSES.index("network")], groups[:, [CAUSES.index(c) for c in ("price", "billing", "care")]].max(axis=1)
    groups[:, CAUSES.index("network")] += np.where(net >= non_net, nps_push, 0)
    groups[:, CAUSES.index("other")] += np.where(net >= non_net, 0, nps_push)
    # the cause is what can be acted on: the largest push among network, price, billing, care and the
    # contract; the profile (tenure, ARPU, age, earlier answers) marks who is at risk, not why they leave
    acts = [CAUSES.index(c) for c in CAUSES if c != "other"]
    best = np.array(acts)[groups[:, acts].argmax(axis=1)]
    top = groups[np.arange(len(groups)), best]
    cause = np.where(top >= MIN_PUSH, np.array(CAUSES)[best], "other")
    push = np.where(top >= MIN_PUSH, top, groups[:, CAUSES.index("other")])
    return cause, push, groups


def _score_table(x_table, pred, explained, cause, push, groups, model, contrib, ev) -> pa.Table:
    n = x_table.num_rows
    pm = pred["p_month"]
    cols = {"subscriber_id": x_table["subscriber_id"], "as_of": x_table["as_of"]}
    for k in range(HORIZON_MONTHS):
        cols[f"p_month{k + 1}"] = np.round(pm[:, k], 6)
    cols["p_4m"] = np.round(pred["p_total"], 6)
    for c in ("plan", "arpu_monthly", "tenure_months", "contract_type", "device_model", "home_area"):
        cols[c] = x_table[c]
    full_cause = np.full(n, None, dtype=object)
    full_cause[explained] = cause
    full_push = np.full(n, np.nan)
    full_push[explained] = np.round(push, 4)
    evidence, cell = np.full(n, None, dtype=object), np.full(n, None, dtype=object)
    ev_by = {r["subscriber_id"]: r for r in ev.to_pylist()}
    rows = x_table.take(explained).to_pylist()
    for i, (row, c) in enumerate(zip(rows, cause)):  # the explained (likely) churners only
        facts = ev_by.get(row["subscriber_id"])
        evidence[explained[i]] = evidence_words(c, row, facts, model, contrib[i])
        cell[explained[i]] = (facts or {}).get("evidence_cell")
    cols["cause"] = pa.array(full_cause, pa.string())
    cols["cause_push"] = pa.array(full_push, mask=np.isnan(full_push))
    cols["evidence"] = pa.array(evidence, pa.string())
    cols["evidence_cell"] = pa.array(cell, pa.string())
    return pa.table(cols)


def evidence_words(cause: str, row: dict, ev: dict | None, model: ChurnModel, contrib: np.ndarray) -> str:
    """A sentence a retention agent can read: what drove the risk and the facts behind it."""
    names = model.encoder.names
    pushes: dict[str, float] = {}
    for j, n in enumerate(names):
        node, kind = model.nodes[n], model.kinds[n]
        if node != NPS and cause_group(node, kind) == cause:
            pushes[node] = pushes.get(node, 0.0) + float(contrib[j])
    top = [f"{describe(k)} (+{v:.2f})" for k, v in sorted(pushes.items(), key=lambda t: -t[1])[:3] if v > 0.01]
    lead = "; ".join(top) or "no single driver stands out"
    if cause == "network":
        where = (f"; poor sessions on cell {ev['evidence_cell']} (site {ev['evidence_site']}, {ev['evidence_lat']:.4f}, "
                 f"{ev['evidence_lon']:.4f}): {ev['evidence_poor_sessions']} of {ev['evidence_sessions']} sessions poor on "
                 f"{ev['evidence_poor_days']} of the last {EVIDENCE_DAYS} days") if ev and ev.get("evidence_lat") is not None else ""
        return f"network: {lead}{where}"
    if cause == "price":
        rise = row.get("price_rise_pct_90")
        fact = f"; plan {row['plan']} rose {rise:.0f} % {row['price_change_days']:.0f} days ago" if rise and rise > 0 else ""
        return f"price: {lead}{fact}"
    if cause in ("billing", "care"):
        return (f"{cause}: {lead}; {row['care_contacts_long']:.0f} care contacts (per 90 days), "
                f"{row['care_unresolved_long']:.0f} unresolved, the last {row['days_since_contact']:.0f} days ago")
    if cause == "contract_end":
        left = row.get("commitment_days_left")
        when = ("no minimum term" if left is None else f"minimum term ends in {left:.0f} days" if left >= 0
                else f"minimum term ended {-left:.0f} days ago")
        return f"contract end: {row.get('contract_type')}, {when}; {lead}"
    return f"other: {lead}"


def retention_list(scores: pa.Table, rates: dict[str, float], value_months: float) -> pa.Table:
    """The explained subscribers by expected value saved (p_4m x ARPU x value_months x save rate)."""
    t = scores.filter(pc.is_valid(scores["cause"]))
    action = [ACTIONS[c] for c in t["cause"].to_pylist()]
    rate = np.array([rates[a] for a in action])
    p = t["p_4m"].to_numpy()
    value = t["arpu_monthly"].to_numpy() * value_months
    saved = p * value * rate
    out = pa.table({
        "subscriber_id": t["subscriber_id"], "p_4m": t["p_4m"], "arpu_monthly": t["arpu_monthly"],
        "remaining_value": np.round(value, 2), "cause": t["cause"], "action": pa.array(action, pa.string()),
        "save_rate": rate, "expected_value_saved": np.round(saved, 4), "evidence": t["evidence"],
        "evidence_cell": t["evidence_cell"], "plan": t["plan"], "contract_type": t["contract_type"],
    })
    out = out.take(pc.sort_indices(out, [("expected_value_saved", "descending"), ("subscriber_id", "ascending")]))
    return out.append_column("rank", pa.array(np.arange(1, out.num_rows + 1)))


def _write_partition(folder: Path, as_of: dt.date, table: pa.Table) -> None:
    with atomic_dir(folder / f"as_of={as_of}") as tmp:
        tmp.mkdir()
        pq.write_table(table, tmp / "part.parquet")


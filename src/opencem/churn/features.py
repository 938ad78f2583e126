"""Per-subscriber churn features as of a scoring day D, from days before D only.

The NPS features (:mod:`opencem.nps.features`: CEI and KQI memories and worst days, radio, care contacts
by category, the plan's price changes from the tariff history, the customer's earlier answer, plan,
ARPU, tenure, device) are computed by the NPS code itself, and the churn model adds its own
(``sql/extras.sql``): slower memories of the experience (a customer decides to leave over weeks, not
days), care over 90 days, the usage trend and the contract (its type, in the operator's own words, and
the days to the end of its minimum term). With a trained NPS model in the workspace, its estimate of each
subscriber's answer is a feature too.

Every feature has a node and a kind, as the NPS features do; the cause of a churner is read from the
TreeSHAP contributions summed by :func:`cause_group` of the node and kind. Every feature also has a
direction the model holds to: worse experience, more complaints or a price rise can never lower the
hazard (the NPS features' directions, turned).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from ..engine import Engine
from ..engine.pipeline import sql_file
from ..indicators.tree import Tree
from ..nps.features import NETWORK, NON_NETWORK, PROFILE, build_features, feature_list

CONTRACT = "contract"
NPS = "nps"
LONG_DAYS = 90  # care and experience history for the slower features
SLOW = 0.95  # daily decay of the slow CEI memory (half-life about 14 days)
POOR_CEI = 60.0  # a day with a CEI under this is a poor day
CAUSES = ("network", "price", "billing", "care", "contract_end", "other")


@dataclass(frozen=True)
class ChurnFeature:
    name: str
    node: str
    kind: str
    meaning: str
    direction: int = 0  # +1: a higher value can only raise the hazard, -1: only lower it, 0: either


EXTRAS = (
    ChurnFeature("cei_slow", "overall", NETWORK, f"CEI, slow memory (daily decay {SLOW}, half-life about 14 days)", -1),
    ChurnFeature("cei_mean_long", "overall", NETWORK, f"mean daily CEI over the last {LONG_DAYS} days", -1),
    ChurnFeature("poor_day_share_long", "overall", NETWORK, f"share of days with a CEI under {POOR_CEI:g} over the last {LONG_DAYS} days", 1),
    ChurnFeature("usage_trend", "usage", PROFILE, "sessions per day in the last 7 days over the 28-day mean"),
    ChurnFeature("care_contacts_long", "care.history", NON_NETWORK, f"care contacts per {LONG_DAYS} days", 1),
    ChurnFeature("care_complaints_long", "care.history", NON_NETWORK, f"complaints per {LONG_DAYS} days", 1),
    ChurnFeature("care_unresolved_long", "care.history", NON_NETWORK, f"contacts not resolved at first contact per {LONG_DAYS} days", 1),
    ChurnFeature("days_since_contact", "care.history", NON_NETWORK, "days since the last care contact (365 at most)", -1),
    ChurnFeature("contract_type", CONTRACT, CONTRACT, "contract type (the operator's own words)"),
    ChurnFeature("commitment_days_left", CONTRACT, CONTRACT, "days to the end of the minimum term (negative: ended; empty: none)"),
)
NPS_FEATURES = (
    ChurnFeature("nps_expected_score", NPS, NPS, "the NPS model's expected answer (0-10)", -1),
    ChurnFeature("nps_p_detractor", NPS, NPS, "the NPS model's probability of a 0-6 answer", 1),
)


def churn_features(tree: Tree, with_nps: bool = False) -> list[ChurnFeature]:
    """The NPS features (same names, nodes and kinds) followed by the churn model's own."""
    # an NPS feature that can only raise the answer can only lower the hazard
    nps = [ChurnFeature(f.name, f.node, f.kind, f.meaning, -f.direction) for f in feature_list(tree)]
    return nps + list(EXTRAS) + (list(NPS_FEATURES) if with_nps else [])


def cause_group(node: str, kind: str) -> str:
    """The cause a feature speaks for: network experience, price, billing, care, the contract, or other
    (profile, usage, the customer's earlier answers)."""
    if kind == NETWORK:
        return "network"
    if node in ("price", "care.price"):
        return "price"
    if node == "care.billing":
        return "billing"
    if node.startswith("care."):
        return "care"
    if kind == CONTRACT:
        return "contract_end"
    return "other"


def build(engine: Engine, requests: pa.Table, tree: Tree, nps_model=None) -> pa.Table:
    """Features of each (subscriber_id, as_of) of ``requests`` on a workspace session, ordered by subscriber
    and day; ``nps_model``: an :class:`~opencem.nps.model.NpsModel` whose estimate joins them."""
    nps_feats = feature_list(tree)
    base = build_features(engine, requests, nps_feats)  # leaves the table `requests` on the engine
    first_day = engine.query_row(sql_file("opencem.nps", "measured_days"), step="measured_days")[0]
    extra = engine.query_arrow(sql_file("opencem.churn", "extras"), {
        "long_days": LONG_DAYS, "slow": SLOW, "poor_cei": POOR_CEI, "first_day": first_day}, step="churn_extras")
    if base.num_rows != extra.num_rows or base["subscriber_id"] != extra["subscriber_id"] or base["as_of"] != extra["as_of"]:
        raise AssertionError("NPS and churn features out of step")  # both are ordered by (subscriber_id, as_of)
    out = base
    for name in extra.column_names[2:]:
        out = out.append_column(name, extra[name])
    if nps_model is not None:
        pred = nps_model.predict(nps_model.encoder.matrix(base))
        out = out.append_column("nps_expected_score", pa.array(np.round(pred["expected_score"], 6)))
        out = out.append_column("nps_p_detractor", pa.array(np.round(pred["p"][:, 0], 6)))
    return out


def scoring_days(first: dt.date, cutoff: dt.date, min_history: int, every: int) -> list[dt.date]:
    """Scoring days from ``first + min_history`` every ``every`` days, each with at least its first month
    over before ``cutoff``."""
    from .model import MONTH_DAYS

    days, d = [], first + dt.timedelta(days=min_history)
    while d + dt.timedelta(days=MONTH_DAYS) <= cutoff:
        days.append(d)
        d += dt.timedelta(days=every)
    return days

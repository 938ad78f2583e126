"""Real data: IBM Telco Customer Churn through the churn model's own code.

An adapter (``sql/telco.sql``) maps the file's columns to the model's names (tenure, ARPU, contract type)
and keeps every other text column as an open category. Each customer is one subject with one observed
month whose event is the file's churn flag, so :func:`opencem.churn.model.person_periods`,
:func:`~opencem.churn.model.fit_hazard` and :class:`~opencem.churn.model.ChurnModel` run unchanged: the
one-month hazard is the churn probability. Judged by 5-fold stratified cross-validation: ROC-AUC and
top-decile lift on the held-out fold, the boosting rounds chosen by cross-validation inside each training fold.

The data set (``../shared/data/ibm-telco-customer-churn/`` from the project root, see its README) is a
fictional telco with no network fields: it tests the commercial half of the model only.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa

from ..engine import make_engine
from ..engine.pipeline import sql_file
from ..errors import InputError
from .model import PARAMS, ChurnModel, auc_and_lift, choose_rounds, encoder_for, fit_hazard, person_periods

FILE = "Telco-Customer-Churn.csv"
DEFAULT_FOLDER = Path("..") / "shared" / "data" / "ibm-telco-customer-churn"
FOLDS = 5
CV_SEED = 41
CONTRACT_COLUMNS = {"contract_type"}


def load_telco(folder: Path = DEFAULT_FOLDER) -> pa.Table:
    """The data set in the model's names, one row per customer (``churned``: the label)."""
    path = Path(folder) / FILE
    if not path.is_file():
        raise FileNotFoundError(f"{path}: IBM Telco Customer Churn not found (see ../shared/data/ibm-telco-customer-churn/README.md)")
    with make_engine("duckdb") as eng:
        eng.register_csv("telco", str(path))
        return eng.query_arrow(sql_file("opencem.churn", "telco"), step="telco")


def feature_names(table: pa.Table) -> list[str]:
    return [c for c in table.column_names if c not in ("subscriber_id", "churned")]


def fit_telco(table: pa.Table, seed: int = PARAMS["seed"]) -> ChurnModel:
    """The churn model on one set of customers: rounds chosen by stratified 5-fold cross-validation inside it, then fit on all."""
    names = feature_names(table)
    enc = encoder_for(table, names)
    x = enc.matrix(table)
    y = table["churned"].to_numpy(zero_copy_only=False).astype(bool)
    xa, ya, who = person_periods(x, np.ones(len(y), int), y.astype(int))
    rounds = choose_rounds(xa, ya, _folds(y, FOLDS, seed)[who], enc.categorical)
    booster = fit_hazard(xa, ya, None, None, enc.categorical, rounds=rounds, seed=seed)
    nodes = {n: ("contract" if n in CONTRACT_COLUMNS else "profile") for n in names}
    kinds = {n: ("contract" if n in CONTRACT_COLUMNS else "profile") for n in names}
    return ChurnModel(enc, booster, nodes, kinds, months=1, card={"model": "opencem churn on IBM Telco", "rounds": rounds})


def cross_validate(table: pa.Table, folds: int = FOLDS, seed: int = CV_SEED) -> dict:
    """Stratified k-fold cross-validation: ROC-AUC and top-decile lift per held-out fold and pooled."""
    y = table["churned"].to_numpy(zero_copy_only=False).astype(bool)
    if y.sum() < folds or (~y).sum() < folds:
        raise InputError(f"{table.num_rows} customers with {int(y.sum())} churners: too few for {folds}-fold cross-validation")
    fold = _folds(y, folds, seed)
    p = np.empty(len(y))
    per_fold = []
    for k in range(folds):
        test = fold == k
        model = fit_telco(table.filter(pa.array(~test)))
        p[test] = model.predict(model.encoder.matrix(table.filter(pa.array(test))))["p_total"]
        per_fold.append({"fold": k, "rounds": model.card["rounds"], **auc_and_lift(p[test], y[test])})
    aucs = [f["roc_auc"] for f in per_fold]
    return {"customers": int(len(y)), "churn_rate": round(float(y.mean()), 4), "folds": folds, "seed": seed,
            "roc_auc_mean": round(float(np.mean(aucs)), 4), "roc_auc_sd": round(float(np.std(aucs, ddof=1)), 4),
            "top_decile_lift_mean": round(float(np.mean([f["top_decile_lift"] for f in per_fold])), 3),
            "pooled": auc_and_lift(p, y), "per_fold": per_fold}


def _folds(y: np.ndarray, k: int, seed: int) -> np.ndarray:
    """A stratified fold number per row: each class shuffled and dealt round-robin."""
    rng = np.random.default_rng(seed)
    out = np.empty(len(y), int)
    for cls in (False, True):
        idx = rng.permutation(np.flatnonzero(y == cls))
        out[idx] = np.arange(len(idx)) % k
    return out

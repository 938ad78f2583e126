"""The churn model: a discrete-time hazard of porting out in each of the months after a scoring day.

The data are person-periods: one row per (subscriber, scoring day, month k) for the months k = 1..4 the
subscriber was still a customer at the start of, observed to their end; the label is whether they ported
out in that month. One LightGBM binary model takes the subscriber's features as of the scoring day plus
the month index and gives the month's hazard ``h_k``; then

    P(port-out in month k) = h_k * prod_{j<k} (1 - h_j),   P(port-out within 4 months) = 1 - prod_k (1 - h_k).

A month that is not yet over on the last day of data is not a row (right censoring), so a scoring day
near the end of the data still teaches the first months. The same code fits a table with no time at all
(IBM Telco's churned-last-month flag: every row is month 1, see :mod:`opencem.churn.telco`).

Every column is numeric or an open category (its values are the operator's own words: a sorted
vocabulary of what training saw; an unseen value scores as missing). Deterministic, 2 threads.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import lightgbm as lgb
import numpy as np
import pyarrow as pa

from ..engine.files import atomic_dir
from ..errors import InputError
from ..nps.model import Encoder

HORIZON_MONTHS = 4
MONTH_DAYS = 30
MONTH = "month"  # the period index column of the person-period rows
PARAMS = {
    "objective": "binary", "learning_rate": 0.03, "num_leaves": 15, "min_data_in_leaf": 40, "min_sum_hessian_in_leaf": 1.0,
    "feature_fraction": 0.8, "bagging_fraction": 0.8, "bagging_freq": 1, "lambda_l2": 10.0,
    "max_cat_to_onehot": 8, "cat_smooth": 20, "num_threads": 2, "deterministic": True, "force_row_wise": True,
    "seed": 29, "verbose": -1,
}
MAX_ROUNDS, PATIENCE = 1500, 100


def encoder_for(table: pa.Table, names: list[str]) -> Encoder:
    """An encoder whose categories are every string column of ``table`` among ``names`` (open vocabularies)."""
    vocab = {c: sorted(v for v in set(table[c].to_pylist()) if v is not None)
             for c in names if pa.types.is_string(table.schema.field(c).type) or pa.types.is_large_string(table.schema.field(c).type)}
    return Encoder(names, vocab)


def person_periods(x: np.ndarray, observed: np.ndarray, event_month: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Stack the hazard rows: ``x`` (subjects, features), ``observed`` months per subject (0..4: how many of
    its months are over), ``event_month`` (1..4, or 0 for none in the horizon). A subject contributes the
    months up to its event or its last observed month. Returns (rows with the month appended, labels, subject index)."""
    rows, ys, who = [], [], []
    for k in range(1, HORIZON_MONTHS + 1):
        at_risk = (observed >= k) & ((event_month == 0) | (event_month >= k))
        idx = np.flatnonzero(at_risk)
        rows.append(np.column_stack([x[idx], np.full(len(idx), float(k))]))
        ys.append((event_month[idx] == k).astype(float))
        who.append(idx)
    return np.vstack(rows), np.concatenate(ys), np.concatenate(who)


def fit_hazard(x_fit, y_fit, x_val, y_val, categorical: list[int], rounds: int | None = None,
               seed: int = PARAMS["seed"], monotone: list[int] | None = None) -> lgb.Booster:
    """The monthly hazard on person-period rows (the month is the last column); boosting stops early on the
    validation rows unless ``rounds`` is given. ``monotone``: per feature +1 (a higher value can only raise
    the hazard), -1 (only lower it) or 0."""
    if y_fit.sum() < 5:
        raise InputError(f"{int(y_fit.sum())} port-outs in the training months; the churn model needs at least 5")
    params = _params(seed, monotone)
    train = lgb.Dataset(x_fit, y_fit, categorical_feature=categorical, free_raw_data=False)
    if rounds is not None:
        return lgb.train(params, train, rounds)
    valid = lgb.Dataset(x_val, y_val, reference=train, categorical_feature=categorical)
    return lgb.train({**params, "metric": "binary_logloss"}, train, MAX_ROUNDS, valid_sets=[valid],
                     callbacks=[lgb.early_stopping(PATIENCE, verbose=False)])


def _params(seed: int, monotone: list[int] | None) -> dict:
    """The parameters, with a monotone constraint per feature when given (the month column is free)."""
    p = {**PARAMS, "seed": seed}
    if monotone is not None and any(monotone):
        p.update(monotone_constraints=[*monotone, 0], monotone_constraints_method="advanced")
    return p


def choose_rounds(x, y, group: np.ndarray, categorical: list[int], folds: int = 5, seed: int = PARAMS["seed"],
                  monotone: list[int] | None = None) -> int:
    """The boosting rounds that minimise the log-loss of ``folds``-fold cross-validation in which each
    ``group`` (a subscriber: all their rows) is in one fold only. Port-outs are rare, and one held-out
    set of a few dozen of them chooses the rounds by chance; the mean over all folds does not."""
    if y.sum() < 5:
        raise InputError(f"{int(y.sum())} port-outs in the training months; the churn model needs at least 5")
    fold = group % folds
    splits = [(np.flatnonzero(fold != k), np.flatnonzero(fold == k)) for k in range(folds) if y[fold == k].sum() > 0]
    if not splits:
        raise InputError("no fold of the cross-validation holds a port-out")
    params = {**_params(seed, monotone), "metric": "binary_logloss"}
    data = lgb.Dataset(x, y, categorical_feature=categorical, free_raw_data=False)
    res = lgb.cv(params, data, MAX_ROUNDS, folds=splits, stratified=False, shuffle=False,
                 callbacks=[lgb.early_stopping(PATIENCE, verbose=False)])
    return max(1, len(next(v for k, v in res.items() if k.endswith("binary_logloss-mean"))))


@dataclass
class ChurnModel:
    encoder: Encoder
    booster: lgb.Booster
    nodes: dict[str, str]  # feature -> node (what the explanations group by)
    kinds: dict[str, str]  # feature -> kind (network, non-network, profile, contract)
    months: int = HORIZON_MONTHS
    card: dict = field(default_factory=dict)

    def _with_month(self, x: np.ndarray, k: int) -> np.ndarray:
        return np.column_stack([x, np.full(len(x), float(k))])

    def hazards(self, x: np.ndarray) -> np.ndarray:
        """(subjects, months): the hazard of porting out in each month, given still a customer at its start."""
        return np.column_stack([self.booster.predict(self._with_month(x, k), num_threads=PARAMS["num_threads"])
                                for k in range(1, self.months + 1)])

    def predict(self, x: np.ndarray) -> dict[str, np.ndarray]:
        """Per subject: ``hazard`` and ``p_month`` (subjects, months) and ``p_total`` (within the horizon)."""
        h = self.hazards(x)
        survive = np.cumprod(1 - h, axis=1)
        before = np.column_stack([np.ones(len(h)), survive[:, :-1]])
        return {"hazard": h, "p_month": h * before, "p_total": 1 - survive[:, -1]}

    def contributions(self, x: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
        """TreeSHAP contributions of each feature (not the month) to the hazard's log-odds, averaged over the
        months with ``weights`` (subjects, months; default equal)."""
        w = np.full((len(x), self.months), 1 / self.months) if weights is None else weights / weights.sum(axis=1, keepdims=True)
        out = np.zeros((len(x), x.shape[1]))
        for k in range(1, self.months + 1):
            c = self.booster.predict(self._with_month(x, k), pred_contrib=True, num_threads=PARAMS["num_threads"])
            out += w[:, k - 1:k] * c[:, :-2]  # drop the month's column and the bias
        return out

    # -- storage ----------------------------------------------------------------------------------
    def save(self, folder: Path) -> Path:
        folder = Path(folder)
        with atomic_dir(folder) as tmp:
            tmp.mkdir()
            self.booster.save_model(str(tmp / "hazard.txt"))
            state = {"features": self.encoder.names, "vocab": self.encoder.vocab, "nodes": self.nodes, "kinds": self.kinds,
                     "months": self.months}
            (tmp / "state.json").write_text(json.dumps(state, indent=1))
            (tmp / "model_card.json").write_text(json.dumps(self.card, indent=1, default=str))
            (tmp / "model_card.md").write_text(card_markdown(self.card))
        return folder

    @classmethod
    def load(cls, folder: Path) -> ChurnModel:
        folder = Path(folder)
        if not (folder / "state.json").is_file():
            raise FileNotFoundError(f"{folder}: no churn model here; run `opencem train churn` first")
        s = json.loads((folder / "state.json").read_text())
        return cls(Encoder(s["features"], s["vocab"]), lgb.Booster(model_file=str(folder / "hazard.txt")), s["nodes"], s["kinds"],
                   s["months"], json.loads((folder / "model_card.json").read_text()))


def auc_and_lift(p: np.ndarray, y: np.ndarray) -> dict:
    """ROC-AUC and top-decile lift (the churn rate of the 10 % highest scores over the base rate)."""
    from sklearn.metrics import roc_auc_score

    y = np.asarray(y, bool)
    n_top = max(1, int(round(0.1 * len(p))))
    top = np.argsort(-p, kind="stable")[:n_top]
    ok = 0 < y.sum() < len(y)
    return {"subjects": int(len(y)), "churners": int(y.sum()), "rate": round(float(y.mean()), 5) if len(y) else None,
            "roc_auc": round(float(roc_auc_score(y, p)), 4) if ok else None,
            "top_decile_lift": round(float(y[top].mean() / y.mean()), 3) if ok else None,
            "predicted_rate": round(float(p.mean()), 5) if len(p) else None}


def card_markdown(card: dict) -> str:
    """The model card in words, beside its JSON."""
    lines = [f"# {card.get('model', 'churn model')}", ""]
    for key in ("opencem_version", "trained_at", "data", "horizon", "training_window"):
        if key in card:
            lines.append(f"- **{key.replace('_', ' ')}**: `{json.dumps(card[key], default=str)}`")
    if "metrics" in card:
        lines += ["", "## Test (later scoring days, labels the fit could not see)", "", "| set | subjects | churners | ROC-AUC | top-decile lift |",
                  "|---|---:|---:|---:|---:|"]
        for name, m in card["metrics"].items():
            lines.append(f"| {name} | {m['subjects']} | {m['churners']} | {m['roc_auc']} | {m['top_decile_lift']} |")
    if "features" in card:
        lines += ["", "## Features", "", "| name | node | kind | meaning |", "|---|---|---|---|"]
        lines += [f"| {f['name']} | {f['node']} | {f['kind']} | {f['meaning']} |" for f in card["features"]]
    if "top_features_by_gain" in card:
        lines += ["", "## Top features by gain", ""] + [f"- {f['name']}: {f['gain']}" for f in card["top_features_by_gain"]]
    return "\n".join(lines) + "\n"

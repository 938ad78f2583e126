"""The network NPS model: LightGBM on survey answers, calibrated, corrected for who answers surveys.

Two parts, fitted in time order (earlier answers fit, later ones judge):

1. two LightGBM models on the features of :mod:`opencem.nps.features`: a 3-class classifier
   (detractor 0-6, passive 7-8, promoter 9-10) and a regressor of the 0-10 answer;
2. a multinomial logistic calibration of the classifier's log-probabilities on the validation answers;
Survey answers over-represent unhappy customers (they answer more), and that selection on the answer
itself cannot be undone from the answers alone. The model therefore predicts at the respondents'
level unless it is anchored: given the base NPS of a representative study on one day (a market-research
tracker wave), :func:`anchor_tilt` finds the one shift of the detractor-promoter log-odds that makes the
model's base NPS on that day equal the tracker's, and every later score keeps that shift.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import lightgbm as lgb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ..engine.files import atomic_dir
from .features import CATEGORICAL

CLASSES = ("detractor", "passive", "promoter")
PARAMS = {
    "learning_rate": 0.03, "num_leaves": 15, "min_data_in_leaf": 40, "feature_fraction": 0.7,
    "bagging_fraction": 0.8, "bagging_freq": 1, "lambda_l2": 5.0, "max_cat_to_onehot": 8,
    "cat_smooth": 20, "num_threads": 2, "deterministic": True, "force_row_wise": True, "seed": 17,
    "verbose": -1,
}
MAX_ROUNDS, PATIENCE = 2000, 100
TILT = np.array([-1.0, 0.0, 1.0])


def answer_class(score: np.ndarray) -> np.ndarray:
    """0 detractor (0-6), 1 passive (7-8), 2 promoter (9-10)."""
    return np.where(score >= 9, 2, np.where(score >= 7, 1, 0))


@dataclass
class Encoder:
    """Feature table -> float matrix; categories become stable integer codes (unknown -> missing)."""
    names: list[str]
    vocab: dict[str, list[str]]

    @classmethod
    def fit(cls, table: pa.Table, names: list[str]) -> Encoder:
        vocab = {c: sorted(v for v in set(table[c].to_pylist()) if v is not None) for c in names if c in CATEGORICAL}
        return cls(names, vocab)

    def matrix(self, table: pa.Table) -> np.ndarray:
        x = np.empty((table.num_rows, len(self.names)))
        for j, c in enumerate(self.names):
            col = table[c]
            if c in self.vocab:  # code = position in the vocabulary; unknown -> null -> NaN
                col = pc.index_in(col, value_set=pa.array(self.vocab[c], pa.string()))
            x[:, j] = col.cast(pa.float64()).to_numpy(zero_copy_only=False)
        return x

    @property
    def categorical(self) -> list[int]:
        return [j for j, c in enumerate(self.names) if c in self.vocab]


@dataclass
class NpsModel:
    encoder: Encoder
    classifier: lgb.Booster
    regressor: lgb.Booster
    calibration: dict  # coef (3 x 3), intercept (3) of the multinomial logistic on log-probabilities
    tilt: float = 0.0  # anchoring shift of the log-odds (promoter +tilt, detractor -tilt); 0 = respondents' level
    card: dict = field(default_factory=dict)

    # -- prediction -------------------------------------------------------------------------------
    def proba(self, x: np.ndarray) -> np.ndarray:
        """Calibrated probabilities of answering detractor, passive, promoter."""
        raw = self.classifier.predict(x, num_threads=PARAMS["num_threads"])
        z = np.log(np.clip(raw, 1e-9, 1)) @ np.asarray(self.calibration["coef"]).T + np.asarray(self.calibration["intercept"])
        return _softmax(z + self.tilt * TILT)

    def predict(self, x: np.ndarray) -> dict[str, np.ndarray]:
        """Per subscriber: class probabilities and the expected 0-10 answer."""
        return {"p": self.proba(x), "expected_score": np.clip(self.regressor.predict(x, num_threads=PARAMS["num_threads"]), 0, 10)}

    def contributions(self, x: np.ndarray) -> np.ndarray:
        """Per-feature push towards answering detractor rather than promoter (log-odds, SHAP by TreeSHAP)."""
        c = self.classifier.predict(x, pred_contrib=True, num_threads=PARAMS["num_threads"])
        k = len(self.encoder.names) + 1
        return (c[:, 0:k] - c[:, 2 * k:3 * k])[:, :-1]

    # -- storage ----------------------------------------------------------------------------------
    def save(self, folder: Path) -> Path:
        folder = Path(folder)
        with atomic_dir(folder) as tmp:
            tmp.mkdir()
            self.classifier.save_model(str(tmp / "classifier.txt"))
            self.regressor.save_model(str(tmp / "regressor.txt"))
            state = {"features": self.encoder.names, "vocab": self.encoder.vocab, "calibration": self.calibration,
                     "tilt": self.tilt}
            (tmp / "state.json").write_text(json.dumps(state, indent=1))
            (tmp / "model_card.json").write_text(json.dumps(self.card, indent=1, default=str))
        return folder

    @classmethod
    def load(cls, folder: Path) -> NpsModel:
        folder = Path(folder)
        if not (folder / "state.json").is_file():
            raise FileNotFoundError(f"{folder}: no NPS model here; run `opencem train nps` first")
        state = json.loads((folder / "state.json").read_text())
        return cls(Encoder(state["features"], state["vocab"]),
                   lgb.Booster(model_file=str(folder / "classifier.txt")),
                   lgb.Booster(model_file=str(folder / "regressor.txt")),
                   state["calibration"], state.get("tilt", 0.0),
                   json.loads((folder / "model_card.json").read_text()))


def _softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


# -- fitting ------------------------------------------------------------------------------------------
def fit_boosters(x_fit, y_fit, s_fit, x_val, y_val, s_val, categorical: list[int]) -> tuple[lgb.Booster, lgb.Booster]:
    def boost(objective: dict, y_a, y_b) -> lgb.Booster:
        params = {**PARAMS, **objective}
        train = lgb.Dataset(x_fit, y_a, categorical_feature=categorical, free_raw_data=False)
        valid = lgb.Dataset(x_val, y_b, reference=train, categorical_feature=categorical)
        return lgb.train(params, train, MAX_ROUNDS, valid_sets=[valid],
                         callbacks=[lgb.early_stopping(PATIENCE, verbose=False)])

    clf = boost({"objective": "multiclass", "num_class": 3, "metric": "multi_logloss"}, y_fit, y_val)
    reg = boost({"objective": "regression", "metric": "l2"}, s_fit, s_val)
    return clf, reg


def fit_calibration(raw: np.ndarray, y: np.ndarray) -> dict:
    """Multinomial logistic regression of the answer class on the classifier's log-probabilities."""
    from sklearn.linear_model import LogisticRegression

    lr = LogisticRegression(C=10.0, max_iter=1000)
    lr.fit(np.log(np.clip(raw, 1e-9, 1)), y)
    if list(lr.classes_) != [0, 1, 2]:
        raise ValueError("calibration needs answers of all three classes in the validation period")
    return {"coef": lr.coef_.tolist(), "intercept": lr.intercept_.tolist()}


def anchor_tilt(waves: list[tuple[np.ndarray, float]]) -> float:
    """The log-odds shift that makes the model's base NPS match representative studies on average:
    ``waves`` holds, per study day, the base's probabilities and the study's NPS."""
    from scipy.optimize import brentq

    for _, target in waves:
        if not -100 < target < 100:
            raise ValueError(f"anchor NPS {target} is outside -100..100")

    def gap(t: float) -> float:
        return float(np.mean([nps_of(_softmax(np.log(np.clip(p, 1e-12, 1)) + t * TILT)) - target for p, target in waves]))

    return float(brentq(gap, -10, 10))


def nps_of(p: np.ndarray) -> float:
    return float(100 * (p[:, 2].mean() - p[:, 0].mean()))


def metrics(p: np.ndarray, y: np.ndarray, expected: np.ndarray, score: np.ndarray) -> dict:
    from sklearn.metrics import log_loss, roc_auc_score

    det = y == 0
    out = {
        "answers": len(y),
        "detractor_auc": float(roc_auc_score(det, p[:, 0])) if 0 < det.sum() < len(y) else math.nan,
        "promoter_auc": float(roc_auc_score(y == 2, p[:, 2])) if 0 < (y == 2).sum() < len(y) else math.nan,
        "log_loss": float(log_loss(y, p, labels=[0, 1, 2])),
        "brier": float(((p - np.eye(3)[y]) ** 2).sum(axis=1).mean()),
        "accuracy": float((p.argmax(axis=1) == y).mean()),
        "score_mae": float(np.abs(expected - score).mean()),
        "nps_answers": float(100 * ((y == 2).mean() - (y == 0).mean())),
        "nps_predicted": nps_of(p),
        "calibration_detractor": calibration_curve(p[:, 0], det),
    }
    return out


def calibration_curve(p: np.ndarray, hit: np.ndarray, bins: int = 10) -> list[dict]:
    """Predicted vs observed rate per equal-count bin of the predicted probability."""
    order = np.argsort(p, kind="stable")
    out = []
    for part in np.array_split(order, min(bins, max(len(p), 1))):
        if len(part):
            out.append({"n": len(part), "predicted": round(float(p[part].mean()), 4),
                        "observed": round(float(hit[part].mean()), 4)})
    return out


def fingerprint(*tables: pa.Table) -> str:
    """A digest of the training data (keys, dates and labels), so a model names the data it saw."""
    h = hashlib.sha256()
    for t in tables:
        for name in t.column_names:
            h.update(name.encode())
            h.update(str(t[name].to_pylist()).encode())
    return h.hexdigest()[:16]

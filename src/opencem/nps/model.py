"""The network NPS model: a latent answer score that can only move with experience the way customers do,
an ordinal link from the score to the three answer classes, and a level taken from a representative study.

1. **Latent score.** A LightGBM regression of the 0-10 answer on the features of :mod:`opencem.nps.features`,
   with a monotone constraint per feature (``Feature.direction``): better experience, fewer complaints or a
   lower price can never lower a customer's score. Answers can be weighted by the inverse of each
   answerer's response propensity (who answers surveys is not random).
2. **Ordinal link.** A proportional-odds model on the score: P(answer <= detractor) and P(answer <= passive)
   are logistic in ``cut - slope * score``, fitted on later answers. So every class probability, and the
   NPS, is a smooth non-decreasing function of the score.
3. **Level.** Transactional survey answers over-represent unhappy customers, and that selection on the
   answer cannot be undone from the answers alone. A representative study (a market-research tracker) can:
   the one shift of the score that makes the tracker's answers most likely is kept (``shift``). Without a
   tracker the level is the respondents' and the model says so (``level``).
4. **Replicas.** The same fit on bootstrap resamples of the answers (and of the tracker) gives the spread
   that the intervals on every NPS carry as model error.

A saved model predicts large batches through its forests compiled to machine code by lleaves (about 7x
LightGBM's own predict on 2 cores, the same values to 1e-13); the compiled objects are cached in the model
folder per CPU, so the compile (a few seconds a forest) is paid once.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path

import lightgbm as lgb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from scipy.stats import t as student_t

from ..engine.files import atomic_dir
from ..errors import InputError
from .features import CATEGORICAL

CLASSES = ("detractor", "passive", "promoter")
PARAMS = {
    "objective": "regression", "learning_rate": 0.03, "num_leaves": 7, "min_data_in_leaf": 40,
    "feature_fraction": 0.7, "bagging_fraction": 0.8, "bagging_freq": 1, "lambda_l2": 5.0,
    "max_cat_to_onehot": 8, "cat_smooth": 20, "monotone_constraints_method": "advanced",
    "num_threads": 2, "deterministic": True, "force_row_wise": True, "seed": 17, "verbose": -1,
}
MAX_ROUNDS, PATIENCE = 2000, 100
COMPILE_ROWS = 200_000  # from this many rows a compiled forest pays for its compile; below, LightGBM predicts
LEVELS = {
    "tracker": "the level of the representative study (nps_tracker), fitted on its answers",
    "anchor": "the level of the given representative-study NPS (--anchor)",
    "respondents": "the level of the survey respondents, who over-represent unhappy customers",
}


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
class OrdinalLink:
    """Proportional odds on the latent score: logit P(class <= k) = cut_k - slope * score."""
    slope: float
    cut_detractor: float
    cut_promoter: float  # the cut between passive and promoter (> cut_detractor)

    def proba(self, score: np.ndarray) -> np.ndarray:
        f1 = _sigmoid(self.cut_detractor - self.slope * score)
        f2 = _sigmoid(self.cut_promoter - self.slope * score)
        return np.stack([f1, f2 - f1, 1 - f2], axis=1)

    @classmethod
    def fit(cls, score: np.ndarray, y: np.ndarray, weight: np.ndarray | None = None) -> OrdinalLink:
        from scipy.optimize import minimize

        w = np.ones(len(y)) if weight is None else weight
        if len(set(y.tolist())) < 3:
            raise InputError("the ordinal link needs answers of all three classes")

        def nll(p):
            link = cls(p[0], p[1], p[1] + math.exp(p[2]))
            return -float((w * np.log(np.clip(link.proba(score)[np.arange(len(y)), y], 1e-12, 1))).sum())

        m = float(np.average(score, weights=w))
        r = minimize(nll, [1.0, m - 1.0, 0.5], method="Nelder-Mead", options={"maxiter": 5000, "xatol": 1e-7, "fatol": 1e-9})
        return cls(float(r.x[0]), float(r.x[1]), float(r.x[1] + math.exp(r.x[2])))

    def shift_for(self, score: np.ndarray, y: np.ndarray) -> float:
        """The shift of the score that makes answers ``y`` most likely (a representative study's level)."""
        from scipy.optimize import minimize_scalar

        def nll(s):
            return -float(np.log(np.clip(self.proba(score + s)[np.arange(len(y)), y], 1e-12, 1)).sum())

        return float(minimize_scalar(nll, bounds=(-10, 10), method="bounded", options={"xatol": 1e-6}).x)

    def shift_for_nps(self, scores: list[tuple[np.ndarray, float]]) -> float:
        """The shift that makes the base NPS equal given study NPS values on average (``--anchor``)."""
        from scipy.optimize import brentq

        for _, target in scores:
            if not -100 < target < 100:
                raise InputError(f"anchor NPS {target} is outside -100..100")

        def gap(s: float) -> float:
            return float(np.mean([nps_of(self.proba(mu + s)) - target for mu, target in scores]))

        return float(brentq(gap, -10, 10))

    def to_dict(self) -> dict:
        return {"slope": self.slope, "cut_detractor": self.cut_detractor, "cut_promoter": self.cut_promoter}


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-z))


@dataclass
class Replica:
    """One bootstrap refit: its regressor, link and level shift."""
    regressor: lgb.Booster
    link: OrdinalLink
    shift: float


def predict_score(booster: lgb.Booster, x: np.ndarray, file: Path | None = None) -> np.ndarray:
    """The booster's prediction; for a large batch of a booster saved in ``file``, through its compiled forest."""
    if file is None or len(x) < COMPILE_ROWS:
        return booster.predict(x, num_threads=PARAMS["num_threads"])
    return _compiled(file).predict(np.ascontiguousarray(x, dtype=np.float64), n_jobs=PARAMS["num_threads"])


_COMPILED: dict[Path, object] = {}  # per cache file: a retrained model has another


def _compiled(file: Path):
    """The forest of a saved booster compiled by lleaves, cached beside it per model text and CPU (a
    compiled object runs only on the CPU it was built for)."""
    import lleaves  # imported here: loading LLVM costs every other command time
    import llvmlite.binding

    cpu = llvmlite.binding.get_host_cpu_name()
    digest = hashlib.sha256(file.read_bytes() + llvmlite.binding.get_host_cpu_features().flatten().encode()).hexdigest()[:16]
    cache = file.parent / "compiled" / f"{file.stem}-{cpu}-{digest}.o"
    if cache not in _COMPILED:
        model = lleaves.Model(model_file=str(file))
        if cache.is_file():
            model.compile(cache=str(cache))
        else:  # compiled to a temporary name and renamed, so that a reader never sees half an object
            tmp = cache.with_suffix(f".{os.getpid()}.tmp")
            try:
                cache.parent.mkdir(exist_ok=True)
                model.compile(cache=str(tmp))
                os.replace(tmp, cache)
            except OSError:  # a model folder that cannot be written to: compiled again by every process
                if tmp.exists():
                    tmp.unlink()
                model.compile()
        _COMPILED[cache] = model
    return _COMPILED[cache]


@dataclass
class NpsModel:
    encoder: Encoder
    regressor: lgb.Booster
    link: OrdinalLink
    shift: float = 0.0  # level correction on the score scale; 0 = respondents' level
    level: str = "respondents"  # a key of LEVELS: which level correction the shift is
    replicas: list[Replica] = field(default_factory=list)
    card: dict = field(default_factory=dict)
    folder: Path | None = None  # where the model was loaded from (its compiled forests are cached there)

    # -- prediction -------------------------------------------------------------------------------
    def _file(self, name: str) -> Path | None:
        return self.folder / name if self.folder is not None else None

    def score(self, x: np.ndarray) -> np.ndarray:
        """The latent answer score (0-10 scale, before the level shift)."""
        return predict_score(self.regressor, x, self._file("regressor.txt"))

    def proba(self, x: np.ndarray) -> np.ndarray:
        """Probabilities of answering detractor, passive, promoter at the model's level."""
        return self.link.proba(self.score(x) + self.shift)

    def predict(self, x: np.ndarray) -> dict[str, np.ndarray]:
        """Per subscriber: class probabilities and the expected 0-10 answer."""
        s = self.score(x) + self.shift
        return {"p": self.link.proba(s), "expected_score": np.clip(s, 0, 10)}

    def replica_nps(self, x: np.ndarray) -> np.ndarray:
        """Per replica and subscriber, P(promoter) - P(detractor): (replicas, subscribers)."""
        out = np.empty((len(self.replicas), len(x)))
        for i, r in enumerate(self.replicas):
            p = r.link.proba(predict_score(r.regressor, x, self._file(f"replica-{i:02d}.txt")) + r.shift)
            out[i] = p[:, 2] - p[:, 0]
        return out

    def contributions(self, x: np.ndarray) -> np.ndarray:
        """Per-feature push towards answering detractor rather than promoter, in log-odds: the score's
        TreeSHAP contributions times the link's slope, sign turned."""
        c = self.regressor.predict(x, pred_contrib=True, num_threads=PARAMS["num_threads"])
        return -self.link.slope * c[:, :-1]

    # -- storage ----------------------------------------------------------------------------------
    def save(self, folder: Path) -> Path:
        folder = Path(folder)
        with atomic_dir(folder) as tmp:
            tmp.mkdir()
            self.regressor.save_model(str(tmp / "regressor.txt"))
            for i, r in enumerate(self.replicas):
                r.regressor.save_model(str(tmp / f"replica-{i:02d}.txt"))
            state = {"features": self.encoder.names, "vocab": self.encoder.vocab, "link": self.link.to_dict(),
                     "shift": self.shift, "level": self.level,
                     "replicas": [{"link": r.link.to_dict(), "shift": r.shift} for r in self.replicas]}
            (tmp / "state.json").write_text(json.dumps(state, indent=1))
            (tmp / "model_card.json").write_text(json.dumps(self.card, indent=1, default=str))
        return folder

    @classmethod
    def load(cls, folder: Path) -> NpsModel:
        folder = Path(folder)
        if not (folder / "state.json").is_file():
            raise FileNotFoundError(f"{folder}: no NPS model here; run `opencem train nps` first")
        state = json.loads((folder / "state.json").read_text())
        if "link" not in state:
            raise InputError(f"{folder}: a model of an earlier OpenCEM version; run `opencem train nps` again")
        replicas = [Replica(lgb.Booster(model_file=str(folder / f"replica-{i:02d}.txt")), OrdinalLink(**r["link"]), r["shift"])
                    for i, r in enumerate(state["replicas"])]
        return cls(Encoder(state["features"], state["vocab"]), lgb.Booster(model_file=str(folder / "regressor.txt")),
                   OrdinalLink(**state["link"]), state["shift"], state["level"], replicas,
                   json.loads((folder / "model_card.json").read_text()), folder)


# -- fitting ------------------------------------------------------------------------------------------
def fit_regressor(x_fit, s_fit, w_fit, x_val, s_val, w_val, categorical: list[int], monotone: list[int],
                  rounds: int | None = None, seed: int = PARAMS["seed"]) -> lgb.Booster:
    """The latent score: boosting stops early on the validation answers unless ``rounds`` is given."""
    params = {**PARAMS, "monotone_constraints": monotone, "seed": seed}
    train = lgb.Dataset(x_fit, s_fit, weight=w_fit, categorical_feature=categorical, free_raw_data=False)
    if rounds is not None:
        return lgb.train(params, train, rounds)
    valid = lgb.Dataset(x_val, s_val, weight=w_val, reference=train, categorical_feature=categorical)
    return lgb.train({**params, "metric": "l2"}, train, MAX_ROUNDS, valid_sets=[valid],
                     callbacks=[lgb.early_stopping(PATIENCE, verbose=False)])


def fit_propensity(x: np.ndarray, answered: np.ndarray, categorical: list[int]) -> lgb.Booster:
    """P(an invited customer answers | features): shallow boosting, heavily regularised."""
    params = {k: v for k, v in PARAMS.items() if not k.startswith("monotone")}
    params.update(objective="binary", num_leaves=4, min_data_in_leaf=100, learning_rate=0.05)
    return lgb.train(params, lgb.Dataset(x, answered.astype(float), categorical_feature=categorical), 150)


def nps_of(p: np.ndarray) -> float:
    return float(100 * (p[:, 2].mean() - p[:, 0].mean()))


def metrics(p: np.ndarray, y: np.ndarray, expected: np.ndarray, score: np.ndarray) -> dict:
    from sklearn.metrics import log_loss, roc_auc_score

    det = y == 0
    return {
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


def critical_value(parts: list[tuple[np.ndarray | float, float]]) -> np.ndarray | float:
    """The 95 % critical value for an interval whose variance is a sum of parts, each (variance, degrees
    of freedom; inf for a part known exactly). A variance read off a few bootstrap replicas is itself
    uncertain (10 replicas: 9 degrees of freedom), so the interval takes Student's t on the
    Welch-Satterthwaite degrees of freedom of the sum, not the normal 1.96."""
    parts = [(np.asarray(v, dtype=float), df) for v, df in parts]
    total = sum(v for v, _ in parts)
    with np.errstate(divide="ignore", invalid="ignore"):  # a part of no variance adds no uncertainty, whatever its df
        spread = sum(np.where(v > 0, v ** 2 / df, 0.0) for v, df in parts)
        df = np.where(spread > 0, total ** 2 / np.where(spread > 0, spread, 1), np.inf)
    return student_t.ppf(0.975, df)

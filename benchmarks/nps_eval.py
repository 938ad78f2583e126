"""Accuracy of the network NPS model against the synthetic operator's truth, and its scoring speed.

    python benchmarks/nps_eval.py --data OP --workspace WS [--out benchmarks/results/nps_eval.jsonl]

OP is an `opencem synth` output, WS its `opencem measure` workspace. The script trains the model as
`opencem train nps` does (the tracker sets the level when the operator has one), scores the base on every
day from the second week on, and compares with the truth:

* detractor ROC-AUC on the later (test) answers, and the oracle's on the same answers: the truth's
  P(detractor) from the answerer's latent satisfaction that day and the answer noise; and the experience
  oracle's, which ranks the same answers by the truth's penalties that day (network, price, billing, care)
  and does not know the customer's own baseline satisfaction, which no input shows;
* base NPS per day against the truth's census NPS (what the whole base would answer), and whether the
  95 % interval holds it;
* potential detractors whose true main driver that day is not the network (price, billing or care
  outweigh their network penalty): the share explained as non-network;
* speed: subscribers per second of the whole `score`.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from scipy.stats import norm
from sklearn.metrics import roc_auc_score

from opencem.ingest.pseudonym import Pseudonymiser, load_key
from opencem.nps.model import answer_class
from opencem.nps.score import score
from opencem.nps.train import train_nps
from opencem.vocabulary import NON_NETWORK
from opencem.workspace import Workspace


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--workspace", type=Path, required=True)
    ap.add_argument("--every", type=int, default=1, help="score every n-th day")
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "nps_eval.jsonl")
    a = ap.parse_args()
    ws, truth = Workspace(a.workspace), a.data / "truth"
    noise = json.loads((truth / "manifest.json").read_text())["answer_noise_sd"]
    pseudo = Pseudonymiser(load_key(ws.pseudonym_key))
    daily = pq.read_table(truth / "subscriber_daily")
    daily = daily.set_column(0, "subscriber_id", pseudo.column(daily["subscriber_id"]))
    census = {r["date"]: r["nps_census"] for r in pq.read_table(truth / "nps_daily.parquet").to_pylist()}

    t0 = time.perf_counter()
    model = train_nps(ws.root)
    train_s = time.perf_counter() - t0
    model.save(ws.model("nps"))
    card = model.card

    # oracles: the same test answers scored with the truth's P(detractor) that day, and with what the truth
    # knows except the customer's own baseline: that day's penalties, less the mean baseline of customers of
    # the same plan, age band and tenure (> 48 months)
    with ws.session(tables=("surveys", "subscribers")) as engine:
        engine.register_arrow("truth_daily", daily)
        j = engine.query_arrow(
            "WITH base AS (SELECT subscriber_id, avg(satisfaction + network_penalty + nonnetwork_penalty) AS base "
            "  FROM truth_daily GROUP BY subscriber_id), "
            "observed AS (SELECT s.subscriber_id, avg(b.base) OVER (PARTITION BY plan, age_band, tenure_months > 48) AS base "
            "  FROM subscribers s JOIN base b USING (subscriber_id)) "
            "SELECT a.score, d.satisfaction, d.network_penalty + d.nonnetwork_penalty - o.base AS deficit "
            "FROM surveys a JOIN truth_daily d ON d.subscriber_id = a.subscriber_id AND d.date = CAST(a.survey_time AS DATE) "
            "JOIN observed o ON o.subscriber_id = a.subscriber_id WHERE CAST(a.survey_time AS DATE) BETWEEN $a AND $b",
            {"a": dt.date.fromisoformat(card["training_window"]["test"][0]),
             "b": dt.date.fromisoformat(card["training_window"]["test"][1])})
    detractor = answer_class(j["score"].to_numpy()) == 0
    oracle_auc = float(roc_auc_score(detractor, norm.cdf((6.5 - j["satisfaction"].to_numpy().astype(float)) / noise)))
    experience_oracle_auc = float(roc_auc_score(detractor, j["deficit"].to_numpy()))

    days = sorted(census)
    rows, speed = [], []
    for d in days[7::a.every] + [days[-1] + dt.timedelta(days=1)]:
        t1 = time.perf_counter()
        res = score(ws.root, as_of=d, model=model)
        speed.append(res.scores.num_rows / (time.perf_counter() - t1))
        b, true = res.base, census[d - dt.timedelta(days=1)]
        rows.append({"as_of": str(d), "nps": b["nps"], "ci": [b["ci_low"], b["ci_high"]], "truth": round(true, 2),
                     "error": round(b["nps"] - true, 2), "covered": b["ci_low"] <= true <= b["ci_high"]})
        print(json.dumps(rows[-1]), flush=True)
    last = res

    # potential detractors whose true main driver on the day before scoring is not the network
    day_truth = daily.filter(pc.equal(daily["date"], pa.scalar(last.as_of - dt.timedelta(days=1), pa.date32())))
    pdt = last.detractors.select(["subscriber_id", "cause"]).join(
        day_truth.select(["subscriber_id", "network_penalty", "nonnetwork_penalty"]), "subscriber_id")
    nonnet = pc.greater(pdt["nonnetwork_penalty"], pdt["network_penalty"]).to_numpy(zero_copy_only=False)
    said_nonnet = pc.equal(pdt["cause"], NON_NETWORK).to_numpy(zero_copy_only=False)

    errors = np.array([r["error"] for r in rows])
    line = {
        "benchmark": "nps_eval", "date": dt.date.today().isoformat(), "data": a.data.name, "seed": _seed(a.data),
        "subscribers": last.scores.num_rows, "train_seconds": round(train_s, 1),
        "level": card["level"], "response_weighting": card["response_weighting"],
        "answers": card["training_window"]["answers"],
        "test_detractor_auc": round(card["metrics_on_respondents"]["test"]["detractor_auc"], 4),
        "oracle_detractor_auc": round(oracle_auc, 4),
        "experience_oracle_detractor_auc": round(experience_oracle_auc, 4),
        "base_nps_mean_abs_error": round(float(np.abs(errors).mean()), 2),
        "base_nps_max_abs_error": round(float(np.abs(errors).max()), 2),
        "days_within_3": int((np.abs(errors) <= 3).sum()), "days_scored": len(rows),
        "ci_coverage": round(float(np.mean([r["covered"] for r in rows])), 3),
        "potential_detractors": last.detractors.num_rows,
        "nonnetwork_driven": int(nonnet.sum()),
        "nonnetwork_driven_explained_nonnetwork": round(float(said_nonnet[nonnet].mean()), 3) if nonnet.any() else None,
        "network_driven_given_network_cause": round(float((~said_nonnet[~nonnet]).mean()), 3) if (~nonnet).any() else None,
        "score_subscribers_per_s": round(float(np.median(speed))),
        "days": rows,
    }
    print(json.dumps({k: v for k, v in line.items() if k != "days"}, indent=1))
    with a.out.open("a") as f:
        f.write(json.dumps(line) + "\n")


def _seed(data: Path) -> int | None:
    manifest = data / "truth" / "manifest.json"
    return json.loads(manifest.read_text())["config"].get("seed") if manifest.exists() else None


if __name__ == "__main__":
    main()

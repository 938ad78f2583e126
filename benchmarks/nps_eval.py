"""Accuracy of the network NPS model against the synthetic operator's truth, and its scoring speed.

    python benchmarks/nps_eval.py --data OP --workspace WS [--waves 2] [--out benchmarks/results/nps_eval.jsonl]

OP is an `opencem synth` output, WS its `opencem measure` workspace. The script trains the model twice
(unanchored, and anchored to simulated market-research tracker waves: 1,000 random customers
interviewed on a day, their answers drawn from the truth's satisfaction with the survey answer noise),
scores the base on several days and compares:

* base NPS per day: model, raw survey answers of the last 14 days, truth (census NPS);
* segment NPS (plan, value tier, device, district, grid, cell): model vs raw surveys vs truth;
* potential detractors: precision / recall against the true class, and their named network cause
  against the truth's fault behind the subscriber's last 7 days;
* speed: subscribers per second for the whole `score` and for the model alone.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import time
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
from scipy.stats import norm

from opencem.indicators.tree import load_tree
from opencem.ingest.pseudonym import Pseudonymiser, load_key
from opencem.nps.features import base_requests, build_features, connect, feature_list, one
from opencem.nps.model import nps_of
from opencem.nps.score import model_dir, score
from opencem.nps.train import train_nps

CAUSE_MAP = {"core": "core_dns"}


def truth_probs(sat: np.ndarray, noise: float) -> tuple[np.ndarray, np.ndarray]:
    """P(answer 9-10), P(answer 0-6) for a latent satisfaction with Gaussian answer noise (rounding at .5)."""
    return 1 - norm.cdf((8.5 - sat) / noise), norm.cdf((6.5 - sat) / noise)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--workspace", type=Path, required=True)
    ap.add_argument("--waves", type=int, default=2, help="tracker waves used to anchor")
    ap.add_argument("--interviews", type=int, default=1000)
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results/nps_eval.jsonl"))
    a = ap.parse_args()
    ws, truth = a.workspace, a.data / "truth"
    noise = json.loads((truth / "manifest.json").read_text()).get("answer_noise_sd", 0.9)
    pseud = Pseudonymiser(load_key(ws / ".secrets" / "pseudonym.key"))
    db = duckdb.connect()
    daily = db.sql(f"SELECT * FROM read_parquet('{truth}/subscriber_daily/**/*.parquet', hive_partitioning=true)").to_arrow_table()
    daily = daily.set_column(0, "subscriber_id", pseud.column(daily["subscriber_id"]))
    db.register("daily", daily)
    db.execute(f"CREATE VIEW faults AS SELECT * FROM '{truth}/faults.parquet'")
    days = [r[0] for r in db.execute("SELECT DISTINCT date FROM daily ORDER BY 1").fetchall()]
    census = dict(db.execute(f"SELECT date, nps_census FROM '{truth}/nps_daily.parquet'").fetchall())

    # simulated tracker waves: every 14 days from day 7, inside the training period
    rng = np.random.default_rng(5)
    waves = []
    for d in days[7::14][: a.waves]:
        sat = db.execute(f"SELECT satisfaction FROM daily WHERE date = DATE '{d}'").fetchnumpy()["satisfaction"]
        pick = rng.choice(len(sat), min(a.interviews, len(sat)), replace=False)
        ans = np.clip(np.round(sat[pick] + rng.normal(0, noise, len(pick))), 0, 10)
        # the wave interviews on day d about the days before: anchor the as-of day d + 1
        waves.append((d + dt.timedelta(days=1), round(float(100 * ((ans >= 9).mean() - (ans <= 6).mean())), 2)))

    report: dict = {"benchmark": "nps_eval", "data": a.data.name, "date": dt.date.today().isoformat(),
                    "subscribers": one(connect(ws), "SELECT count(*) FROM subscribers")[0], "tracker_waves": waves}
    t0 = time.perf_counter()
    plain = train_nps(ws)
    report["train_seconds"] = round(time.perf_counter() - t0, 1)
    anchored = train_nps(ws, anchor=waves)
    card = plain.card
    report["training_window"] = card["training_window"]
    report["respondent_metrics"] = card["metrics_on_respondents"]
    report["top_features"] = card["top_features_by_gain"][:10]

    # base NPS per day, both models, against truth and against raw surveys of the last 14 days
    con = connect(ws)
    feats = feature_list(load_tree())
    first_scored = days[0] + dt.timedelta(days=8)
    base_rows = []
    for d in [x for x in days if x >= first_scored] + [days[-1] + dt.timedelta(days=1)]:
        x = plain.encoder.matrix(build_features(con, base_requests(con, d), feats))
        prev = d - dt.timedelta(days=1)
        raw = one(con, f"""SELECT 100 * (avg(CASE WHEN score >= 9 THEN 1E0 ELSE 0E0 END) - avg(CASE WHEN score <= 6 THEN 1E0 ELSE 0E0 END)),
                              count(*) FROM surveys WHERE CAST(survey_time AS DATE) < DATE '{d}'
                              AND CAST(survey_time AS DATE) >= DATE '{d}' - INTERVAL 14 DAY""")
        base_rows.append({"as_of": str(d), "truth": census.get(prev), "model": round(nps_of(plain.proba(x)), 2),
                          "model_anchored": round(nps_of(anchored.proba(x)), 2), "surveys_14d": round(raw[0], 2),
                          "answers_14d": raw[1]})
    report["base_nps_by_day"] = base_rows
    wave_days = {str(w[0]) for w in waves}
    for k in ("model", "model_anchored", "surveys_14d"):
        err = [r[k] - r["truth"] for r in base_rows if r["truth"] is not None and r["as_of"] not in wave_days]
        report[f"base_error_{k}"] = {"mean_abs": round(float(np.mean(np.abs(err))), 2), "bias": round(float(np.mean(err)), 2),
                                     "max_abs": round(float(np.max(np.abs(err))), 2), "days": len(err)}

    # full scoring on the last day with the anchored model: segments, detractors, speed
    anchored.save(model_dir(ws))
    as_of = days[-1] + dt.timedelta(days=1)
    t0 = time.perf_counter()
    res = score(ws, as_of)
    secs = time.perf_counter() - t0
    n = res.scores.num_rows
    report["score_seconds"] = round(secs, 2)
    report["score_subscribers_per_s"] = round(n / secs)
    x = anchored.encoder.matrix(build_features(con, base_requests(con, as_of), feats))
    big = np.repeat(x, max(1, 1_000_000 // len(x)), axis=0)
    t0 = time.perf_counter()
    anchored.predict(big)
    t_model = time.perf_counter() - t0
    report["model_only_rows_per_s"] = round(len(big) / t_model)
    t0 = time.perf_counter()
    build_features(con, base_requests(con, as_of), feats)
    report["features_subscribers_per_s"] = round(n / (time.perf_counter() - t0))

    last = days[-1]
    sat = db.execute(f"SELECT subscriber_id, satisfaction, nps_class FROM daily WHERE date = DATE '{last}'").to_arrow_table()
    db.register("sat", sat)
    db.register("scores", res.scores)
    tp, td = truth_probs(sat["satisfaction"].to_numpy(), noise)
    db.register("tp", pa.table({"subscriber_id": sat["subscriber_id"], "tp": tp, "td": td}))
    surveys = con.sql(f"""SELECT subscriber_id, score FROM surveys WHERE CAST(survey_time AS DATE) < DATE '{as_of}'
                         AND CAST(survey_time AS DATE) >= DATE '{as_of}' - INTERVAL 28 DAY""").to_arrow_table()
    db.register("answers", surveys)
    seg_rows = []
    for dim in ("plan", "value_tier", "device_model", "home_area", "grid", "main_cell"):
        rows = db.execute(f"""
            WITH m AS (SELECT s.{dim} AS seg, count(*) AS n, 100 * (avg(s.p_promoter) - avg(s.p_detractor)) AS model,
                              100 * (avg(tp.tp) - avg(tp.td)) AS truth
                       FROM scores s JOIN tp USING (subscriber_id) WHERE s.{dim} IS NOT NULL GROUP BY 1),
                 r AS (SELECT s.{dim} AS seg, count(*) AS answers,
                              100 * (avg(CASE WHEN a.score >= 9 THEN 1E0 ELSE 0E0 END) - avg(CASE WHEN a.score <= 6 THEN 1E0 ELSE 0E0 END)) AS raw
                       FROM answers a JOIN scores s USING (subscriber_id) GROUP BY 1)
            SELECT m.seg, m.n, m.model, m.truth, r.raw, COALESCE(r.answers, 0) FROM m LEFT JOIN r USING (seg)""").fetchall()
        for seg, n_seg, model, tru, raw, answers in rows:
            seg_rows.append({"dimension": dim, "segment": seg, "subscribers": n_seg, "model": model, "truth": tru,
                             "raw_survey": raw, "answers": answers})
    report["segments"] = _segment_summary(seg_rows)

    det = res.detractors
    db.register("det", det.select(["subscriber_id", "cause", "network_cause"]))
    flagged, true_det, hit = db.execute("""SELECT (SELECT count(*) FROM det),
        (SELECT count(*) FROM sat WHERE nps_class = 'detractor'),
        (SELECT count(*) FROM det JOIN sat USING (subscriber_id) WHERE nps_class = 'detractor')""").fetchall()[0]
    report["potential_detractors"] = {"flagged": flagged, "true_detractors": true_det,
                                      "precision": round(hit / max(flagged, 1), 3), "recall": round(hit / max(true_det, 1), 3),
                                      "flagged_true_detractor_share_of_base": round(true_det / n, 3)}
    causes = db.execute(f"""
        WITH t AS (SELECT d.subscriber_id, mode(f.cause) AS true_cause
                   FROM daily d JOIN faults f ON f.fault_id = d.main_fault_id
                   WHERE d.date > DATE '{last}' - INTERVAL 7 DAY GROUP BY 1)
        SELECT det.cause, COALESCE(t.true_cause, 'no fault') AS true_cause, count(*) FROM det LEFT JOIN t USING (subscriber_id)
        GROUP BY ALL ORDER BY 1, 2""").fetchall()
    confusion = [{"ours": CAUSE_MAP.get(c, c), "truth": t, "n": k} for c, t, k in causes]
    named = [r for r in confusion if r["ours"] not in ("non-network", "network (unclear)")]
    right = sum(r["n"] for r in named if r["ours"] == r["truth"])
    with_fault = sum(r["n"] for r in named if r["truth"] != "no fault")
    report["root_cause"] = {"confusion": confusion, "named_causes": sum(r["n"] for r in named),
                            "right_among_named_with_a_true_fault": round(right / max(with_fault, 1), 3),
                            "named_with_no_true_fault": sum(r["n"] for r in named if r["truth"] == "no fault")}
    a.out.parent.mkdir(parents=True, exist_ok=True)
    with a.out.open("a") as f:
        f.write(json.dumps(report, default=str) + "\n")
    print(json.dumps({k: v for k, v in report.items() if k not in ("base_nps_by_day", "training_window")}, indent=1, default=str))
    for r in base_rows:
        print(r)


def _segment_summary(rows: list[dict]) -> dict:
    out = {}
    for label, keep in (("all", lambda r: True), ("small (<300 subscribers)", lambda r: r["subscribers"] < 300),
                        ("large (>=300)", lambda r: r["subscribers"] >= 300)):
        sel = [r for r in rows if keep(r) and r["subscribers"] >= 20]
        with_raw = [r for r in sel if r["answers"] >= 5]
        if not sel:
            continue
        out[label] = {
            "segments": len(sel),
            "model_mae": round(float(np.mean([abs(r["model"] - r["truth"]) for r in sel])), 2),
            "model_bias": round(float(np.mean([r["model"] - r["truth"] for r in sel])), 2),
            "segments_with_5plus_answers": len(with_raw),
            "model_mae_same_segments": round(float(np.mean([abs(r["model"] - r["truth"]) for r in with_raw])), 2) if with_raw else None,
            "raw_survey_mae_same_segments": round(float(np.mean([abs(r["raw_survey"] - r["truth"]) for r in with_raw])), 2) if with_raw else None,
            "model_truth_correlation": round(float(np.corrcoef([r["model"] for r in sel], [r["truth"] for r in sel])[0, 1]), 3) if len(sel) > 2 else None,
        }
    return out


if __name__ == "__main__":
    main()

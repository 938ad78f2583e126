"""CEI-survey agreement on a synthetic operator, against what its ground truth allows.

    python benchmarks/calibration_eval.py --subscribers 30000 --days 28

Generates an operator, runs `opencem measure`, calibrates the tree on the surveys, and reports the
CEI-survey correlation (per respondent and per segment) next to two ceilings from the truth: the
correlation of the answers with the true satisfaction (limited by answer noise) and with the true
network part of satisfaction (the most any network-only index can reach).
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from opencem.indicators.tree import load_tree
from opencem.ingest.pseudonym import Pseudonymiser
from opencem.measure.calibrate import calibrate
from opencem.measure.run import measure
from opencem.synth.generator import SynthConfig, generate


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--subscribers", type=int, default=30_000)
    ap.add_argument("--days", type=int, default=28)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--root", type=Path, default=None)
    a = ap.parse_args()
    root = a.root or Path(tempfile.mkdtemp(prefix="opencem-cal-"))
    op, ws = root / "op", root / "ws"
    key = "calibration-eval-key"
    os.environ["OPENCEM_PSEUDONYM_KEY"] = key
    if not op.exists():
        generate(op, SynthConfig(subscribers=a.subscribers, days=a.days, seed=a.seed, workers=2))
    if not (ws / "measure").exists():
        measure(op, ws, "duckdb")
    rep = calibrate(ws, load_tree())

    # ceilings from the truth: join answers to the true state of the respondent that day
    p = Pseudonymiser(key.encode())
    truth = pq.read_table(op / "truth" / "subscriber_daily", columns=["subscriber_id", "date", "satisfaction", "network_penalty"])
    surveys = pq.read_table(op / "inputs" / "surveys.parquet")
    t = truth  # noqa: F841  (queried below)
    s = surveys  # noqa: F841
    ceil = duckdb.execute("""SELECT corr(s.score, t.satisfaction), corr(s.score, -t.network_penalty), count(*)
        FROM s JOIN t ON t.subscriber_id = s.subscriber_id AND t.date = CAST(s.survey_time AS DATE)""").fetchone()
    ids = pa.array([p.one(x) for x in truth["subscriber_id"].to_pylist()])
    tp = truth.append_column("pid", ids)  # noqa: F841
    files = sorted(str(f) for f in (ws / "measure" / "cei_subscriber_day").rglob("*.parquet"))
    (cei_truth_r,) = duckdb.execute(f"""SELECT corr(c.cei, -tp.network_penalty) FROM tp
        JOIN read_parquet({files!r}, hive_partitioning = true) c ON c.subscriber_id = tp.pid AND c.day = tp.date""").fetchone()
    result = {
        "benchmark": "calibration_eval", "subscribers": a.subscribers, "days": a.days,
        "surveys": {"train": rep.surveys_train, "valid": rep.surveys_valid, "test": rep.surveys_test},
        "blend_chosen": rep.blend,
        "respondent_r_default": round(rep.respondent_r_default, 3),
        "respondent_r_calibrated": round(rep.respondent_r_calibrated, 3),
        "respondent_spearman_calibrated": round(rep.respondent_spearman_calibrated, 3),
        "segment_r": {k: {"groups": v[0], "default": round(v[1], 3), "calibrated": round(v[2], 3)} for k, v in rep.segment_r.items()},
        "ceiling_r_answer_vs_true_satisfaction": round(ceil[0], 3),
        "ceiling_r_answer_vs_true_network_part": round(ceil[1], 3),
        "cei_vs_true_network_part_all_subscriber_days": round(cei_truth_r, 3),
        "calibrated_weights": rep.tree.weights(),
    }
    print(json.dumps(result, indent=1))
    with open(Path(__file__).parent / "results" / "calibration_eval.jsonl", "a") as f:
        f.write(json.dumps(result) + "\n")
    rep.tree.to_yaml(root / "tree.calibrated.yaml")


if __name__ == "__main__":
    main()

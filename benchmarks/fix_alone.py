"""One carried-out fix alone: where a predicted lift loses its size, with nothing else moving.

Reads the output folder of `opencem demo` or `benchmarks/loop_eval.py`, generates and measures a third
world in which the operator carries out only ``--fix`` (same seed, same everything else), and compares, on
the subscribers the fix touched (the truth's list) over the week after the fix day:

* ``truth_lift``: the truth's NPS with the fix minus without it (its own with / without worlds), as surveys
  would show it (every touched customer's expected answer, day by day);
* ``truth_between_worlds``: the truth's NPS in the fix-alone world minus the no-fix world (daily answers'
  classes, no answer noise);
* ``model_on_real``: the same NPS model scored on each world's own measured data (no what-if);
* ``whatif``: the what-if's prediction for the same subscribers, made on the no-fix world's days before
  the fix, as prioritise makes it.

So ``whatif`` against ``model_on_real`` judges the replay, and ``model_on_real`` against the truth the
model's sensitivity.

    python benchmarks/fix_alone.py --run /tmp/loop --fix C001

Appends one JSON line to benchmarks/results/fix_alone.jsonl.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from opencem.demo import _fix_requests
from opencem.indicators.tree import load_tree
from opencem.ingest.pseudonym import Pseudonymiser, load_key
from opencem.measure.run import measure
from opencem.nps.features import build_features, feature_list
from opencem.nps.model import NpsModel, nps_of
from opencem.synth.generator import SynthConfig, generate
from opencem.twin.whatif import WhatIfEngine
from opencem.workspace import Workspace

from nps_sensitivity import POST_DAYS, _latent_nps  # the same week and truth NPS as the sensitivity benchmark


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--run", type=Path, required=True, help="output folder of `opencem demo` or loop_eval.py")
    ap.add_argument("--fix", required=True, help="fix id of the run's fix_requests.json (C001, ...)")
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "fix_alone.jsonl")
    a = ap.parse_args()
    ws_none = Workspace(a.run / "before" / "workspace")
    cfg = json.loads((a.run / "before" / "operator" / "truth" / "manifest.json").read_text())["config"]
    start = dt.date.fromisoformat(cfg["start"])
    fix_day = start + dt.timedelta(days=cfg["fix_day"])
    requests = json.loads((ws_none.loop / "prioritise" / "fix_requests.json").read_text())
    request = next(r for r in requests if r["fix_id"] == a.fix)
    alone = a.run / f"alone-{a.fix}"
    synth = SynthConfig(cfg["subscribers"], cfg["days"], cfg["seed"], fixes=False, survey_rate=cfg["survey_rate"],
                        workers=cfg["workers"], fix_day=cfg["fix_day"])
    generate(alone / "operator", replace(synth, apply=_fix_requests([request])), overwrite=True)
    measure(alone / "operator", alone / "workspace")

    fix = pq.read_table(alone / "operator" / "truth" / "fixes.parquet").to_pylist()[0]
    touched = sorted(set(pq.read_table(alone / "operator" / "truth" / "fix_affected.parquet")["subscriber_id"].to_pylist()))
    days = [fix_day + dt.timedelta(days=i) for i in range(1, POST_DAYS + 1)]
    model, feats = NpsModel.load(ws_none.model("nps")), feature_list(load_tree())
    got = {}
    for name, ws, operator in (("none", ws_none, a.run / "before" / "operator"),
                               ("alone", Workspace(alone / "workspace"), alone / "operator")):
        who = Pseudonymiser(load_key(ws.pseudonym_key)).column(pa.array(touched)).to_pylist()
        req = pa.table({"subscriber_id": np.repeat(who, len(days)), "as_of": pa.array(np.tile(days, len(who)), pa.date32())})
        with ws.session() as engine:
            p = model.proba(model.encoder.matrix(build_features(engine, req, feats)))
        truth = pq.read_table(operator / "truth" / "subscriber_daily",
                              filters=[("date", ">=", fix_day), ("date", "<", fix_day + dt.timedelta(days=POST_DAYS))])
        sat = truth.filter(pc.is_in(truth["subscriber_id"], value_set=pa.array(touched)))["satisfaction"].to_numpy()
        got[name] = (nps_of(p), _latent_nps(sat))
    who = Pseudonymiser(load_key(ws_none.pseudonym_key)).column(pa.array(touched)).to_pylist()
    with WhatIfEngine(ws_none.root, start, fix_day) as whatif:
        w = whatif.run(request["action"], cells=request["cells"] or None, device_model=request["device_model"],
                       subscribers=who, horizon_days=cfg["days"] - cfg["fix_day"])
    row = {"subscribers": cfg["subscribers"], "seed": cfg["seed"], "fix": a.fix, "action": request["action"],
           "touched": len(touched), "truth_lift": round(fix["nps_census_with"] - fix["nps_census_without"], 2),
           "truth_between_worlds": round(got["alone"][1] - got["none"][1], 2),
           "model_on_real": round(got["alone"][0] - got["none"][0], 2), "whatif": round(w.nps_lift, 2)}
    print(json.dumps(row))
    a.out.parent.mkdir(parents=True, exist_ok=True)
    with a.out.open("a") as f:
        f.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    main()

"""The closed loop on a synthetic operator: measure, diagnose, prioritise, plan, the operator carries
out the top fixes from the fix day, verify; then the report.

The operator is generated twice from the same seed: once as the world up to the fix day (nothing of
what follows is used before the fixes are chosen), once with the chosen fixes carried out from that
day. The days before the fix are byte-identical in both, so the second world is the first one
continued. A third run with the fixes that severity ranking would have bought gives their true gain.
"""

from __future__ import annotations

import collections
import datetime as dt
import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from .engine.pipeline import sql_file
from .ingest.pseudonym import Pseudonymiser, load_key
from .indicators.tree import load_tree
from .loop import tmf
from .loop.care import outreach
from .loop.prioritise import prioritise
from .loop.ticketing import send_tickets
from .loop.verify import verify
from .measure.run import measure
from .nps.features import base_requests, build_features, feature_list
from .nps.model import LEVELS, NpsModel
from .nps.score import score
from .nps.train import train_nps
from .report import render_report
from .segments.campaigns import campaigns
from .segments.segment import quadrant_label, segment
from .synth.faults import FixRequest
from .synth.generator import SynthConfig, generate
from .twin.run import diagnose, load_episodes
from .workspace import Workspace


@dataclass(frozen=True)
class LoopConfig:
    subscribers: int = 10_000
    days: int = 28
    seed: int = 7
    fix_day: int = 21  # day index the fixes are in place from
    budget: int = 8  # cost units (see prioritise.COST)
    survey_rate: float = 0.3
    workers: int = 1
    engine: str = "duckdb"
    ticket_endpoint: str | None = None  # TMF621 API root; tickets are always written as files too
    trend_every: int = 1  # days between points of the NPS trend


@dataclass
class LoopResult:
    report: Path
    summary: dict


def run_loop(out: Path, cfg: LoopConfig, say: Callable[[str], None] = print,
             bar: Callable[[str], Callable[[int, int], None]] | None = None) -> LoopResult:
    """Run every stage into ``out``; ``say`` gets one line per stage, ``bar(label)`` a progress callback."""
    out = Path(out)
    progress = bar or (lambda _label: None)
    synth = SynthConfig(cfg.subscribers, cfg.days, cfg.seed, fixes=False, survey_rate=cfg.survey_rate,
                        workers=cfg.workers, fix_day=cfg.fix_day)
    start = dt.date.fromisoformat(synth.start)
    fix_date = start + dt.timedelta(days=cfg.fix_day)
    before, after = out / "before", out / "after"

    say(f"1/8 synthetic operator until the fix day ({fix_date})")
    generate(before / "operator", synth, progress=progress("synth"), overwrite=True)
    say("2/8 measure: ingest, KPI -> KQI -> CEI")
    measure(before / "operator", before / "workspace", cfg.engine, progress=_step_bar(progress("measure")))
    ws = before / "workspace"
    say("3/8 NPS model on the answers before the fix day; score")
    model = train_nps(ws, until=fix_date)
    model.save(Workspace(ws).model("nps"))
    score(ws, fix_date - dt.timedelta(days=7), model)
    scored = score(ws, fix_date, model)
    test = model.card["metrics_on_respondents"]["test"]
    say(f"   {model.card['training_window']['answers']['fit']:,} answers fit, detractor AUC {test['detractor_auc']:.2f} on later ones; "
        f"base network NPS {scored.base['nps']:+.1f} as of {fix_date}")
    say(f"4/8 diagnose {start} .. {fix_date - dt.timedelta(days=1)}")
    diag = diagnose(ws, start, fix_date)
    causes = collections.Counter(diag.episodes["cause"].to_pylist()) if diag.episodes.num_rows else {}
    say(f"   {diag.episodes.num_rows} episodes: " + ", ".join(f"{c} {n}" for c, n in sorted(causes.items())))
    say("5/8 prioritise, plan, ticket, care list")
    pri = prioritise(ws, fix_date, budget=cfg.budget, progress=_step_bar(progress("what-if")),
                     horizon_days=cfg.days - cfg.fix_day)  # the days verification will look at
    tickets = _tickets(pri.plans, out / "tickets", cfg.ticket_endpoint)
    care = outreach(ws, scored, out / "care")
    requests = json.loads((pri.folder / "fix_requests.json").read_text())
    say(f"   {pri.candidates.num_rows} candidate fixes, {len(pri.plans)} plans, {care.num_rows} subscribers for proactive care")
    chosen = pri.candidates.filter(pc.is_in(pri.candidates["fix_id"], pa.array([r["fix_id"] for r in requests], pa.string())))

    say(f"6/8 the operator carries out {len(requests)} fixes from {fix_date}")
    for r in chosen.to_pylist():
        say(f"   {r['fix_id']} {r['action']} {r['target'][:40]} (expected {r['expected_nps_lift']:+.2f} NPS, 95 % "
            f"{r['expected_nps_lift_low']:+.1f}..{r['expected_nps_lift_high']:+.1f}, on {r['subscribers']:,} subscribers)")
    generate(after / "operator", replace(synth, apply=_fix_requests(requests)), progress=progress("synth"), overwrite=True)
    measure(after / "operator", after / "workspace", cfg.engine, progress=_step_bar(progress("measure")))
    ws_after = after / "workspace"
    shutil.copytree(Workspace(ws).model("nps"), Workspace(ws_after).model("nps"), dirs_exist_ok=True)
    severity_ids = pri.comparison["severity"]["fixes"]
    say("   and, for the comparison only, the fixes severity ranking would have bought")
    generate(out / "severity" / "operator", replace(synth, apply=_fix_requests(r for r in pri.candidates.to_pylist() if r["fix_id"] in severity_ids)),
             progress=progress("synth"), overwrite=True)

    say("7/8 verify the fixes against matched controls")
    truth = _true_effects(after / "operator")
    rows = {r["fix_id"]: r for r in chosen.to_pylist()}
    checks = []
    for v in verify(ws_after, [{**r, "fix_date": fix_date} for r in rows.values()], model=model):
        if "not_verified" in v:  # a fix that touched too few subscribers to measure is reported, not hidden
            say(f"   {v['fix_id']}: not verified: {v['not_verified']}")
            continue
        t, r = truth.get(v["fix_id"], {}), rows[v["fix_id"]]
        treated = v.pop("treated_ids")
        checks.append({**v, "true_nps_lift": t.get("nps_lift"), "true_nps_lift_latent": t.get("nps_lift_latent"),
                       "true_nps_lift_treated": true_lift_of(after / "operator", ws_after, v["fix_id"], treated),
                       "true_fault": t.get("fault_id"), "action": r["action"], "target": r["target"]})
    base_n = _active(ws_after, fix_date)
    gained = {"ours": _true_base_gain(truth, base_n),
              "severity": _true_base_gain(_true_effects(out / "severity" / "operator"), base_n)}
    say("8/8 NPS trend, segments, campaign lists and report")
    data = report_data(cfg, ws, ws_after, after / "operator", fix_date, model, pri, checks, gained, care)
    data["tickets"] = tickets
    report = render_report(data, out / "report.html")
    summary = {"kpis": data["kpis"], "ranking": data["ranking"], "tickets": tickets, "care_total": data["care_total"],
               "verification": data["verification"], "nps_level": model.level, "nps_trend": data["nps_trend"],
               "campaigns": data["campaigns"]}
    (out / "summary.json").write_text(json.dumps(summary, indent=1, default=str))
    return LoopResult(report, summary)


def _fix_requests(rows) -> tuple[FixRequest, ...]:
    return tuple(FixRequest(r["fix_id"], r["action"], tuple(r["cells"] or ()), r["device_model"]) for r in rows)


def _step_bar(cb: Callable[[int, int], None] | None):
    return (lambda _step, done, total: cb(done, total)) if cb else None


def _tickets(plans: list[dict], folder: Path, endpoint: str | None) -> dict:
    """TMF621 / TMF656 files (validated when the specs are at hand) and, with an endpoint, sent."""
    paths = tmf.export(plans, folder)
    info = {"plans": len(plans), "files": len(paths), "folder": str(folder.name), "validated": all(tmf.spec_available(a) for a in ("TMF621", "TMF656"))}
    if endpoint:
        rep = send_tickets([tmf.trouble_ticket(p) for p in plans], endpoint, folder / "ledger.json")
        info.update(sent=rep.sent, skipped=rep.skipped, failed=rep.failed)
    return info


def _true_effects(operator: Path) -> dict[str, dict]:
    """Per fix: the true NPS change of the subscribers it touched (the synthetic operator's with / without
    worlds) as surveys would show it, the NPS the model estimates and the base's true NPS is counted in
    (``nps_lift``: every customer's expected answer, day by day); and of their latent satisfaction rounded
    to an answer without its noise (``nps_lift_latent``, the figure of earlier notes)."""
    f = operator / "truth" / "fixes.parquet"
    if not f.exists():
        return {}

    def lift(r: dict, kind: str) -> float:
        return r[f"{kind}_with"] - r[f"{kind}_without"] if r[f"{kind}_with"] is not None else 0.0

    return {r["fix_id"]: {"fault_id": r["fault_id"], "subscribers": r["subscribers_affected"],
                          "nps_lift": lift(r, "nps_census"), "nps_lift_latent": lift(r, "nps")}
            for r in pq.read_table(f).to_pylist()}


def true_lift_of(operator: Path, workspace: Path, fix_id: str, subscribers: list[str]) -> float | None:
    """The true NPS change of the fix over ``subscribers`` (the workspace's pseudonymised ids; 0 for those
    it did not touch): the truth of the very subscribers a verification reads. Verification's treated are
    the fix's regular users (3 or more sessions on its scope), who feel more of it than all it touched."""
    f = operator / "truth" / "fix_affected.parquet"
    if not f.exists() or not subscribers:
        return None
    t = pq.read_table(f, filters=[("fix_id", "=", fix_id)])
    ids = Pseudonymiser(load_key(Workspace(workspace).pseudonym_key)).column(t["subscriber_id"]).to_pylist()
    lift = dict(zip(ids, pc.subtract(t["answer_nps_with_fix"], t["answer_nps_without_fix"]).to_pylist()))
    return round(100 * sum(lift.get(s, 0.0) for s in subscribers) / len(subscribers), 3)


def _true_base_gain(effects: dict[str, dict], base_n: int) -> float:
    return round(sum(e["subscribers"] * e["nps_lift"] for e in effects.values()) / base_n, 3) if base_n else 0.0


def _active(ws: Path, day: dt.date) -> int:
    with Workspace(ws).session() as engine:
        return base_requests(engine, day).num_rows


def base_nps_trend(ws: Path, model: NpsModel, days: list[dt.date]) -> list[float]:
    """The estimated NPS of the whole base on each day (mean P(promoter) - mean P(detractor))."""
    feats = feature_list(load_tree())
    out = []
    with Workspace(ws).session() as engine:
        for d in days:
            p = model.proba(model.encoder.matrix(build_features(engine, base_requests(engine, d), feats)))
            out.append(round(float(100 * (p[:, 2].mean() - p[:, 0].mean())), 2))
    return out


def report_data(cfg: LoopConfig, ws_before: Path, ws: Path, operator: Path, fix_date: dt.date, model: NpsModel, pri,
                checks: list[dict], gained: dict, care: pa.Table) -> dict:
    """Everything the report shows: the twin and priorities of the world before the fix, the NPS and
    verification of the world after it."""
    first = dt.date.fromisoformat(SynthConfig.start)
    last = first + dt.timedelta(days=cfg.days)
    days = [first + dt.timedelta(days=i) for i in range(7, cfg.days + 1, cfg.trend_every)]
    trend = base_nps_trend(ws, model, days)
    truth = {str(r["date"]): r["nps_census"] for r in pq.read_table(operator / "truth" / "nps_daily.parquet").to_pylist()}
    final = score(ws, last, model)
    seg = final.segments
    segments = [r for r in seg.to_pylist() if r["dimension"] in ("plan", "value_tier", "device_model", "home_area")]
    grids = grid_state(ws_before, fix_date - dt.timedelta(days=7), fix_date)
    ep = load_episodes(ws_before)
    episodes = [{k: (str(v) if isinstance(v, dt.datetime) else v) for k, v in r.items() if k in (
        "episode_id", "cause", "center_lat", "center_lon", "start_time", "end_time", "affected_subscribers", "confidence")}
        for r in ep.to_pylist() if r["kind"] == "area"]
    applied = set(pri.comparison["ours"]["fixes"])
    cand = pri.candidates.to_pylist()
    fixes = [{"rank": r["rank"], "fix_id": r["fix_id"], "action": r["action"], "target": r["target"][:60], "cause": r["cause"],
              "expected_nps_lift": r["expected_nps_lift"], "expected_nps_lift_low": r["expected_nps_lift_low"],
              "expected_nps_lift_high": r["expected_nps_lift_high"], "expected_base_nps_lift": r["expected_base_nps_lift"],
              "subscribers": r["subscribers"], "revenue": r["revenue"], "cost_class": r["cost_class"],
              "severity_rank": r["severity_rank"], "applied": r["fix_id"] in applied} for r in cand]
    ranking = {"k": len(applied), "budget": f"{pri.comparison['budget_units']} cost units",
               **{k: {"expected": pri.comparison[k]["expected_base_nps_lift"], "expected_low": pri.comparison[k]["expected_base_nps_lift_low"],
                      "expected_high": pri.comparison[k]["expected_base_nps_lift_high"], "true": gained[k], "fixes": pri.comparison[k]["fixes"]}
                  for k in ("ours", "severity")}}
    verification = [{k: c[k] for k in ("fix_id", "subscribers", "controls", "window_days", "effects", "placebo", "event_study", "verdict",
                                       "warnings", "predicted_nps_lift", "true_nps_lift", "true_nps_lift_treated", "true_nps_lift_latent")}
                    for c in checks]
    deltas = [{"fix_id": c["fix_id"], **d} for c in checks for d in c["deltas"]]
    cuts = segment(ws, last).segments.to_pylist()  # behaviour clusters, mobility, value x experience
    segments += [r for r in cuts if r["dimension"] in ("behaviour", "mobility")]
    quadrant = {r["segment"]: r for r in cuts if r["dimension"] == "value_experience"}
    quadrants = [{"value": v, "experience": e, "subscribers": q["subscribers"], "revenue": q["arpu_total"], "nps": q["nps"]}
                 for v in ("high", "low") for e in ("poor", "good") if (q := quadrant.get(quadrant_label(v, e)))]
    lift = [c["realised_nps_lift"] * c["subscribers"] for c in checks]
    return {
        "title": "OpenCEM closed-loop report", "operator": f"synthetic operator, seed {cfg.seed}", "generated": str(last),
        "nps_level": LEVELS[model.level],
        "window": [str(first), str(last - dt.timedelta(days=1))], "fix_date": str(fix_date),
        "kpis": {"base_nps": final.base["nps"], "true_nps": truth.get(str(last - dt.timedelta(days=1))), "subscribers": cfg.subscribers,
                 "episodes": ep.num_rows, "fixes_applied": len(applied),
                 "verified_nps_lift": round(sum(lift) / sum(c["subscribers"] for c in checks), 2) if checks else None},
        "nps_trend": [{"date": str(d), "nps": v, "nps_true": truth.get(str(d - dt.timedelta(days=1)))} for d, v in zip(days, trend)],
        "segments": [{"dimension": r["dimension"], "segment": r["segment"], "nps": r["nps"], "subscribers": r["subscribers"]} for r in segments],
        "grids": grids, "episodes": episodes, "fixes": fixes, "ranking": ranking, "verification": verification, "deltas": deltas,
        "value_experience": quadrants,
        "care": [{"subscriber_id": r["subscriber_id"][:12], "segment": r["plan"], "nps_class": "detractor", "cause": r["cause"], "reason": r["reason"]}
                 for r in care.slice(0, 20).to_pylist()],
        "care_total": care.num_rows,
        "campaigns": campaigns(ws, last).summary.to_pylist(),
    }


def grid_state(ws: Path, start: dt.date, end: dt.date, min_sessions: int = 50) -> list[dict]:
    """Each grid's experience over the twin's grid-hours in [start, end): mean CEI, poor share, subscribers."""
    files = sorted(str(p) for p in (Workspace(ws).twin / "state_grid_hour").rglob("*.parquet"))
    with Workspace(ws).session(tables=()) as engine:
        engine.register_parquet("state_grid_hour", files)
        return engine.query_arrow(sql_file("opencem.loop", "grid_state"), {"start": start, "end": end, "min_sessions": min_sessions},
                                  step="grid_state").to_pylist()

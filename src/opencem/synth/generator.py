"""The synthetic operator: writes every input table plus its hidden ground truth, deterministically."""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import shutil
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa

from .. import contracts
from ..errors import InputError
from .behaviour import ANSWER_NOISE_SD, TRACKER_SAMPLE, simulate_chunk
from .city import build_city, xy_to_latlon
from .faults import FixRequest, plan
from .pm import cell_quality, pm_day
from .population import PLAN_TABLE, contracts_table, make_subscribers, subscribers_table
from .radio import RadioModel
from .sessions import Context
from .writer import LakeWriter

CHUNK_SUBSCRIBERS = 10_000  # fixed, so output does not depend on the number of workers


@dataclass(frozen=True)
class SynthConfig:
    subscribers: int = 10_000
    days: int = 14
    seed: int = 7
    start: str = "2026-10-05"  # a Monday
    fmt: str = "parquet"
    fixes: bool = True
    survey_rate: float = 0.03  # share of the base answering an NPS survey per month (before bias)
    workers: int = 1
    fix_day: int | None = None  # day index of the fixes; default 60 % into the window
    apply: tuple[FixRequest, ...] = ()  # fixes asked of the operator (replace the scenario's own)

    def check(self) -> None:
        if self.subscribers < 100:
            raise InputError("--subscribers must be at least 100")
        if not 3 <= self.days <= 400:
            raise InputError("--days must be between 3 and 400")
        if not 0 < self.survey_rate <= 1:
            raise InputError("--survey-rate must be in (0, 1]")
        if self.fix_day is not None and not 1 <= self.fix_day < self.days:
            raise InputError(f"--fix-day must be between 1 and {self.days - 1} (a day index inside the window)")


_STATE: dict = {}  # shared with forked workers


def generate(out: Path, cfg: SynthConfig, progress: Callable[[int, int], None] | None = None,
             overwrite: bool = False) -> dict:
    """Generate the operator into `out` (inputs/ and truth/); returns the manifest."""
    cfg.check()
    out = Path(out)
    if out.exists() and not overwrite:
        raise FileExistsError(f"{out} exists; pass --overwrite to replace it")
    tmp = out.parent / f".{out.name}.partial-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    writer = LakeWriter(tmp, cfg.fmt)
    streams = np.random.SeedSequence(cfg.seed).spawn(5)
    rng_city, rng_sub, rng_plan, rng_pm, rng_misc = (np.random.default_rng(s) for s in streams)

    city = build_city(rng_city)
    sub = make_subscribers(cfg.subscribers, rng_sub)
    start = np.datetime64(cfg.start, "ms")
    weekday = int((np.datetime64(cfg.start, "D").astype(int) + 3) % 7)  # 1970-01-01 was a Thursday
    schedule = plan(city, cfg.days, weekday, rng_plan, with_fixes=cfg.fixes, fix_day=cfg.fix_day, requests=cfg.apply)
    ctx = Context(city, RadioModel(city), schedule, cfg.days)
    params = {
        "start_date": start, "survey_rate": cfg.survey_rate, "billing_day": cfg.days // 4,
        "price_event": (cfg.days // 2, int(rng_misc.integers(0, len(PLAN_TABLE) - 1))),
        "seed": cfg.seed, "tracker_share": min(1.0, TRACKER_SAMPLE / cfg.subscribers),
    }
    n_chunks = -(-cfg.subscribers // CHUNK_SUBSCRIBERS)
    total = cfg.days * (n_chunks + 1)
    done = 0

    def tick(k: int = 1) -> None:
        nonlocal done
        done += k
        if progress:
            progress(done, total)

    # Chunks first: worker processes are forked before this process starts Arrow's thread pools.
    _STATE.update(ctx=ctx, sub=sub, params=params, writer=writer, seed=cfg.seed)
    results: list = [None] * n_chunks
    if cfg.workers > 1 and n_chunks > 1:
        with ProcessPoolExecutor(cfg.workers, mp_context=mp.get_context("fork")) as pool:
            futures = {pool.submit(_run_chunk, c, None): c for c in range(n_chunks)}
            for fut in as_completed(futures):
                results[futures[fut]] = fut.result()
                tick(cfg.days)
    else:
        for c in range(n_chunks):
            results[c] = _run_chunk(c, tick)
    _STATE.clear()

    writer.write("subscribers", subscribers_table(sub))
    writer.write("subscriber_contracts", contracts_table(sub, start, np.random.default_rng([cfg.seed, 77])))
    writer.write("cells", city.cells_table(start))
    quality = cell_quality(ctx, rng_pm)
    for day in range(cfg.days):
        writer.write("pm", pm_day(ctx, quality, day, start, rng_pm), day=_day(start, day), part=0)
        tick()

    manifest = _write_collected(writer, cfg, ctx, sub, params, results, rng_misc)
    if out.exists():
        shutil.rmtree(out)
    tmp.rename(out)
    return manifest


def _day(start: np.datetime64, day: int) -> str:
    return str((start + np.timedelta64(day, "D")).astype("datetime64[D]"))


def _run_chunk(chunk: int, tick) -> dict:
    ctx, sub, params, writer = _STATE["ctx"], _STATE["sub"], _STATE["params"], _STATE["writer"]
    idx = np.arange(chunk * CHUNK_SUBSCRIBERS, min((chunk + 1) * CHUNK_SUBSCRIBERS, len(sub["subscriber_id"])))
    rng = np.random.default_rng([_STATE["seed"], 1000 + chunk])

    def write(name: str, day: int, table: pa.Table) -> None:
        writer.write(name, table, day=_day(params["start_date"], day), part=chunk)
        if tick and name == "xdr":
            tick()

    res = simulate_chunk(ctx, sub, idx, chunk, params, write, rng)
    writer.write("subscriber_daily", pa.concat_tables(res.pop("daily")), part=chunk, truth=True)
    return res


def _write_collected(writer: LakeWriter, cfg: SynthConfig, ctx: Context, sub, params, results, rng) -> dict:
    sch, city = ctx.schedule, ctx.city
    cat = lambda key: [t for r in results for t in r[key]]  # noqa: E731

    def concat(name: str, tables: list[pa.Table], sort: str) -> pa.Table:
        if not tables:  # a small operator over a few days may have no answer or contact at all: an empty table
            contract = contracts.get(name)
            return pa.schema([f for f in contract.arrow_schema if not contract.column(f.name).optional]).empty_table()
        return pa.concat_tables(tables).sort_by([(sort, "ascending")])

    surveys = concat("surveys", cat("surveys"), "survey_time")
    writer.write("surveys", surveys)
    writer.write("survey_invitations", concat("survey_invitations", cat("invitations"), "invite_time"))
    writer.write("nps_tracker", concat("nps_tracker", cat("tracker"), "answer_time"))
    writer.write("tariffs", _tariffs(params))
    writer.write("care_contacts", concat("care_contacts", cat("care_contacts"), "contact_time"))
    churners = pa.concat_tables([r["churners"] for r in results])
    leavers = churners.filter(churners["in_window"])
    writer.write("portouts", pa.table({
        "subscriber_id": leavers["subscriber_id"], "portout_date": leavers["portout_date"],
        "recipient_operator": rng.choice(["Opal Mobile", "Zenit", "Brisa Telecom"], len(leavers)),
    }))

    # ground truth
    writer.write("churners", churners.sort_by("subscriber_id"), truth=True)
    fault_rows = []
    for f in sch.faults:
        lat, lon = xy_to_latlon(np.array(f.center_xy[0]), np.array(f.center_xy[1]))
        fault_rows.append({
            "fault_id": f.fault_id, "cause": f.cause, "detail": f.detail,
            "start_time": params["start_date"] + np.timedelta64(f.start_min, "m"),
            "end_time": params["start_date"] + np.timedelta64(f.end_min, "m"),
            "cells": ";".join(city.cells["cell_id"][f.cells]),
            "center_lat": float(lat) if len(f.sites) else None, "center_lon": float(lon) if len(f.sites) else None,
            "radius_m": f.radius_m if len(f.sites) else None,
            "device_model": f.params.get("model"), "fixed_by": f.fixed_by,
        })
    writer.write("faults", pa.Table.from_pylist(fault_rows), truth=True)
    nonnet = [(k, d, s) for r in results for (k, d, s) in r["nonnet"]]
    writer.write("nonnetwork_events", pa.table({
        "subscriber_id": np.concatenate([s for _, _, s in nonnet]) if nonnet else np.array([], dtype=str),
        "date": pa.array(np.concatenate([np.full(len(s), _day(params["start_date"], d)) for _, d, s in nonnet])
                         if nonnet else np.array([], dtype=str)).cast(pa.date32()),
        "cause": np.concatenate([np.full(len(s), k) for k, _, s in nonnet]) if nonnet else np.array([], dtype=str),
    }), truth=True)

    nps = {}
    for r in results:
        for row in r["nps"]:
            acc = nps.setdefault(row["day"], {k: 0.0 for k in row if k != "day"})
            for k, v in row.items():
                if k != "day":
                    acc[k] += v
    nps_rows = [{
        "date": _day(params["start_date"], d), "active_subscribers": int(a["n"]),
        "nps_census": round(100 * (a["p_prom"] - a["p_det"]) / a["n"], 3),
        "nps_latent": round(100 * (a["promoters"] - a["detractors"]) / a["n"], 3),
        "mean_satisfaction": round(a["satisfaction_sum"] / a["n"], 4),
    } for d, a in sorted(nps.items())]
    nps_table = pa.Table.from_pylist(nps_rows)
    writer.write("nps_daily", nps_table.set_column(0, "date", nps_table["date"].cast(pa.date32())), truth=True)

    fix_rows = []
    affected = [t for r in results for t in r["fix_affected"]]
    aff = pa.concat_tables(affected) if affected else None
    for fx in sch.fixes:
        k = [x for r in results for x in r["fix_kqi"] if x["fix_id"] == fx.fix_id]
        tot = {key: sum(x[key] for x in k) for key in ("n", "n_data", "thr_with", "thr_without", "rtt_with",
                                                       "rtt_without", "bad_with", "bad_without")}
        a = aff.filter(pa.compute.equal(aff["fix_id"], fx.fix_id)) if aff is not None else None
        sw = np.asarray(a["satisfaction_with_fix"]) if a is not None else np.array([])
        so = np.asarray(a["satisfaction_without_fix"]) if a is not None else np.array([])
        fix_rows.append({
            "fix_id": fx.fix_id, "action": fx.action, "target": fx.target, "fault_id": fx.fault_id or None,
            "fix_date": _day(params["start_date"], fx.day),
            "cells": ";".join(city.cells["cell_id"][fx.cells]),
            "sessions_affected": tot["n"], "subscribers_affected": len(sw),
            "mean_throughput_kbps_with": tot["thr_with"] / max(tot["n_data"], 1),
            "mean_throughput_kbps_without": tot["thr_without"] / max(tot["n_data"], 1),
            "mean_rtt_ms_with": tot["rtt_with"] / max(tot["n_data"], 1),
            "mean_rtt_ms_without": tot["rtt_without"] / max(tot["n_data"], 1),
            "bad_session_share_with": tot["bad_with"] / max(tot["n"], 1),
            "bad_session_share_without": tot["bad_without"] / max(tot["n"], 1),
            "mean_satisfaction_with": float(sw.mean()) if len(sw) else None,
            "mean_satisfaction_without": float(so.mean()) if len(so) else None,
            "nps_with": _nps(sw), "nps_without": _nps(so),
            # what surveys would show: every touched customer's expected answer, day by day
            "nps_census_with": 100 * float(np.asarray(a["answer_nps_with_fix"]).mean()) if len(sw) else None,
            "nps_census_without": 100 * float(np.asarray(a["answer_nps_without_fix"]).mean()) if len(so) else None,
        })
    if fix_rows:
        writer.write("fixes", pa.Table.from_pylist(fix_rows), truth=True)
        writer.write("fix_affected", aff, truth=True)

    manifest = {
        "generator": "opencem.synth", "config": asdict(cfg),
        "window": {"start": cfg.start, "end": _day(params["start_date"], cfg.days)},
        "answer_noise_sd": ANSWER_NOISE_SD,
        "nps_definitions": {
            "nps_census": "expected NPS if every active subscriber answered (latent satisfaction + answer noise)",
            "nps_latent": "NPS of the latent satisfaction rounded to 0-10",
        },
        "counts": {"sites": city.n_sites, "cells": city.n_cells, "faults": len(sch.faults),
                   "fixes": len(sch.fixes), "surveys": surveys.num_rows, "portouts": leavers.num_rows},
        "events": {"billing_error_day": params["billing_day"],
                   "price_increase": {"day": params["price_event"][0], "plan": list(PLAN_TABLE)[params["price_event"][1]]}},
    }
    (writer.root / "truth" / "manifest.json").write_text(json.dumps(manifest, indent=2, default=str))
    return manifest


PRICE_INCREASE = 0.12  # the price event raises one plan's monthly price by this share


def _tariffs(params) -> pa.Table:
    """Each plan's list price (its typical ARPU) for the year before the window; the plan of the price
    event costs more from that day on."""
    start = params["start_date"].astype("datetime64[D]")
    day, plan_i = params["price_event"]
    change = start + np.timedelta64(day, "D")
    rows = []
    for i, (name, spec) in enumerate(PLAN_TABLE.items()):
        price, since = float(spec[1]), start - np.timedelta64(365, "D")
        if i == plan_i:
            rows.append({"plan": name, "monthly_price": price, "valid_from": since, "valid_to": change - np.timedelta64(1, "D")})
            price, since = round(price * (1 + PRICE_INCREASE), 2), change
        rows.append({"plan": name, "monthly_price": price, "valid_from": since, "valid_to": None})
    return pa.Table.from_pylist([{**r, "valid_from": r["valid_from"].item(),
                                  "valid_to": None if r["valid_to"] is None else r["valid_to"].item()} for r in rows])


def _nps(s: np.ndarray) -> float | None:
    if not len(s):
        return None
    r = np.round(np.clip(s, 0, 10))
    return float(100 * ((r >= 9).mean() - (r <= 6).mean()))


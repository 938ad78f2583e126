"""What `opencem segments` and `opencem campaigns` share: the as-of day (a day the NPS stage scored), the
scored base with its churn risk, each subscriber's behaviour, and the writing of a day's tables."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pcsv
import pyarrow.parquet as pq

from ..engine import Engine
from ..engine.files import atomic_dir
from ..engine.pipeline import sql_file
from ..errors import InputError
from ..workspace import Workspace

WINDOW_DAYS = 28  # the days of behaviour before the as-of day that segments and campaigns read
NR_RAT = "NR"  # the 3GPP RAT of 5G (the xDR contract's closed vocabulary: LTE, NR)
DAY_PARTS = ("night", "morning", "afternoon", "evening")  # 00-06, 06-12, 12-18, 18-24 local time
CHURN_NEEDED = "churn risk, retention and win-back causes need `opencem score churn` first"

NO_CHURN = pa.schema([("subscriber_id", pa.string()), ("p_4m", pa.float64()), ("cause", pa.string())])


def scored_days(ws: Workspace) -> list[dt.date]:
    folder = ws.nps / "scores"
    days = []
    for p in sorted(folder.glob("as_of=*")) if folder.is_dir() else []:
        try:
            days.append(dt.date.fromisoformat(p.name[6:]))
        except ValueError:
            continue
    return days


def resolve_as_of(ws: Workspace, as_of: dt.date | None) -> dt.date:
    """The day to segment: ``as_of`` if the NPS stage scored it, else the latest scored day; one-line errors."""
    days = scored_days(ws)
    if not days:
        raise InputError(f"{ws.nps / 'scores'}: no NPS scores here; run `opencem score --workspace {ws.root}` first")
    if as_of is None:
        return days[-1]
    if as_of not in days:
        listed = ", ".join(d.isoformat() for d in days[-5:])
        raise InputError(f"--as-of {as_of}: the NPS stage has not scored that day (scored: {listed}); "
                         f"run `opencem score --as-of {as_of}` first")
    return as_of


def churn_files(ws: Workspace, table: str, as_of: dt.date) -> list[str]:
    """The churn stage's Parquet files of ``table`` for the day, or none."""
    folder = ws.churn / table / f"as_of={as_of}"
    return sorted(str(p) for p in folder.rglob("*.parquet")) if folder.is_dir() else []


@dataclass
class Base:
    """The scored base as of a day: one row per subscriber (sorted by id) with value, NPS estimate, places,
    device, consent and churn risk (``has_churn``: whether the churn model scored the day)."""
    as_of: dt.date
    members: pa.Table
    has_churn: bool


def load_base(engine: Engine, ws: Workspace, as_of: dt.date) -> Base:
    engine.register_parquet("nps_scores", sorted(str(p) for p in (ws.nps / "scores" / f"as_of={as_of}").glob("*.parquet")),
                            hive_partitioning=False)
    files = churn_files(ws, "scores", as_of)
    if files:
        engine.register_parquet("churn_scores", files, hive_partitioning=False)
    else:
        engine.register_arrow("churn_scores", NO_CHURN.empty_table())
    members = engine.query_arrow(sql_file("opencem.segments", "members"), step="members")
    order = np.argsort(members["subscriber_id"].to_numpy(zero_copy_only=False).astype(object), kind="stable")
    return Base(as_of, members.take(order), bool(files))


@dataclass
class Behaviour:
    """Each subscriber's behaviour in the window before the as-of day, row i for ``ids[i]`` (sorted).

    ``services``: the service names the xDR holds (the operator's data), ``service_sessions`` their
    sessions per subscriber; ``part_sessions`` sessions per part of the day (:data:`DAY_PARTS`);
    ``mb_per_day`` data volume per day of the window; ``nr_share`` the share of sessions on NR;
    mobility: ``home_work_km``, ``gyration_km``, ``sites_per_day`` (NaN where unknown)."""
    ids: np.ndarray
    services: list[str]
    service_sessions: np.ndarray
    part_sessions: np.ndarray
    mb_per_day: np.ndarray
    nr_share: np.ndarray
    home_work_km: np.ndarray
    gyration_km: np.ndarray
    sites_per_day: np.ndarray

    @property
    def sessions(self) -> np.ndarray:
        return self.service_sessions.sum(axis=1)


def load_behaviour(engine: Engine, ids: np.ndarray, as_of: dt.date, timezone: str, window_days: int = WINDOW_DAYS) -> Behaviour:
    """Behaviour of the subscribers ``ids`` (sorted) from the xDR and measure's per-subscriber summaries."""
    params = {"start": as_of - dt.timedelta(days=window_days), "as_of": as_of, "timezone": timezone}
    u = engine.query_arrow(sql_file("opencem.segments", "usage"), {**params, "nr_rat": NR_RAT}, step="usage")
    m = engine.query_arrow(sql_file("opencem.segments", "mobility"), params, step="mobility")
    sid = u["subscriber_id"].to_numpy(zero_copy_only=False).astype(object)
    row = _positions(ids, sid)
    service = np.asarray(u["service"].to_pylist(), dtype=object)
    part = u["day_part"].to_numpy(zero_copy_only=False)
    n = u["sessions"].to_numpy(zero_copy_only=False).astype(float)
    is_service = np.array([s is not None for s in service])
    services = sorted({s for s in service[is_service]})
    s_idx = np.searchsorted(services, service[is_service].astype(str)) if services else np.zeros(0, dtype=int)
    ok = row >= 0
    svc = np.zeros((len(ids), len(services)))
    np.add.at(svc, (row[is_service & ok], s_idx[ok[is_service]]), n[is_service & ok])
    parts = np.zeros((len(ids), len(DAY_PARTS)))
    pr = ~is_service & ok
    np.add.at(parts, (row[pr], np.nan_to_num(part[pr].astype(float)).astype(int)), n[pr])
    nbytes = u["bytes"].to_numpy(zero_copy_only=False).astype(float)
    nr = u["nr_sessions"].to_numpy(zero_copy_only=False).astype(float)
    mb = np.zeros(len(ids))
    nr_n = np.zeros(len(ids))
    np.add.at(mb, row[is_service & ok], nbytes[is_service & ok])
    np.add.at(nr_n, row[is_service & ok], nr[is_service & ok])
    total = svc.sum(axis=1)
    mrow = _positions(ids, m["subscriber_id"].to_numpy(zero_copy_only=False).astype(object))

    def col(name: str) -> np.ndarray:
        out = np.full(len(ids), np.nan)
        v = m[name].to_numpy(zero_copy_only=False).astype(float)
        out[mrow[mrow >= 0]] = v[mrow >= 0]
        return out

    return Behaviour(ids, services, svc, parts, np.round(mb / 1e6 / window_days, 6),
                     np.divide(nr_n, total, out=np.zeros(len(ids)), where=total > 0),
                     col("home_work_km"), col("gyration_km"), col("sites_per_day"))


def _positions(sorted_ids: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Index of each value in ``sorted_ids``, -1 where absent."""
    if len(sorted_ids) == 0:
        return np.full(len(values), -1)
    pos = np.clip(np.searchsorted(sorted_ids, values), 0, len(sorted_ids) - 1)
    return np.where(sorted_ids[pos] == values, pos, -1)


def write_day(folder: Path, as_of: dt.date, tables: dict[str, pa.Table], csv: bool = False) -> Path:
    """Write one day's tables atomically to ``folder/as_of=D/`` (a re-run replaces the day whole): each as
    ``<name>.parquet`` and, with ``csv``, ``<name>.csv``."""
    target = folder / f"as_of={as_of}"
    with atomic_dir(target) as tmp:
        tmp.mkdir()
        for name, t in tables.items():
            pq.write_table(t, tmp / f"{name}.parquet")
            if csv:
                pcsv.write_csv(t, tmp / f"{name}.csv")
    return target

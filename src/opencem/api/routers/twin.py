"""The digital twin: grid state as GeoJSON, poor-experience episodes; and an NWDAF-style observed service
experience (after TS 29.520 ServiceExperienceInfo) per grid and service."""

from __future__ import annotations

import datetime as dt
import math
import statistics

from fastapi import APIRouter, Path, Query, Request

from ..app import Caller, Context, error_responses, require
from ..errors import ApiError, invalid_argument
from ..models import EpisodeList, NetworkArea, ServiceExperienceInfo, ServiceExperienceResponse, SvcExperience
from ..shapes import hexagon

router = APIRouter(tags=["Twin and service experience"])
_METRICS = ("sessions", "poor_sessions", "poor_share", "fail_share", "cei", "rtt_ms_p50", "thp_dl_kbps_p50",
            "prb_util_dl", "rsrp_dbm_p50", "sinr_db_p50", "hours")
_SUPPRESS = ("subscribers", "affected_subscribers", "affected_arpu")


def _twin(ctx: Context) -> None:
    if "state_grid_hour" not in ctx.store.tables:
        raise ApiError(404, "NOT_FOUND", "This workspace has no twin: run `opencem diagnose` on it.")


def _clean(v):
    if isinstance(v, float) and not math.isfinite(v):
        return None
    if isinstance(v, dt.datetime):
        return (v if v.tzinfo else v.replace(tzinfo=dt.UTC)).isoformat().replace("+00:00", "Z")
    if isinstance(v, dt.date):
        return v.isoformat()
    return v


@router.get("/twin/v1/grid-state", summary="Grid state over a time window as a GeoJSON FeatureCollection",
            description="One Feature (H3 hexagon) per grid with at least the minimum group size of subscribers in one "
                        "of the window's hours; metrics are session-weighted over the window. Default window: the "
                        "last 24 hours of the data.",
            responses={200: {"content": {"application/geo+json": {}}, "description": "GeoJSON FeatureCollection"},
                       **error_responses(400, 401, 403, 404, 429)})
def grid_state(request: Request, caller: Caller = require("twin:read", "twin"),
               start: dt.datetime | None = Query(None, description="RFC 3339; default: end - 24 h"),
               end: dt.datetime | None = Query(None, description="RFC 3339; default: start + 24 h, or the end of the data")) -> dict:
    ctx: Context = request.app.state.ctx
    _twin(ctx)
    day = dt.timedelta(hours=24)
    start, end = [None if t is None else (t if t.tzinfo else t.replace(tzinfo=dt.UTC)).astimezone(dt.UTC) for t in (start, end)]
    if start is None:
        end = end or ctx.store.twin_end
        start = end - day
    elif end is None:
        end = start + day
    if end <= start or end - start > dt.timedelta(days=31):
        raise invalid_argument("start must be before end, at most 31 days apart")
    k = ctx.settings.min_group
    rows = ctx.store.query("grid_state", {"start": start.replace(tzinfo=None), "end": end.replace(tzinfo=None)})
    features, suppressed = [], 0
    for r in rows:
        if (r["subscribers_max_hour"] or 0) < k:
            suppressed += 1
            continue
        ring = [[round(lon, 6), round(lat, 6)] for lat, lon in hexagon(r["grid"])]
        ring.append(ring[0])
        props = {"grid": r["grid"], "subscribersMaxHour": r["subscribers_max_hour"], **{m: _clean(r[m]) for m in _METRICS}}
        features.append({"type": "Feature", "id": r["grid"], "geometry": {"type": "Polygon", "coordinates": [ring]},
                         "properties": props})
    return {"type": "FeatureCollection", "features": features, "start": _clean(start), "end": _clean(end),
            "minGroupSize": k, "suppressed": suppressed}


def _episode(ctx: Context, e: dict) -> dict:
    out = {key: _clean(v) for key, v in e.items()}
    if (e.get("affected_subscribers") or 0) < ctx.settings.min_group:
        for key in _SUPPRESS:
            out[key] = None
        out["suppressed"] = True
    return out


@router.get("/twin/v1/episodes", response_model=EpisodeList, summary="Poor-experience episodes with root cause",
            responses=error_responses(400, 401, 403, 404, 429))
def episodes(request: Request, caller: Caller = require("twin:read", "twin"),
             cause: str | None = Query(None, max_length=64)) -> EpisodeList:
    ctx: Context = request.app.state.ctx
    if ctx.store.episodes is None:
        raise ApiError(404, "NOT_FOUND", "This workspace has no episodes: run `opencem diagnose` on it.")
    items = [_episode(ctx, e) for e in ctx.store.episodes if cause is None or e.get("cause") == cause]
    return EpisodeList(minGroupSize=ctx.settings.min_group, items=items)


@router.get("/twin/v1/episodes/{episodeId}", summary="One episode", responses=error_responses(400, 401, 403, 404, 429))
def episode(request: Request, episodeId: str = Path(max_length=64), caller: Caller = require("twin:read", "twin")) -> dict:
    ctx: Context = request.app.state.ctx
    for e in ctx.store.episodes or []:
        if e.get("episode_id") == episodeId:
            return _episode(ctx, e)
    raise ApiError(404, "NOT_FOUND", f"No episode {episodeId}.")


_TYPE = {"voice": "VOICE", "video": "VIDEO"}


def _mos(cei: float) -> float:
    """CEI (0-100) on the MOS scale (1-5)."""
    return 1.0 + 4.0 * max(0.0, min(100.0, cei)) / 100.0


@router.get("/nwdaf/v1/service-experience", response_model=ServiceExperienceResponse,
            summary="Observed service experience per grid and service (NWDAF SERVICE_EXPERIENCE style)",
            description="Per subscriber's main grid and service: the mean of the subscribers' mean CEI over the days, "
                        "on a 1-5 MOS scale; range +-0.5 MOS; ratio = share of UEs within the range. Groups with fewer "
                        "UEs than the minimum group size are left out.",
            responses=error_responses(400, 401, 403, 404, 429))
def service_experience(request: Request, caller: Caller = require("service-experience:read", "service-experience"),
                       days: int = Query(7, ge=1, le=31), service: str | None = Query(None, max_length=32),
                       grid: str | None = Query(None, pattern=r"^[0-9a-f]{15}$")) -> ServiceExperienceResponse:
    ctx: Context = request.app.state.ctx
    if "scores" not in ctx.store.tables or "cei_service_day" not in ctx.store.tables:
        raise ApiError(404, "NOT_FOUND", "This workspace has no scores or service CEI: run `opencem measure` and `opencem score`.")
    last = ctx.store.data_end.date() if ctx.store.data_end else dt.date.today()
    first = last - dt.timedelta(days=days - 1)
    groups: dict[tuple[str, str], list[float]] = {}
    for r in ctx.store.query("service_experience", {"first": first, "last": last}):
        if (service is None or r["service"] == service) and (grid is None or r["grid"] == grid):
            groups.setdefault((r["grid"], r["service"]), []).append(_mos(r["cei"]))
    k = ctx.settings.min_group
    infos = []
    for (g, svc), values in sorted(groups.items()):
        if len(values) < k:
            continue
        mean = statistics.fmean(values)
        lo, hi = max(1.0, mean - 0.5), min(5.0, mean + 0.5)
        within = sum(lo <= v <= hi for v in values)
        infos.append(ServiceExperienceInfo(
            appId=svc, srvExpcType=_TYPE.get(svc, "OTHER"),
            svcExprc=SvcExperience(mos=round(mean, 3), lowerRange=round(lo, 3), upperRange=round(hi, 3)),
            svcExprcVariance=round(statistics.pvariance(values), 4), ratio=round(100 * within / len(values)),
            ueCount=len(values), networkArea=NetworkArea(h3Cells=[g])))
    return ServiceExperienceResponse(start=first, end=last, minGroupSize=k, serviceExperienceInfos=infos)

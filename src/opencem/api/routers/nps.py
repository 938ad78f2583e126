"""NPS of the base, segments and grids (aggregates, minimum group size), and one subscriber's experience and
NPS class by pseudonymous id (scope ``experience:read``; only for a subscriber with ``consent_preferences``:
what a person's experience is like is data on that person)."""

from __future__ import annotations

import datetime as dt

from fastapi import APIRouter, Path, Query, Request

from ..app import Caller, Context, error_responses, require
from ..errors import ApiError, permission_denied
from ..models import DayExperience, NpsFigure, NpsList, SubscriberExperience

router = APIRouter(tags=["NPS and experience"])
PSEUDONYM = r"^[0-9a-f]{32}$"


def _figures(ctx: Context, dimension: str | None) -> NpsList:
    if not ctx.store.nps_segments:
        raise ApiError(404, "NOT_FOUND", "This workspace has no NPS figures: run `opencem score` on it.")
    k = ctx.settings.min_group
    rows = [r for r in ctx.store.nps_segments if dimension is None or r["dimension"] == dimension]
    keep = [r for r in rows if (r.get("subscribers") or 0) >= k]
    return NpsList(asOf=ctx.store.nps_as_of, minGroupSize=k, suppressed=len(rows) - len(keep),
                   items=[NpsFigure(**{f: r.get(f) for f in NpsFigure.model_fields}) for r in keep])


@router.get("/nps/v1/base", response_model=NpsList, summary="NPS of the whole base",
            responses=error_responses(401, 403, 404, 429))
def nps_base(request: Request, caller: Caller = require("nps:read", "nps")) -> NpsList:
    return _figures(request.app.state.ctx, "base")


@router.get("/nps/v1/segments", response_model=NpsList, summary="NPS per segment (groups of at least the minimum size)",
            responses=error_responses(400, 401, 403, 404, 429))
def nps_segments(request: Request, caller: Caller = require("nps:read", "nps"),
                 dimension: str | None = Query(None, max_length=64, description="e.g. plan, home_area, value_tier, device_model")) -> NpsList:
    return _figures(request.app.state.ctx, dimension)


@router.get("/nps/v1/grids/{grid}", response_model=NpsFigure, summary="NPS of one grid (H3 cell)",
            responses=error_responses(400, 401, 403, 404, 429))
def nps_grid(request: Request, grid: str = Path(pattern=r"^[0-9a-f]{15}$"), caller: Caller = require("nps:read", "nps")) -> NpsFigure:
    figures = _figures(request.app.state.ctx, "grid")
    for f in figures.items:
        if f.segment == grid:
            return f
    raise ApiError(404, "NOT_FOUND", f"No NPS figure for grid {grid} with at least {figures.minGroupSize} subscribers.")


@router.get("/experience/v1/subscribers/{subscriberId}", response_model=SubscriberExperience,
            summary="A subscriber's experience (CEI per day) and NPS class, by pseudonymous id",
            responses=error_responses(400, 401, 403, 404, 429))
def subscriber_experience(request: Request, subscriberId: str = Path(pattern=PSEUDONYM),
                          days: int = Query(14, ge=1, le=92), caller: Caller = require("experience:read", "experience")) -> SubscriberExperience:
    ctx: Context = request.app.state.ctx
    request.state.subject = subscriberId
    if subscriberId not in ctx.store.subscribers:
        raise ApiError(404, "IDENTIFIER_NOT_FOUND", "Subscriber not found.")
    if not ctx.store.subscribers[subscriberId].consent_preferences:
        raise permission_denied("The subscriber has not consented to this use of their data.")
    score = {}
    if "scores" in ctx.store.tables:
        rows = ctx.store.query("subscriber_score", {"subscriber": subscriberId})
        score = rows[0] if rows else {}
    day_rows = []
    if "cei_subscriber_day" in ctx.store.tables:
        last = ctx.store.data_end.date() if ctx.store.data_end else dt.date.today()
        day_rows = ctx.store.query("subscriber_experience", {"subscriber": subscriberId, "first": last - dt.timedelta(days=days - 1), "last": last})
    return SubscriberExperience(
        subscriberId=subscriberId, asOf=score.get("as_of"), npsClass=score.get("predicted_class"),
        pPromoter=score.get("p_promoter"), pPassive=score.get("p_passive"), pDetractor=score.get("p_detractor"),
        expectedScore=score.get("expected_score"), riskFlag=score.get("risk_flag"),
        topNetworkDriver=score.get("top_network_driver"), networkDrivers=score.get("network_drivers"), grid=score.get("grid"),
        days=[DayExperience(**r) for r in day_rows])

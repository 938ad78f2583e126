"""The user-preference API: what a consenting subscriber uses (services by volume, usage, device, plan).
Without ``consent_preferences``: 403 PERMISSION_DENIED, and the refusal is in the audit log."""

from __future__ import annotations

import datetime as dt

from fastapi import APIRouter, Request

from ..app import Caller, Context, error_responses, require
from ..models import PreferencesRequest, ServiceUse, UserPreferences
from .camara import resolve

router = APIRouter(tags=["User preferences"])
WINDOW_DAYS = 28


@router.post("/user-preferences/v1/retrieve", response_model=UserPreferences, response_model_exclude_none=True,
             summary="A consenting subscriber's preferences", responses=error_responses(400, 401, 403, 404, 422, 429))
def retrieve_preferences(request: Request, body: PreferencesRequest,
                         caller: Caller = require("user-preferences:read", "user-preferences")) -> UserPreferences:
    ctx: Context = request.app.state.ctx
    pid, sub = resolve(request, ctx, body.device, "consent_preferences")
    services, per_day = [], None
    if "cei_service_day" in ctx.store.tables:
        last = ctx.store.data_end.date() if ctx.store.data_end else dt.date.today()
        rows = ctx.store.query("subscriber_services", {"subscriber": pid, "first": last - dt.timedelta(days=WINDOW_DAYS - 1), "last": last})
        services = [ServiceUse(service=r["service"], sessions=int(r["sessions"]), volumeMb=round(r["volume_mb"] or 0.0, 1),
                               days=int(r["days"])) for r in rows]
        per_day = round(sum(s.volumeMb for s in services) / WINDOW_DAYS, 1) if services else 0.0
    return UserPreferences(preferredServices=services, dataUsageMbPerDay=per_day, deviceCapability=sub.device_capability,
                           deviceVendor=sub.device_vendor, plan=sub.plan)

"""CAMARA Device Location (retrieval v0.5, verification v3.0) and Population Density Data (v0.3).

A device is named by ``phoneNumber`` only (two-legged tokens): it is pseudonymised with the workspace key
and looked up; the raw number is never kept, logged or returned (the optional ``device`` of CAMARA's
responses is left out for that reason). A subscriber without ``consent_location`` gets 403.
"""

from __future__ import annotations

import datetime as dt
import math

import h3
from fastapi import APIRouter, Request

from ...geo import DEFAULT_RESOLUTION
from ..app import Caller, Context, error_responses, require
from ..errors import ApiError, permission_denied
from ..models import (
    CellPopulationDensityData,
    Circle,
    CircleOut,
    Device,
    Location,
    Point,
    PolygonOut,
    PopulationDensityRequest,
    PopulationDensityResponse,
    RetrievalLocationRequest,
    TimedPopulationDensityData,
    VerifyLocationRequest,
    VerifyLocationResponse,
)
from ..shapes import Shape, geohash_bbox, geohash_cells, hexagon, is_simple, overlap, polygon_area_m2
from ..store import Position, Subscriber

router = APIRouter()
MIN_VERIFY_RADIUS_M = 100.0  # below it the network's estimate (a ~0.1 km2 hexagon at best) cannot answer
COVERAGE_MARGIN_DEG = 0.05  # about 5 km around the outermost sites
MAX_DENSITY_AREA_KM2 = 500.0
MIN_PRECISION, MAX_PRECISION = 5, 7  # geohash levels: 4.9 km to 153 m cells; finer than the grid or coarser is refused
MAX_PERIOD = dt.timedelta(days=7)
HORIZON = dt.timedelta(days=92)  # CAMARA: start no earlier than 3 months before the request, end no later than 3 after


def resolve(request: Request, ctx: Context, device: Device | None, consent: str) -> tuple[str, Subscriber]:
    """The pseudonymous id and record of the subscriber a CAMARA ``device`` names, its consent checked."""
    if device is None:
        raise ApiError(422, "MISSING_IDENTIFIER", "The device cannot be identified: give device.phoneNumber "
                                                  "(this server issues two-legged tokens only).")
    if device.phoneNumber is None:
        raise ApiError(422, "UNSUPPORTED_IDENTIFIER", "The identifier provided is not supported: use phoneNumber.")
    pid = ctx.store.pseudonym(device.phoneNumber)
    sub = ctx.store.subscribers.get(pid)
    if sub is None:
        raise ApiError(404, "IDENTIFIER_NOT_FOUND", "Device identifier not found.")
    request.state.subject = pid
    if not getattr(sub, consent):
        raise permission_denied("The subscriber has not consented to this use of their data.")
    return pid, sub


def estimate(pos: Position) -> Shape:
    if pos.hex_cell:
        return Shape(boundary=hexagon(pos.hex_cell))
    return Shape(center=(pos.lat, pos.lon), radius_m=pos.radius_m)


def check_age(ctx: Context, pos: Position, max_age: int | None, code: str) -> None:
    if max_age is None:
        return
    age = (ctx.now() - pos.time).total_seconds()
    if max_age == 0 or age > max_age:
        raise ApiError(422, code, f"Unable to provide expected freshness for location: the last location is "
                                  f"{max(0, int(age))} s old (the data is batch, read from the workspace).")


@router.post("/location-retrieval/v0.5/retrieve", tags=["Location retrieval"], response_model=Location,
             response_model_exclude_none=True, summary="Execute location retrieval for a user device",
             responses=error_responses(400, 401, 403, 404, 422, 429))
async def retrieve_location(request: Request, body: RetrievalLocationRequest,
                            caller: Caller = require("location-retrieval:read", "location-retrieval")) -> Location:
    ctx: Context = request.app.state.ctx
    pid, _ = resolve(request, ctx, body.device, "consent_location")
    pos = ctx.store.positions.get(pid)
    if pos is None:
        raise ApiError(422, "LOCATION_RETRIEVAL.UNABLE_TO_LOCATE", "The network is unable to locate the device.")
    check_age(ctx, pos, body.maxAge, "LOCATION_RETRIEVAL.UNABLE_TO_FULFILL_MAX_AGE")
    shape = estimate(pos)
    if body.maxSurface is not None and shape.area_m2() > body.maxSurface:
        raise ApiError(422, "LOCATION_RETRIEVAL.UNABLE_TO_FULFILL_MAX_SURFACE",
                       f"Unable to provide accurate acceptable surface for location: the smallest area is {shape.area_m2():.0f} m2.")
    if shape.is_circle:
        area = CircleOut(center=Point(latitude=round(pos.lat, 6), longitude=round(pos.lon, 6)), radius=shape.radius_m)
    else:
        area = PolygonOut(boundary=[Point(latitude=round(a, 6), longitude=round(b, 6)) for a, b in shape.boundary])
    return Location(lastLocationTime=pos.time, area=area)


def _shape(area) -> Shape:
    if isinstance(area, Circle):
        return Shape(center=(area.center.latitude, area.center.longitude), radius_m=area.radius)
    return Shape(boundary=[(p.latitude, p.longitude) for p in area.boundary])


def _covered(ctx: Context, shape: Shape) -> bool:
    box = ctx.store.cell_bbox
    if box is None:
        return False
    la0, lo0, la1, lo1 = shape.bbox()
    m = COVERAGE_MARGIN_DEG
    return not (la1 < box[0] - m or la0 > box[2] + m or lo1 < box[1] - m or lo0 > box[3] + m)


@router.post("/location-verification/v3/verify", tags=["Location verification"], response_model=VerifyLocationResponse,
             response_model_exclude_none=True, summary="Verify the location of a device",
             description="CIRCLE as in CAMARA v3; POLYGON (3-15 points, simple) is accepted as an extension.",
             responses=error_responses(400, 401, 403, 404, 422, 429))
async def verify_location(request: Request, body: VerifyLocationRequest,
                          caller: Caller = require("location-verification:verify", "location-verification")) -> VerifyLocationResponse:
    ctx: Context = request.app.state.ctx
    requested = _shape(body.area)
    if requested.is_circle and requested.radius_m < MIN_VERIFY_RADIUS_M:
        raise ApiError(422, "LOCATION_VERIFICATION.INVALID_AREA", f"The requested area is too small: the radius must be at least {MIN_VERIFY_RADIUS_M:.0f} m.")
    if not requested.is_circle and (not is_simple(requested.boundary)
                                    or polygon_area_m2(requested.boundary) < math.pi * MIN_VERIFY_RADIUS_M ** 2):
        raise ApiError(422, "LOCATION_VERIFICATION.INVALID_AREA",
                       "The requested area is invalid: the polygon must be simple and at least 31,416 m2.")
    if not _covered(ctx, requested):
        raise ApiError(422, "LOCATION_VERIFICATION.AREA_NOT_COVERED", "Unable to cover the requested area.")
    pid, _ = resolve(request, ctx, body.device, "consent_location")
    pos = ctx.store.positions.get(pid)
    if pos is None:
        raise ApiError(422, "LOCATION_VERIFICATION.UNABLE_TO_LOCATE", "The network is unable to locate the device.")
    check_age(ctx, pos, body.maxAge, "LOCATION_VERIFICATION.UNABLE_TO_FULFILL_MAX_AGE")
    share = overlap(estimate(pos), requested)
    if share >= 0.995:
        return VerifyLocationResponse(verificationResult="TRUE", lastLocationTime=pos.time)
    if share <= 0.0:
        return VerifyLocationResponse(verificationResult="FALSE", lastLocationTime=pos.time)
    return VerifyLocationResponse(verificationResult="PARTIAL", lastLocationTime=pos.time,
                                  matchRate=min(99, max(1, round(share * 100))))


# -- population density -------------------------------------------------------------------------------

def _hours(start: dt.datetime, end: dt.datetime) -> list[dt.datetime]:
    h = start.astimezone(dt.UTC).replace(minute=0, second=0, microsecond=0)
    out = []
    while h < end or not out:
        out.append(h)
        h += dt.timedelta(hours=1)
    return out


def _h3_of_geohash(code: str) -> tuple[list[str], float]:
    """The H3 cells (twin resolution) standing for a geohash cell, and their area in km2: those whose centre
    lies in it, or the one holding its centre when it is smaller than a hexagon."""
    la0, lo0, la1, lo1 = geohash_bbox(code)
    poly = h3.LatLngPoly([(la0, lo0), (la0, lo1), (la1, lo1), (la1, lo0)])
    cells = list(h3.h3shape_to_cells(poly, DEFAULT_RESOLUTION))
    if not cells:
        cells = [h3.latlng_to_cell((la0 + la1) / 2, (lo0 + lo1) / 2, DEFAULT_RESOLUTION)]
    return cells, sum(h3.cell_area(c, "km^2") for c in cells)


def _bad(code: str, message: str, status: int = 400) -> ApiError:
    return ApiError(status, f"POPULATION_DENSITY_DATA.{code}", message)


@router.post("/population-density-data/v0.3/retrieve", tags=["Population Density Data"],
             response_model=PopulationDensityResponse, response_model_exclude_none=True,
             summary="Retrieves population density information in a specified area",
             description="Density of the operator's active subscribers (sessions per grid and hour of the twin), "
                         "per geohash cell (precision 5-7) and hour. Cells with fewer subscribers than the minimum "
                         "group size are LOW_DENSITY. Past periods only; synchronous only.",
             responses=error_responses(400, 401, 403, 404, 422, 429))
def population_density(request: Request, body: PopulationDensityRequest,
                       caller: Caller = require("population-density-data:read", "population-density-data")) -> PopulationDensityResponse:
    ctx: Context = request.app.state.ctx
    k = ctx.settings.min_group
    if body.sink is not None or body.sinkCredential is not None:
        raise ApiError(400, "INVALID_SINK", "This server answers synchronously only: leave out sink and sinkCredential.")
    boundary = [(p.latitude, p.longitude) for p in body.area.boundary]
    if not is_simple(boundary) or polygon_area_m2(boundary) / 1e6 > MAX_DENSITY_AREA_KM2:
        raise _bad("INVALID_AREA", f"The area is not a simple polygon or exceeds {MAX_DENSITY_AREA_KM2:.0f} km2.")
    now = ctx.now()
    if body.endTime < body.startTime:
        raise _bad("INVALID_END_TIME", "Indicated endTime is earlier than the startTime.")
    if body.endTime - body.startTime > MAX_PERIOD:
        raise _bad("MAX_TIME_PERIOD_EXCEEDED", "Indicated time period is greater than the maximum allowed (7 days).")
    if body.startTime < now - HORIZON:
        raise _bad("MIN_STARTTIME_EXCEEDED", "Indicated startTime is earlier than the minimum allowed (3 months before now).")
    if body.startTime > now + HORIZON:
        raise _bad("MAX_STARTTIME_EXCEEDED", "Indicated startTime is greater than the maximum allowed (3 months after now).")
    if body.startTime < now < body.endTime:
        raise _bad("INVALID_TIME_PERIOD", "Indicated time period is partially in the past and partially in the future.")
    if body.startTime >= now:
        raise _bad("UNSUPPORTED_REQUEST", "This server has no forecast: ask for a past period.", 422)
    if not MIN_PRECISION <= body.precision <= MAX_PRECISION:
        raise _bad("UNSUPPORTED_PRECISION", f"Indicated cell precision (Geohash level) is not supported: use "
                                            f"{MIN_PRECISION}-{MAX_PRECISION} (the twin's grid is H3 resolution 9, about "
                                            "0.1 km2; a level-5 cell is about 24 km2).", 422)
    shape = Shape(boundary=boundary)
    codes = geohash_cells(shape, body.precision, ctx.settings.max_density_cells)
    hours = _hours(body.startTime, body.endTime)
    if codes is None or len(codes) * len(hours) > ctx.settings.max_density_values:
        raise _bad("UNSUPPORTED_REQUEST", "Indicated combination of area, time interval and precision is too big.", 422)

    members = {c: _h3_of_geohash(c) for c in codes}
    grids = ctx.store.grids
    covered = {c for c, (cells, _) in members.items() if any(g in grids for g in cells)}
    if not covered:
        return PopulationDensityResponse(timedPopulationDensityData=[], status="AREA_NOT_SUPPORTED")
    wanted = sorted({g for c in covered for g in members[c][0]})
    counts: dict[tuple[str, dt.datetime], int] = {}
    for r in ctx.store.query("grid_hour_counts", {"start": hours[0].replace(tzinfo=None),
                                                  "end": (hours[-1] + dt.timedelta(hours=1)).replace(tzinfo=None),
                                                  "grids": wanted}):
        counts[(r["grid"], r["hour"].replace(tzinfo=dt.UTC))] = int(r["subscribers"])
    first, end = ctx.store.twin_first, ctx.store.twin_end
    out = []
    for h in hours:
        in_data = first is not None and first <= h < end
        cells = []
        for c in codes:
            if c not in covered or not in_data:
                cells.append(CellPopulationDensityData(geohash=c, dataType="NO_DATA"))
                continue
            grid_cells, area_km2 = members[c]
            n = sum(counts.get((g, h), 0) for g in grid_cells)
            if n < k:
                cells.append(CellPopulationDensityData(geohash=c, dataType="LOW_DENSITY"))
                continue
            spread = 2 * math.sqrt(n)  # about a 95 % Poisson interval on the count
            cells.append(CellPopulationDensityData(
                geohash=c, dataType="DENSITY_ESTIMATION", pplDensity=round(n / area_km2),
                minPplDensity=math.floor(max(0.0, n - spread) / area_km2), maxPplDensity=math.ceil((n + spread) / area_km2)))
        out.append(TimedPopulationDensityData(startTime=h, endTime=h + dt.timedelta(hours=1), cellPopulationDensityData=cells))
    status = "SUPPORTED_AREA" if len(covered) == len(codes) else "PART_OF_AREA_NOT_SUPPORTED"
    return PopulationDensityResponse(timedPopulationDensityData=out, status=status)

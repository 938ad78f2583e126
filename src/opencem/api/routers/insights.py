"""Aggregate tables of the loop, churn and segments stages, when the workspace has them (files only: the API
does not import those stages). Tables with a ``subscriber_id`` column are never served; rows with a count
below the minimum group size in any column named ``subscribers`` or ``*_subscribers`` are left out."""

from __future__ import annotations

import math

import pyarrow.parquet as pq
from fastapi import APIRouter, Path, Query, Request

from ..app import Caller, Context, error_responses, require
from ..errors import ApiError
from ..models import InsightRows, InsightTable
from .twin import _clean

router = APIRouter(tags=["Insights"])


@router.get("/insights/v1/tables", response_model=list[InsightTable], summary="The aggregate tables available",
            responses=error_responses(401, 403, 429))
def tables(request: Request, caller: Caller = require("insights:read", "insights")) -> list[InsightTable]:
    ctx: Context = request.app.state.ctx
    out = []
    for name, path in ctx.store.insight_tables().items():
        meta = pq.read_metadata(path)
        out.append(InsightTable(name=name, rows=meta.num_rows, columns=meta.schema.to_arrow_schema().names))
    return out


@router.get("/insights/v1/tables/{name}", response_model=InsightRows, summary="The rows of one aggregate table",
            responses=error_responses(400, 401, 403, 404, 429))
def table(request: Request, name: str = Path(max_length=200), caller: Caller = require("insights:read", "insights"),
          limit: int = Query(1000, ge=1, le=10000)) -> InsightRows:
    ctx: Context = request.app.state.ctx
    path = ctx.store.insight_tables().get(name)
    if path is None:
        raise ApiError(404, "NOT_FOUND", f"No aggregate table {name!r}: see /insights/v1/tables.")
    k = ctx.settings.min_group
    rows = pq.read_table(path).to_pylist()

    def small(r: dict) -> bool:
        counts = [v for c, v in r.items() if c.endswith("subscribers") and isinstance(v, (int, float))
                  and not (isinstance(v, float) and math.isnan(v))]
        return any(n < k for n in counts)

    keep = [r for r in rows if not small(r)]
    return InsightRows(name=name, minGroupSize=k, suppressed=len(rows) - len(keep),
                       rows=[{c: _clean(v) for c, v in r.items()} for r in keep[:limit]])

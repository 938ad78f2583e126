"""Aggregate tables of the loop, churn and segments stages, when the workspace has them (files only: the API
does not import those stages). Tables with a ``subscriber_id`` column, and documents mentioning one, are never
served; rows and objects with a subscriber count (a number under a key holding "subscribers") below the minimum
group size are left out."""

from __future__ import annotations

import json
import math

import pyarrow.parquet as pq
from fastapi import APIRouter, Path, Query, Request

from ..app import Caller, Context, error_responses, require
from ..errors import ApiError
from ..models import InsightDocument, InsightRows, InsightTable
from .twin import _clean

router = APIRouter(tags=["Insights"])


def under_floor(row: dict, k: int) -> bool:
    """True when a count of subscribers in ``row`` (any number under a key holding "subscribers") is under k."""
    return any("subscribers" in str(key) and isinstance(v, (int, float)) and not isinstance(v, bool)
               and not (isinstance(v, float) and math.isnan(v)) and v < k for key, v in row.items())


def prune(doc, k: int, counter: list[int]):
    """``doc`` with every object holding a subscriber count under k replaced by ``{"suppressed": true}``."""
    if isinstance(doc, dict):
        if under_floor(doc, k):
            counter[0] += 1
            return {"suppressed": True}
        return {key: prune(v, k, counter) for key, v in doc.items()}
    if isinstance(doc, list):
        return [prune(v, k, counter) for v in doc]
    return doc


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
        return under_floor(r, k)

    keep = [r for r in rows if not small(r)]
    return InsightRows(name=name, minGroupSize=k, suppressed=len(rows) - len(keep),
                       rows=[{c: _clean(v) for c, v in r.items()} for r in keep[:limit]])


@router.get("/insights/v1/documents", response_model=list[str], summary="The JSON documents available (plans, tickets ...)",
            responses=error_responses(401, 403, 429))
def documents(request: Request, caller: Caller = require("insights:read", "insights")) -> list[str]:
    return list(request.app.state.ctx.store.insight_documents())


@router.get("/insights/v1/documents/{name}", response_model=InsightDocument, summary="One JSON document, small groups left out",
            responses=error_responses(400, 401, 403, 404, 429))
def document(request: Request, name: str = Path(max_length=200),
             caller: Caller = require("insights:read", "insights")) -> InsightDocument:
    ctx: Context = request.app.state.ctx
    path = ctx.store.insight_documents().get(name)
    if path is None:
        raise ApiError(404, "NOT_FOUND", f"No document {name!r}: see /insights/v1/documents.")
    counter = [0]
    body = prune(json.loads(path.read_text()), ctx.settings.min_group, counter)
    return InsightDocument(name=name, minGroupSize=ctx.settings.min_group, suppressed=counter[0], document=body)

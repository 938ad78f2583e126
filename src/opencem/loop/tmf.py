"""Export optimisation plans as TM Forum Open API resources, and validate them against the TMF specs.

A plan from the prioritise stage becomes two create bodies (the ``*_FVO`` schemas a client POSTs):

* a TMF621 Trouble Ticket v5 ``TroubleTicket`` (:func:`trouble_ticket`), and
* a TMF656 Service Problem Management v5 ``ServiceProblem`` (:func:`service_problem`).

:func:`validate` checks a document against a component schema of the official OpenAPI 3.0 files (with
the general validator of :mod:`opencem.contracts.openapi`). The files ship with the package
(``tmf_specs/``, Apache-2.0, see its NOTICE); ``$OPENCEM_TMF_SPECS`` points to another folder of them
(see :func:`spec_dir`).

TMF schemas are open (no ``additionalProperties: false``); :func:`undeclared_fields` lists the fields of a
document that the spec does not declare, to keep our exports to fields the spec defines.
"""

from __future__ import annotations

import copy
import datetime as dt
import json
import logging
import math
import os
import re
from pathlib import Path
from typing import Any

from ..contracts.openapi import OpenAPISpec, OpenAPIValidationError
from ..engine.files import atomic_write_text
from ..errors import InputError
from ..vocabulary import NETWORK_CAUSES

log = logging.getLogger(__name__)

SPECS_ENV = "OPENCEM_TMF_SPECS"
SPEC_FILES = {
    "TMF621": "TMF621-Trouble_Ticket-v5.0.1.oas.yaml",
    "TMF656": "TMF656-Service_Problem_Management-v5.0.0.oas.yaml",
}
KINDS = {"troubleTicket": ("TMF621", "TroubleTicket_FVO"), "serviceProblem": ("TMF656", "ServiceProblem_FVO")}

OWNER = "OpenCEM"  # externalIdentifier.owner, originatingSystem, note author, originator party id
TICKET_TYPE = "networkOptimisation"
RADIO_PROBLEMS = ("coverage", "interference", "congestion")  # the cells themselves are the root cause
PRIORITIES = ("critical", "high", "medium", "low")
SEVERITIES = ("critical", "major", "minor")
SP_PRIORITY = {"critical": 1, "high": 3, "medium": 5, "low": 7}  # TMF656: 1 (highest) .. 10 (lowest)
RESOLUTION_DAYS = {"critical": 2, "high": 7, "medium": 14, "low": 30}  # requestedResolutionDate = created + days
IMPACT_BASE = {"critical": 60, "major": 40, "minor": 20}  # impactImportanceFactor = base + up to 40 by subscribers

_PLAN_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


# ----------------------------------------------------------------------------------------------- plans


def _need(plan: dict, key: str) -> Any:
    if plan.get(key) in (None, ""):
        raise InputError(f"plan {plan.get('plan_id', '?')}: missing field {key!r}")
    return plan[key]


def _num(plan: dict, key: str, default: float = 0.0) -> float:
    value = plan.get(key)
    value = default if value is None else float(value)
    if not math.isfinite(value):
        raise InputError(f"plan {plan.get('plan_id', '?')}: field {key!r} is not a finite number: {value}")
    return value


def _one_of(plan: dict, key: str, allowed: tuple[str, ...]) -> str:
    value = str(_need(plan, key)).lower()
    if value not in allowed:
        raise InputError(f"plan {plan.get('plan_id', '?')}: {key}={value!r} is not one of {', '.join(allowed)}")
    return value


def _plan(plan: dict) -> dict:
    """The plan's fields, checked and converted to plain JSON types (numpy scalars become int/float)."""
    plan_id = str(_need(plan, "plan_id"))
    if not _PLAN_ID.match(plan_id):
        raise InputError(f"plan_id {plan_id!r} must match {_PLAN_ID.pattern} (it names the exported files)")
    created = plan.get("created")
    if created not in (None, ""):
        try:
            created = dt.date.fromisoformat(str(created)[:10])
        except ValueError:
            raise InputError(f"plan {plan_id}: created={created!r} is not an ISO date") from None
    actions = []
    for a in plan.get("actions") or []:
        actions.append({
            "fix_id": str(a.get("fix_id") or ""),
            "action": str(a.get("action") or ""),
            "detail": str(a.get("detail") or ""),
            "cost_class": str(a.get("cost_class") or ""),
            "lift": _num(a, "expected_nps_lift"),
            "base_lift": _num(a, "expected_base_nps_lift"),
        })
    lat, lon = plan.get("center_lat"), plan.get("center_lon")
    rank = plan.get("priority_rank")
    return {
        "plan_id": plan_id,
        "created": created or None,
        # a device campaign is network-wide: it names its device model instead of a grid
        "grid": str(plan.get("grid") or "") if plan.get("device_model") else str(_need(plan, "grid")),
        "lat": None if lat is None else round(float(lat), 6),
        "lon": None if lon is None else round(float(lon), 6),
        "problem": _one_of(plan, "problem", NETWORK_CAUSES),
        "title": str(_need(plan, "title")),
        "description": str(_need(plan, "description")).strip(),
        "evidence": str(plan.get("evidence") or "").strip(),
        "episodes": [str(e) for e in plan.get("episodes") or []],
        "cells": [str(c) for c in plan.get("cells") or []],
        "device_model": None if plan.get("device_model") in (None, "") else str(plan["device_model"]),
        "actions": actions,
        "subscribers": int(_num(plan, "subscribers_affected")),
        "revenue": round(_num(plan, "revenue_at_stake"), 2),
        "rank": None if rank is None else int(rank),
        "priority": _one_of(plan, "priority", PRIORITIES),
        "severity": _one_of(plan, "severity", SEVERITIES),
    }


def _sentence(text: str) -> str:
    text = text.strip()
    return text if not text or text[-1] in ".!?" else text + "."


def _action_text(a: dict) -> str:
    head = " ".join(x for x in (a["fix_id"], a["action"]) if x) or "action"
    cost = f", cost {a['cost_class']}" if a["cost_class"] else ""
    detail = f": {a['detail']}" if a["detail"] else ""
    return f"{head}{cost}{detail} (expected NPS lift {a['lift']:+.1f} in the area, {a['base_lift']:+.2f} on the whole base)"


def _description(p: dict) -> str:
    parts = [_sentence(p["description"])]
    if p["evidence"]:
        parts.append(_sentence(f"Evidence: {p['evidence']}"))
    if p["actions"]:
        steps = "; ".join(f"{i}) {_action_text(a)}" for i, a in enumerate(p["actions"], 1))
        parts.append(_sentence(f"Proposed actions: {steps}"))
    where = f"H3 cell {p['grid']}"
    if p["lat"] is not None and p["lon"] is not None:
        where += f" around {p['lat']:.5f}, {p['lon']:.5f}"
    if p["cells"]:
        where += f", cells {', '.join(p['cells'])}"
    if p["device_model"]:
        where += f", device model {p['device_model']}"
    parts.append(_sentence(f"Problem class {p['problem']} in {where}"))
    parts.append(_sentence(f"At stake: {p['subscribers']} subscribers, EUR {p['revenue']:,.2f} monthly revenue"))
    return " ".join(parts)


def _timestamp(day: dt.date | None, plus_days: int = 0) -> str | None:
    return None if day is None else f"{(day + dt.timedelta(days=plus_days)).isoformat()}T00:00:00Z"


def _facts(p: dict) -> list[tuple[str, str, Any]]:
    """(name, kind, value) facts carried as characteristics; kind is string, float, integer or array."""
    facts: list[tuple[str, str, Any]] = [("grid", "string", p["grid"])] if p["grid"] else []
    facts.append(("problemCategory", "string", p["problem"]))
    if p["lat"] is not None and p["lon"] is not None:
        facts += [("centerLatitude", "float", p["lat"]), ("centerLongitude", "float", p["lon"])]
    if p["cells"]:
        facts.append(("cells", "array", p["cells"]))
    if p["episodes"]:
        facts.append(("episodes", "array", p["episodes"]))
    if p["device_model"]:
        facts.append(("deviceModel", "string", p["device_model"]))
    if p["actions"]:
        best = max(p["actions"], key=lambda a: a["lift"])  # the single best action, actions may be alternatives
        facts += [("fixIds", "array", [a["fix_id"] for a in p["actions"] if a["fix_id"]]),
                  ("expectedNpsLift", "float", round(best["lift"], 3)),
                  ("expectedBaseNpsLift", "float", round(best["base_lift"], 4))]
    facts += [("subscribersAffected", "integer", p["subscribers"]), ("revenueAtStakeEurPerMonth", "float", p["revenue"])]
    if p["rank"] is not None:
        facts.append(("priorityRank", "integer", p["rank"]))
    return facts


_TYPED = {"string": "StringCharacteristic", "float": "FloatCharacteristic", "integer": "IntegerCharacteristic",
          "array": "StringArrayCharacteristic"}


def _entity(role: str, ident: str, referred: str, name: str | None = None) -> dict:
    entity = {"@type": "EntityRef", "@referredType": referred, "id": ident}
    if name:
        entity["name"] = name
    return {"@type": "RelatedEntity", "role": role, "entity": entity}


def _common(p: dict) -> dict:
    notes = []
    if p["evidence"]:
        notes.append(f"Evidence: {p['evidence']}")
    notes += [f"Action {_action_text(a)}" for a in p["actions"]]
    date = _timestamp(p["created"])
    note_docs = []
    for i, text in enumerate(notes, 1):
        note = {"@type": "Note", "id": str(i), "author": OWNER, "text": _sentence(text)}
        if date:
            note["date"] = date
        note_docs.append(note)
    doc = {
        "name": p["title"],
        "description": _description(p),
        "externalIdentifier": [{"@type": "ExternalIdentifier", "id": p["plan_id"], "owner": OWNER,
                                "externalIdentifierType": "OptimisationPlan"}],
    }
    if note_docs:
        doc["note"] = note_docs
    return doc


def _extra_entities(p: dict) -> list[dict]:
    out = [_entity("evidence", e, "OpenCEMEpisode") for e in p["episodes"]]
    if p["device_model"]:
        out.append(_entity("affectedDeviceModel", p["device_model"], "DeviceModel", p["device_model"]))
    return out


def trouble_ticket(plan: dict) -> dict:
    """The TMF621 v5 ``TroubleTicket_FVO`` create body for one plan."""
    p = _plan(plan)
    doc = {"@type": "TroubleTicket", **_common(p),
           "severity": p["severity"].capitalize(), "priority": p["priority"].capitalize(), "ticketType": TICKET_TYPE}
    if p["created"]:
        doc["requestedResolutionDate"] = _timestamp(p["created"], RESOLUTION_DAYS[p["priority"]])
    doc["relatedEntity"] = ([_entity("affectedArea", p["grid"], "GeographicLocation", f"H3 cell {p['grid']}")] * bool(p["grid"])
                            + [_entity("affectedCell", c, "LogicalResource", c) for c in p["cells"]] + _extra_entities(p))
    doc["troubleTicketCharacteristic"] = [
        {"@type": _TYPED[kind], "name": name, "valueType": kind, "value": value} for name, kind, value in _facts(p)]
    return doc


def impact_importance(p: dict) -> int:
    """0..100: a severity base plus up to 40 points for subscribers affected (log scale, full at 10,000)."""
    return min(100, IMPACT_BASE[p["severity"]] + round(40 * min(1.0, math.log10(1 + max(0, p["subscribers"])) / 4)))


def service_problem(plan: dict) -> dict:
    """The TMF656 v5 ``ServiceProblem_FVO`` create body for one plan."""
    p = _plan(plan)
    doc = {"@type": "ServiceProblem", **_common(p),
           "category": "system.originated", "reason": p["problem"], "priority": SP_PRIORITY[p["priority"]],
           "originatingSystem": OWNER, "impactImportanceFactor": str(impact_importance(p)),
           "affectedNumberOfServices": p["subscribers"],
           "originatorParty": {"@type": "RelatedPartyRefOrPartyRoleRef", "role": "originator",
                               "partyOrPartyRole": {"@type": "PartyRef", "id": OWNER, "name": OWNER, "@referredType": "Organization"}}}
    if p["grid"]:
        where = f"H3 cell {p['grid']}"
        if p["lat"] is not None and p["lon"] is not None:
            where += f" ({p['lat']:.5f}, {p['lon']:.5f})"
        doc["affectedLocation"] = [{"@type": "RelatedPlaceRefOrValue", "role": "affectedArea",
                                    "place": {"@type": "PlaceRef", "@referredType": "GeographicLocation", "id": p["grid"], "name": where}}]
    cells = [{"@type": "ResourceRef", "@referredType": "LogicalResource", "id": c, "name": c} for c in p["cells"]]
    if cells:
        doc["affectedResource"] = cells
        if p["problem"] in RADIO_PROBLEMS:
            doc["rootCauseResource"] = copy.deepcopy(cells)
    extra = _extra_entities(p)
    if extra:
        doc["relatedEntity"] = extra
    # TMF656 v5.0.0 defines only the untyped Characteristic (no value subclasses, no "value" property)
    doc["characteristic"] = [{"@type": "Characteristic", "name": name, "valueType": kind, "value": value} for name, kind, value in _facts(p)]
    return doc


# ------------------------------------------------------------------------------------------ the specs


def spec_dir() -> Path:
    """``$OPENCEM_TMF_SPECS`` if set, else the spec files shipped with the package."""
    env = os.environ.get(SPECS_ENV)
    if env:
        return Path(env).expanduser()
    return Path(__file__).resolve().parent / "tmf_specs"


def spec_path(api: str) -> Path:
    """The spec file for ``api``; FileNotFoundError (saying where it looked) when it is absent."""
    if api not in SPEC_FILES:
        raise InputError(f"unknown TMF api {api!r}; expected one of {', '.join(SPEC_FILES)}")
    path = spec_dir() / SPEC_FILES[api]
    if not path.is_file():
        raise FileNotFoundError(
            f"{api} OpenAPI spec not found: looked for {path}; put {SPEC_FILES[api]} in that folder, or unset "
            f"{SPECS_ENV} to use the spec files shipped with opencem")
    return path


def spec_available(api: str) -> bool:
    try:
        spec_path(api)
    except FileNotFoundError:
        return False
    return True


def _spec(api: str) -> OpenAPISpec:
    return OpenAPISpec(spec_path(api), api)


def check(doc: dict, api: str, schema: str) -> list[tuple[str, str]]:
    """All (json path, reason) violations of ``doc`` against ``api``'s component ``schema``; [] when valid."""
    return _spec(api).check(doc, schema)


def validate(doc: dict, api: str, schema: str) -> None:
    """Raise :class:`OpenAPIValidationError` (a ValueError) naming api, schema, field path and reason when
    ``doc`` does not match; FileNotFoundError when the spec file is not available."""
    _spec(api).validate(doc, schema)


def undeclared_fields(doc: dict, api: str, schema: str) -> list[str]:
    """JSON paths of the fields in ``doc`` that the spec does not declare (TMF schemas accept them)."""
    return _spec(api).undeclared_fields(doc, schema)


# ---------------------------------------------------------------------------------------------- export


def dumps(doc: dict) -> str:
    """The canonical JSON text of a document: sorted keys, 2-space indent, UTF-8, trailing newline."""
    return json.dumps(doc, sort_keys=True, indent=2, ensure_ascii=False, allow_nan=False) + "\n"


def export(plans: list[dict], out_dir: Path, *, require_spec: bool = False) -> list[Path]:
    """Write ``out_dir/troubleTicket/<plan_id>.json`` and ``out_dir/serviceProblem/<plan_id>.json`` per plan.

    Every document is validated before anything is written. When a spec file is missing the documents are
    written unvalidated and a warning is logged, unless ``require_spec`` is set (then FileNotFoundError).
    Output is deterministic: the same plans give byte-identical files. Returns the paths written, in order
    (per plan: trouble ticket, then service problem).
    """
    out_dir = Path(out_dir)
    builders = {"troubleTicket": trouble_ticket, "serviceProblem": service_problem}
    seen: set[str] = set()
    docs: list[tuple[Path, str, str, str, dict]] = []
    for plan in plans:
        pid = str(plan.get("plan_id", ""))
        if pid in seen:
            raise InputError(f"duplicate plan_id {pid!r} in export")
        seen.add(pid)
        for kind, build in builders.items():
            api, schema = KINDS[kind]
            docs.append((out_dir / kind / f"{pid}.json", pid, api, schema, build(plan)))
    skipped = set()
    for _, pid, api, schema, doc in docs:
        if api in skipped:
            continue
        try:
            validate(doc, api, schema)
        except OpenAPIValidationError as exc:
            raise InputError(f"plan {pid}: {exc}") from exc
        except FileNotFoundError as exc:
            if require_spec:
                raise
            skipped.add(api)
            log.warning("%s documents exported WITHOUT validation: %s", api, exc)
    paths = []
    for path, _, _, _, doc in docs:
        atomic_write_text(path, dumps(doc))
        paths.append(path)
    return paths

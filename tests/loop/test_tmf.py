"""TMF621/TMF656 export of optimisation plans: spec validation, deterministic files, and exactly-once sending
to a real HTTP ticketing server with injected faults."""

from __future__ import annotations

import copy
import json
import logging
import threading
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest
import yaml
from loop.tmf_server import TicketServer

from opencem.loop import tmf
from opencem.loop.ticketing import TicketError, idempotency_key, send_tickets

TT = ("TMF621", "TroubleTicket_FVO")
SP = ("TMF656", "ServiceProblem_FVO")
FAST = {"backoff": 0.01, "timeout": 5}


def example_plan(**overrides) -> dict:
    plan = {
        "plan_id": "PLAN-2026-10-19-892a1008003ffff",
        "created": "2026-10-19",
        "grid": "892a1008003ffff",
        "center_lat": 48.85, "center_lon": 2.35,
        "problem": "congestion",
        "title": "Busy-hour congestion on CELL-0123-2-B3",
        "description": "PRB utilisation above 90% at 18-22h on 9 of 14 days; 212 subscribers with poor sessions",
        "evidence": "prb_util_dl p90 0.97 vs 0.55 baseline; throughput -48%",
        "episodes": ["E0003", "E0011"],
        "cells": ["CELL-0123-2-B3"],
        "device_model": None,
        "actions": [{"fix_id": "C001", "action": "add_capacity", "detail": "add a carrier / rebalance load", "cost_class": "high",
                     "expected_nps_lift": 6.2, "expected_base_nps_lift": 0.08}],
        "subscribers_affected": 212, "revenue_at_stake": 5123.4,
        "priority_rank": 1, "priority": "high",
        "severity": "major",
    }
    plan.update(overrides)
    return plan


def plans() -> list[dict]:
    return [
        example_plan(),
        example_plan(plan_id="PLAN-2026-10-19-892a100800bffff", grid="892a100800bffff", problem="coverage", priority="critical",
                     severity="critical", priority_rank=2, cells=["CELL-0007-1-A1", "CELL-0007-2-A1"], episodes=["E0020"],
                     title="Weak coverage indoors around CELL-0007", actions=[
                         {"fix_id": "V002", "action": "tilt", "detail": "reduce downtilt by 2 degrees", "cost_class": "low",
                          "expected_nps_lift": 3.1, "expected_base_nps_lift": 0.02},
                         {"fix_id": "V003", "action": "new_site", "detail": "small cell on the mall roof", "cost_class": "high",
                          "expected_nps_lift": 8.4, "expected_base_nps_lift": 0.05}]),
        example_plan(plan_id="PLAN-2026-10-19-device-XPHONE9", grid="892a1008007ffff", problem="device", priority="low", severity="minor",
                     priority_rank=3, cells=[], episodes=[], device_model="XPhone 9", title="VoLTE drops on XPhone 9 firmware 4.2",
                     actions=[{"fix_id": "D001", "action": "firmware_campaign", "detail": "push firmware 4.3", "cost_class": "low",
                               "expected_nps_lift": 1.5, "expected_base_nps_lift": 0.01}], subscribers_affected=1840, revenue_at_stake=40210.0),
    ]


@pytest.fixture
def specs():
    """Skip (saying where the specs were looked for) unless both TMF spec files are available."""
    for api in tmf.SPEC_FILES:
        try:
            tmf.spec_path(api)
        except FileNotFoundError as exc:
            pytest.skip(str(exc))


# ------------------------------------------------------------------------------------------ documents


def test_the_specs_ship_with_the_package(monkeypatch):
    """A fresh install validates tickets: the TMF files and their licence notice are package data."""
    monkeypatch.delenv(tmf.SPECS_ENV, raising=False)
    from importlib.resources import files

    shipped = files("opencem.loop") / "tmf_specs"
    assert tmf.spec_dir() == Path(str(shipped))
    assert all(tmf.spec_available(api) for api in tmf.SPEC_FILES)
    assert "Apache License, Version 2.0" in (shipped / "NOTICE").read_text()


def test_trouble_ticket_content(specs):
    doc = tmf.trouble_ticket(example_plan())
    tmf.validate(doc, *TT)
    assert doc["@type"] == "TroubleTicket" and doc["severity"] == "Major" and doc["priority"] == "High"
    assert doc["externalIdentifier"] == [{"@type": "ExternalIdentifier", "id": "PLAN-2026-10-19-892a1008003ffff", "owner": "OpenCEM",
                                          "externalIdentifierType": "OptimisationPlan"}]
    assert doc["requestedResolutionDate"] == "2026-10-26T00:00:00Z"  # created + 7 days for a high priority plan
    chars = {c["name"]: c for c in doc["troubleTicketCharacteristic"]}
    assert chars["expectedNpsLift"] == {"@type": "FloatCharacteristic", "name": "expectedNpsLift", "valueType": "float", "value": 6.2}
    assert chars["subscribersAffected"]["@type"] == "IntegerCharacteristic" and chars["subscribersAffected"]["value"] == 212
    assert chars["cells"]["@type"] == "StringArrayCharacteristic" and chars["cells"]["value"] == ["CELL-0123-2-B3"]
    assert chars["revenueAtStakeEurPerMonth"]["value"] == 5123.4 and chars["grid"]["value"] == "892a1008003ffff"
    roles = [(r["role"], r["entity"]["id"]) for r in doc["relatedEntity"]]
    assert ("affectedArea", "892a1008003ffff") in roles and ("affectedCell", "CELL-0123-2-B3") in roles and ("evidence", "E0011") in roles
    for words in ("PRB utilisation", "Evidence: prb_util_dl", "add_capacity", "+6.2", "212 subscribers", "EUR 5,123.40"):
        assert words in doc["description"]


def test_service_problem_content(specs):
    doc = tmf.service_problem(example_plan())
    tmf.validate(doc, *SP)
    assert doc["@type"] == "ServiceProblem" and doc["priority"] == 3 and isinstance(doc["priority"], int)
    assert doc["originatingSystem"] == "OpenCEM" and doc["reason"] == "congestion" and doc["affectedNumberOfServices"] == 212
    assert 40 <= int(doc["impactImportanceFactor"]) <= 100
    assert doc["affectedLocation"][0]["place"]["id"] == "892a1008003ffff"
    assert [r["id"] for r in doc["rootCauseResource"]] == ["CELL-0123-2-B3"]
    device = tmf.service_problem(plans()[2])
    tmf.validate(device, *SP)
    assert "rootCauseResource" not in device and "affectedResource" not in device  # a firmware problem: cells are not the cause
    assert {"role": "affectedDeviceModel", "@type": "RelatedEntity",
            "entity": {"@type": "EntityRef", "@referredType": "DeviceModel", "id": "XPhone 9", "name": "XPhone 9"}} in device["relatedEntity"]


def test_every_plan_exports_valid_documents(specs):
    for plan in plans():
        tmf.validate(tmf.trouble_ticket(plan), *TT)
        tmf.validate(tmf.service_problem(plan), *SP)


def test_spec_examples_pass_the_validator(specs):
    """The specs' own create examples pass: the OpenAPI-to-JSON-Schema compilation is not over-strict."""
    for api, name in (("TMF621", "TroubleTicket"), ("TMF656", "ServiceProblem")):
        spec = yaml.safe_load(tmf.spec_path(api).read_text(encoding="utf-8"))
        example = spec["components"]["examples"][f"{name}_create_example_request"]["value"]
        assert tmf.check(example, api, f"{name}_FVO") == []


def test_exports_use_only_fields_the_spec_declares(specs):
    for plan in plans():
        assert tmf.undeclared_fields(tmf.trouble_ticket(plan), *TT) == []
        # TMF656 v5.0.0 declares only the untyped Characteristic, without a value property: the one known gap
        undeclared = tmf.undeclared_fields(tmf.service_problem(plan), *SP)
        assert undeclared and all(p.startswith("$.characteristic[") and p.endswith("].value") for p in undeclared)
    doc = tmf.trouble_ticket(example_plan())
    doc["note"][0]["colour"] = "red"
    assert tmf.undeclared_fields(doc, *TT) == ["$.note[0].colour"]


def _set(path, value):
    def change(doc):
        *head, last = path
        for key in head:
            doc = doc[key]
        if value is KeyError:
            del doc[last]
        else:
            doc[last] = value
    return change


@pytest.mark.parametrize(("kind", "change", "where", "reason"), [
    ("tt", _set(["severity"], KeyError), "$.severity", "required"),
    ("tt", _set(["@type"], KeyError), "$['@type']", "required"),
    ("tt", _set(["ticketType"], 7), "$.ticketType", "not of type 'string'"),
    ("tt", _set(["troubleTicketCharacteristic", 2, "value"], "48.85"), "$.troubleTicketCharacteristic[2].value", "not of type 'number'"),
    ("tt", _set(["troubleTicketCharacteristic", 0, "value"], KeyError), "$.troubleTicketCharacteristic[0].value", "required"),
    ("tt", _set(["relatedEntity", 1, "entity", "id"], KeyError), "$.relatedEntity[1].entity.id", "required"),
    ("tt", _set(["requestedResolutionDate"], "2026-10-26"), "$.requestedResolutionDate", "date-time"),
    ("tt", _set(["status"], "open"), "$.status", "is not one of"),
    ("sp", _set(["priority"], "high"), "$.priority", "not of type 'integer'"),
    ("sp", _set(["originatorParty"], KeyError), "$.originatorParty", "required"),
    ("sp", _set(["originatorParty", "partyOrPartyRole", "@type"], "Robot"), "$.originatorParty.partyOrPartyRole['@type']", "is not one of"),
    ("sp", _set(["affectedLocation", 0, "place", "id"], KeyError), "$.affectedLocation[0].place.id", "required"),
    ("sp", _set(["affectedResource", 0, "@type"], KeyError), "$.affectedResource[0]['@type']", "required"),
])
def test_broken_documents_are_rejected_naming_the_field(specs, kind, change, where, reason):
    build, (api, schema) = (tmf.trouble_ticket, TT) if kind == "tt" else (tmf.service_problem, SP)
    doc = build(example_plan())
    change(doc)
    with pytest.raises(ValueError) as info:
        tmf.validate(doc, api, schema)
    message = str(info.value)
    assert message.startswith(f"{api} {schema}: invalid at {where}: ") and reason in message, message


def test_unknown_schema_and_api(specs):
    with pytest.raises(ValueError, match="no component schema"):
        tmf.validate({}, "TMF621", "NoSuchThing")
    with pytest.raises(ValueError, match="unknown TMF api"):
        tmf.validate({}, "TMF999", "X")


def test_plans_are_checked():
    with pytest.raises(ValueError, match="priority='urgent'"):
        tmf.trouble_ticket(example_plan(priority="urgent"))
    with pytest.raises(ValueError, match="missing field 'grid'"):
        tmf.service_problem(example_plan(grid=None))
    with pytest.raises(ValueError, match="plan_id"):
        tmf.trouble_ticket(example_plan(plan_id="../../etc/passwd"))
    with pytest.raises(ValueError, match="not a finite number"):
        tmf.trouble_ticket(example_plan(revenue_at_stake=float("nan")))


# --------------------------------------------------------------------------------------------- export


def _tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_export_is_deterministic(tmp_path):
    paths = tmf.export(plans(), tmp_path / "a")
    assert [p.relative_to(tmp_path / "a").as_posix() for p in paths[:2]] == [
        "troubleTicket/PLAN-2026-10-19-892a1008003ffff.json", "serviceProblem/PLAN-2026-10-19-892a1008003ffff.json"]
    first = _tree(tmp_path / "a")
    assert len(first) == 6  # no temporary files left behind
    tmf.export(plans(), tmp_path / "a")
    assert _tree(tmp_path / "a") == first
    # same plans with numpy numbers and shuffled keys: byte-identical
    shuffled = [dict(reversed(list(p.items()))) for p in plans()]
    for p in shuffled:
        p["subscribers_affected"] = np.int64(p["subscribers_affected"])
        p["revenue_at_stake"] = np.float64(p["revenue_at_stake"])
    tmf.export(shuffled, tmp_path / "b")
    assert _tree(tmp_path / "b") == first
    text = first["troubleTicket/PLAN-2026-10-19-892a1008003ffff.json"].decode("utf-8")
    assert json.loads(text) == tmf.trouble_ticket(example_plan())
    assert text == json.dumps(json.loads(text), sort_keys=True, indent=2, ensure_ascii=False) + "\n"


def test_export_validates_before_writing(specs, tmp_path, monkeypatch):
    original = tmf.service_problem

    def broken(plan):
        doc = original(plan)
        doc["priority"] = "1"
        return doc
    monkeypatch.setattr(tmf, "service_problem", broken)
    with pytest.raises(ValueError, match=r"^plan PLAN-2026-10-19-892a1008003ffff: TMF656 ServiceProblem_FVO: invalid at \$\.priority"):
        tmf.export(plans(), tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_export_rejects_duplicate_plans(tmp_path):
    with pytest.raises(ValueError, match="duplicate plan_id"):
        tmf.export([example_plan(), example_plan()], tmp_path)


def test_missing_specs_are_explained(tmp_path, monkeypatch, caplog):
    empty = tmp_path / "no-specs"
    empty.mkdir()
    monkeypatch.setenv(tmf.SPECS_ENV, str(empty))
    with pytest.raises(FileNotFoundError) as info:
        tmf.validate(tmf.trouble_ticket(example_plan()), *TT)
    assert str(empty) in str(info.value) and tmf.SPECS_ENV in str(info.value)
    with caplog.at_level(logging.WARNING, logger="opencem.loop.tmf"):
        paths = tmf.export(plans(), tmp_path / "out")
    assert len(paths) == 6 and all(p.exists() for p in paths)
    assert "WITHOUT validation" in caplog.text and "TMF621" in caplog.text and "TMF656" in caplog.text
    with pytest.raises(FileNotFoundError):
        tmf.export(plans(), tmp_path / "strict", require_spec=True)


# -------------------------------------------------------------------------------------------- sending


def _tickets() -> list[dict]:
    return [tmf.trouble_ticket(p) for p in plans()]


def test_idempotency_key_is_stable_per_plan_and_kind():
    a, b = tmf.trouble_ticket(example_plan()), tmf.trouble_ticket(example_plan(title="edited title"))
    assert idempotency_key(a) == idempotency_key(b)  # the plan, not the text, identifies the operation
    assert idempotency_key(a) != idempotency_key(tmf.trouble_ticket(plans()[1]))
    assert idempotency_key(a, "troubleTicket") != idempotency_key(tmf.service_problem(example_plan()), "serviceProblem")


def test_send_creates_one_ticket_per_plan_and_reruns_send_nothing(tmp_path):
    ledger = tmp_path / "ledger.json"
    with TicketServer() as server:
        report = send_tickets(_tickets(), server.endpoint(), ledger, **FAST)
        assert (report.sent, report.skipped, report.failed) == (3, 0, 0)
        assert server.count() == 3 and server.posts == 3
        created = server.resources()
        assert [t["externalIdentifier"][0]["id"] for t in created] == [p["plan_id"] for p in plans()]
        assert report.ids == {t["externalIdentifier"][0]["id"]: t["id"] for t in created}
        book = json.loads(ledger.read_text())
        assert {v["id"] for v in book.values()} == {t["id"] for t in created}
        assert all(v["href"].endswith(f"/tmf-api/troubleTicket/v5/troubleTicket/{v['id']}") for v in book.values())

        again = send_tickets(_tickets(), server.endpoint(), ledger, **FAST)
        assert (again.sent, again.skipped) == (0, 3) and again.ids == report.ids
        assert server.count() == 3 and server.posts == 3  # nothing was even sent

        with urllib.request.build_opener(urllib.request.ProxyHandler({})).open(f"{server.endpoint()}/troubleTicket?limit=2", timeout=5) as resp:
            assert resp.status == 200 and resp.headers["X-Total-Count"] == "3" and len(json.load(resp)) == 2


def test_fresh_ledger_same_keys_does_not_duplicate(tmp_path):
    with TicketServer() as server:
        first = send_tickets(_tickets(), server.endpoint(), tmp_path / "one.json", **FAST)
        second = send_tickets(_tickets(), server.endpoint(), tmp_path / "two.json", **FAST)
        assert second.sent == 3 and second.ids == first.ids
        assert server.count() == 3 and server.posts == 6


def test_service_problems_go_to_their_own_collection(tmp_path):
    ledger = tmp_path / "ledger.json"  # one ledger for both kinds: keys differ by kind
    with TicketServer() as server:
        send_tickets(_tickets(), server.endpoint(), ledger, **FAST)
        report = send_tickets([tmf.service_problem(p) for p in plans()], server.endpoint("serviceProblem"), ledger, kind="serviceProblem", **FAST)
        assert report.sent == 3 and server.count("serviceProblem") == 3 and server.count("troubleTicket") == 3
        assert all(i.startswith("SP-") for i in report.ids.values())


def test_retries_recover_from_503s(tmp_path):
    with TicketServer(fail_next=2, retry_after="0") as server:
        report = send_tickets(_tickets()[:1], server.endpoint(), tmp_path / "ledger.json", **FAST)
        assert (report.sent, report.failed, report.retries) == (1, 0, 2)
        assert server.count() == 1 and server.posts == 3


def test_dropped_response_is_retried_without_duplicate(tmp_path):
    with TicketServer(drop_next=1) as server:
        report = send_tickets(_tickets()[:2], server.endpoint(), tmp_path / "ledger.json", **FAST)
        assert (report.sent, report.retries) == (2, 1)
        assert server.count() == 2 and server.posts == 3  # the replayed POST found the ticket it had created
        assert report.ids[plans()[0]["plan_id"]] == server.resources()[0]["id"]


def test_timeout_is_retried_without_duplicate(tmp_path):
    with TicketServer(delay_next=1, delay=0.6) as server:
        report = send_tickets(_tickets()[:1], server.endpoint(), tmp_path / "ledger.json", backoff=0.01, timeout=0.2)
        assert (report.sent, report.retries) == (1, 1)
        deadline = time.monotonic() + 5
        while server.handled < 2 and time.monotonic() < deadline:  # let the slow first request finish too
            time.sleep(0.02)
        assert server.handled == 2 and server.count() == 1


def test_bad_request_names_the_plan(tmp_path):
    docs = _tickets()
    del docs[1]["severity"]
    ledger = tmp_path / "ledger.json"
    with TicketServer() as server:
        with pytest.raises(TicketError) as info:
            send_tickets(docs, server.endpoint(), ledger, **FAST)
        message = str(info.value)
        assert plans()[1]["plan_id"] in message and "HTTP 400" in message and "severity" in message and "\n" not in message
        assert server.posts == 2 and server.count() == 1  # no retry of a 400; the first plan is kept
        assert len(json.loads(ledger.read_text())) == 1


def test_retries_exhausted_count_as_failed(tmp_path):
    with TicketServer(fail_next=10) as server:
        report = send_tickets(_tickets()[:2], server.endpoint(), tmp_path / "ledger.json", retries=1, backoff=0.01)
        assert (report.sent, report.failed, report.retries) == (0, 2, 2)
        assert "503" in report.errors[plans()[0]["plan_id"]] and server.count() == 0
        assert not (tmp_path / "ledger.json").exists()


def test_concurrent_replays_of_one_key_create_one_ticket():
    doc = _tickets()[0]
    body = json.dumps(doc).encode()
    with TicketServer() as server:
        statuses = []

        def post():
            request = urllib.request.Request(f"{server.endpoint()}/troubleTicket", data=body, method="POST",
                                             headers={"Content-Type": "application/json", "Idempotency-Key": idempotency_key(doc)})
            with urllib.request.build_opener(urllib.request.ProxyHandler({})).open(request, timeout=5) as resp:
                statuses.append(resp.status)

        threads = [threading.Thread(target=post) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert sorted(statuses) == [200] * 7 + [201] and server.count() == 1


def test_corrupt_ledger_is_not_overwritten(tmp_path):
    ledger = tmp_path / "ledger.json"
    ledger.write_text("{not json")
    with pytest.raises(ValueError, match="ledger"):
        send_tickets(_tickets(), "http://127.0.0.1:9/tmf-api/troubleTicket/v5", ledger, **FAST)
    assert ledger.read_text() == "{not json"


def test_copy_safety():
    plan = example_plan()
    before = copy.deepcopy(plan)
    tmf.trouble_ticket(plan)
    tmf.service_problem(plan)
    assert plan == before


def test_device_campaign_without_grid_validates():
    plan = {**example_plan(), "plan_id": "PLAN-2026-10-19-device-Nova-X5", "grid": "", "problem": "device",
            "device_model": "Nova X5", "cells": []}
    tt, sp = tmf.trouble_ticket(plan), tmf.service_problem(plan)
    assert "affectedLocation" not in sp and all(e["role"] != "affectedArea" for e in tt["relatedEntity"])
    if tmf.spec_available("TMF621"):
        tmf.validate(tt, "TMF621", "TroubleTicket_FVO")
        tmf.validate(sp, "TMF656", "ServiceProblem_FVO")
    with pytest.raises(ValueError, match="missing field 'grid'"):
        tmf.trouble_ticket({**example_plan(), "grid": ""})

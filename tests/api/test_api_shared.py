"""The API on the shared 3,000 x 16-day workspace (slow: it builds the workspace the first time), on a live
uvicorn server with the clock at the end of the data. Answers are checked against the synthetic operator's raw
inputs, which hold the real phone numbers and GPS fixes the workspace only has pseudonymised."""

from __future__ import annotations

import os
import shutil

import httpx
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest
from api_support import LiveServer, add_client, audit_lines, check_camara, get_token

from opencem.api.shapes import in_polygon

RETRIEVE = "/location-retrieval/v0.5/retrieve"


@pytest.fixture(scope="module")
def app(shared, tmp_path_factory):
    from opencem.api.app import Settings, create_app

    ws = tmp_path_factory.mktemp("api-shared") / "ws"
    shutil.copytree(shared.ws, ws, copy_function=os.link)
    settings = Settings()
    app = create_app(ws, settings)
    settings.now = app.state.ctx.store.data_end  # `opencem serve --now data`
    return app


@pytest.fixture(scope="module")
def srv(app, shared):
    ws = app.state.ctx.store.ws.root
    secret = add_client(ws, rate=100000.0)
    subs = pq.read_table(shared.data / "inputs" / "subscribers.parquet").to_pylist()
    with LiveServer(app) as server:
        token = get_token(server.url, "app1", secret)
        with httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {token}"}, timeout=60) as http:
            yield http, ws, subs, shared


def _last_fixes(data, phones: list[str]) -> dict[str, tuple[float, float]]:
    mr = ds.dataset(data / "inputs" / "radio_samples", format="parquet")
    t = mr.to_table(columns=["subscriber_id", "sample_time", "lat", "lon"],
                    filter=pc.field("subscriber_id").isin(phones) & pc.field("lat").is_valid())
    out = {}
    for r in sorted(t.to_pylist(), key=lambda r: r["sample_time"]):
        out[r["subscriber_id"]] = (r["lat"], r["lon"])
    return out


def test_location_answers_hold_the_true_position_and_honour_consent(srv):
    http, ws, subs, shared = srv
    consenting = [s["subscriber_id"] for s in subs if s["consent_location"]][:60]
    refusing = [s["subscriber_id"] for s in subs if not s["consent_location"]][:20]
    fixes = _last_fixes(shared.data, consenting)
    polygons = located = 0
    for p in consenting:
        r = http.post(RETRIEVE, json={"device": {"phoneNumber": p}})
        if r.status_code == 422:
            assert r.json()["code"] == "LOCATION_RETRIEVAL.UNABLE_TO_LOCATE"
            continue
        assert r.status_code == 200, r.text
        located += 1
        body = r.json()
        check_camara("location-retrieval", "Location", body)
        area = body["area"]
        check_camara("location-retrieval", "Polygon" if area["areaType"] == "POLYGON" else "Circle", area)
        if area["areaType"] == "POLYGON":
            polygons += 1
            ring = [(q["latitude"], q["longitude"]) for q in area["boundary"]]
            assert in_polygon(fixes[p], ring), f"the hexagon does not hold the subscriber's last GPS fix {fixes[p]}"
            v = http.post("/location-verification/v3/verify", json={"device": {"phoneNumber": p}, "area": {
                "areaType": "CIRCLE", "center": {"latitude": fixes[p][0], "longitude": fixes[p][1]}, "radius": 2000}})
            check_camara("location-verification", "VerifyLocationResponse", v.json())
            assert v.json()["verificationResult"] == "TRUE"
    assert located >= 0.8 * len(consenting) and polygons >= 10
    for p in refusing:
        r = http.post(RETRIEVE, json={"device": {"phoneNumber": p}})
        assert (r.status_code, r.json()["code"]) == (403, "PERMISSION_DENIED")
    audit = "".join(f.read_text() for f in (ws / "api" / "audit").glob("*.jsonl"))
    assert not any(p in audit for p in consenting + refusing)
    assert sum(a["api"] == "location-retrieval" for a in audit_lines(ws)) == len(consenting) + len(refusing)


def test_population_density_and_aggregates_keep_the_group_size(srv):
    http, ws, subs, shared = srv
    store_end = http.get("/twin/v1/grid-state").json()
    feats = store_end["features"]
    assert feats and all(f["properties"]["subscribersMaxHour"] >= 10 for f in feats)
    lons = [c[0] for f in feats for c in f["geometry"]["coordinates"][0]]
    lats = [c[1] for f in feats for c in f["geometry"]["coordinates"][0]]
    box = [(min(lats), min(lons)), (min(lats), max(lons)), (max(lats), max(lons)), (max(lats), min(lons))]
    end = store_end["end"]
    body = {"area": {"areaType": "POLYGON", "boundary": [{"latitude": a, "longitude": b} for a, b in box]},
            "startTime": store_end["start"].replace("T00", "T17"), "endTime": store_end["start"].replace("T00", "T19"),
            "precision": 6}
    r = http.post("/population-density-data/v0.3/retrieve", json=body)
    assert r.status_code == 200, r.text
    dens = r.json()
    check_camara("population-density-data", "PopulationDensityResponse", dens)
    kinds = [c["dataType"] for slot in dens["timedPopulationDensityData"] for c in slot["cellPopulationDensityData"]]
    assert len(dens["timedPopulationDensityData"]) == 2 and "DENSITY_ESTIMATION" in kinds and end
    grids = http.get("/nps/v1/segments", params={"dimension": "grid"}).json()
    assert grids["suppressed"] > 0 and all(g["subscribers"] >= 10 for g in grids["items"])
    infos = http.get("/nwdaf/v1/service-experience").json()["serviceExperienceInfos"]
    assert infos and all(i["ueCount"] >= 10 and 1 <= i["svcExprc"]["mos"] <= 5 for i in infos)
    episodes = http.get("/twin/v1/episodes").json()["items"]
    assert episodes and all(e.get("suppressed") or e["affected_subscribers"] >= 10 for e in episodes)


def test_subscriber_experience_matches_the_scores(srv, app):
    http, ws, _, _ = srv
    consent = {pid: s.consent_preferences for pid, s in app.state.ctx.store.subscribers.items()}
    scores = pq.read_table(next((ws / "nps" / "scores").rglob("*.parquet"))).to_pylist()
    target = next(r for r in scores if consent[r["subscriber_id"]])
    refused = next(r for r in scores if not consent[r["subscriber_id"]])
    assert http.get(f"/experience/v1/subscribers/{refused['subscriber_id']}").status_code == 403
    body = http.get(f"/experience/v1/subscribers/{target['subscriber_id']}").json()
    assert body["npsClass"] == target["predicted_class"] and body["grid"] == target["grid"]
    assert body["days"] and all(0 <= d["cei"] <= 100 for d in body["days"] if d["cei"] is not None)

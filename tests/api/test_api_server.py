"""The API end to end on a real uvicorn server over the tiny hand-made workspace (conftest.make_tiny_ws)."""

from __future__ import annotations

import base64
import time

import httpx
import pytest
from api_support import NOW, LiveServer, add_client, audit_lines, check_camara, check_error, get_token, phone

RETRIEVE = "/location-retrieval/v0.5/retrieve"
VERIFY = "/location-verification/v3/verify"
DENSITY = "/population-density-data/v0.3/retrieve"
PREFS = "/user-preferences/v1/retrieve"


def _dev(i: int) -> dict:
    return {"phoneNumber": phone(i)}


# -- authentication, scopes, rate limit, audit -------------------------------------------------------

def test_calls_without_a_valid_token_are_401_and_audited(live):
    for headers in ({}, {"Authorization": "Bearer not-a-jwt"}, {"Authorization": "Basic abc"}):
        r = httpx.post(live.url + RETRIEVE, json={"device": _dev(0)}, headers=headers)
        check_error("location-retrieval", r, 401, "UNAUTHENTICATED")
    lines = [a for a in audit_lines(live.ws.root) if a["api"] == "location-retrieval"]
    assert len(lines) == 3 and all(a["status"] == 401 and a["result"] == "UNAUTHENTICATED" for a in lines)


def test_token_endpoint_checks_the_client_and_its_scopes(live):
    url = live.url + "/oauth2/token"
    form = {"grant_type": "client_credentials", "client_id": "app1", "client_secret": live.secret}
    check_error("CAMARA_common", httpx.post(url, data={**form, "client_secret": "wrong"}), 401, "UNAUTHENTICATED")
    check_error("CAMARA_common", httpx.post(url, data={**form, "grant_type": "password"}), 400, "INVALID_ARGUMENT")
    check_error("CAMARA_common", httpx.post(url, json=form), 400, "INVALID_ARGUMENT")
    basic = base64.b64encode(f"app1:{live.secret}".encode()).decode()
    r = httpx.post(url, data={"grant_type": "client_credentials", "scope": "nps:read"}, headers={"Authorization": f"Basic {basic}"})
    assert r.status_code == 200 and r.json()["scope"] == "nps:read" and r.json()["token_type"] == "Bearer"
    # a token for nps:read only cannot call location retrieval
    r2 = httpx.post(live.url + RETRIEVE, json={"device": _dev(0)}, headers={"Authorization": "Bearer " + r.json()["access_token"]})
    check_error("location-retrieval", r2, 403, "PERMISSION_DENIED")


def test_a_client_gets_only_the_scopes_it_was_granted(tiny):
    from opencem.api.app import Settings, create_app

    secret = add_client(tiny.root, "narrow", scopes=["nps:read"])
    with LiveServer(create_app(tiny.root, Settings(now=NOW))) as s:
        r = httpx.post(s.url + "/oauth2/token", data={"grant_type": "client_credentials", "client_id": "narrow",
                                                     "client_secret": secret, "scope": "nps:read location-retrieval:read"})
        check_error("CAMARA_common", r, 403, "PERMISSION_DENIED")
        token = get_token(s.url, "narrow", secret)
        auth = {"Authorization": f"Bearer {token}"}
        assert httpx.get(s.url + "/nps/v1/base", headers=auth).status_code == 200
        check_error("CAMARA_common", httpx.get(s.url + "/twin/v1/episodes", headers=auth), 403, "PERMISSION_DENIED")


def test_rate_limit_gives_429_with_retry_after(tiny):
    from opencem.api.app import Settings, create_app

    secret = add_client(tiny.root, "slow", rate=0.001, burst=3)  # no refill during the test
    with LiveServer(create_app(tiny.root, Settings(now=NOW))) as s:
        token = get_token(s.url, "slow", secret)  # the token call takes one of the three
        auth = {"Authorization": f"Bearer {token}"}
        codes = [httpx.get(s.url + "/nps/v1/base", headers=auth) for _ in range(3)]
        assert [r.status_code for r in codes[:2]] == [200, 200]
        check_error("CAMARA_common", codes[2], 429, "TOO_MANY_REQUESTS")
        assert int(codes[2].headers["Retry-After"]) >= 1


def test_revoking_a_client_stops_its_tokens_on_a_running_server(live):
    from opencem.api.security import ClientRegistry

    assert live.http.get("/nps/v1/base").status_code == 200
    ClientRegistry.of(live.ws.root).revoke("app1")
    time.sleep(ClientRegistry.recheck_s + 0.1)  # a server looks at the registry file at most every recheck_s
    check_error("CAMARA_common", live.http.get("/nps/v1/base"), 401, "UNAUTHENTICATED")


def test_x_correlator_is_echoed_and_checked(live):
    r = live.http.post(RETRIEVE, json={"device": _dev(0)}, headers={"x-correlator": "b4333c46-49c0-4f62"})
    assert r.status_code == 200 and r.headers["x-correlator"] == "b4333c46-49c0-4f62"
    r = live.http.post(RETRIEVE, json={"device": _dev(15)}, headers={"x-correlator": "abc"})
    assert r.status_code == 403 and r.headers["x-correlator"] == "abc"  # on errors too
    r = live.http.post(RETRIEVE, json={"device": _dev(0)}, headers={"x-correlator": "has spaces!"})
    check_error("CAMARA_common", r, 400, "INVALID_ARGUMENT")
    assert "x-correlator" not in r.headers


def test_audit_log_has_one_line_per_call_and_no_raw_identifier(live):
    live.http.post(RETRIEVE, json={"device": _dev(0)}, headers={"x-correlator": "c1"})
    live.http.post(RETRIEVE, json={"device": _dev(15)}, headers={"x-correlator": "c2"})
    lines = {a["correlator"]: a for a in audit_lines(live.ws.root) if a["correlator"]}
    ok, denied = lines["c1"], lines["c2"]
    assert (ok["client"], ok["api"], ok["subject"], ok["status"], ok["result"]) == \
        ("app1", "location-retrieval", live.ws.ids[0], 200, "ok")
    assert ok["purpose"] == "dpv:FraudPreventionAndDetection" and ok["time"].endswith("Z")
    assert (denied["subject"], denied["status"], denied["result"]) == (live.ws.ids[15], 403, "PERMISSION_DENIED")
    raw = "".join(p.read_text() for p in (live.ws.root / "api" / "audit").glob("*.jsonl"))
    assert phone(0) not in raw and phone(15) not in raw and "+336" not in raw


# -- CAMARA location -----------------------------------------------------------------------------------

def test_location_retrieval_polygon_from_a_gps_fix_and_circle_from_a_cell(live):
    r = live.http.post(RETRIEVE, json={"device": _dev(0), "maxAge": 3600})
    assert r.status_code == 200, r.text
    body = r.json()
    check_camara("location-retrieval", "Location", body)
    check_camara("location-retrieval", "Polygon", body["area"])
    assert body["area"]["areaType"] == "POLYGON" and len(body["area"]["boundary"]) == 6  # the H3 hexagon
    assert body["lastLocationTime"] == "2026-10-20T12:00:00Z"
    assert "device" not in body and phone(0) not in r.text
    r = live.http.post(RETRIEVE, json={"device": _dev(10)})
    body = r.json()
    check_camara("location-retrieval", "Circle", body["area"])
    assert body["area"]["center"] == {"latitude": 45.05, "longitude": 4.05} and body["area"]["radius"] == 1500


def test_location_retrieval_errors(live):
    check_error("location-retrieval", live.http.post(RETRIEVE, json={"device": _dev(15)}), 403, "PERMISSION_DENIED")
    check_error("location-retrieval", live.http.post(RETRIEVE, json={"device": {"phoneNumber": "+4479000000"}}), 404, "IDENTIFIER_NOT_FOUND")
    check_error("location-retrieval", live.http.post(RETRIEVE, json={"device": _dev(20)}), 422, "LOCATION_RETRIEVAL.UNABLE_TO_LOCATE")
    check_error("location-retrieval", live.http.post(RETRIEVE, json={"maxAge": 60}), 422, "MISSING_IDENTIFIER")
    check_error("location-retrieval", live.http.post(RETRIEVE, json={"device": {"ipv6Address": "2001:db8::1"}}), 422, "UNSUPPORTED_IDENTIFIER")
    # the fix is 3,600 s old at NOW
    check_error("location-retrieval", live.http.post(RETRIEVE, json={"device": _dev(0), "maxAge": 3599}), 422,
                "LOCATION_RETRIEVAL.UNABLE_TO_FULFILL_MAX_AGE")
    check_error("location-retrieval", live.http.post(RETRIEVE, json={"device": _dev(0), "maxAge": 0}), 422,
                "LOCATION_RETRIEVAL.UNABLE_TO_FULFILL_MAX_AGE")
    assert live.http.post(RETRIEVE, json={"device": _dev(0), "maxAge": 3600}).status_code == 200
    check_error("location-retrieval", live.http.post(RETRIEVE, json={"device": _dev(0), "maxSurface": 1000}), 422,
                "LOCATION_RETRIEVAL.UNABLE_TO_FULFILL_MAX_SURFACE")
    for bad in ({"device": {"phoneNumber": "0612"}}, {"device": {}}, {"device": _dev(0), "maxSurface": 0}, "[]"):
        r = live.http.post(RETRIEVE, json=bad) if not isinstance(bad, str) else live.http.post(RETRIEVE, content=bad)
        check_error("location-retrieval", r, 400, "INVALID_ARGUMENT")


def _circle(lat, lon, radius):
    return {"areaType": "CIRCLE", "center": {"latitude": lat, "longitude": lon}, "radius": radius}


def test_location_verification_true_false_partial(live):
    cases = [(_circle(45.0, 4.0, 2000), "TRUE"), (_circle(45.03, 4.03, 500), "FALSE"), (_circle(45.0005, 4.0005, 150), "PARTIAL")]
    for area, want in cases:
        r = live.http.post(VERIFY, json={"device": _dev(0), "area": area})
        assert r.status_code == 200, r.text
        check_camara("location-verification", "VerifyLocationResponse", r.json())
        assert r.json()["verificationResult"] == want
        assert ("matchRate" in r.json()) == (want == "PARTIAL")
    # POLYGON (an extension of v3): a square around the fix
    square = {"areaType": "POLYGON", "boundary": [{"latitude": a, "longitude": b} for a, b in
                                                  ((44.99, 3.99), (44.99, 4.01), (45.01, 4.01), (45.01, 3.99))]}
    assert live.http.post(VERIFY, json={"device": _dev(0), "area": square}).json()["verificationResult"] == "TRUE"


def test_location_verification_errors(live):
    check_error("location-verification", live.http.post(VERIFY, json={"device": _dev(0), "area": _circle(45.0, 4.0, 50)}),
                422, "LOCATION_VERIFICATION.INVALID_AREA")
    check_error("location-verification", live.http.post(VERIFY, json={"device": _dev(0), "area": _circle(10.0, 10.0, 1000)}),
                422, "LOCATION_VERIFICATION.AREA_NOT_COVERED")
    check_error("location-verification", live.http.post(VERIFY, json={"device": _dev(16), "area": _circle(45.0, 4.0, 2000)}),
                403, "PERMISSION_DENIED")
    check_error("location-verification", live.http.post(VERIFY, json={"device": _dev(0), "area": _circle(45.0, 4.0, 2000),
                                                                      "maxAge": 60}), 422, "LOCATION_VERIFICATION.UNABLE_TO_FULFILL_MAX_AGE")
    check_error("location-verification", live.http.post(VERIFY, json={"device": _dev(0)}), 400, "INVALID_ARGUMENT")


# -- population density and the group-size floor --------------------------------------------------------

def _density(live, lat0, lon0, lat1, lon1, **kw):
    body = {"area": {"areaType": "POLYGON", "boundary": [{"latitude": a, "longitude": b} for a, b in
                                                         ((lat0, lon0), (lat0, lon1), (lat1, lon1), (lat1, lon0))]},
            "startTime": "2026-10-20T12:00:00Z", "endTime": "2026-10-20T13:00:00Z", "precision": 6, **kw}
    return live.http.post(DENSITY, json=body)


def test_population_density_keeps_small_groups_out(live):
    r = _density(live, 44.99, 3.99, 45.06, 4.06)
    assert r.status_code == 200, r.text
    body = r.json()
    check_camara("population-density-data", "PopulationDensityResponse", body)
    assert body["status"] == "PART_OF_AREA_NOT_SUPPORTED"  # most geohash cells of the box have no grid of the twin
    [slot] = body["timedPopulationDensityData"]
    assert (slot["startTime"], slot["endTime"]) == ("2026-10-20T12:00:00Z", "2026-10-20T13:00:00Z")
    by_type = {}
    for c in slot["cellPopulationDensityData"]:
        by_type.setdefault(c["dataType"], []).append(c)
        if c["dataType"] == "DENSITY_ESTIMATION":
            check_camara("population-density-data", "DENSITY_ESTIMATION", c)
            assert c["minPplDensity"] <= c["pplDensity"] <= c["maxPplDensity"]
        else:
            assert set(c) == {"geohash", "dataType"}
    # grid A (12 subscribers) is estimated, grid B (3, under the floor of 10) is LOW_DENSITY
    assert len(by_type["DENSITY_ESTIMATION"]) >= 1 and len(by_type["LOW_DENSITY"]) >= 1 and by_type["NO_DATA"]


def test_population_density_errors(live):
    check_error("population-density-data", _density(live, 44.99, 3.99, 45.06, 4.06, endTime="2026-10-20T11:00:00Z"),
                400, "POPULATION_DENSITY_DATA.INVALID_END_TIME")
    check_error("population-density-data", _density(live, 44.99, 3.99, 45.06, 4.06, endTime="2026-10-29T11:00:00Z"),
                400, "POPULATION_DENSITY_DATA.MAX_TIME_PERIOD_EXCEEDED")
    check_error("population-density-data", _density(live, 44.99, 3.99, 45.06, 4.06, endTime="2026-10-21T11:00:00Z"),
                400, "POPULATION_DENSITY_DATA.INVALID_TIME_PERIOD")
    for precision in (9, 4, 1):  # finer than the grid; cells of hundreds of km2 and more
        check_error("population-density-data", _density(live, 44.99, 3.99, 45.06, 4.06, precision=precision),
                    422, "POPULATION_DENSITY_DATA.UNSUPPORTED_PRECISION")
    check_error("population-density-data", _density(live, 44.0, 3.0, 46.0, 5.0, precision=7),
                400, "POPULATION_DENSITY_DATA.INVALID_AREA")  # over 500 km2
    check_error("population-density-data", _density(live, 44.99, 3.99, 45.06, 4.06, sink="https://example.com/cb"),
                400, "INVALID_SINK")
    r = _density(live, 10.0, 10.0, 10.01, 10.01)
    assert r.status_code == 200 and r.json() == {"timedPopulationDensityData": [], "status": "AREA_NOT_SUPPORTED"}


def test_nps_segments_below_the_group_size_are_left_out(live):
    body = live.http.get("/nps/v1/segments", params={"dimension": "plan"}).json()
    assert [i["segment"] for i in body["items"]] == ["big"] and body["suppressed"] == 1 and body["minGroupSize"] == 10
    assert live.http.get(f"/nps/v1/grids/{live.ws.grid_a}").json()["subscribers"] == 12
    check_error("CAMARA_common", live.http.get(f"/nps/v1/grids/{live.ws.grid_b}"), 404, "NOT_FOUND")
    assert live.http.get("/nps/v1/base").json()["items"][0]["nps"] == 10.0


def test_twin_grid_state_is_geojson_with_small_grids_left_out(live):
    r = live.http.get("/twin/v1/grid-state", params={"start": "2026-10-20T00:00:00Z", "end": "2026-10-21T00:00:00Z"})
    body = r.json()
    assert body["type"] == "FeatureCollection" and body["suppressed"] == 1
    [f] = body["features"]
    assert f["id"] == live.ws.grid_a and f["geometry"]["type"] == "Polygon"
    ring = f["geometry"]["coordinates"][0]
    assert ring[0] == ring[-1] and len(ring) == 7 and f["properties"]["sessions"] == 40
    check_error("CAMARA_common", live.http.get("/twin/v1/grid-state", params={"start": "2026-10-21T00:00:00Z",
                                                                                "end": "2026-10-20T00:00:00Z"}), 400, "INVALID_ARGUMENT")


def test_episodes_hide_counts_of_small_groups(live):
    items = {e["episode_id"]: e for e in live.http.get("/twin/v1/episodes").json()["items"]}
    assert items["E0001"]["affected_subscribers"] == 18 and "suppressed" not in items["E0001"]
    assert items["E0002"]["affected_subscribers"] is None and items["E0002"]["suppressed"] is True
    assert live.http.get("/twin/v1/episodes/E0002").json()["affected_arpu"] is None
    check_error("CAMARA_common", live.http.get("/twin/v1/episodes/E9999"), 404, "NOT_FOUND")


def test_service_experience_groups_of_at_least_the_minimum(live):
    body = live.http.get("/nwdaf/v1/service-experience", params={"service": "video"}).json()
    infos = {i["networkArea"]["h3Cells"][0]: i for i in body["serviceExperienceInfos"]}
    assert {g: i["ueCount"] for g, i in infos.items()} == {live.ws.grid_a: 12, live.ws.grid_b: 18}
    a = infos[live.ws.grid_a]
    assert a["svcExprc"]["mos"] == 4.0 and a["ratio"] == 100 and a["srvExpcType"] == "VIDEO"  # CEI 75 -> MOS 4
    assert body["start"] == body["end"] == "2026-10-20" or body["end"] == "2026-10-20"


def test_service_experience_leaves_out_groups_under_the_floor(tiny):
    from opencem.api.app import Settings, create_app

    secret = add_client(tiny.root)
    with LiveServer(create_app(tiny.root, Settings(now=NOW, min_group=15))) as s:
        auth = {"Authorization": "Bearer " + get_token(s.url, "app1", secret)}
        body = httpx.get(s.url + "/nwdaf/v1/service-experience", headers=auth).json()
        assert {i["ueCount"] for i in body["serviceExperienceInfos"]} == {18}  # grid A's 12 UEs are under 15


def test_subscriber_experience_by_pseudonymous_id(live):
    pid = live.ws.ids[3]
    body = live.http.get(f"/experience/v1/subscribers/{pid}").json()
    assert body["npsClass"] == "promoter" and body["days"][0]["cei"] == 83.0 and body["grid"] == live.ws.grid_a
    check_error("CAMARA_common", live.http.get("/experience/v1/subscribers/" + "0" * 32), 404, "IDENTIFIER_NOT_FOUND")
    check_error("CAMARA_common", live.http.get("/experience/v1/subscribers/+33600000003"), 400, "INVALID_ARGUMENT")
    assert any(a["subject"] == pid and a["api"] == "experience" for a in audit_lines(live.ws.root))
    # without consent to share what is known of them: refused, and the refusal is audited
    check_error("CAMARA_common", live.http.get(f"/experience/v1/subscribers/{live.ws.ids[15]}"), 403, "PERMISSION_DENIED")
    assert any((a["subject"], a["api"], a["status"]) == (live.ws.ids[15], "experience", 403) for a in audit_lines(live.ws.root))


def test_insight_tables_never_serve_subscriber_rows(live):
    names = [t["name"] for t in live.http.get("/insights/v1/tables").json()]
    assert names == ["loop.prioritise.candidates", "segments.segments"]  # members.parquet has subscriber ids: not served
    body = live.http.get("/insights/v1/tables/segments.segments").json()
    assert [r["segment"] for r in body["rows"]] == ["big"] and body["suppressed"] == 1
    body = live.http.get("/insights/v1/tables/loop.prioritise.candidates").json()
    assert [r["cause"] for r in body["rows"]] == ["congestion"] and body["suppressed"] == 1  # 4 touched: left out
    check_error("CAMARA_common", live.http.get("/insights/v1/tables/segments.members"), 404, "NOT_FOUND")
    # JSON documents: objects with a small count are replaced; a document naming subscribers is not served
    assert live.http.get("/insights/v1/documents").json() == ["loop.prioritise.plans"]
    doc = live.http.get("/insights/v1/documents/loop.prioritise.plans").json()
    assert doc["document"] == [{"plan_id": "P1", "grid": live.ws.grid_a, "subscribers_affected": 30,
                                "description": "30 subscribers touched"}, {"suppressed": True}] and doc["suppressed"] == 1
    check_error("CAMARA_common", live.http.get("/insights/v1/documents/loop.prioritise.care"), 404, "NOT_FOUND")


def test_user_preferences_need_consent_and_refusals_are_audited(live):
    r = live.http.post(PREFS, json={"device": _dev(1)}, headers={"x-correlator": "p-ok"})
    assert r.status_code == 200
    body = r.json()
    assert [s["service"] for s in body["preferredServices"]] == ["video", "web"] and body["plan"] == "big"
    r = live.http.post(PREFS, json={"device": _dev(12)}, headers={"x-correlator": "p-no"})  # location consent only
    check_error("CAMARA_common", r, 403, "PERMISSION_DENIED")
    line = next(a for a in audit_lines(live.ws.root) if a["correlator"] == "p-no")
    assert (line["api"], line["subject"], line["result"]) == ("user-preferences", live.ws.ids[12], "PERMISSION_DENIED")


def test_unknown_paths_and_methods_are_error_info(live):
    check_error("CAMARA_common", live.http.get("/nothing/here"), 404, "NOT_FOUND")
    check_error("CAMARA_common", live.http.get(RETRIEVE), 405, "METHOD_NOT_ALLOWED")


@pytest.mark.parametrize("min_group, estimated", [(10, 1), (13, 0)])
def test_the_group_size_floor_is_a_setting(tiny, min_group, estimated):
    from opencem.api.app import Settings, create_app

    secret = add_client(tiny.root)
    with LiveServer(create_app(tiny.root, Settings(now=NOW, min_group=min_group))) as s:
        auth = {"Authorization": "Bearer " + get_token(s.url, "app1", secret)}
        grids = httpx.get(s.url + "/nps/v1/segments", params={"dimension": "grid"}, headers=auth).json()["items"]
        assert len(grids) == estimated


def test_a_workspace_without_scores_or_twin_says_which_stage_to_run(tiny):
    import shutil

    from opencem.api.app import Settings, create_app

    shutil.rmtree(tiny.root / "twin")
    shutil.rmtree(tiny.root / "nps")
    secret = add_client(tiny.root)
    with LiveServer(create_app(tiny.root, Settings(now=NOW))) as s:
        auth = {"Authorization": "Bearer " + get_token(s.url, "app1", secret)}
        r = httpx.get(s.url + "/twin/v1/grid-state", headers=auth)
        check_error("CAMARA_common", r, 404, "NOT_FOUND")
        assert "opencem diagnose" in r.json()["message"]
        r = httpx.get(s.url + "/nps/v1/base", headers=auth)
        check_error("CAMARA_common", r, 404, "NOT_FOUND")
        assert "opencem score" in r.json()["message"]
        assert httpx.post(s.url + RETRIEVE, json={"device": _dev(0)}, headers=auth).status_code == 200  # the lake suffices


def test_guessing_a_clients_secret_is_rate_limited(live, monkeypatch):
    from opencem.api.routers import oauth

    monkeypatch.setattr(oauth, "TOKEN_ATTEMPTS_PER_S", 1e-6)  # no refill while the test runs, however slow the machine
    url = live.url + "/oauth2/token"
    form = {"grant_type": "client_credentials", "client_id": "app1", "client_secret": "guess"}
    codes = [httpx.post(url, data=form).status_code for _ in range(12)]
    assert codes[:9] == [401] * 9  # the fixture's own token request took one of the ten
    check_error("CAMARA_common", httpx.post(url, data=form), 429, "TOO_MANY_REQUESTS")

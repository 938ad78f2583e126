"""What the API tests share: a tiny hand-made workspace, a real uvicorn server on a free loopback port, clients
and tokens, and the CAMARA schemas (``camara/``) to check bodies against. conftest.py re-exports the fixtures;
tests import the rest from here, by this name: ``conftest`` is also another test folder's module name."""

from __future__ import annotations

import datetime as dt
import json
import re
import socket
import threading
import time
from pathlib import Path
from types import SimpleNamespace

import h3
import httpx
import jsonschema
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml

from opencem.ingest.pseudonym import KEY_ENV, Pseudonymiser

HERE = Path(__file__).parent
KEY = "tiny-workspace-test-key"
DAY = dt.date(2026, 10, 20)
NOW = dt.datetime(2026, 10, 20, 13, 0, tzinfo=dt.UTC)  # the GPS fix is 3,600 s old
FIX = (45.0005, 4.0005)  # the GPS fix of subscribers 0-9
CELLS = {"C1": (45.0, 4.0, "core"), "C2": (45.05, 4.05, "suburb")}
ALL_SCOPES = ["location-retrieval:read", "location-verification:verify", "population-density-data:read", "nps:read",
              "experience:read", "twin:read", "service-experience:read", "insights:read", "user-preferences:read"]


def phone(i: int) -> str:
    return f"+3360000{i:04d}"


def _write(path: Path, rows: list[dict] | pa.Table) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(rows if isinstance(rows, pa.Table) else pa.Table.from_pylist(rows), path)


def make_tiny_ws(root: Path) -> SimpleNamespace:
    """30 subscribers. 0-9: location and preference consent, a GPS fix at FIX at 12:00 (a hexagon answer);
    10-14: location consent, last seen on cell C2 at 11:00 (a circle answer); 15-19: no consent at all;
    20-29: location consent, never observed. Grid A (of FIX) has 12 subscribers at 12:00, grid B (of C2) 3."""
    ps = Pseudonymiser(KEY.encode())
    (root / ".secrets").mkdir(parents=True)
    (root / ".secrets" / "pseudonym.key").write_text(KEY + "\n")
    ids = [ps.one(phone(i)) for i in range(30)]
    _write(root / "lake" / "subscribers" / "part-00000.parquet", [
        {"subscriber_id": s, "plan": "big" if i < 25 else "small", "device_capability": "5G", "device_vendor": "Galen",
         "consent_location": i < 15 or i >= 20, "consent_preferences": i < 10, "consent_marketing": False}
        for i, s in enumerate(ids)])
    _write(root / "lake" / "cells" / "part-00000.parquet",
           [{"cell_id": c, "lat": a, "lon": b, "area_type": t} for c, (a, b, t) in CELLS.items()])
    noon = dt.datetime(2026, 10, 20, 12, 0)
    _write(root / "lake" / "radio_samples" / f"day={DAY}" / "part-00000.parquet", pa.table({
        "subscriber_id": ids[:10], "sample_time": [noon] * 10, "lat": [FIX[0]] * 10, "lon": [FIX[1]] * 10,
        "cell_id": ["C1"] * 10}))
    _write(root / "lake" / "xdr" / f"day={DAY}" / "part-00000.parquet", pa.table({
        "subscriber_id": ids[10:15], "start_time": [noon - dt.timedelta(hours=1)] * 5, "cell_id": ["C2"] * 5}))
    grid_a = h3.latlng_to_cell(*FIX, 9)
    grid_b = h3.latlng_to_cell(45.05, 4.05, 9)
    _write(root / "measure" / "cei_subscriber_day" / f"day={DAY}" / "part-00000.parquet", [
        {"subscriber_id": s, "sessions_total": 5, "cei": 80.0 + i, "cei_web": 70.0, "cei_video": 90.0, "cei_voice": None,
         "cei_gaming": None, "cei_social": None, "cei_file_transfer": None} for i, s in enumerate(ids)])
    _write(root / "measure" / "cei_service_day" / f"day={DAY}" / "part-00000.parquet", [
        {"subscriber_id": s, "service": svc, "sessions": 3, "volume_mb": vol, "cei": 75.0}
        for s in ids for svc, vol in (("video", 300.0), ("web", 20.0))])
    hour = dt.datetime(2026, 10, 20, 12, 0)
    metrics = {"sessions": 40, "poor_sessions": 4, "poor_share": 0.1, "fail_share": 0.02, "cei": 85.0, "rtt_ms_p50": 40.0,
               "thp_dl_kbps_p50": 20000.0, "prb_util_dl": 0.4, "rsrp_dbm_p50": -95.0, "sinr_db_p50": 10.0}
    _write(root / "twin" / "state_grid_hour" / f"day={DAY}" / "part-00000.parquet", [
        {"grid": grid_a, "hour": hour, "subscribers": 12, **metrics},
        {"grid": grid_b, "hour": hour, "subscribers": 3, **metrics}])
    _write(root / "twin" / "episodes.parquet", [
        {"episode_id": "E0001", "kind": "area", "start_time": hour, "end_time": hour, "cause": "congestion",
         "confidence": 0.9, "subscribers": 40, "affected_subscribers": 18, "affected_arpu": 500.0},
        {"episode_id": "E0002", "kind": "area", "start_time": hour, "end_time": hour, "cause": "coverage",
         "confidence": 0.7, "subscribers": 6, "affected_subscribers": 3, "affected_arpu": 90.0}])
    as_of = "as_of=2026-10-21"
    _write(root / "nps" / "segments" / as_of / "segments.parquet", [
        {"dimension": "base", "segment": "all", "subscribers": 30, "nps": 10.0},
        {"dimension": "plan", "segment": "big", "subscribers": 25, "nps": 12.0},
        {"dimension": "plan", "segment": "small", "subscribers": 5, "nps": -40.0},
        {"dimension": "grid", "segment": grid_a, "subscribers": 12, "nps": 5.0},
        {"dimension": "grid", "segment": grid_b, "subscribers": 3, "nps": -60.0}])
    _write(root / "nps" / "scores" / as_of / "scores.parquet", [
        {"subscriber_id": s, "as_of": dt.date(2026, 10, 21), "predicted_class": "promoter", "p_promoter": 0.6,
         "p_passive": 0.3, "p_detractor": 0.1, "expected_score": 8.5, "risk_flag": False, "top_network_driver": None,
         "network_drivers": None, "grid": grid_a if i < 12 else grid_b} for i, s in enumerate(ids)])
    _write(root / "segments" / "segments" / as_of / "segments.parquet", [
        {"dimension": "plan", "segment": "big", "subscribers": 25}, {"dimension": "plan", "segment": "small", "subscribers": 5}])
    _write(root / "segments" / "segments" / as_of / "members.parquet", [{"subscriber_id": s, "segment": "big"} for s in ids])
    _write(root / "loop" / "prioritise" / "candidates.parquet", [
        {"grid": grid_a, "cause": "congestion", "touched_subscribers": 30}, {"grid": grid_b, "cause": "coverage", "touched_subscribers": 4}])
    (root / "loop" / "prioritise" / "plans.json").write_text(json.dumps([
        {"plan_id": "P1", "grid": grid_a, "subscribers_affected": 30, "description": "30 subscribers touched"},
        {"plan_id": "P2", "grid": grid_b, "subscribers_affected": 4, "description": "4 subscribers touched"}]))
    (root / "loop" / "prioritise" / "care.json").write_text(json.dumps({"subscriber_id": ids[0]}))
    return SimpleNamespace(root=root, ids=ids, grid_a=grid_a, grid_b=grid_b)


@pytest.fixture
def tiny(tmp_path, monkeypatch):
    monkeypatch.delenv(KEY_ENV, raising=False)
    return make_tiny_ws(tmp_path / "ws")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LiveServer:
    """uvicorn serving ``app`` on a free loopback port in a thread, for a ``with`` block."""

    def __init__(self, app) -> None:
        import uvicorn

        self.app = app
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> LiveServer:
        self.thread.start()
        for _ in range(500):
            if self.server.started:
                return self
            time.sleep(0.02)
        raise RuntimeError("uvicorn did not start")

    def __exit__(self, *exc) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


def add_client(ws: Path, client_id: str = "app1", scopes=ALL_SCOPES, rate: float = 1000.0, burst: int | None = None,
               purpose: str = "dpv:FraudPreventionAndDetection") -> str:
    from opencem.api.security import ClientRegistry

    return ClientRegistry.of(ws).add(client_id, list(scopes), purpose, rate_per_s=rate, burst=burst)


def get_token(url: str, client_id: str, secret: str, scope: str | None = None) -> str:
    form = {"grant_type": "client_credentials", "client_id": client_id, "client_secret": secret}
    if scope:
        form["scope"] = scope
    r = httpx.post(f"{url}/oauth2/token", data=form)
    assert r.status_code == 200, r.text
    return r.json()["access_token"]


@pytest.fixture
def live(tiny):
    """The tiny workspace served with the clock at NOW; ``call(method, path, token=..., **kw)``."""
    from opencem.api.app import Settings, create_app

    secret = add_client(tiny.root)
    app = create_app(tiny.root, Settings(now=NOW))
    with LiveServer(app) as server:
        token = get_token(server.url, "app1", secret)
        with httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {token}"}) as http:
            yield SimpleNamespace(url=server.url, http=http, token=token, secret=secret, ws=tiny, app=app)


def audit_lines(ws_root: Path) -> list[dict]:
    from opencem.api.audit import read_audit

    return read_audit(ws_root / "api" / "audit")


# -- CAMARA schemas ------------------------------------------------------------------------------------

_SPECS: dict[str, dict] = {}


def spec(name: str) -> dict:
    if name not in _SPECS:
        text = (HERE / "camara" / f"{name}.yaml").read_text()
        # CAMARA_common.yaml is a template: its unquoted {{PLACEHOLDER}} values are not YAML
        text = re.sub(r"\{ *\{ *([A-Za-z_]+) *\} *\}", r"\1", text)
        _SPECS[name] = yaml.safe_load(text)
    return _SPECS[name]


def check_camara(spec_name: str, schema: str, body) -> None:
    """Validate ``body`` against ``#/components/schemas/<schema>`` of a CAMARA spec (draft 4 keywords, formats checked)."""
    doc = spec(spec_name)
    validator = jsonschema.Draft4Validator({"$ref": f"#/components/schemas/{schema}", "components": doc["components"]},
                                           format_checker=jsonschema.FormatChecker())
    validator.validate(body)


def check_error(spec_name: str, response: httpx.Response, status: int, code: str) -> None:
    """An ErrorInfo body of ``status`` / ``code``, valid against the spec's ErrorInfo."""
    assert response.status_code == status, response.text
    body = response.json()
    check_camara(spec_name, "ErrorInfo", body)
    assert (body["status"], body["code"]) == (status, code), body
    assert body["message"]

"""`opencem clients add|revoke|list` and `opencem serve`'s input errors, through the real command line."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from opencem.cli import app

runner = CliRunner()


def test_clients_add_list_revoke(tmp_path):
    ws = tmp_path / "ws"
    ws.mkdir()
    r = runner.invoke(app, ["clients", "add", "--workspace", str(ws), "--id", "shop", "--scope", "nps:read",
                            "--scope", "location-verification:verify twin:read", "--purpose", "fraud prevention", "--rate", "5"])
    assert r.exit_code == 0, r.output
    added = json.loads(r.stdout)
    assert added["scopes"] == ["location-verification:verify", "nps:read", "twin:read"] and len(added["client_secret"]) > 30
    assert added["client_secret"] not in (ws / "api" / "clients.json").read_text()
    listed = [json.loads(line) for line in runner.invoke(app, ["clients", "list", "-w", str(ws)]).stdout.splitlines()]
    assert [(c["client_id"], c["rate_per_s"], c["burst"], c["revoked"]) for c in listed] == [("shop", 5.0, 10, None)]
    assert "secret_hash" not in listed[0]
    assert runner.invoke(app, ["clients", "revoke", "-w", str(ws), "--id", "shop"]).exit_code == 0
    listed = json.loads(runner.invoke(app, ["clients", "list", "-w", str(ws)]).stdout)
    assert listed["revoked"] is not None


def test_clients_and_serve_errors_are_one_line(tmp_path):
    ws = tmp_path / "ws"
    ws.mkdir()
    r = runner.invoke(app, ["clients", "add", "-w", str(ws), "--id", "x", "--scope", "root", "--purpose", "p"])
    assert r.exit_code == 2 and "unknown scope(s) root" in r.output and "Traceback" not in r.output
    r = runner.invoke(app, ["clients", "revoke", "-w", str(ws), "--id", "ghost"])
    assert r.exit_code == 2 and "no client 'ghost'" in r.output
    r = runner.invoke(app, ["serve", "--workspace", str(tmp_path / "missing")])
    assert r.exit_code == 2 and "no such workspace folder" in r.output
    r = runner.invoke(app, ["serve", "--workspace", str(ws)])
    assert r.exit_code == 2 and "not an OpenCEM workspace" in r.output
    r = runner.invoke(app, ["serve", "--workspace", str(ws), "--now", "yesterday"])
    assert r.exit_code == 2 and "--now 'yesterday'" in r.output


def test_opencem_serve_runs_a_server_with_the_data_clock(tiny):
    """`opencem serve --now data` in a subprocess: the clock is the end of the data (12:00, when the GPS fixes
    were taken), so a 60 s maxAge is met; the wall clock (weeks later) would refuse it."""
    import subprocess
    import sys
    import time

    import httpx
    from api_support import add_client, free_port, get_token, phone

    secret = add_client(tiny.root)
    port = free_port()
    cmd = [sys.executable, "-c", "from opencem.cli import app; app()", "serve", "--workspace", str(tiny.root),
           "--port", str(port), "--now", "data", "--log-level", "warning"]
    server = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            try:
                if httpx.get(url + "/health").status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.1)
        token = get_token(url, "app1", secret)
        r = httpx.post(url + "/location-retrieval/v0.5/retrieve", json={"device": {"phoneNumber": phone(0)}, "maxAge": 60},
                       headers={"Authorization": f"Bearer {token}"})
        assert r.status_code == 200, r.text
        assert r.json()["lastLocationTime"] == "2026-10-20T12:00:00Z"
    finally:
        server.terminate()
        server.wait(timeout=30)

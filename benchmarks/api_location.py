"""CAMARA location retrieval on loopback: latency at a target request rate, against `opencem serve`.

    python benchmarks/api_location.py --workspace WS --data DATA [--rate 1000] [--seconds 20] [--connections 50]
                                      [--generator openloop|hey] [--runs 1]

WS is a measured workspace and DATA its synthetic operator (for the raw phone numbers of subscribers with
location consent). WS is copied (hard links) to a temporary folder, because the server writes its client
registry and audit log there. `opencem serve --now data` runs in a subprocess (one uvicorn process); the
load generator runs on the same machine:

* `openloop` (default; `benchmarks/openloop.mjs`, Node, no packages): open loop, requests due at Poisson
  arrival times at ``rate`` whatever happened to the earlier ones, over at most ``connections`` keep-alive
  sockets opened before the clock starts; reports latency from send and from the due time (``from_due_ms``:
  queueing anywhere counts, no coordinated omission) and how late the generator itself fired.
* `hey` (`apt-get install hey`; Go): ``connections`` workers at rate / connections requests/s each, each
  waiting for its answer (closed loop per worker). Its workers' tickers fire together, so every 1 / (rate /
  connections) s a burst of ``connections`` requests arrives at once: its latency grows with ``connections``
  (the burst's queue), not with the rate.

Both send one consenting phone number (the lookup is a dict; there is no cache to favour one number).
Appends a JSON line per run to benchmarks/results/api_location.jsonl."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import pyarrow.parquet as pq

RESULTS = Path(__file__).parent / "results" / "api_location.jsonl"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q * (len(values) - 1))))]


def run_openloop(url: str, token: str, phone: str, rate: float, seconds: float, connections: int) -> dict:
    """The open-loop generator (benchmarks/openloop.mjs, Node): Poisson arrivals, latency from the due time."""
    with tempfile.NamedTemporaryFile("w", suffix=".json") as body:
        body.write(json.dumps({"device": {"phoneNumber": phone}, "maxAge": 86400}))
        body.flush()
        out = subprocess.run(["node", str(Path(__file__).parent / "openloop.mjs"), url + "/location-retrieval/v0.5/retrieve",
                              str(rate), str(seconds), str(connections), body.name, f"Authorization: Bearer {token}"],
                             check=True, capture_output=True, text=True).stdout
    return json.loads(out)


def run_hey(url: str, token: str, phone: str, rate: float, seconds: float, connections: int) -> dict:
    """The `hey` load generator (Debian package `hey`, Go): ``connections`` workers at rate / connections each,
    every worker waiting for its answer before its next request (closed loop per worker), one phone number."""
    per_worker = max(1, round(rate / connections))
    body = json.dumps({"device": {"phoneNumber": phone}, "maxAge": 86400})
    out = subprocess.run(["hey", "-z", f"{seconds}s", "-c", str(connections), "-q", str(per_worker), "-m", "POST",
                          "-T", "application/json", "-H", f"Authorization: Bearer {token}", "-d", body, "-o", "csv",
                          url + "/location-retrieval/v0.5/retrieve"], check=True, capture_output=True, text=True).stdout
    rows = [line.split(",") for line in out.splitlines()[1:] if line.strip()]
    lat = [float(r[0]) * 1000 for r in rows]
    codes: dict[str, int] = {}
    for r in rows:
        codes[r[6]] = codes.get(r[6], 0) + 1
    elapsed = max(float(r[7]) + float(r[0]) for r in rows)
    return {"requests": len(rows), "elapsed_s": round(elapsed, 2), "achieved_rps": round(len(rows) / elapsed, 1),
            "status_codes": dict(sorted(codes.items())),
            "latency_ms": {"p50": round(pct(lat, 0.5), 2), "p99": round(pct(lat, 0.99), 2), "max": round(max(lat), 2),
                           "mean": round(statistics.fmean(lat), 2)},
            "rate_per_worker": per_worker}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workspace", type=Path, required=True)
    ap.add_argument("--data", type=Path, required=True, help="the workspace's synthetic operator (raw phone numbers)")
    ap.add_argument("--rate", type=float, default=1000.0, help="target requests per second")
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--connections", type=int, default=64)
    ap.add_argument("--runs", type=int, default=1, help="runs against the same server, each recorded")
    ap.add_argument("--generator", choices=("openloop", "hey"), default="openloop",
                    help="openloop (Node, Poisson arrivals; the default) or hey (apt-get install hey; closed loop per worker)")
    ap.add_argument("--no-record", action="store_true", help="do not append to the results file")
    args = ap.parse_args()

    subs = pq.read_table(args.data / "inputs" / "subscribers.parquet", columns=["subscriber_id", "consent_location"])
    phones = [r["subscriber_id"] for r in subs.to_pylist() if r["consent_location"]]
    with tempfile.TemporaryDirectory() as tmp:
        ws = Path(tmp) / "ws"
        shutil.copytree(args.workspace, ws, copy_function=os.link, ignore=shutil.ignore_patterns("api", ".spill"))
        opencem = [sys.executable, "-c", "from opencem.cli import app; app()"]
        added = subprocess.run(opencem + ["clients", "add", "--workspace", str(ws), "--id", "bench", "--scope",
                                          "location-retrieval:read", "--purpose", "benchmark", "--rate", "1000000"],
                               check=True, capture_output=True, text=True)
        secret = json.loads(added.stdout)["client_secret"]
        port = free_port()
        server = subprocess.Popen(opencem + ["serve", "--workspace", str(ws), "--port", str(port), "--now", "data",
                                             "--log-level", "warning"])
        url = f"http://127.0.0.1:{port}"
        try:
            for _ in range(600):
                try:
                    if httpx.get(url + "/health").status_code == 200:
                        break
                except httpx.TransportError:
                    time.sleep(0.1)
            token = httpx.post(url + "/oauth2/token", data={"grant_type": "client_credentials", "client_id": "bench",
                                                            "client_secret": secret}).json()["access_token"]
            phone = next(p for p in phones
                         if httpx.post(url + "/location-retrieval/v0.5/retrieve", json={"device": {"phoneNumber": p}},
                                       headers={"Authorization": f"Bearer {token}"}).status_code == 200)
            generate = run_hey if args.generator == "hey" else run_openloop
            for _ in range(args.runs):
                load_before = round(os.getloadavg()[0], 2)
                result = generate(url, token, phone, args.rate, args.seconds, args.connections)
                line = {"benchmark": "api_location", "time": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
                        "workspace_subscribers": subs.num_rows, "consenting": len(phones), "target_rps": args.rate,
                        "seconds": args.seconds, "connections": args.connections, **result, "cpus": os.cpu_count(),
                        "load_generator": f"same machine: {args.generator}", "load_average_1m_before": load_before}
                print(json.dumps(line))
                if not args.no_record:
                    RESULTS.parent.mkdir(exist_ok=True)
                    with RESULTS.open("a") as f:
                        f.write(json.dumps(line) + "\n")
        finally:
            server.terminate()
            server.wait(timeout=30)


if __name__ == "__main__":
    main()

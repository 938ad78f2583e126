"""CAMARA location retrieval on loopback: latency at a target request rate, against `opencem serve`.

    python benchmarks/api_location.py --workspace WS --data DATA [--rate 1000] [--seconds 20] [--connections 50]
                                      [--generator hey|httpx] [--processes 1]

WS is a measured workspace and DATA its synthetic operator (for the raw phone numbers of subscribers with
location consent). WS is copied (hard links) to a temporary folder, because the server writes its client
registry and audit log there. `opencem serve --now data` runs in a subprocess (one uvicorn process); the
load generator runs on the same machine:

* `hey` (default when installed: `apt-get install hey`; Go, light): ``connections`` workers at rate /
  connections requests/s each, each waiting for its answer (closed loop per worker), one consenting phone
  number; latency is send to answer.
* `httpx` (Python, asyncio; open loop): request i is due at start + i / rate whatever happened to the earlier
  ones, each naming the next consenting subscriber; "from due" counts queueing in the generator too. It costs
  about three times the server's CPU per request, so on 2 cores it, not the server, is the limit.

Appends a JSON line to benchmarks/results/api_location.jsonl."""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import multiprocessing
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


async def load(url: str, token: str, phones: list[str], rate: float, seconds: float, connections: int,
               start_at: float) -> tuple[list[float], list[float], dict[int, int]]:
    """Requests due at start_at + i / rate (wall clock, shared by the generator processes)."""
    n = int(rate * seconds)
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    due_lat, svc_lat, codes = [], [], {}
    sem = asyncio.Semaphore(connections)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=60,
                                 headers={"Authorization": f"Bearer {token}"}) as client:
        # warm-up: open the connections before the clock starts
        await asyncio.gather(*[client.post("/location-retrieval/v0.5/retrieve", json={"device": {"phoneNumber": p}})
                               for p in phones[:connections]])
        offset = time.time() - time.perf_counter()

        async def one(i: int) -> None:
            due = start_at - offset + i / rate
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            async with sem:
                sent = time.perf_counter()
                r = await client.post("/location-retrieval/v0.5/retrieve",
                                      json={"device": {"phoneNumber": phones[i % len(phones)]}, "maxAge": 86400})
                done = time.perf_counter()
            codes[r.status_code] = codes.get(r.status_code, 0) + 1
            due_lat.append((done - due) * 1000)
            svc_lat.append((done - sent) * 1000)

        await asyncio.gather(*[one(i) for i in range(n)])
    return due_lat, svc_lat, codes


def _worker(args) -> tuple[list[float], list[float], dict[int, int], float]:
    url, token, phones, rate, seconds, connections, start_at = args
    out = asyncio.run(load(url, token, phones, rate, seconds, connections, start_at))
    return (*out, time.time())


def run_load(url: str, token: str, phones: list[str], rate: float, seconds: float, connections: int,
             processes: int) -> dict:
    """``processes`` generator processes, each with rate / processes and its share of the phones."""
    start_at = time.time() + 3.0 + processes  # time for every process to start and warm up
    jobs = [(url, token, phones[k::processes], rate / processes, seconds, max(1, connections // processes), start_at)
            for k in range(processes)]
    with multiprocessing.get_context("spawn").Pool(processes) as pool:
        parts = pool.map(_worker, jobs)
    due_lat = [x for p in parts for x in p[0]]
    svc_lat = [x for p in parts for x in p[1]]
    codes: dict[int, int] = {}
    for p in parts:
        for k, v in p[2].items():
            codes[k] = codes.get(k, 0) + v
    elapsed = max(p[3] for p in parts) - start_at
    n = len(due_lat)
    return {"requests": n, "elapsed_s": round(elapsed, 2), "achieved_rps": round(n / elapsed, 1),
            "status_codes": {str(k): v for k, v in sorted(codes.items())},
            "from_due_ms": {"p50": round(pct(due_lat, 0.5), 2), "p99": round(pct(due_lat, 0.99), 2), "max": round(max(due_lat), 2)},
            "service_ms": {"p50": round(pct(svc_lat, 0.5), 2), "p99": round(pct(svc_lat, 0.99), 2),
                           "mean": round(statistics.fmean(svc_lat), 2)}}


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
    ap.add_argument("--processes", type=int, default=1, help="httpx load generator processes")
    ap.add_argument("--generator", choices=("hey", "httpx"), default="hey" if shutil.which("hey") else "httpx",
                    help="hey (apt-get install hey; the lighter client) or httpx (open loop, in Python)")
    ap.add_argument("--no-record", action="store_true", help="do not append to the results file")
    args = ap.parse_args()

    load_before = round(os.getloadavg()[0], 2)
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
            if args.generator == "hey":
                phone = next(p for p in phones
                             if httpx.post(url + "/location-retrieval/v0.5/retrieve", json={"device": {"phoneNumber": p}},
                                           headers={"Authorization": f"Bearer {token}"}).status_code == 200)
                result = run_hey(url, token, phone, args.rate, args.seconds, args.connections)
            else:
                result = run_load(url, token, phones, args.rate, args.seconds, args.connections, args.processes)
        finally:
            server.terminate()
            server.wait(timeout=30)
    line = {"benchmark": "api_location", "time": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "workspace_subscribers": subs.num_rows, "consenting": len(phones), "target_rps": args.rate,
            "seconds": args.seconds, "connections": args.connections, **result, "cpus": os.cpu_count(),
            "load_generator": "same machine: " + ("hey" if args.generator == "hey" else f"{args.processes} process(es), httpx + asyncio"),
            "load_average_1m_before": load_before}
    print(json.dumps(line))
    if not args.no_record:
        RESULTS.parent.mkdir(exist_ok=True)
        with RESULTS.open("a") as f:
            f.write(json.dumps(line) + "\n")


if __name__ == "__main__":
    main()

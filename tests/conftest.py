"""Fixtures shared by the whole suite, and its tiers.

Markers (pyproject.toml): `slow` for tests that build a synthetic operator or run longer than a few seconds
(set here for every test of `operator` or `shared`), `spark` (needs pyspark and Java; always slow) and
`browser` (needs Chromium and Playwright).
`python -m pytest -m "not slow" -n 2` is the quick tier; `python -m pytest -n 2` runs everything (each worker
builds the session fixtures it needs). Spark and browser
tests skip, saying what is missing, where their tools are not installed.
"""

import importlib.util
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from types import SimpleNamespace

import pytest
from report import browser

from opencem.ingest.pseudonym import KEY_ENV
from opencem.measure.run import measure
from opencem.synth.generator import SynthConfig, generate
from opencem.twin.run import diagnose
from opencem.workspace import Workspace

# LightGBM's OpenMP threads wait for work by spinning: on a machine whose cores are busy with other work that
# slows a training down several times over (the shared workspace's: 13-35 s instead of 3-4 s on 2 busy
# cores). Sleeping threads give the same models. The runtime reads this when it loads, so nothing imported
# above may load LightGBM.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

SMALL = SynthConfig(subscribers=4_000, days=7, seed=11, workers=2)

# The NPS tests' operator, which also serves the twin tests: 16 days, with two faults of each area cause, a
# DNS failure and a device firmware fault; survey answers usable from day 7 on. survey_rate 1.0 rather
# than 0.6: at 0.6 the NPS test split is one day of ~58 answers, whose NPS has a standard error of ~10
# points, too noisy for a 12-point calibration check.
SHARED = SynthConfig(subscribers=3_000, days=16, seed=3, survey_rate=1.0, workers=2)


def spark_missing() -> str | None:
    """Why the Spark tests cannot run here, or None."""
    if importlib.util.find_spec("pyspark") is None:
        return "pyspark is not installed (it is in the `test` extra)"
    home = os.environ.get("JAVA_HOME")
    if not (shutil.which("java") or (home and (Path(home) / "bin" / "java").exists())):
        return "Java not found: the Spark tests need a Java 17 runtime (.ci/run installs openjdk-17-jre-headless)"
    return None


@pytest.hookimpl(tryfirst=True)  # before `-m` selects on the markers
def pytest_collection_modifyitems(items):
    """Tests of the shared operator or workspace below, and Spark tests, are slow; Spark and browser tests
    skip where their tools are missing."""
    missing = {"spark": spark_missing(), "browser": browser.missing()}
    for item in items:
        if item.get_closest_marker("spark") or {"operator", "shared"} & set(item.fixturenames):
            item.add_marker(pytest.mark.slow)
        for marker, reason in missing.items():
            if reason and item.get_closest_marker(marker):
                item.add_marker(pytest.mark.skip(reason=reason))


@pytest.fixture(scope="session")
def operator(tmp_path_factory) -> Path:
    """A small synthetic operator with the generator's defaults, shared by the tests that only read it."""
    out = tmp_path_factory.mktemp("synth") / "op"
    generate(out, SMALL)
    return out


def _snapshot(root: Path) -> dict:
    """Every file and folder under root, with its inode, size and modification time."""
    return {p: (st.st_ino, st.st_size, st.st_mtime_ns) for p in root.rglob("*") for st in [p.stat()]}


@pytest.fixture(scope="session")
def shared(tmp_path_factory):
    """One synthetic operator (`data`), measured, its NPS model trained (`model`, also saved), scored as of
    the day after its data (`scored`) and diagnosed (`diag`) in the workspace `ws`.

    Read only: a test that writes to the workspace works on a copy (the `clone` fixture). Checked when
    the session ends."""
    from opencem.nps.score import score  # loads LightGBM: see OMP_WAIT_POLICY above
    from opencem.nps.train import train_nps

    mp = pytest.MonkeyPatch()
    mp.delenv(KEY_ENV, raising=False)  # the workspace's own key file, as `opencem measure` makes it
    root = tmp_path_factory.mktemp("shared")
    data, ws = root / "op", root / "ws"
    generate(data, SHARED)
    measure(data, ws)
    model = train_nps(ws)
    model.save(Workspace(ws).model("nps"))
    scored = score(ws)  # reads the saved model
    diag = diagnose(ws)
    before = _snapshot(ws)
    yield SimpleNamespace(data=data, ws=ws, model=model, scored=scored, diag=diag)
    mp.undo()
    assert _snapshot(ws) == before, "a test wrote to the shared workspace: write to a copy (the `clone` fixture)"


@pytest.fixture
def wide_console(monkeypatch):
    """The CLI's console 200 columns wide, whatever COLUMNS was when it was made: rich keeps the width it finds
    in the environment then, and pytest-xdist's workers start with COLUMNS=80 (a table wraps, a name is cut)."""
    from opencem.cli import console

    monkeypatch.setattr(console, "_width", 200)


@pytest.fixture
def clone(tmp_path):
    """`clone(ws, skip=())`: a copy of workspace `ws` without its top-level folders `skip`, that the test
    may write to. Files are hard links: every stage replaces its files, never rewrites them."""

    def copy(ws: Path, skip: tuple[str, ...] = ()) -> Path:
        dst = tmp_path / "ws"
        shutil.copytree(ws, dst, copy_function=os.link, ignore=lambda d, names: [n for n in names if Path(d) == ws and n in skip])
        return dst

    return copy


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def spark_cluster_processes(tmp_path_factory):
    """A Spark standalone master and one worker on loopback, started with the `spark-class` launcher that ships
    with pyspark, once for the session; yields the master URL."""
    import pyspark

    home = Path(pyspark.__file__).parent
    logs = tmp_path_factory.mktemp("spark-cluster")
    env = {**os.environ, "SPARK_HOME": str(home), "SPARK_LOCAL_IP": "127.0.0.1", "PYSPARK_PYTHON": sys.executable,
           "SPARK_LOG_DIR": str(logs), "SPARK_WORKER_DIR": str(logs / "work")}
    port, ui = _free_port(), _free_port()
    url = f"spark://127.0.0.1:{port}"
    launch = [str(home / "bin" / "spark-class")]
    procs = [subprocess.Popen(launch + ["org.apache.spark.deploy.master.Master", "--host", "127.0.0.1", "--port", str(port),
                                        "--webui-port", str(ui)], env=env, stdout=open(logs / "master.log", "w"),
                              stderr=subprocess.STDOUT)]
    procs.append(subprocess.Popen(launch + ["org.apache.spark.deploy.worker.Worker", url, "--host", "127.0.0.1", "--cores", "2",
                                            "--memory", "2g", "--webui-port", str(_free_port())], env=env,
                                  stdout=open(logs / "worker.log", "w"), stderr=subprocess.STDOUT))
    try:
        deadline = time.monotonic() + 90
        while True:  # the master's status page lists the worker once it has registered
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{ui}/json/", timeout=2) as r:
                    if json.load(r).get("aliveworkers", 0) >= 1:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline or any(p.poll() is not None for p in procs):
                pytest.fail("the Spark cluster did not start: " + (logs / "master.log").read_text()[-2000:]
                            + (logs / "worker.log").read_text()[-2000:])
            time.sleep(1)
        yield url
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                p.kill()


@pytest.fixture
def spark_cluster(spark_cluster_processes, tmp_path, monkeypatch):
    """The session's standalone cluster, with this test's driver on loopback; yields the master URL."""
    monkeypatch.setenv("SPARK_LOCAL_IP", "127.0.0.1")
    # a cluster is tuned the way Spark reads it everywhere, spark-defaults.conf: few partitions for small data
    conf = tmp_path / "spark-conf"
    conf.mkdir()
    (conf / "spark-defaults.conf").write_text("spark.sql.shuffle.partitions 4\nspark.default.parallelism 4\n")
    monkeypatch.setenv("SPARK_CONF_DIR", str(conf))
    return spark_cluster_processes

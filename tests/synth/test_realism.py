"""Realism check: synthetic xDR quantiles vs 5Gophers 1.0."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from opencem.synth import realism
from opencem.synth.realism import compare_with_5gophers, gophers_quantiles, ratio_and_verdict, render_markdown

# tests/synth/test_realism.py -> parents[2] is the project root; the dataset sits next to it.
GOPHERS = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "umn-5gophers-commercial-5g"
needs_gophers = pytest.mark.skipif(
    not GOPHERS.is_dir(),
    reason=f"5Gophers dataset not present at <project root>/../shared/data/{GOPHERS.name}",
)


def quantile_type7(values: list[float], p: float) -> float:
    """Linear-interpolation quantile (what DuckDB quantile_cont computes), written independently."""
    xs = sorted(values)
    h = (len(xs) - 1) * p
    lo = math.floor(h)
    hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (h - lo) * (xs[hi] - xs[lo])


# ---------------------------------------------------------------- fabricated synthetic operator


def _session(service, rat, thr_mbps=None, rtt=None, plt_ms=None, success=True):
    return {
        "service": service,
        "rat": rat,
        "throughput_dl_kbps": None if thr_mbps is None else thr_mbps * 1000.0,
        "rtt_ms": rtt,
        "page_load_ms": plt_ms,
        "success": success,
    }


SESSIONS = {
    "2024-01-01": [
        _session("file_transfer", "LTE", 10, 100),
        _session("file_transfer", "LTE", 20, 20),
        _session("video", "LTE", 30, 40),
        _session("web", "LTE", 1000, 60, plt_ms=1000),  # web throughput is not used for throughput
        _session("voice", "LTE"),  # no data KQIs
        _session("file_transfer", "NR", 100, 10),
    ],
    "2024-01-02": [
        _session("video", "LTE", 40, None),
        _session("file_transfer", "LTE", 50, 80, success=False),
        _session("gaming", "LTE", None, 120),  # RTT only
        _session("web", "LTE", None, None, plt_ms=3000),
        _session("social", "NR", None, 30),
        _session("web", "NR", None, 20, plt_ms=500),
    ],
}
SCHEMA = pa.schema(
    [
        ("service", pa.string()),
        ("rat", pa.string()),
        ("throughput_dl_kbps", pa.float64()),
        ("rtt_ms", pa.float64()),
        ("page_load_ms", pa.float64()),
        ("success", pa.bool_()),
    ]
)


@pytest.fixture
def synth_dir(tmp_path: Path) -> Path:
    root = tmp_path / "synth"
    for day, rows in SESSIONS.items():
        part = root / "xdr" / f"day={day}"
        part.mkdir(parents=True)
        pq.write_table(pa.Table.from_pylist(rows, schema=SCHEMA), part / "part-0.parquet")
    pq.write_table(pa.table({"cell_id": ["c1", "c2"], "rat": ["LTE", "NR"]}), root / "cells.parquet")
    return root


@pytest.fixture
def tiny_gophers(tmp_path: Path) -> Path:
    """A fabricated 5Gophers folder with the same file layout and columns, and known values."""
    root = tmp_path / "gophers"

    def write(rel: str, header: list[str], rows: list[list]) -> None:
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("w", newline="") as f:
            w = csv.writer(f)
            w.writerow(header)
            w.writerows(rows)

    write(
        "All-Carriers/03-User-Mobility/walking-trace.csv",
        ["protocol", "num_tcp_conn", "seq_num", "anonymized_mCid", "radio_type", "throughput_mbps", "nrStatus", "primitive_handoff_type"],
        [["TCP", 8, i, 1, "4G", v, "NOT_RESTRICTED", ""] for i, v in enumerate([15, 20, 25])]
        + [["TCP", 8, 10 + i, 2, "5G", v, "CONNECTED", ""] for i, v in enumerate([400, 500, 600, 700])],
    )
    write(
        "mmWave-only/03-UE-Panel_LoS_Tests/data.csv",
        ["protocol", "num_tcp_conn", "location", "radio_type", "run_num", "seq_num", "throughput_mbps", "rtt_in_ms"],
        [
            ["TCP", 8, "A", "4G", 1, 1, 200, 300],
            ["TCP", 1, "A", "4G", 1, 2, 9999, 300],  # 1 connection: filtered out
            ["ICMP", "", "A", "4G", 2, 1, "", 50],  # ping row: filtered out
            ["TCP", 8, "A", "5G", 3, 1, 1000, 60],
            ["TCP", 8, "A", "5G", 3, 2, 2000, 60],
        ],
    )
    ping_header = ["protocol", "network_type", "ue_location", "target_server", "probe_num", "rtt_in_ms"]
    write(
        "mmWave-only/04-Ping-Traces_Latency_Tests/ping-trace-01.log",
        ping_header,
        [["ICMP", "4G", "A", "First-Hop", i, v] for i, v in enumerate([30, 40, 50], 1)],
    )
    write(
        "mmWave-only/04-Ping-Traces_Latency_Tests/ping-trace-02.log",
        ping_header,
        [["ICMP", "5G", "A", "First-Hop", 1, 20], ["ICMP", "5G", "A", "US-East", 1, 50], ["ICMP", "4G", "B", "US-West", 1, 90]]
        + [["ICMP", "4G", "B", "US-East", i, v] for i, v in enumerate([60, 80], 1)],
    )
    write(
        "mmWave-only/08-Web-Page-Load-Tests/real-tests_landing_pages.csv",
        ["record_id", "page_name", "radio_type", "page_load_time_in_sec", "page_size_in_bytes", "number_of_assets"],
        [[1, "Bing-H", "4G", 1000.0, 5e5, 60], [2, "CNN", "4G", 9000.0, 1.6e7, 500], [3, "Bing-H", "5G", 250.0, 5e5, 60]],
    )
    return root


def _row(rows: list[dict], metric: str, reference: str, rat: str) -> dict:
    (row,) = [r for r in rows if r["metric"] == metric and r["reference"] == reference and r["rat"] == rat]
    return row


def test_synth_quantiles_known_values(synth_dir: Path) -> None:
    s = realism.synth_quantiles(synth_dir)
    thr = s[("dl_throughput_mbps", "LTE")]  # file_transfer + video only: 10, 20, 30, 40, 50
    assert thr["n"] == 5
    assert [thr[k] for k in ("p10", "p25", "p50", "p75", "p90")] == pytest.approx([14, 20, 30, 40, 46])
    nr = s[("dl_throughput_mbps", "NR")]
    assert nr["n"] == 1 and nr["p10"] == pytest.approx(100) and nr["p90"] == pytest.approx(100)
    rtt = s[("rtt_ms", "LTE")]  # all data services, voice and nulls dropped: 20, 40, 60, 80, 100, 120
    assert rtt["n"] == 6
    assert rtt["p50"] == pytest.approx(70) and rtt["p10"] == pytest.approx(30)
    assert s[("rtt_ms", "NR")]["n"] == 3 and s[("rtt_ms", "NR")]["p50"] == pytest.approx(20)
    plt = s[("page_load_s", "LTE")]  # ms -> s
    assert plt["n"] == 2 and plt["p50"] == pytest.approx(2.0) and plt["p25"] == pytest.approx(1.5)
    assert s[("page_load_s", "NR")]["p50"] == pytest.approx(0.5)


def test_synth_successful_only(synth_dir: Path) -> None:
    s = realism.synth_quantiles(synth_dir, successful_only=True)
    assert s[("dl_throughput_mbps", "LTE")]["n"] == 4
    assert s[("dl_throughput_mbps", "LTE")]["p90"] == pytest.approx(37)  # 10, 20, 30, 40


def test_missing_xdr_is_a_clear_error(tmp_path: Path, tiny_gophers: Path) -> None:
    with pytest.raises(FileNotFoundError, match="xDR"):
        compare_with_5gophers(tmp_path, tiny_gophers)
    with pytest.raises(FileNotFoundError, match="5Gophers"):
        gophers_quantiles(tmp_path / "nope")


@pytest.mark.parametrize(
    ("synth", "real", "ratio", "verdict"),
    [
        (150.0, 100.0, 1.5, "close"),
        (100.0, 150.0, 2 / 3, "close"),
        (151.0, 100.0, 1.51, "higher"),
        (10.0, 100.0, 0.1, "lower"),
        (None, 100.0, None, "n/a"),
        (10.0, None, None, "n/a"),
        (10.0, 0.0, None, "n/a"),
    ],
)
def test_ratio_and_verdict(synth, real, ratio, verdict) -> None:
    got_ratio, got_verdict = ratio_and_verdict(synth, real)
    assert got_verdict == verdict
    assert got_ratio == pytest.approx(ratio) if ratio is not None else got_ratio is None


def test_compare_ratio_math_on_fabricated_data(synth_dir: Path, tiny_gophers: Path) -> None:
    rows = compare_with_5gophers(synth_dir, tiny_gophers)
    assert len(rows) == len(realism.REFERENCES) * 2

    walk_lte = _row(rows, "dl_throughput_mbps", "walking", "LTE")
    assert walk_lte["real_n"] == 3 and walk_lte["real_p50"] == pytest.approx(20)
    assert walk_lte["synth_p50"] == pytest.approx(30)
    assert walk_lte["ratio_p50"] == pytest.approx(1.5) and walk_lte["verdict"] == "close"
    assert walk_lte["services"] == "file_transfer,video"

    walk_nr = _row(rows, "dl_throughput_mbps", "walking", "NR")
    assert walk_nr["real_n"] == 4 and walk_nr["real_p50"] == pytest.approx(550)
    assert walk_nr["ratio_p50"] == pytest.approx(100 / 550) and walk_nr["verdict"] == "lower"

    los_lte = _row(rows, "dl_throughput_mbps", "LoS stationary", "LTE")
    assert los_lte["real_n"] == 1 and los_lte["real_p50"] == pytest.approx(200)  # 1-conn and ICMP rows dropped
    assert _row(rows, "dl_throughput_mbps", "LoS stationary", "NR")["real_p25"] == pytest.approx(1250)

    hop_lte = _row(rows, "rtt_ms", "ping first hop", "LTE")
    assert hop_lte["real_n"] == 3 and hop_lte["real_p50"] == pytest.approx(40)
    assert hop_lte["ratio_p50"] == pytest.approx(70 / 40) and hop_lte["verdict"] == "higher"
    east_lte = _row(rows, "rtt_ms", "ping US-East", "LTE")  # across both log files, US-West dropped
    assert east_lte["real_n"] == 2 and east_lte["real_p50"] == pytest.approx(70)
    assert east_lte["ratio_p50"] == pytest.approx(1.0) and east_lte["verdict"] == "close"
    assert _row(rows, "rtt_ms", "ping US-East", "NR")["real_n"] == 1

    plt_lte = _row(rows, "page_load_s", "landing pages", "LTE")  # ms in the file -> s
    assert plt_lte["real_p50"] == pytest.approx(5.0) and plt_lte["synth_p50"] == pytest.approx(2.0)
    assert plt_lte["ratio_p50"] == pytest.approx(0.4) and plt_lte["verdict"] == "lower"
    plt_nr = _row(rows, "page_load_s", "landing pages", "NR")
    assert plt_nr["real_p50"] == pytest.approx(0.25) and plt_nr["ratio_p50"] == pytest.approx(2.0)


def test_compare_handles_a_rat_without_sessions(tmp_path: Path, tiny_gophers: Path) -> None:
    part = tmp_path / "s" / "xdr" / "day=2024-01-01"
    part.mkdir(parents=True)
    pq.write_table(pa.Table.from_pylist([_session("video", "LTE", 5, 50)], schema=SCHEMA), part / "a.parquet")
    rows = compare_with_5gophers(tmp_path / "s", tiny_gophers)
    nr = _row(rows, "dl_throughput_mbps", "walking", "NR")
    assert nr["synth_n"] == 0 and nr["synth_p50"] is None and nr["ratio_p50"] is None and nr["verdict"] == "n/a"
    assert "| n/a |" in render_markdown(rows)


def test_render_markdown(synth_dir: Path, tiny_gophers: Path) -> None:
    rows = compare_with_5gophers(synth_dir, tiny_gophers)
    md = render_markdown(rows)
    lines = md.splitlines()
    assert lines[0].startswith("| Metric | RAT | 5Gophers reference |")
    table = [line for line in lines if line.startswith("|")]
    assert len(table) == 2 + len(rows)
    assert "| dl_throughput_mbps (Mbit/s) | LTE / 4G | walking | 5 | 14.0 / 20.0 / 30.0 / 40.0 / 46.0 | 3 |" in md
    assert "| 1.50 | close |" in md
    assert "- **walking**:" in md
    real_only = render_markdown(gophers_quantiles(tiny_gophers))
    assert real_only.splitlines()[0].startswith("| Metric | RAT | 5Gophers reference | n |")
    assert render_markdown([]) == "_no rows_\n"


# ---------------------------------------------------------------- the real 5Gophers folder


def _read(rel: str) -> list[dict]:
    with (GOPHERS / rel).open(newline="") as f:
        return list(csv.DictReader(f))


def _ping_rows() -> list[dict]:
    rows: list[dict] = []
    for log in sorted((GOPHERS / "mmWave-only/04-Ping-Traces_Latency_Tests").glob("*.log")):
        rows += _read(str(log.relative_to(GOPHERS)))
    return rows


def _independent_values(reference: str, real_rat: str) -> list[float]:
    """The filters of each reference, re-implemented with the csv module."""
    if reference == "walking":
        rows = _read("All-Carriers/03-User-Mobility/walking-trace.csv")
        return [float(r["throughput_mbps"]) for r in rows if r["radio_type"] == real_rat and r["throughput_mbps"]]
    if reference == "LoS stationary":
        rows = _read("mmWave-only/03-UE-Panel_LoS_Tests/data.csv")
        return [
            float(r["throughput_mbps"])
            for r in rows
            if r["protocol"] == "TCP" and r["num_tcp_conn"] and float(r["num_tcp_conn"]) == 8
            and r["radio_type"] == real_rat and r["throughput_mbps"]
        ]
    if reference in ("ping first hop", "ping US-East"):
        target = "First-Hop" if reference == "ping first hop" else "US-East"
        return [
            float(r["rtt_in_ms"])
            for r in _ping_rows()
            if r["protocol"] == "ICMP" and r["target_server"] == target and r["network_type"] == real_rat and r["rtt_in_ms"]
        ]
    if reference == "landing pages":
        rows = _read("mmWave-only/08-Web-Page-Load-Tests/real-tests_landing_pages.csv")
        return [float(r["page_load_time_in_sec"]) / 1000.0 for r in rows if r["radio_type"] == real_rat]
    raise AssertionError(reference)


@needs_gophers
def test_default_dir_is_found_from_the_package() -> None:
    assert realism.default_gophers_dir() == GOPHERS


@needs_gophers
def test_real_quantiles_match_an_independent_computation() -> None:
    rows = gophers_quantiles()  # default location, found from the package
    assert len(rows) == len(realism.REFERENCES) * 2
    for r in rows:
        values = _independent_values(r["reference"], r["real_rat"])
        assert r["n"] == len(values) > 0, r
        for name, p in realism.QUANTILES:
            assert math.isfinite(r[name]), r
            assert r[name] == pytest.approx(quantile_type7(values, p), rel=1e-12), (r["reference"], r["real_rat"], name)
        assert r["p10"] <= r["p25"] <= r["p50"] <= r["p75"] <= r["p90"]


@needs_gophers
def test_real_known_values() -> None:
    rows = gophers_quantiles(GOPHERS)
    walk_5g = _row(rows, "dl_throughput_mbps", "walking", "NR")
    assert walk_5g["n"] == 288 and walk_5g["p50"] == pytest.approx(545.0)
    walk_4g = _row(rows, "dl_throughput_mbps", "walking", "LTE")
    assert walk_4g["n"] == 315 and walk_4g["p50"] == pytest.approx(147.0)
    plt = _row(rows, "page_load_s", "landing pages", "LTE")
    assert plt["n"] == 340
    # page_load_time_in_sec holds milliseconds: medians of ~1-2 s once divided by 1000, not ~25 minutes.
    assert 0.5 < plt["p50"] < 5


@needs_gophers
def test_real_page_load_column_is_milliseconds() -> None:
    """Bing's landing page (~0.6 MB) loads in well under a second: the raw values (~600) can only be ms."""
    rows = _read("mmWave-only/08-Web-Page-Load-Tests/real-tests_landing_pages.csv")
    bing = [float(r["page_load_time_in_sec"]) for r in rows if r["page_name"] == "Bing-H"]
    assert 200 < quantile_type7(bing, 0.5) < 2000


@needs_gophers
def test_compare_with_real_gophers(synth_dir: Path) -> None:
    rows = compare_with_5gophers(synth_dir)
    walk_lte = _row(rows, "dl_throughput_mbps", "walking", "LTE")
    assert walk_lte["real_n"] == 315
    assert walk_lte["ratio_p50"] == pytest.approx(30 / 147.0)
    assert walk_lte["verdict"] == "lower"
    assert all(r["real_n"] > 0 for r in rows)

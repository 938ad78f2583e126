"""Realism check: the synthetic operator's xDR KQIs next to the 5Gophers 1.0 measurements.

5Gophers 1.0 (Narayanan et al., "A First Look at Commercial 5G Performance on Smartphones",
The Web Conference / WWW 2020, doi 10.1145/3366423.3380169, data CC BY 4.0) is a small set of
smartphone measurements on US carriers in 2019, with Verizon mmWave 5G next to Verizon 4G. It
only gives a sanity range: it is one city, one phone, mostly active bulk tests, and its 5G is
mmWave (far faster than the mid-band NR a synthetic operator usually models). See
docs/synth-realism.md for what is and is not comparable.

For each comparable metric and RAT (synthetic LTE <-> 5Gophers 4G, synthetic NR <-> 5Gophers 5G)
we compute the exact distribution quantiles (DuckDB `quantile_cont`, linear interpolation) on both
sides, the ratio of the medians synth / real, and a verdict: 'close' when the ratio is within a
factor 1.5 either way, else 'higher' / 'lower' (synthetic relative to real).

Entry points: `compare_with_5gophers(synth_dir, gophers_dir=None) -> list[dict]` and
`render_markdown(rows) -> str`. `gophers_quantiles()` gives the real side alone.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from ..engine import Engine, make_engine

QUANTILES: tuple[tuple[str, float], ...] = (("p10", 0.10), ("p25", 0.25), ("p50", 0.50), ("p75", 0.75), ("p90", 0.90))
CLOSE_FACTOR = 1.5

# Synthetic RAT -> 5Gophers label.
RATS: tuple[tuple[str, str], ...] = (("LTE", "4G"), ("NR", "5G"))

# Bulk-transfer services whose mean DL throughput is compared with 5Gophers' bulk TCP downloads.
THROUGHPUT_SERVICES: tuple[str, ...] = ("file_transfer", "video")
# Data services carrying a TCP / application RTT (voice has none).
RTT_SERVICES: tuple[str, ...] = ("web", "video", "gaming", "social", "file_transfer")
WEB_SERVICES: tuple[str, ...] = ("web",)

GOPHERS_DIRNAME = "umn-5gophers-commercial-5g"


def default_gophers_dir() -> Path:
    """`<project root>/../shared/data/umn-5gophers-commercial-5g`, located from this file.

    This file is `<project root>/src/opencem/synth/realism.py`, so parents[3] is the project root.
    """
    return Path(__file__).resolve().parents[3].parent / "shared" / "data" / GOPHERS_DIRNAME


@dataclass(frozen=True)
class Metric:
    key: str  # metric name used in the rows
    unit: str
    synth_column: str  # xDR column
    synth_scale: float  # multiply the xDR value by this to get `unit`
    services: tuple[str, ...]  # xDR services used


@dataclass(frozen=True)
class Reference:
    """One 5Gophers source for one metric. `sql` selects a single column `v` (in the metric's unit)
    from the view `ref` for the RAT bound to the parameter `$rat` ('4G' / '5G'); `ref` is the CSV
    file or glob `path`, relative to the dataset folder."""

    metric: str
    name: str
    path: str
    sql: str
    source: str  # human description: file and filters
    note: str  # what is / is not comparable


METRICS: dict[str, Metric] = {
    "dl_throughput_mbps": Metric("dl_throughput_mbps", "Mbit/s", "throughput_dl_kbps", 1e-3, THROUGHPUT_SERVICES),
    "rtt_ms": Metric("rtt_ms", "ms", "rtt_ms", 1.0, RTT_SERVICES),
    "page_load_s": Metric("page_load_s", "s", "page_load_ms", 1e-3, WEB_SERVICES),
}

REFERENCES: tuple[Reference, ...] = (
    Reference(
        metric="dl_throughput_mbps",
        name="walking",
        path="All-Carriers/03-User-Mobility/walking-trace.csv",
        sql=(
            "SELECT throughput_mbps AS v FROM ref "
            "WHERE radio_type = $rat AND throughput_mbps IS NOT NULL"
        ),
        source="walking-trace.csv, per-second throughput_mbps by radio_type (Verizon, 8 TCP conns, walking)",
        note=(
            "Bulk 8-connection TCP download, Verizon: 5G is mmWave; includes handovers and 4G fallback. "
            "A best case per RAT: synthetic session means on mid-band NR are expected lower."
        ),
    ),
    Reference(
        metric="dl_throughput_mbps",
        name="LoS stationary",
        path="mmWave-only/03-UE-Panel_LoS_Tests/data.csv",
        sql=(
            "SELECT throughput_mbps AS v FROM ref "
            "WHERE protocol = 'TCP' AND num_tcp_conn = 8 AND radio_type = $rat AND throughput_mbps IS NOT NULL"
        ),
        source="UE-Panel LoS data.csv, protocol TCP, num_tcp_conn 8, per-second throughput_mbps by radio_type",
        note="Stationary, line of sight to the mmWave panel, 8 TCP conns: an upper bound, not a typical session.",
    ),
    Reference(
        metric="rtt_ms",
        name="ping first hop",
        path="mmWave-only/04-Ping-Traces_Latency_Tests/*.log",
        sql=(
            "SELECT rtt_in_ms AS v FROM ref "
            "WHERE protocol = 'ICMP' AND target_server = 'First-Hop' AND network_type = $rat AND rtt_in_ms IS NOT NULL"
        ),
        source="ping-trace-*.log, ICMP to target_server First-Hop, by network_type",
        note="Idle ICMP RTT to the first hop: radio + core only, a lower bound for an application RTT.",
    ),
    Reference(
        metric="rtt_ms",
        name="ping US-East",
        path="mmWave-only/04-Ping-Traces_Latency_Tests/*.log",
        sql=(
            "SELECT rtt_in_ms AS v FROM ref "
            "WHERE protocol = 'ICMP' AND target_server = 'US-East' AND network_type = $rat AND rtt_in_ms IS NOT NULL"
        ),
        source="ping-trace-*.log, ICMP to target_server US-East, by network_type",
        note=(
            "Idle ICMP RTT from Minneapolis to a US-East server (~1,500 km): includes wide-area transit "
            "that a CDN-served session in a national operator mostly avoids."
        ),
    ),
    Reference(
        metric="page_load_s",
        name="landing pages",
        path="mmWave-only/08-Web-Page-Load-Tests/real-tests_landing_pages.csv",
        sql=(
            "SELECT page_load_time_in_sec / 1000.0 AS v FROM ref "
            "WHERE radio_type = $rat AND page_load_time_in_sec IS NOT NULL"
        ),
        source=(
            "real-tests_landing_pages.csv by radio_type; column page_load_time_in_sec holds milliseconds "
            "(Bing ~0.6 s, CNN ~9 s), divided by 1000"
        ),
        note="17 popular landing pages x 20 loads on Verizon (5G = mmWave), Chrome on a phone, full page load.",
    ),
)


def _quantile_sql(value_sql: str) -> str:
    return f"SELECT count(v) AS n, quantile_cont(v, $probs) AS q FROM ({value_sql}) WHERE v IS NOT NULL"


def _quantiles(eng: Engine, value_sql: str, params: dict, step: str) -> dict:
    """n and p10..p90 of the column `v` of `value_sql` (None when it has no value)."""
    n, q = eng.query_row(_quantile_sql(value_sql), {**params, "probs": [p for _, p in QUANTILES]}, step=step)
    out: dict = {"n": int(n or 0)}
    for i, (name, _) in enumerate(QUANTILES):
        out[name] = float(q[i]) if q is not None and out["n"] > 0 else None
    return out


def gophers_quantiles(gophers_dir: str | Path | None = None) -> list[dict]:
    """Quantiles of every 5Gophers reference, one dict per (reference, RAT):
    metric, unit, reference, rat ('LTE'/'NR'), real_rat ('4G'/'5G'), source, path, n, p10..p90."""
    root = Path(gophers_dir) if gophers_dir is not None else default_gophers_dir()
    if not root.is_dir():
        raise FileNotFoundError(f"5Gophers dataset folder not found: {root} (pass gophers_dir)")
    rows = []
    with make_engine("duckdb") as eng:
        for ref in REFERENCES:
            eng.register_csv("ref", str(root / ref.path))
            for rat, real_rat in RATS:
                rows.append(
                    {
                        "metric": ref.metric,
                        "unit": METRICS[ref.metric].unit,
                        "reference": ref.name,
                        "rat": rat,
                        "real_rat": real_rat,
                        "source": ref.source,
                        "path": ref.path,
                        **_quantiles(eng, ref.sql, {"rat": real_rat}, f"5gophers {ref.name}"),
                    }
                )
    return rows


def _xdr_files(synth_dir: Path) -> list[str]:
    xdr = synth_dir / "xdr"
    files = sorted(str(p) for p in xdr.glob("**/*.parquet"))
    if not files:
        raise FileNotFoundError(f"no xDR parquet under {xdr} (expected xdr/day=YYYY-MM-DD/*.parquet)")
    return files


def synth_quantiles(
    synth_dir: str | Path,
    successful_only: bool = False,
) -> dict[tuple[str, str], dict]:
    """Quantiles of the synthetic xDR per (metric, rat), values converted to the metric's unit.
    Only sessions of the metric's services with a non-null value are used; `successful_only`
    additionally keeps `success = true` sessions."""
    files = _xdr_files(Path(synth_dir))
    out: dict[tuple[str, str], dict] = {}
    with make_engine("duckdb") as eng:
        eng.register_parquet("xdr", files)
        for metric in METRICS.values():
            value_sql = (
                f"SELECT {metric.synth_column} * $scale AS v FROM xdr "
                "WHERE list_contains($services, service) AND rat = $rat"
            )
            if successful_only:
                value_sql += " AND success"
            for rat, _ in RATS:
                params = {"scale": metric.synth_scale, "services": list(metric.services), "rat": rat}
                out[(metric.key, rat)] = _quantiles(eng, value_sql, params, f"synthetic {metric.key}")
    return out


def ratio_and_verdict(synth_p50: float | None, real_p50: float | None, factor: float = CLOSE_FACTOR) -> tuple[float | None, str]:
    """synth_p50 / real_p50 and 'close' (within `factor` either way), 'higher', 'lower', or 'n/a'."""
    if synth_p50 is None or real_p50 is None or real_p50 <= 0 or not math.isfinite(synth_p50):
        return None, "n/a"
    ratio = synth_p50 / real_p50
    if 1.0 / factor <= ratio <= factor:
        return ratio, "close"
    return ratio, "higher" if ratio > factor else "lower"


def compare_with_5gophers(
    synth_dir: str | Path,
    gophers_dir: str | Path | None = None,
    successful_only: bool = False,
) -> list[dict]:
    """Synthetic operator vs 5Gophers, one flat dict per (metric, 5Gophers reference, RAT).

    Keys: metric, unit, rat, real_rat, reference, source (5Gophers file and filters), services
    (synthetic services used), note, synth_n, synth_p10..synth_p90, real_n, real_p10..real_p90,
    ratio_p50 (synth_p50 / real_p50, None if undefined), verdict ('close' / 'higher' / 'lower' / 'n/a').
    """
    synth = synth_quantiles(synth_dir, successful_only=successful_only)
    notes = {(r.metric, r.name): r.note for r in REFERENCES}
    rows = []
    for real in gophers_quantiles(gophers_dir):
        metric = METRICS[real["metric"]]
        s = synth[(metric.key, real["rat"])]
        ratio, verdict = ratio_and_verdict(s["p50"], real["p50"])
        row = {
            "metric": metric.key,
            "unit": metric.unit,
            "rat": real["rat"],
            "real_rat": real["real_rat"],
            "reference": real["reference"],
            "source": real["source"],
            "services": ",".join(metric.services),
            "note": notes[(metric.key, real["reference"])],
            "synth_n": s["n"],
        }
        row.update({f"synth_{name}": s[name] for name, _ in QUANTILES})
        row["real_n"] = real["n"]
        row.update({f"real_{name}": real[name] for name, _ in QUANTILES})
        row["ratio_p50"] = ratio
        row["verdict"] = verdict
        rows.append(row)
    return rows


def _fmt(x: float | None) -> str:
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "-"
    a = abs(x)
    if a >= 100:
        return f"{x:.0f}"
    if a >= 10:
        return f"{x:.1f}"
    return f"{x:.2f}"


def _quantile_cell(row: dict, side: str) -> str:
    return " / ".join(_fmt(row.get(f"{side}_{name}")) for name, _ in QUANTILES)


def render_markdown(rows: list[dict]) -> str:
    """A Markdown table of `compare_with_5gophers` rows, followed by the per-reference notes.
    Rows from `gophers_quantiles` (no synth side) are rendered as a real-only table."""
    if not rows:
        return "_no rows_\n"
    quantile_names = "/".join(name for name, _ in QUANTILES)
    if "synth_n" not in rows[0]:
        lines = [
            f"| Metric | RAT | 5Gophers reference | n | {quantile_names} |",
            "|---|---|---|---:|---|",
        ]
        for r in rows:
            cell = " / ".join(_fmt(r[name]) for name, _ in QUANTILES)
            lines.append(f"| {r['metric']} ({r['unit']}) | {r['real_rat']} | {r['reference']} | {r['n']} | {cell} |")
        return "\n".join(lines) + "\n"

    lines = [
        f"| Metric | RAT | 5Gophers reference | Synth n | Synth {quantile_names} | Real n | Real {quantile_names} "
        "| Ratio p50 | Verdict |",
        "|---|---|---|---:|---|---:|---|---:|---|",
    ]
    notes: dict[str, str] = {}
    for r in rows:
        ref_label = r["reference"]
        if ref_label not in notes:
            notes[ref_label] = f"{r['source']}. {r['note']}"
        ratio = "-" if r["ratio_p50"] is None else f"{r['ratio_p50']:.2f}"
        lines.append(
            f"| {r['metric']} ({r['unit']}) | {r['rat']} / {r['real_rat']} | {ref_label} | {r['synth_n']} "
            f"| {_quantile_cell(r, 'synth')} | {r['real_n']} | {_quantile_cell(r, 'real')} | {ratio} | {r['verdict']} |"
        )
    lines.append("")
    lines.append(
        f"Verdict: 'close' if synth p50 / real p50 is within a factor {CLOSE_FACTOR:g} either way, else "
        "'higher' / 'lower' (synthetic relative to 5Gophers)."
    )
    services = {r["metric"]: r["services"] for r in rows}
    lines.append("Synthetic services: " + "; ".join(f"{m}: {s}" for m, s in services.items()) + ".")
    lines.append("")
    for ref_label, text in notes.items():
        lines.append(f"- **{ref_label}**: {text}")
    return "\n".join(lines) + "\n"

import math
import os
import re
import shutil
import time

import h3
import pytest
from report.browser import CHART_IDS, check_report_in_browser

from opencem.report import render_report, report_data_schema

SECTION_IDS = ("sec-header", "sec-trend", "sec-segments", "sec-map", "sec-fixes", "sec-verification", "sec-deltas",
               "sec-value-experience", "sec-care", "sec-campaigns")
CENTRE = (48.1372, 11.5756)  # Munich, Marienplatz


def example_data() -> dict:
    """A small, realistic report: 169 H3 res-9 grids around Munich, 5 episodes, 6 fixes, 2 verified."""
    centre = h3.latlng_to_cell(*CENTRE, 9)
    cells = sorted(h3.grid_disk(centre, 7))
    spots = {  # centre cell of each trouble spot (the rings are sorted, so the spots are fixed)
        "congestion": sorted(h3.grid_ring(centre, 3))[0], "coverage": sorted(h3.grid_ring(centre, 6))[7],
        "interference": sorted(h3.grid_ring(centre, 5))[20], "transport": cells[40], "core_dns": cells[120],
    }
    hot = {cause: set(h3.grid_disk(spots[cause], 1)) for cause in ("congestion", "coverage", "interference")}
    grids = []
    for i, c in enumerate(cells):
        d = h3.grid_distance(centre, c)
        cei = 78.0 - 1.1 * d + 3.0 * math.sin(i * 0.7)
        if any(c in spot for spot in hot.values()):
            cei -= 18.0
        subs = 20 + (i * 37) % 90
        grids.append({"grid": c, "cei": round(cei, 1), "nps": round((cei - 72) * 2.2, 1), "subscribers": subs,
                      "poor_share": round(max(0.01, (80 - cei) / 120), 3)})
    episodes = []
    for n, (cause, spot) in enumerate(spots.items()):
        lat, lon = h3.cell_to_latlng(spot)
        episodes.append({"episode_id": f"E{n + 1:04d}", "cause": cause, "center_lat": round(lat, 5), "center_lon": round(lon, 5),
                         "start_time": f"2026-10-{7 + 2 * n:02d} 18:00", "end_time": f"2026-10-{7 + 2 * n:02d} 22:00",
                         "affected_subscribers": 40 + 55 * n, "confidence": round(0.9 - 0.1 * n, 2), "grids": sorted(h3.grid_disk(spot, 1))})
    days = [f"2026-10-{d:02d}" for d in range(5, 27)]
    trend = [{"date": day, "nps": round(-12.6 + (1.6 if day >= "2026-10-18" else 0) + 0.4 * math.sin(i), 1),
              "nps_true": round(-10.9 + (1.4 if day >= "2026-10-18" else 0) + 0.2 * math.cos(i), 1)} for i, day in enumerate(days)]
    segments = [
        {"dimension": "plan", "segment": "Unlimited 5G", "nps": -3.2, "subscribers": 1200},
        {"dimension": "plan", "segment": "Smart 20 GB", "nps": -11.8, "subscribers": 4300},
        {"dimension": "plan", "segment": "Prepaid Basic", "nps": -19.4, "subscribers": 4500},
        {"dimension": "value_tier", "segment": "high", "nps": -18.7, "subscribers": 2000},
        {"dimension": "value_tier", "segment": "mid", "nps": -10.2, "subscribers": 5000},
        {"dimension": "value_tier", "segment": "low", "nps": -9.1, "subscribers": 3000},
        {"dimension": "device", "segment": "5G flagship", "nps": 2.4, "subscribers": 1800},
        {"dimension": "device", "segment": "4G mid-range", "nps": -13.9, "subscribers": 8200},
    ]
    fixes = [
        {"rank": 1, "fix_id": "C001", "action": "add_capacity", "target": "CELL-0123-2-B3", "cause": "congestion", "expected_nps_lift": 6.2,
         "expected_base_nps_lift": 0.13, "subscribers": 212, "revenue": 5123.4, "cost_class": "high", "severity_rank": 4, "applied": True},
        {"rank": 2, "fix_id": "C002", "action": "retune_tilt", "target": "CELL-0088-1-B20", "cause": "coverage", "expected_nps_lift": 5.1,
         "expected_base_nps_lift": 0.09, "subscribers": 180, "revenue": 3980.0, "cost_class": "low", "severity_rank": 7, "applied": True},
        {"rank": 3, "fix_id": "C003", "action": "clear_interference", "target": "CELL-0190-3-B3", "cause": "interference",
         "expected_nps_lift": 4.0, "expected_base_nps_lift": 0.07, "subscribers": 170, "revenue": 3510.5, "cost_class": "medium",
         "severity_rank": 2, "applied": True},
        {"rank": 4, "fix_id": "C004", "action": "reroute_backhaul", "target": "SITE-0042", "cause": "transport", "expected_nps_lift": 2.2,
         "expected_base_nps_lift": 0.03, "subscribers": 120, "revenue": 1800.0, "cost_class": "medium", "severity_rank": 1, "applied": False},
        {"rank": 5, "fix_id": "C005", "action": "fix_dns", "target": "DNS-POOL-B", "cause": "core_dns", "expected_nps_lift": 1.1,
         "expected_base_nps_lift": 0.02, "subscribers": 400, "revenue": 6100.0, "cost_class": "low", "severity_rank": 3, "applied": False},
        {"rank": 6, "fix_id": "C006", "action": "add_capacity", "target": "CELL-0007-1-B3", "cause": "congestion", "expected_nps_lift": 0.8,
         "expected_base_nps_lift": 0.01, "subscribers": 90, "revenue": 1200.0, "cost_class": "high", "severity_rank": 5, "applied": False},
    ]

    def eff(metric, est, half):
        return {"metric": metric, "estimate": est, "ci_low": round(est - half, 2), "ci_high": round(est + half, 2)}

    verification = [
        {"fix_id": "C001", "subscribers": 212, "controls": 840,
         "effects": [eff("nps", 5.1, 3.1), eff("cei", 4.3, 1.2), eff("throughput_kbps", 2150.0, 700.0), eff("rtt_ms", -12.0, 6.0)],
         "placebo": eff("nps", 0.3, 2.4), "predicted_nps_lift": 6.2, "true_nps_lift": 5.5,
         "event_study": [{"day": d, **eff("nps", 0.0 if d < 0 else min(d + 1, 5) * 1.0, 1.5)} for d in range(-14, 7)],
         "verdict": "unsafe", "warnings": ["the placebo 3 days earlier reads -2.1 NPS", "7 of 28 days after the fix"]},
        {"fix_id": "C002", "subscribers": 180, "controls": 700,
         "effects": [eff("nps", 3.4, 3.9), eff("cei", 2.1, 1.5), eff("throughput_kbps", 640.0, 500.0)],
         "placebo": eff("nps", -0.6, 2.9), "predicted_nps_lift": 5.1, "true_nps_lift": 4.1},
    ]
    deltas = [
        {"dimension": "segment", "group": "Unlimited 5G", "nps": 1.2, "dou_mb": 35.0, "complaints_per_1k": -0.4, "churn_pct": -0.1, "revenue": 120.0},
        {"dimension": "segment", "group": "Smart 20 GB", "nps": 0.8, "dou_mb": 12.5, "complaints_per_1k": -0.2, "churn_pct": -0.05, "revenue": 80.0},
        {"dimension": "segment", "group": "Prepaid Basic", "nps": -0.2, "dou_mb": 1.0, "complaints_per_1k": 0.1, "churn_pct": 0.02, "revenue": -5.0},
        {"dimension": "district", "group": "Altstadt-Lehel", "nps": 2.9, "dou_mb": 48.0, "complaints_per_1k": -0.9, "churn_pct": -0.2, "revenue": 210.0},
        {"dimension": "district", "group": "Maxvorstadt", "nps": 1.7, "dou_mb": 22.0, "complaints_per_1k": -0.3, "churn_pct": -0.1, "revenue": 95.0},
    ]
    value_experience = [
        {"value": "high", "experience": "poor", "subscribers": 410, "revenue": 21000.0, "nps": -40.0},
        {"value": "high", "experience": "good", "subscribers": 1590, "revenue": 70500.0, "nps": -8.0},
        {"value": "low", "experience": "poor", "subscribers": 1720, "revenue": 25800.0, "nps": -31.0},
        {"value": "low", "experience": "good", "subscribers": 6280, "revenue": 87900.0, "nps": -4.0},
    ]
    reasons = {
        "congestion": "evenings on cell CELL-0123-2-B3 are congested (PRB load {} %), video stalls",
        "coverage": "weak signal at home (RSRP {} dBm below usual), calls and pages fail",
        "interference": "uplink interference on CELL-0190-3-B3 (+{} dB), slow uploads",
        "transport": "backhaul of SITE-0042 drops packets at peak ({} % retransmissions)",
    }
    causes = list(reasons)
    care = [{"subscriber_id": f"{(n * 2654435761) % 16 ** 10:010x}", "segment": segments[n % 3]["segment"],
             "nps_class": "detractor" if n % 4 else "passive", "cause": causes[n % 4], "value": round(95.0 - 2.5 * n, 1),
             "reason": reasons[causes[n % 4]].format(4 + n % 9 if n % 4 else 70 + n % 25)} for n in range(27)]
    return {
        "title": "OpenCEM closed-loop report", "operator": "synthetic operator seed 7", "generated": "2026-11-02",
        "window": ["2026-10-05", "2026-10-26"], "fix_date": "2026-10-18",
        "kpis": {"base_nps": -12.1, "true_nps": -10.4, "subscribers": 10000, "episodes": len(episodes), "fixes_applied": 3,
                 "verified_nps_lift": 4.2},
        "nps_trend": trend, "segments": segments, "grids": grids, "episodes": episodes, "fixes": fixes,
        "ranking": {"k": 3, "budget": "3 fixes", "ours": {"expected": 0.29, "true": 0.26}, "severity": {"expected": 0.12, "true": 0.10}},
        "verification": verification, "deltas": deltas, "value_experience": value_experience, "care": care,
        "campaigns": [
            {"list": "proactive_care", "marketing": False, "subscribers": 135, "left_out_without_consent": 0, "expected_uplift": 22.3,
             "uplift_unit": "NPS points of the listed subscribers", "assumption": "a contact turns 30 % of them into passives"},
            {"list": "plan_upsell", "marketing": True, "subscribers": 96, "left_out_without_consent": 92, "expected_uplift": 95.98,
             "uplift_unit": "EUR per month", "assumption": "take-up 10 %"}],
    }


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    return render_report(example_data(), tmp_path_factory.mktemp("report") / "report.html")


def test_report_written_with_every_section(report):
    text = report.read_text(encoding="utf-8")
    assert text.startswith("<!DOCTYPE html>") and text.rstrip().endswith("</html>")
    for sid in SECTION_IDS + CHART_IDS + ("table-fixes", "table-deltas", "table-care", "table-campaigns", "table-verification-0"):
        assert f'id="{sid}"' in text, sid
    assert 'data-grids="169"' in text
    # trend, segments, map, ranking, 2 verification forests, 1 event study, value x experience
    assert text.count("Plotly.newPlot(") == 8 and 'id="chart-event-study-0"' in text
    assert "<strong>unsafe</strong>: the placebo 3 days earlier reads -2.1 NPS; 7 of 28 days after the fix." in text
    assert 'class="empty"' not in text
    assert "First 20 of 27 subscribers" in text and text.split('id="table-care"')[1].split("</table>")[0].count("<tr>") == 21
    assert "CELL-0123-2-B3" in text and "Altstadt-Lehel" in text
    assert not list(report.parent.glob(".*.tmp"))
    assert "grids" in report_data_schema and "verification" in report_data_schema


def _without_plotlyjs(text: str) -> str:
    """The page minus the inline plotly.js bundle, whose code names URLs it never fetches here (topojson, tiles)."""
    return re.sub(r"<script>/\*\*\s*\* plotly\.js v.*?</script>", "<script>PLOTLYJS</script>", text, count=1, flags=re.S)


def test_no_external_resource(report):
    text = report.read_text(encoding="utf-8")
    lowered = text.lower()
    for bad in ('<script src="http', "<script src='http", '<link href="http', "url(http", "url('http", 'url("http'):
        assert bad not in lowered, bad  # anywhere, bundle included
    assert not re.search(r"""<(?:script|link|img|iframe|source|embed)\b[^>]*\b(?:src|href)\s*=\s*["']?(?:https?:)?//""", text, re.I)
    assert text.count("* plotly.js v") == 1 and "<script src=" not in text  # plotly.js inline, once
    page = _without_plotlyjs(text)
    assert "PLOTLYJS" in page and len(page) < len(text) / 5
    for bad in ("http://", "https://", "@import", "@font-face", '"scattergeo"', '"scattermap', '"choropleth', '"mapbox'):
        assert bad not in page.lower().replace('"scattergeo":[', "").replace('"choropleth":[', ""), bad


def test_deterministic(tmp_path):
    a = render_report(example_data(), tmp_path / "a.html").read_bytes()
    b = render_report(example_data(), tmp_path / "b.html").read_bytes()
    assert a == b
    render_report(example_data(), tmp_path / "a.html")  # overwriting in place gives the same bytes
    assert (tmp_path / "a.html").read_bytes() == a


def test_empty_sections_degrade(tmp_path):
    out = render_report({"title": "Nothing yet"}, tmp_path / "sub" / "empty.html")
    text = out.read_text(encoding="utf-8")
    for sid in SECTION_IDS + CHART_IDS:
        assert f'id="{sid}"' in text, sid
    assert text.count('class="empty"') >= 9
    assert "Plotly.newPlot(" not in text and len(text) < 100_000  # no figure, so no plotly.js either

    data = example_data()
    data.update(grids=[], nps_trend=[{"date": "2026-10-05", "nps": None}], segments=[], fixes=[], ranking={},
                verification=[{"fix_id": "C001", "effects": []}], kpis={"base_nps": float("nan")}, care=[{"subscriber_id": "x"}],
                value_experience=[{"value": "high", "experience": "poor", "subscribers": 3}], deltas=[{"dimension": "plan"}])
    text = render_report(data, tmp_path / "partial.html").read_text(encoding="utf-8")
    assert 'data-grids="0"' in text and "episode: congestion" in text  # episodes alone still make a map
    assert "No candidate fixes" in text and "No ranking comparison" in text and "No effect estimates" in text


def test_title_is_escaped(tmp_path):
    text = render_report({"title": "<script>alert(1)</script>", "care": [{"reason": "a < b & c"}]}, tmp_path / "x.html").read_text()
    assert "<script>alert(1)" not in text and "&lt;script&gt;alert(1)" in text and "a &lt; b &amp; c" in text


@pytest.mark.browser
def test_renders_offline_in_chromium(report, tmp_path):
    t0 = time.perf_counter()
    shot = tmp_path / "report.png"
    state = check_report_in_browser(report, shot)
    assert state["empty"] == []
    assert state["map_hexagons"] == 169
    assert state["ranking_bars"] == 4 and state["segment_bars"] == 8
    assert state["tables"]["table-care"] == 20 and state["tables"]["table-fixes"] == 6
    assert shot.exists() and shot.stat().st_size > 50_000
    if os.environ.get("OPENCEM_SCREENSHOT"):
        shutil.copyfile(shot, os.environ["OPENCEM_SCREENSHOT"])
    assert time.perf_counter() - t0 < 120


@pytest.mark.browser
def test_empty_report_in_chromium(tmp_path):
    state = check_report_in_browser(render_report({"title": "Nothing yet"}, tmp_path / "empty.html"), None)
    assert sorted(state["empty"]) == sorted(CHART_IDS) and state["tables"] == {}

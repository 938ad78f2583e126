"""Open an OpenCEM HTML report in headless Chromium, offline, and check that it really renders.

Reusable by any test holding a report: `from report.browser import check_report_in_browser` (pytest puts
`tests/` on sys.path through tests/conftest.py). Uses the system Chromium (env OPENCEM_CHROMIUM, else
`chromium` on PATH) and skips when it or Playwright is missing; Playwright never downloads a browser here.
Tests that drive it carry the `browser` marker.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
from pathlib import Path

import pytest

CHART_IDS = ("chart-nps-trend", "chart-segments", "chart-map", "chart-ranking", "chart-verification", "chart-value-experience")
TABLE_IDS = ("table-fixes", "table-deltas", "table-care")

_STATE_JS = """(ids) => {
  const out = {charts: {}, empty: [], tables: {}};
  for (const id of ids.charts) {
    const el = document.getElementById(id);
    if (!el) { out.charts[id] = null; continue; }
    if (el.dataset.empty === "1") out.empty.push(id);
    out.charts[id] = el.querySelectorAll(".main-svg").length;
  }
  for (const t of document.querySelectorAll("table")) out.tables[t.id] = t.querySelectorAll("tbody tr").length;
  const map = document.getElementById("chart-map");
  out.map_grids = map && map.dataset.grids !== undefined ? Number(map.dataset.grids) : null;
  // each hexagon is one closed sub-path ("M ... Z") of a filled scatter trace
  out.map_fill_paths = 0; out.map_hexagons = 0;
  if (map) for (const p of map.querySelectorAll(".scatterlayer path.js-fill")) {
    const d = p.getAttribute("d") || "";
    if (!d) continue;
    out.map_fill_paths += 1;
    out.map_hexagons += (d.match(/M/g) || []).length;
  }
  const ranking = document.getElementById("chart-ranking");
  out.ranking_bars = ranking ? ranking.querySelectorAll(".barlayer .point path").length : 0;
  const seg = document.getElementById("chart-segments");
  out.segment_bars = seg ? seg.querySelectorAll(".barlayer .point path").length : 0;
  return out;
}"""


def chromium_path() -> str | None:
    """The Chromium to drive: env OPENCEM_CHROMIUM, else `chromium` on PATH, else None."""
    env = os.environ.get("OPENCEM_CHROMIUM")
    if env:
        return env if Path(env).exists() else None
    return shutil.which("chromium")


def missing() -> str | None:
    """Why the browser tests cannot run here, or None when Chromium and Playwright are both available."""
    if chromium_path() is None:
        env = os.environ.get("OPENCEM_CHROMIUM")
        where = f"OPENCEM_CHROMIUM={env} does not exist" if env else "OPENCEM_CHROMIUM unset and no `chromium` on PATH"
        return f"no Chromium ({where}): install Debian's `chromium` (Playwright browsers are not downloaded)"
    if importlib.util.find_spec("playwright") is None:
        return "playwright is not installed (it is in the `test` extra)"
    return None


def check_report_in_browser(path: Path, screenshot: Path | None = None) -> dict:
    """Render `path` in headless Chromium with the network cut off and assert that it works offline.

    Asserts: no request other than file:// or data: was attempted; no console error and no page error;
    every chart container not marked empty holds a rendered plotly SVG; the map draws one filled hexagon
    per grid it declares (data-grids); the ranking chart has bars; every table has body rows.
    Saves a full-page screenshot to `screenshot` when given. Returns what it measured.
    """
    reason = missing()
    if reason:
        pytest.skip(reason)
    from playwright import sync_api

    exe = chromium_path()
    path = Path(path).resolve()
    blocked: list[str] = []
    requests: list[str] = []
    errors: list[str] = []

    def route(r):
        url = r.request.url
        if url.startswith(("file://", "data:")):
            r.continue_()
        else:
            blocked.append(url)
            r.abort()

    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=exe, args=["--no-sandbox"])
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.route("**/*", route)
            page.on("request", lambda req: requests.append(req.url))
            page.on("console", lambda msg: errors.append(f"console {msg.type}: {msg.text}") if msg.type == "error" else None)
            page.on("pageerror", lambda exc: errors.append(f"page error: {exc}"))
            page.goto(path.as_uri(), wait_until="load")
            page.wait_for_function(
                """(ids) => ids.every(id => { const el = document.getElementById(id);
                     return !el || el.dataset.empty === "1" || el.querySelector(".main-svg"); })""",
                arg=list(CHART_IDS), timeout=60_000)
            state = page.evaluate(_STATE_JS, {"charts": list(CHART_IDS)})
            if screenshot is not None:
                Path(screenshot).parent.mkdir(parents=True, exist_ok=True)
                page.screenshot(path=str(screenshot), full_page=True)
        finally:
            browser.close()

    state["blocked"] = blocked
    state["requests"] = requests
    state["errors"] = errors
    outside = [u for u in requests if not u.startswith(("file://", "data:"))]
    assert not blocked and not outside, f"the report tried to load from the network: {sorted(set(blocked + outside))[:10]}"
    assert not errors, f"errors in the browser: {errors[:10]}"
    for cid in CHART_IDS:
        assert state["charts"][cid] is not None, f"#{cid} is missing"
        if cid not in state["empty"]:
            assert state["charts"][cid] > 0, f"#{cid} rendered no plotly SVG"
    if state["map_grids"]:
        assert state["map_hexagons"] == state["map_grids"], (
            f"map: {state['map_hexagons']} hexagons drawn in {state['map_fill_paths']} filled paths for {state['map_grids']} grids")
    if "chart-ranking" not in state["empty"]:
        assert state["ranking_bars"] > 0, "the ranking chart has no bars"
    for tid, n in state["tables"].items():
        assert n > 0, f"table #{tid} has no rows"
    return state

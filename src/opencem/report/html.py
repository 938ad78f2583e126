"""One self-contained HTML report of the closed loop, readable offline.

Everything the page needs is inside the file: the CSS, plotly.js (once, from the installed plotly
package) and the figures. Nothing is fetched: no CDN, no web font, no map tile, no topojson, which is
why the map draws H3 hexagons as plain polygons on longitude/latitude axes instead of a geo or map
trace. The same data gives the same bytes (explicit div ids, no clock read).
"""

from __future__ import annotations

import html
import math
from pathlib import Path
from typing import Any, Iterable

import h3
import plotly.graph_objects as go
import plotly.offline
from plotly.colors import sample_colorscale
from plotly.subplots import make_subplots

from ..engine.files import atomic_write_text
from ..vocabulary import CAUSES

report_data_schema = """The dict `render_report` draws. Every key but `title` may be missing or empty; an
empty section is replaced by a short note. Dates are ISO strings, NPS values are points (-100..100).

title: str                          report title
operator: str                       who the data is about (operator name, or synthetic operator and seed)
generated: str                      date the report was generated (printed as is; no clock is read)
window: [start, end]                observed period, ISO dates
fix_date: str                       day the fixes went live (vertical marker on the trend)
nps_level: str?                     which level correction the NPS estimates carry (the model's)
kpis: {base_nps, true_nps, subscribers, episodes, fixes_applied, verified_nps_lift}
                                    headline figures; true_nps only for a synthetic operator
nps_trend: [{date, nps, nps_true?}] estimated base network NPS per day, plus the truth when known
segments: [{dimension, segment, nps, subscribers}]
                                    NPS per segment, grouped by dimension (plan, value tier, device, ...)
grids: [{grid, cei, nps, subscribers, poor_share}]
                                    H3 cell ids (any resolution, 9 in OpenCEM) with their experience
episodes: [{episode_id, cause, center_lat, center_lon, start_time, end_time, affected_subscribers,
            confidence, grids}]     poor-experience episodes of the digital twin
fixes: [{rank, fix_id, action, target, cause, expected_nps_lift, expected_nps_lift_low?, expected_nps_lift_high?,
         expected_base_nps_lift, subscribers, revenue, cost_class, severity_rank, applied}]
                                    candidate fixes in our ranking order (NPS lift x value)
ranking: {k, budget, ours: {expected, expected_low?, expected_high?, true?}, severity: {...}}
                                    base NPS points gained by the same budget spent on our top k fixes
                                    versus the k worst by severity (expected_low / high: the 95 %
                                    interval for the model's error)
verification: [{fix_id, subscribers, controls, effects: [{metric, estimate, ci_low, ci_high}],
                placebo: {metric, estimate, ci_low, ci_high}, predicted_nps_lift, true_nps_lift?, true_nps_lift_treated?,
                event_study?: [{day, estimate, ci_low, ci_high}], verdict?: safe|unsafe, warnings?: [str]}]
                                    difference-in-differences per applied fix, 95 % intervals
deltas: [{dimension, group, nps, dou_mb, complaints_per_1k, churn_pct, revenue, ...}]
                                    changes after the fixes per segment and location (any numeric columns)
value_experience: [{value: high|low, experience: good|poor, subscribers, revenue, nps}]
                                    the four quadrants of value x experience
care: [{subscriber_id, segment, nps_class, cause, reason, ...}]
                                    proactive care list, most urgent first (the report shows 20 rows)
campaigns: [{list, marketing, subscribers, left_out_without_consent, expected_uplift, uplift_unit, assumption}]
                                    campaign lists (opencem campaigns): size, expected uplift and its assumption
"""

FONT = 'system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif'
PLOT_CONFIG = {"displaylogo": False, "responsive": True, "modeBarButtonsToRemove": ["select2d", "lasso2d"]}
RED, GREEN, GREY, BLUE, ORANGE = "#c0392b", "#1e8449", "#8c8c8c", "#1f4e99", "#d35400"
MAP_BINS = 6
CARE_ROWS = 20
CAUSE_STYLE = dict(zip(CAUSES, (  # symbol, colour of the episode markers, in the vocabulary's order of causes
    ("triangle-down", "#0d47a1"),  # coverage
    ("diamond", "#e65100"),  # interference
    ("circle", "#6a1b9a"),  # congestion
    ("square", "#006064"),  # transport
    ("star", "#212121"),  # core_dns
    ("cross", "#795548"),  # device
    ("x", "#616161"),  # non_network
), strict=True))
METRIC_LABELS = {
    "nps": "NPS (points)", "cei": "CEI (points)", "throughput_kbps": "throughput (kbps)", "rtt_ms": "RTT (ms)",
    "poor_share": "poor-session share", "dou_mb": "data use (MB)", "complaints_per_1k": "complaints per 1k",
    "churn_pct": "churn (%)", "revenue": "revenue",
}
# +1: higher is better, -1: lower is better (colours the deltas table)
METRIC_DIRECTION = {"nps": 1, "cei": 1, "dou_mb": 1, "revenue": 1, "throughput_kbps": 1, "complaints_per_1k": -1, "churn_pct": -1,
                    "rtt_ms": -1, "poor_share": -1}

CSS = """
:root { --ink: #1c2733; --muted: #5b6875; --line: #d9dee4; --bg: #f6f7f9; --good: #1e8449; --bad: #c0392b; }
* { box-sizing: border-box; }
body { margin: 0; background: var(--bg); color: var(--ink); font: 15px/1.45 %FONT%; }
main { max-width: 1180px; margin: 0 auto; padding: 24px 28px 48px; }
header h1 { margin: 0 0 4px; font-size: 28px; }
.meta { color: var(--muted); margin: 0 0 16px; }
nav { margin: 0 0 8px; font-size: 13px; }
nav a { color: var(--muted); margin-right: 12px; text-decoration: none; }
nav a:hover { text-decoration: underline; }
section { background: #fff; border: 1px solid var(--line); border-radius: 8px; padding: 18px 22px; margin: 18px 0; }
h2 { margin: 0 0 2px; font-size: 20px; }
h3 { margin: 18px 0 4px; font-size: 16px; }
.explain { color: var(--muted); margin: 0 0 12px; }
.empty { color: var(--muted); font-style: italic; background: var(--bg); border: 1px dashed var(--line); border-radius: 6px; padding: 12px; }
.kpis { display: grid; grid-template-columns: repeat(auto-fit, minmax(150px, 1fr)); gap: 12px; }
.kpi { background: #fff; border: 1px solid var(--line); border-radius: 8px; padding: 12px 14px; }
.kpi .v { font-size: 26px; font-weight: 600; }
.kpi .l { color: var(--muted); font-size: 13px; }
.chart { width: 100%; break-inside: avoid; page-break-inside: avoid; }
.tablewrap { overflow-x: auto; }
table { border-collapse: collapse; width: 100%; font-size: 13.5px; margin: 6px 0 10px; }
th, td { padding: 6px 8px; border-bottom: 1px solid var(--line); text-align: left; vertical-align: top; }
th { background: var(--bg); font-weight: 600; }
td.id { white-space: nowrap; font-family: ui-monospace, Menlo, Consolas, monospace; font-size: 12.5px; }
table.compact { width: auto; min-width: 50%; }
td.n, th.n { text-align: right; font-variant-numeric: tabular-nums; }
td.n { white-space: nowrap; }
td.good { color: var(--good); font-weight: 600; }
td.bad { color: var(--bad); font-weight: 600; }
tr:nth-child(even) td { background: #fbfbfc; }
.note { color: var(--muted); font-size: 13px; }
@media print {
  body { background: #fff; font-size: 12px; }
  main { max-width: none; padding: 0; }
  nav, .modebar { display: none !important; }
  section { border: none; padding: 0; margin: 14px 0; break-inside: auto; }
  h2, h3 { break-after: avoid; page-break-after: avoid; }
  tr { break-inside: avoid; }
}
""".replace("%FONT%", FONT)


def render_report(data: dict, path: Path) -> Path:
    """Write the closed-loop report described by `data` (see `report_data_schema`) to `path` and return it.

    The file is self-contained (inline CSS and plotly.js, no URL is loaded) and written atomically:
    to a temporary file beside `path`, then renamed over it.
    """
    path = Path(path)
    sections = [
        _header(data),
        _trend(data),
        _segments(data),
        _map(data),
        _fixes(data),
        _verification(data),
        _deltas(data),
        _value_experience(data),
        _care(data),
        _campaigns(data),
    ]
    has_figures = any('class="plotly-graph-div"' in s for s in sections)
    title = _esc(data.get("title") or "OpenCEM report")
    head = [
        "<!DOCTYPE html>", '<html lang="en">', "<head>", '<meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{title}</title>", f"<style>{CSS}</style>",
    ]
    if has_figures:
        head.append("<script>window.PlotlyConfig = {MathJaxConfig: 'local'};</script>")
        head.append(f"<script>{plotly.offline.get_plotlyjs()}</script>")
    head.append("</head>")
    doc = "\n".join(head + ["<body>", "<main>"] + sections + ["</main>", "</body>", "</html>", ""])
    atomic_write_text(path, doc)
    return path


# ---------------------------------------------------------------------------------------------- helpers


def _esc(v: Any) -> str:
    return html.escape("" if v is None else str(v))


def _num(v: Any) -> float | None:
    if isinstance(v, bool) or v is None:
        return None
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


def _model_error(*groups: dict) -> dict | None:
    """Error bars from each group's expected_low / expected_high (the model's error), when every group has them."""
    bounds = [(_num(g.get("expected")), _num(g.get("expected_low")), _num(g.get("expected_high"))) for g in groups]
    if any(v is None for b in bounds for v in b):
        return None
    return {"type": "data", "symmetric": False, "array": [h - e for e, _, h in bounds],
            "arrayminus": [e - lo for e, lo, _ in bounds], "color": "#444444"}


def _fmt(v: Any, spec: str = ",.1f") -> str:
    f = _num(v)
    if f is None:
        return "" if v is None else str(v)
    return format(f, spec)


def _short(v: float, signed: bool = False) -> str:
    """A compact number: thousands separators from 100 up, else up to 3 significant digits."""
    sign = "+" if signed else ""
    if abs(v) >= 100:
        return format(v, sign + ",.0f")
    return format(v, sign + ".3g")


def _label(key: str) -> str:
    return METRIC_LABELS.get(key, key.replace("_", " "))


def _section(sid: str, title: str, explain: str, body: str) -> str:
    return (f'<section id="{sid}">\n<h2>{_esc(title)}</h2>\n<p class="explain">{explain}</p>\n{body}\n</section>')


def _empty(what: str) -> str:
    return f'<p class="empty">No {_esc(what)} in this report\'s data: section skipped.</p>'


def _chart(cid: str, fig: go.Figure | None, note: str = "", grids: int | None = None) -> str:
    """A chart container with a stable id; the figure's own div gets a derived, fixed id."""
    attrs = f' data-grids="{grids}"' if grids is not None else ""
    if fig is None:
        return f'<div id="{cid}" class="chart" data-empty="1"{attrs}>{note}</div>'
    return f'<div id="{cid}" class="chart"{attrs}>{_plot(fig, cid + "-plot")}</div>'


def _plot(fig: go.Figure, div_id: str) -> str:
    fig.update_layout(template="none", font=dict(family=FONT, size=13, color="#1c2733"), paper_bgcolor="white",
                      plot_bgcolor=fig.layout.plot_bgcolor or "white", hoverlabel=dict(font_family=FONT))
    fig.update_xaxes(gridcolor="#e6e9ed", zerolinecolor="#9aa3ad", linecolor="#9aa3ad", automargin=True)
    fig.update_yaxes(gridcolor="#e6e9ed", zerolinecolor="#9aa3ad", linecolor="#9aa3ad", automargin=True)
    return fig.to_html(full_html=False, include_plotlyjs=False, div_id=div_id, config=PLOT_CONFIG)


def _table(tid: str, columns: list[tuple[str, str, bool]], rows: Iterable[list[tuple[str, str]]], compact: bool = False) -> str:
    """columns: (key, header, numeric); rows: per column (text already escaped, css class)."""
    head = "".join(f'<th class="n">{_esc(h)}</th>' if numeric else f"<th>{_esc(h)}</th>" for _, h, numeric in columns)
    body = []
    for cells in rows:
        tds = []
        for (text, cls), (_, _, numeric) in zip(cells, columns):
            classes = " ".join(c for c in ("n" if numeric else "", cls) if c)
            tds.append(f'<td class="{classes}">{text}</td>' if classes else f"<td>{text}</td>")
        body.append("<tr>" + "".join(tds) + "</tr>")
    cls = ' class="compact"' if compact else ""
    return (f'<div class="tablewrap"><table id="{tid}"{cls}><thead><tr>{head}</tr></thead>'
            f'<tbody>\n' + "\n".join(body) + "\n</tbody></table></div>")


# ---------------------------------------------------------------------------------------------- sections


def _header(data: dict) -> str:
    title = _esc(data.get("title") or "OpenCEM report")
    meta = []
    if data.get("operator"):
        meta.append(f"Operator: <b>{_esc(data['operator'])}</b>")
    window = data.get("window") or []
    if len(window) == 2:
        meta.append(f"Window: <b>{_esc(window[0])} to {_esc(window[1])}</b>")
    if data.get("fix_date"):
        meta.append(f"Fixes live: <b>{_esc(data['fix_date'])}</b>")
    if data.get("generated"):
        meta.append(f"Generated: {_esc(data['generated'])}")
    if data.get("nps_level"):
        meta.append(f"NPS level: {_esc(data['nps_level'])}")
    k = data.get("kpis") or {}
    cards = [
        ("base_nps", "base network NPS (estimate)", "+.1f"),
        ("true_nps", "true NPS (synthetic operator)", "+.1f"),
        ("subscribers", "subscribers", ",.0f"),
        ("episodes", "poor-experience episodes", ",.0f"),
        ("fixes_applied", "fixes applied", ",.0f"),
        ("verified_nps_lift", "verified NPS lift (treated)", "+.1f"),
    ]
    kpis = "".join(f'<div class="kpi"><div class="v">{_esc(_fmt(k[key], spec))}</div><div class="l">{label}</div></div>'
                   for key, label, spec in cards if _num(k.get(key)) is not None)
    links = [("sec-trend", "NPS trend"), ("sec-segments", "segments"), ("sec-map", "map"), ("sec-fixes", "top fixes"),
             ("sec-verification", "verification"), ("sec-deltas", "deltas"), ("sec-value-experience", "value x experience"),
             ("sec-care", "proactive care")]
    nav = "<nav>" + "".join(f'<a href="#{sid}">{name}</a>' for sid, name in links) + "</nav>"
    body = f'<div class="kpis">{kpis}</div>' if kpis else _empty("headline KPIs")
    return (f'<header id="sec-header">\n<h1>{title}</h1>\n<p class="meta">{" &middot; ".join(meta)}</p>\n{nav}\n'
            f'<p class="explain">Network NPS estimated for every subscriber from measured experience, the episodes behind it, '
            f'the fixes ranked by NPS gained per unit of value, and what those fixes changed.</p>\n{body}\n</header>')


def _trend(data: dict) -> str:
    rows = [r for r in data.get("nps_trend") or [] if r.get("date")]
    explain = ("Network NPS of the whole base, estimated per day from each subscriber's experience"
               "; the dashed line is the synthetic operator's true NPS; the vertical line is the day the fixes went live.")
    if not rows:
        return _section("sec-trend", "NPS trend", explain, _chart("chart-nps-trend", None, _empty("daily NPS trend")))
    dates = [str(r["date"]) for r in rows]
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=dates, y=[_num(r.get("nps")) for r in rows], mode="lines+markers", name="estimated NPS",
                             line=dict(color=BLUE, width=2.5), hovertemplate="%{x}<br>estimated NPS %{y:+.1f}<extra></extra>"))
    if any(_num(r.get("nps_true")) is not None for r in rows):
        fig.add_trace(go.Scatter(x=dates, y=[_num(r.get("nps_true")) for r in rows], mode="lines", name="true NPS",
                                 line=dict(color=GREY, width=2, dash="dash"), hovertemplate="%{x}<br>true NPS %{y:+.1f}<extra></extra>"))
    fix = data.get("fix_date")
    if fix:
        fig.add_shape(type="line", xref="x", yref="paper", x0=str(fix), x1=str(fix), y0=0, y1=1, line=dict(color=ORANGE, width=2))
        fig.add_annotation(x=str(fix), y=1, xref="x", yref="paper", text="fixes live", showarrow=False, yanchor="bottom",
                           font=dict(color=ORANGE))
    fig.update_layout(height=360, legend=dict(orientation="h", y=-0.18), hovermode="x unified", margin=dict(l=60, r=30, t=30, b=40))
    fig.update_yaxes(title_text="network NPS")
    fig.update_xaxes(type="date")
    return _section("sec-trend", "NPS trend", explain, _chart("chart-nps-trend", fig))


def _segments(data: dict) -> str:
    rows = [r for r in data.get("segments") or [] if _num(r.get("nps")) is not None]
    explain = "Estimated network NPS per segment, grouped by dimension; labels give the NPS and the subscribers it rests on."
    if not rows:
        return _section("sec-segments", "NPS by segment", explain, _chart("chart-segments", None, _empty("segments")))
    order = list(dict.fromkeys(str(r.get("dimension", "")) for r in rows))
    # plotly draws the first category at the bottom: reverse so that the first dimension reads first
    rows = sorted(rows, key=lambda r: (-order.index(str(r.get("dimension", ""))), -_num(r["nps"])))
    nps = [_num(r["nps"]) for r in rows]
    dims = [str(r.get("dimension", "")).replace("_", " ") for r in rows]
    segs = [str(r.get("segment", "")) for r in rows]
    subs = [_num(r.get("subscribers")) for r in rows]
    text = [f"{v:+.1f}" + (f" (n={s:,.0f})" if s is not None else "") for v, s in zip(nps, subs)]
    fig = go.Figure(go.Bar(
        y=[dims, segs], x=nps, orientation="h", marker_color=[RED if v < 0 else GREEN for v in nps], text=text,
        textposition="outside", cliponaxis=False, customdata=[[d, s, n if n is not None else float("nan")] for d, s, n in zip(dims, segs, subs)],
        hovertemplate="%{customdata[0]}: %{customdata[1]}<br>NPS %{x:+.1f}<br>%{customdata[2]:,.0f} subscribers<extra></extra>"))
    lo, hi = min(nps + [0.0]), max(nps + [0.0])
    pad = 0.25 * (hi - lo or 10)
    fig.update_layout(height=max(260, 26 * len(rows) + 90), showlegend=False, margin=dict(l=60, r=40, t=20, b=50), bargap=0.25)
    fig.update_xaxes(title_text="network NPS", range=[lo - pad, hi + pad], zeroline=True)
    return _section("sec-segments", "NPS by segment", explain, _chart("chart-segments", fig))


def _hex_ring(cell: str) -> tuple[list[float], list[float]]:
    ring = h3.cell_to_boundary(cell)
    lats = [round(lat, 6) for lat, _ in ring]
    lons = [round(lon, 6) for _, lon in ring]
    return lons + [lons[0]], lats + [lats[0]]


def _map(data: dict) -> str:
    grids = [g for g in data.get("grids") or [] if isinstance(g.get("grid"), str) and h3.is_valid_cell(g["grid"])]
    episodes = [e for e in data.get("episodes") or [] if _num(e.get("center_lat")) is not None and _num(e.get("center_lon")) is not None]
    res = h3.get_resolution(grids[0]["grid"]) if grids else 9
    explain = (f"Each hexagon is an H3 grid (resolution {res}) coloured by its customer experience index "
               "(CEI, red = poor, green = good); symbols are the poor-experience episodes at their centre, by cause, "
               "sized by affected subscribers. Hover for details; click the legend to hide a layer.")
    if not grids and not episodes:
        return _section("sec-map", "Experience map", explain, _chart("chart-map", None, _empty("grids or episodes"), grids=0))
    fig = go.Figure()
    ceis = [_num(g.get("cei")) for g in grids]
    known = [c for c in ceis if c is not None]
    lo, hi = (math.floor(min(known)), math.ceil(max(known))) if known else (0, 0)
    nbins = MAP_BINS if hi > lo else 1
    width = (hi - lo) / nbins if hi > lo else 1.0
    bins: dict[int, list[int]] = {}
    for i, c in enumerate(ceis):
        b = -1 if c is None else min(int((c - lo) / width), nbins - 1)
        bins.setdefault(b, []).append(i)
    for b in sorted(bins):
        members = bins[b]
        if b < 0:
            color, name = "#bdbdbd", "no CEI"
        else:
            color = sample_colorscale("RdYlGn", [(b + 0.5) / nbins])[0]
            name = f"CEI {lo + b * width:.0f}-{lo + (b + 1) * width:.0f}" if nbins > 1 else f"CEI {lo:.0f}"
        xs: list[float | None] = []
        ys: list[float | None] = []
        cx, cy, hover = [], [], []
        for i in members:
            g = grids[i]
            lons, lats = _hex_ring(g["grid"])
            xs += lons + [None]
            ys += lats + [None]
            clat, clon = h3.cell_to_latlng(g["grid"])
            cx.append(round(clon, 6))
            cy.append(round(clat, 6))
            hover.append(f"grid {_esc(g['grid'])}<br>CEI {_fmt(g.get('cei'))}<br>NPS {_fmt(g.get('nps'), '+.1f')}"
                         f"<br>{_fmt(g.get('subscribers'), ',.0f')} subscribers<br>poor sessions {_fmt(g.get('poor_share'), '.1%')}")
        group = f"cei{b}"
        fig.add_trace(go.Scatter(x=xs, y=ys, mode="lines", fill="toself", fillcolor=color, line=dict(color="rgba(255,255,255,0.8)", width=0.6),
                                 hoverinfo="skip", name=f"{name} ({len(members)})", legendgroup=group, legendgrouptitle_text=None))
        # invisible centre points carry the per-grid hover (a filled trace only hovers as a whole)
        fig.add_trace(go.Scatter(x=cx, y=cy, mode="markers", marker=dict(size=10, color=color, opacity=0), hovertext=hover,
                                 hoverinfo="text", showlegend=False, legendgroup=group, name=name))
    by_cause: dict[str, list[dict]] = {}
    for e in episodes:
        by_cause.setdefault(str(e.get("cause") or "unknown"), []).append(e)
    sizes = [_num(e.get("affected_subscribers")) or 0.0 for e in episodes]
    sizeref = 2.0 * max(sizes + [1.0]) / 34.0 ** 2
    for cause in sorted(by_cause):
        es = by_cause[cause]
        symbol, color = CAUSE_STYLE.get(cause, ("circle-open", "#000000"))
        hover = [f"<b>{_esc(e.get('episode_id'))}</b> {_esc(cause)}<br>{_esc(e.get('start_time'))} to {_esc(e.get('end_time'))}"
                 f"<br>{_fmt(e.get('affected_subscribers'), ',.0f')} subscribers affected"
                 + (f"<br>confidence {_fmt(e.get('confidence'), '.0%')}" if _num(e.get("confidence")) is not None else "")
                 + (f"<br>{len(e.get('grids') or [])} grids" if e.get("grids") else "") for e in es]
        fig.add_trace(go.Scatter(
            x=[round(_num(e["center_lon"]), 6) for e in es], y=[round(_num(e["center_lat"]), 6) for e in es], mode="markers",
            name=f"episode: {cause.replace('_', ' ')} ({len(es)})", hovertext=hover, hoverinfo="text",
            marker=dict(symbol=symbol, color=color, size=[_num(e.get("affected_subscribers")) or 0.0 for e in es], sizemode="area",
                        sizeref=sizeref, sizemin=7, opacity=0.85, line=dict(color="white", width=1.5))))
    lats = [h3.cell_to_latlng(g["grid"])[0] for g in grids] + [_num(e["center_lat"]) for e in episodes]
    mid_lat = (min(lats) + max(lats)) / 2
    fig.update_layout(height=640, hovermode="closest", legend=dict(title_text="layers", itemsizing="constant"),
                      margin=dict(l=60, r=20, t=20, b=50), plot_bgcolor="#f3f4f6")
    fig.update_xaxes(title_text="longitude", showgrid=False, zeroline=False)
    # one degree of latitude is 1/cos(lat) times longer on the ground than one of longitude
    fig.update_yaxes(title_text="latitude", showgrid=False, zeroline=False, scaleanchor="x",
                     scaleratio=round(1 / math.cos(math.radians(mid_lat)), 6))
    return _section("sec-map", "Experience map", explain, _chart("chart-map", fig, grids=len(grids)))


def _fixes(data: dict) -> str:
    fixes = data.get("fixes") or []
    explain = ("Candidate fixes in our order: expected NPS lift of the subscribers they touch weighted by their value; "
               "severity rank is where a classic worst-KPI-first list puts the same fix.")
    if fixes:
        cols = [("rank", "rank", True), ("fix_id", "fix", False), ("action", "action", False), ("target", "target", False),
                ("cause", "cause", False), ("expected_nps_lift", "expected NPS lift", True)]
        if any(_num(f.get("expected_base_nps_lift")) is not None for f in fixes):
            cols.append(("expected_base_nps_lift", "base NPS lift", True))
        cols += [("subscribers", "subscribers", True), ("revenue", "revenue at stake", True), ("cost_class", "cost class", False),
                 ("severity_rank", "severity rank", True), ("applied", "applied", False)]
        specs = {"rank": ",.0f", "expected_nps_lift": "+.1f", "expected_base_nps_lift": "+.2f", "subscribers": ",.0f",
                 "revenue": ",.0f", "severity_rank": ",.0f"}
        rows = []
        for f in fixes:
            cells = []
            for key, _, numeric in cols:
                v = f.get(key)
                if key == "applied":
                    cells.append(("yes" if v else "no", "good" if v else ""))
                elif key in ("action", "cause"):
                    cells.append((_esc(str(v or "").replace("_", " ")), ""))
                elif numeric:
                    cells.append((_esc(_fmt(v, specs.get(key, ",.1f"))), ""))
                else:
                    cells.append((_esc(v), "id" if key in ("fix_id", "target") else ""))
            rows.append(cells)
        table = _table("table-fixes", cols, rows)
    else:
        table = _empty("candidate fixes")
    rk = data.get("ranking") or {}
    ours, sev = rk.get("ours") or {}, rk.get("severity") or {}
    budget = rk.get("budget") or (f"{rk['k']} fixes" if rk.get("k") is not None else "the same budget")
    if _num(ours.get("expected")) is not None or _num(sev.get("expected")) is not None:
        cats = ["ranked by NPS lift x value", "ranked by severity"]
        fig = go.Figure()
        fig.add_trace(go.Bar(x=cats, y=[_num(ours.get("expected")), _num(sev.get("expected"))], name="expected gain", marker_color=BLUE,
                             text=[_fmt(ours.get("expected"), "+.2f"), _fmt(sev.get("expected"), "+.2f")], textposition="outside",
                             cliponaxis=False, hovertemplate="%{x}<br>expected %{y:+.2f} base NPS points<extra></extra>",
                             error_y=_model_error(ours, sev)))
        if _num(ours.get("true")) is not None or _num(sev.get("true")) is not None:
            fig.add_trace(go.Bar(x=cats, y=[_num(ours.get("true")), _num(sev.get("true"))], name="true gain (synthetic truth)",
                                 marker_color=GREY, text=[_fmt(ours.get("true"), "+.2f"), _fmt(sev.get("true"), "+.2f")],
                                 textposition="outside", cliponaxis=False,
                                 hovertemplate="%{x}<br>true %{y:+.2f} base NPS points<extra></extra>"))
        fig.update_layout(height=320, barmode="group", bargap=0.35, legend=dict(orientation="h", y=-0.15), margin=dict(l=60, r=30, t=30, b=40))
        fig.update_yaxes(title_text="base NPS points", rangemode="tozero")
        chart = _chart("chart-ranking", fig)
        line = (f"<p class=\"note\">With {_esc(budget)}, our ranking is expected to gain {_esc(_fmt(ours.get('expected'), '+.2f'))} "
                f"base NPS points against {_esc(_fmt(sev.get('expected'), '+.2f'))} for the worst-by-severity list.</p>")
        chart = line + chart
    else:
        chart = _chart("chart-ranking", None, _empty("ranking comparison"))
    return _section("sec-fixes", "Top fixes", explain, table + f"\n<h3>Same budget ({_esc(budget)}), two rankings</h3>\n" + chart)


def _forest(v: dict) -> go.Figure | None:
    rows = [(_label(str(e.get("metric", ""))), e, False) for e in v.get("effects") or [] if _num(e.get("estimate")) is not None]
    p = v.get("placebo") or {}
    if _num(p.get("estimate")) is not None:
        rows.append((f"placebo: {_label(str(p.get('metric', 'nps')))}", p, True))
    if not rows:
        return None
    fig = make_subplots(rows=len(rows), cols=1, vertical_spacing=min(0.5 / len(rows), 0.08))
    for i, (label, e, placebo) in enumerate(rows, start=1):
        est, lo, hi = _num(e["estimate"]), _num(e.get("ci_low")), _num(e.get("ci_high"))
        lo = est if lo is None else lo
        hi = est if hi is None else hi
        significant = lo > 0 or hi < 0
        color = ORANGE if placebo else (BLUE if significant else GREY)
        fig.add_trace(go.Scatter(
            x=[est], y=[label], mode="markers+text", text=[f"{_short(est, True)}  [{_short(lo)}, {_short(hi)}]"], textposition="top center",
            marker=dict(color=color, size=11, symbol="diamond" if placebo else "square"),
            error_x=dict(type="data", symmetric=False, array=[hi - est], arrayminus=[est - lo], color=color, thickness=2.5, width=6),
            hovertemplate=f"{_esc(label)}<br>estimate {_short(est, True)}<br>95% CI {_short(lo)} to {_short(hi)}<extra></extra>", showlegend=False),
            row=i, col=1)
        left, right = min(lo, 0.0), max(hi, 0.0)
        pad = 0.15 * ((right - left) or 1.0)
        fig.update_xaxes(range=[left - pad, right + pad], zeroline=True, zerolinewidth=2, zerolinecolor="#5b6875", row=i, col=1)
    fig.update_layout(height=90 * len(rows) + 50, margin=dict(l=60, r=30, t=20, b=30))
    return fig


def _event_study(v: dict) -> go.Figure | None:
    """The NPS difference treated - controls on each day around the fix, against the days before it."""
    rows = [r for r in v.get("event_study") or [] if _num(r.get("estimate")) is not None]
    if not rows:
        return None
    x = [r["day"] for r in rows]
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=x + x[::-1], y=[r["ci_high"] for r in rows] + [r["ci_low"] for r in rows][::-1], fill="toself",
                             fillcolor="rgba(31,119,180,0.15)", line=dict(width=0), hoverinfo="skip", showlegend=False))
    fig.add_trace(go.Scatter(x=x, y=[r["estimate"] for r in rows], mode="lines+markers", line=dict(color=BLUE), showlegend=False,
                             hovertemplate="day %{x:+d}<br>NPS difference %{y:+.1f}<extra></extra>"))
    fig.add_vline(x=-0.5, line=dict(color="#5b6875", dash="dash"), annotation_text="fix", annotation_position="top")
    fig.add_hline(y=0, line=dict(color="#5b6875", width=1))
    fig.update_layout(height=260, margin=dict(l=60, r=30, t=40, b=40), title=dict(text="event study", font=dict(size=13)))
    fig.update_xaxes(title_text="days from the fix")
    fig.update_yaxes(title_text="NPS, treated - controls")
    return fig


def _verification(data: dict) -> str:
    ver = data.get("verification") or []
    explain = ("Difference-in-differences per applied fix: change of the treated subscribers after the fix minus that of controls "
               "matched on their usage and ARPU before it, with 95 % intervals (blue: clears zero; the NPS interval includes the model's "
               "error); the placebo repeats the test inside the week before the fix and should straddle zero. The event study "
               "shows the NPS difference day by day around the fix.")
    if not ver:
        return _section("sec-verification", "Verification", explain, _chart("chart-verification", None, _empty("verified fixes")))
    fixes = {str(f.get("fix_id")): f for f in data.get("fixes") or []}
    parts = []
    for n, v in enumerate(ver):
        fid = str(v.get("fix_id", f"fix {n + 1}"))
        fx = fixes.get(fid, {})
        what = " ".join(str(x).replace("_", " ") for x in (fx.get("action"), "on " + str(fx["target"]) if fx.get("target") else None) if x)
        head = f"<h3>{_esc(fid)}{(' &middot; ' + _esc(what)) if what else ''}</h3>"
        counts = (f'<p class="note">{_esc(_fmt(v.get("subscribers"), ",.0f"))} treated subscribers, '
                  f'{_esc(_fmt(v.get("controls"), ",.0f"))} controls.</p>')
        fig = _forest(v)
        chart = _empty("effect estimates") if fig is None else _plot(fig, f"chart-verification-{n}")
        study = _event_study(v)
        if study is not None:
            chart += "\n" + _plot(study, f"chart-event-study-{n}")
        if v.get("verdict"):
            said = "; ".join(str(w) for w in v.get("warnings") or []) or "no pre-trend seen"
            counts += f'<p class="note"><strong>{_esc(str(v["verdict"]))}</strong>: {_esc(said)}.</p>'
        nps = next((e for e in v.get("effects") or [] if e.get("metric") == "nps"), {})
        realised = _fmt(nps.get("estimate"), "+.1f")
        if _num(nps.get("ci_low")) is not None and _num(nps.get("ci_high")) is not None:
            realised += f" [{_fmt(nps['ci_low'], '+.1f')}, {_fmt(nps['ci_high'], '+.1f')}]"
        cols = [("predicted", "predicted NPS lift", True), ("realised", "realised (DiD, 95 % CI)", True)]
        cells = [(_esc(_fmt(v.get("predicted_nps_lift"), "+.1f")), ""), (_esc(realised), "")]
        if _num(v.get("true_nps_lift")) is not None:
            cols.append(("true", "true lift (synthetic truth)", True))
            cells.append((_esc(_fmt(v["true_nps_lift"], "+.1f")), ""))
        if _num(v.get("true_nps_lift_treated")) is not None:  # the subscribers the DiD reads, its own estimand
            cols.append(("true_treated", "true lift of the treated", True))
            cells.append((_esc(_fmt(v["true_nps_lift_treated"], "+.1f")), ""))
        table = _table(f"table-verification-{n}", cols, [cells], compact=True)
        parts.append("\n".join([head, counts, chart, table]))
    body = '<div id="chart-verification" class="chart">\n' + "\n".join(parts) + "\n</div>"
    return _section("sec-verification", "Verification", explain, body)


def _deltas(data: dict) -> str:
    rows = data.get("deltas") or []
    explain = ("Change after the fixes (difference-in-differences) by segment and location; "
               "green is an improvement, red a deterioration (fewer complaints and less churn are improvements).")
    if not rows:
        return _section("sec-deltas", "Deltas by segment and location", explain, _empty("deltas"))
    keys = list(dict.fromkeys(k for r in rows for k in r))
    plain = [k for k in ("fix_id", "dimension", "group", "subscribers") if k in keys]  # shown as they are, not as changes
    metrics = [k for k in keys if k not in plain]
    cols = [(k, k.replace("_", " "), k == "subscribers") for k in plain] + [(k, "change in " + _label(k), True) for k in metrics]
    # one number format per column: two decimals for small changes, one otherwise
    spec = {k: "+,.2f" if max([abs(_num(r.get(k)) or 0.0) for r in rows]) < 10 else "+,.1f" for k in metrics}
    out = []
    for r in rows:
        cells = [(_esc(str(r.get(k, "")).replace("_", " ")), "") for k in plain]
        for k in metrics:
            v = _num(r.get(k))
            cls = ""
            if v is not None and v != 0 and k in METRIC_DIRECTION:
                cls = "good" if v * METRIC_DIRECTION[k] > 0 else "bad"
            cells.append((_esc(_fmt(r.get(k), spec[k])), cls))
        out.append(cells)
    return _section("sec-deltas", "Deltas by segment and location", explain, _table("table-deltas", cols, out))


def _value_experience(data: dict) -> str:
    quads = [q for q in data.get("value_experience") or [] if q.get("value") is not None and q.get("experience") is not None]
    explain = "Subscribers split by value (revenue) and experience: colour is the quadrant's NPS, text its subscribers and revenue."
    if not quads:
        return _section("sec-value-experience", "Value x experience", explain, _chart("chart-value-experience", None, _empty("quadrants")))
    values = sorted({str(q["value"]) for q in quads}, key=lambda s: ({"low": 0, "high": 1}.get(s, 2), s))
    exps = sorted({str(q["experience"]) for q in quads}, key=lambda s: ({"poor": 0, "good": 1}.get(s, 2), s))
    cell = {(str(q["value"]), str(q["experience"])): q for q in quads}
    use_nps = any(_num(q.get("nps")) is not None for q in quads)
    z, text = [], []
    for val in values:
        zr, tr = [], []
        for ex in exps:
            q = cell.get((val, ex), {})
            zr.append(_num(q.get("nps")) if use_nps else _num(q.get("subscribers")))
            bits = [f"<b>{_fmt(q.get('subscribers'), ',.0f')}</b> subscribers"] if q else ["none"]
            if _num(q.get("revenue")) is not None:
                bits.append(f"revenue {_fmt(q['revenue'], ',.0f')}")
            if _num(q.get("nps")) is not None:
                bits.append(f"NPS {_fmt(q['nps'], '+.1f')}")
            tr.append("<br>".join(bits))
        z.append(zr)
        text.append(tr)
    known = [v for r in z for v in r if v is not None]
    span = max([abs(v) for v in known] + [1.0])
    heat = go.Heatmap(z=z, x=[f"{e} experience" for e in exps], y=[f"{v} value" for v in values], text=text, texttemplate="%{text}",
                      textfont=dict(size=14), hovertemplate="%{y}, %{x}<br>%{text}<extra></extra>", xgap=4, ygap=4,
                      colorscale="RdYlGn" if use_nps else "Blues", zmid=0 if use_nps else None,
                      zmin=-span if use_nps else None, zmax=span if use_nps else None,
                      colorbar=dict(title=dict(text="NPS" if use_nps else "subscribers")))
    fig = go.Figure(heat)
    fig.update_layout(height=380, margin=dict(l=60, r=30, t=20, b=40))
    fig.update_xaxes(showgrid=False)
    fig.update_yaxes(showgrid=False)
    note = ""
    hp = cell.get(("high", "poor"))
    total_rev = sum(_num(q.get("revenue")) or 0.0 for q in quads)
    if hp and _num(hp.get("revenue")) is not None and total_rev > 0:
        note = (f'<p class="note">High value, poor experience: {_esc(_fmt(hp.get("subscribers"), ",.0f"))} subscribers carrying '
                f'{hp["revenue"] / total_rev:.0%} of the revenue: the first to protect.</p>')
    return _section("sec-value-experience", "Value x experience", explain, note + _chart("chart-value-experience", fig))


def _care(data: dict) -> str:
    rows = data.get("care") or []
    explain = "Subscribers to contact first (likely detractors with a network cause, highest value first), with the reason in plain words."
    if not rows:
        return _section("sec-care", "Proactive care list", explain, _empty("proactive care list"))
    preferred = ["subscriber_id", "segment", "nps_class", "cause", "reason"]
    keys = list(dict.fromkeys(k for r in rows[:CARE_ROWS] for k in r))
    keys = [k for k in preferred if k in keys] + [k for k in keys if k not in preferred]
    shown = rows[:CARE_ROWS]
    # numeric: real numbers only (an id made of digits stays text)
    numeric = {k: any(r.get(k) is not None for r in shown)
               and all(isinstance(r[k], (int, float)) and not isinstance(r[k], bool) for r in shown if r.get(k) is not None) for k in keys}
    spec = {k: ",.0f" if all(float(_num(r.get(k)) or 0).is_integer() for r in shown) else ",.2f" for k in keys if numeric[k]}
    cols = [(k, k.replace("_", " "), numeric[k]) for k in keys]
    out = []
    for r in shown:
        cells = []
        for k in keys:
            v = r.get(k)
            if numeric[k]:
                text = _fmt(v, spec[k])
            else:
                text = str(v if v is not None else "").replace("_", " ") if k in ("cause", "nps_class") else v
            cls = "bad" if k == "nps_class" and v == "detractor" else ("id" if k == "subscriber_id" else "")
            cells.append((_esc(text), cls))
        out.append(cells)
    note = f'<p class="note">First {min(CARE_ROWS, len(rows))} of {len(rows):,} subscribers.</p>'
    return _section("sec-care", "Proactive care list", explain, note + _table("table-care", cols, out))


def _campaigns(data: dict) -> str:
    rows = data.get("campaigns") or []
    explain = ("Who to contact and what it is expected to bring; every uplift rests on the stated assumption. "
               "Marketing lists leave out everyone without marketing consent.")
    if not rows:
        return _section("sec-campaigns", "Campaign lists", explain, _empty("campaign lists"))
    cols = [("list", "list", False), ("subscribers", "subscribers", True), ("left_out", "left out (no consent)", True),
            ("uplift", "expected uplift", True), ("assumption", "assumption", False)]
    out = [[(_esc(str(r["list"]).replace("_", " ")), ""), (_fmt(r.get("subscribers"), ",.0f"), ""),
            (_fmt(r.get("left_out_without_consent"), ",.0f") if r.get("marketing") else "service", ""),
            (f"{_fmt(r.get('expected_uplift'), ',.2f')} {_esc(r.get('uplift_unit') or '')}", ""), (_esc(r.get("assumption") or ""), "")]
           for r in rows]
    return _section("sec-campaigns", "Campaign lists", explain, _table("table-campaigns", cols, out, compact=True))

"""Root cause of an episode from the network conditions that moved inside it.

For every episode the evidence compares the episode's grid-hours with the same grids at the same
hours of day on the other days (their baseline): radio (RSRP / SINR), the serving cells' PRB load and
UL interference (PM), session RTT and failures (xDR), serving cells that went silent (carried
sessions in the baseline, none in the episode) and the transport links of the cells whose RTT rose.
Beside its own past, each episode is compared with peers, which is all a fault older than the window
has: UL interference against the band's other cells, RTT against the network's at the same hours,
the share of its sessions (and of its poor ones) on hot cells. A link, like every cause, explains an
episode only as far as its cells carry the episode's sessions.
Each cause gets a score (its evidence over the level where an engineer would call it); the largest
score wins, the confidence is its share of all positive scores, and below 1 the episode is non-network.
"""

from __future__ import annotations

import math

import h3
import numpy as np
import pyarrow as pa

from ..engine import Engine
from ..engine.pipeline import sql_file
from ..vocabulary import CAUSES, NON_NETWORK

# evidence level that scores 1 for each cause (chosen: the size of change a radio engineer would act on)
COVERAGE_SILENT_SHARE = 0.25  # share of the baseline's sessions whose serving cells went silent
COVERAGE_RSRP_DB = -6.0
INTERFERENCE_UL_DB = 4.0  # rise of the serving cells' UL interference-plus-noise
INTERFERENCE_SINR_DB = -4.0
INTERFERENCE_PEER_DB = 6.0  # UL interference above the median cell of the same band in the same hour
INTERFERENCE_SHARE = 0.2  # share of the episode's sessions on cells that far above their band's
CONGESTION_PRB = 0.15  # rise of the serving cells' PRB utilisation, with the cells above 80 %
CONGESTION_HOT_SHARE = 0.3  # share of the episode's sessions on hot cells
CONGESTION_HOT_POOR = 0.5  # share of the episode's poor sessions on hot cells
PM_UNITS_SHARE = 0.5  # share of an episode's grid-hours placed by one PM signal that names its cause by itself
HOT_PRB = 0.85  # a cell's DL PRB utilisation at or above this is hot (congested) in that period
TRANSPORT_LOG_RTT = 0.4  # rise of mean ln(RTT) (x1.5)
TRANSPORT_FULL_SHARE = 0.4  # share of the episode's sessions the link's cells must carry to explain it fully
CORE_FAIL = 0.04  # rise of the failed-session share
CORE_MIN_SITES = 8  # sites the failures must span to score fully
AROUND_M = 1000  # the grids around an episode whose failures say it sits in a wider one


def evidence(engine: Engine) -> pa.Table:
    """Per episode the condition changes; reads tables ``sess_cell_hour``, ``mr``, ``cells``, ``cell_down``,
    ``cell_hour_pm``, ``cell_events`` and ``ep_units`` (episode_id, grid, hour, signal, site_id)."""
    ev = engine.query_arrow(sql_file("opencem.twin", "episode_evidence"), {"link_full_share": TRANSPORT_FULL_SHARE,
                            "interference_db": INTERFERENCE_PEER_DB}, step="episode_evidence")
    engine.register_arrow("ep_ring", _rings(engine.query_arrow("SELECT DISTINCT episode_id, grid FROM ep_units", step="ep_grids")))
    around = engine.query_arrow(sql_file("opencem.twin", "episode_fail_around"), step="episode_fail_around")
    engine.drop("ep_ring")
    d = dict(zip(around["episode_id"].to_pylist(), around["d_fail_around"].to_pylist()))
    return ev.append_column("d_fail_around", pa.array([d.get(e) for e in ev["episode_id"].to_pylist()], pa.float64()))


def _rings(grids: pa.Table) -> pa.Table:
    """(episode_id, grid): the grids within AROUND_M of each episode's grids, its own left out."""
    own: dict[str, set[str]] = {}
    for e, g in zip(grids["episode_id"].to_pylist(), grids["grid"].to_pylist()):
        own.setdefault(e, set()).add(g)
    rows_e, rows_g = [], []
    for e in sorted(own):
        res = h3.get_resolution(next(iter(own[e])))
        k = max(1, round(AROUND_M / (math.sqrt(3) * h3.average_hexagon_edge_length(res, unit="m"))))
        ring = set().union(*(h3.grid_disk(g, k) for g in own[e])) - own[e]
        rows_e += [e] * len(ring)
        rows_g += sorted(ring)
    return pa.table({"episode_id": pa.array(rows_e, pa.string()), "grid": pa.array(rows_g, pa.string())})


def _col(t: pa.Table, name: str) -> np.ndarray:
    return np.nan_to_num(t[name].to_numpy(zero_copy_only=False).astype(float), nan=0.0)


def cause_scores(ev: pa.Table) -> np.ndarray:
    """(episodes, 5) scores for coverage, interference, congestion, transport, core_dns."""
    d_rsrp, d_sinr, d_ul = _col(ev, "d_rsrp"), _col(ev, "d_sinr"), _col(ev, "d_ul_interf")
    # a cell that went silent: no sessions on it, or down as its PM shows it (no PM, or no traffic in its usual hours)
    down = _col(ev, "pm_down_share")
    # silence says something only where the episode has sessions at all: one PM saw in hours without a session is
    # silent everywhere
    silent = np.where(_col(ev, "sessions") > 0, _col(ev, "silent_share"), 0.0)
    coverage = np.maximum(np.maximum(silent, down) / COVERAGE_SILENT_SHARE, d_rsrp / COVERAGE_RSRP_DB)
    # An episode that PM or the xDR placed (cell_events: cells interfered, or hot or slow at those hours on most days)
    # is that, as an engineer reads the counters, unless another cause is stronger: the *_units_share terms.
    # interference lowers SINR without lowering RSRP and shows on the cells' UL noise, against their own usual or
    # against their band's other cells (an interferer older than the window has no "before")
    interference = np.maximum.reduce([d_ul / INTERFERENCE_UL_DB, _col(ev, "ul_vs_band_in") / INTERFERENCE_PEER_DB,
                                      _col(ev, "interfered_share_in") / INTERFERENCE_SHARE, _col(ev, "interfered_units_share") / PM_UNITS_SHARE,
                                      np.where(d_rsrp > -3, d_sinr / INTERFERENCE_SINR_DB, 0)])
    hot = _col(ev, "hot_share_in")
    # a cell saturated all along has no "before": its share of sessions on cells above 85 % PRB counts too
    congestion = np.maximum.reduce([np.where(_col(ev, "prb_in") >= 0.8, _col(ev, "d_prb") / CONGESTION_PRB, 0.0), hot / CONGESTION_HOT_SHARE,
                                    _col(ev, "hot_poor_share_in") / CONGESTION_HOT_POOR, _col(ev, "hot_units_share") / PM_UNITS_SHARE])
    # likewise a link degraded all along: its cells' RTT against the network's at the same hours, when
    # radio and load cannot explain it
    radio_ok = (d_sinr > -2) & (hot < 0.2)
    # A link explains an episode as far as its cells carry the episode's sessions: a degraded link at the edge of a
    # city-wide DNS failure does not make the failure transport.
    transport = np.maximum.reduce([_col(ev, "d_log_rtt"), _col(ev, "link_d_log_rtt"),
                                   np.where(radio_ok, _col(ev, "link_log_rtt_vs_net"), 0)]) / TRANSPORT_LOG_RTT \
        * np.minimum(1.0, _col(ev, "link_share_in") / TRANSPORT_FULL_SHARE)
    transport = np.maximum(transport, _col(ev, "slow_units_share") / PM_UNITS_SHARE)
    # a core / DNS failure is wide: failures on a handful of cells are a radio or cell problem
    wide = np.minimum(1.0, _col(ev, "sites_in") / CORE_MIN_SITES)
    core = _col(ev, "d_fail") / CORE_FAIL * wide
    # An episode inside a wider failure (a DNS failure over part of the city) shows its failures too. Where it
    # has a signal of its own (a link, a radio change, a hot cell), only the failures beyond those around it count
    # for core / DNS: a backhaul fault or an interferer during a DNS failure is named for itself.
    own = np.stack([coverage, interference, congestion, transport], axis=1).max(1) >= 1
    beyond = np.maximum(_col(ev, "d_fail") - _col(ev, "d_fail_around"), 0.0) / CORE_FAIL * wide
    core = np.where(own, np.minimum(core, beyond), core)
    sc = np.stack([coverage, interference, congestion, transport, core], axis=1)
    # cells down as their PM shows it are decisive for coverage, whatever their users' sessions on far cells show
    # (their RTT and failures rise too). A cut backhaul silences a site the same way; telling the two apart needs
    # the link's other sites, not read yet.
    # An episode placed mostly by cells down is too, when the grids around them (its fringe) dilute their traffic share.
    decisive = (down >= COVERAGE_SILENT_SHARE) | (_col(ev, "down_units_share") >= PM_UNITS_SHARE)
    sc[decisive, 0] = np.maximum(sc[decisive, 0], sc[decisive, 1:].max(1) + 1)
    return sc


def attribute(ev: pa.Table) -> tuple[list[str], np.ndarray, list[list[str]], list[str]]:
    """Cause, confidence, responsible cells and a sentence of evidence per episode."""
    sc = cause_scores(ev)
    best = sc.argmax(1)
    top = sc[np.arange(len(sc)), best]
    pos = np.clip(sc, 0, None).sum(1)
    conf = np.where(top >= 1, top / np.maximum(pos, 1e-9), 0.0)
    rows = ev.to_pylist()
    causes, cells, words = [], [], []
    for r, b, t in zip(rows, best, top):
        cause = CAUSES[b] if t >= 1 else NON_NETWORK
        causes.append(cause)
        cells.append(_cells(r, cause))
        words.append(_words(r, cause))
    return causes, np.round(np.where(np.array(causes) == NON_NETWORK, 1 - np.clip(top, 0, 1) * 0.5, conf), 3), cells, words


def _cells(r: dict, cause: str) -> list[str]:
    pick = {"coverage": r["pm_down_cells"] or r["silent_cells"], "interference": r["interfered_cells"], "congestion": r["hot_cells"],
            "transport": r["link_cells"]}.get(cause)
    return list(pick or r["pm_cells"] or r["serving_cells"] or [])[:12]


def _f(v, fmt: str) -> str:
    return "n/a" if v is None else format(v, fmt)


PM_SEEN = {  # what a PM signal shows, for an episode in hours without a session (area_episodes.sql keeps these alone)
    "link_thp": "DL per-user throughput down on every cell of transport link {link} at its usual load",
    "ul_interference": f"UL interference {INTERFERENCE_PEER_DB:.0f} dB or more over their band's other cells",
    "cell_down": "cells down (no PM, or no traffic in their usual hours)", "prb_surge": "PRB load surging far above its usual"}


def _words(r: dict, cause: str) -> str:
    if not r["sessions"] and r["pm_cells"]:  # PM placed it in hours the xDR has no session of
        return (f"seen in PM only, no session in its hours: {PM_SEEN.get(r['pm_signal'], r['pm_signal']).format(link=r['pm_link'])} "
                f"({', '.join(r['pm_cells'][:3])}{', ...' if len(r['pm_cells']) > 3 else ''})")
    return {
        "coverage": (f"{'no PM' if r['pm_missing'] else 'no traffic in their usual hours'} from "
                     f"{', '.join(r['pm_down_cells'][:3])}, which carry {_f(r['pm_down_share'], '.0%')} of the "
                     f"area's usual traffic; RSRP {_f(r['d_rsrp'], '+.1f')} dB" if r["pm_down_cells"] else
                     f"{_f(r['silent_share'], '.0%')} of the area's usual traffic lost its serving cells "
                     f"({', '.join((r['silent_cells'] or [])[:3]) or 'none silent'}); RSRP {_f(r['d_rsrp'], '+.1f')} dB"),
        "interference": f"UL interference {_f(r['d_ul_interf'], '+.1f')} dB on the serving cells ({_f(r['ul_vs_band_in'], '+.1f')} dB "
                        f"over their band's other cells), SINR {_f(r['d_sinr'], '+.1f')} dB with RSRP {_f(r['d_rsrp'], '+.1f')} dB",
        "congestion": f"serving cells at {_f(r['prb_in'], '.0%')} PRB load ({_f(r['d_prb'], '+.0%')} on usual, "
                      f"{_f(r['hot_share_in'], '.0%')} of sessions and {_f(r['hot_poor_share_in'], '.0%')} of poor ones on cells above "
                      f"{HOT_PRB:.0%}), throughput x{_f(np.exp(r['d_log_thp'] or 0), '.2f')}"
                      + (f"; {r['hot_units_share']:.0%} of its grid-hours on cells hot at that hour on most days" if r["hot_units_share"] else ""),
        "transport": f"RTT x{_f(np.exp(max(r['link_d_log_rtt'] or 0, r['link_log_rtt_vs_net'] or 0)), '.2f')} on the cells of "
                     f"transport link {r['link']} (against usual / the network), radio unchanged (SINR {_f(r['d_sinr'], '+.1f')} dB)",
        "core_dns": f"failed sessions {_f(r['d_fail'], '+.1%')} across the area with RTT x{_f(np.exp(r['d_log_rtt'] or 0), '.2f')}",
        NON_NETWORK: f"no network condition moved enough (poor sessions {_f(r['d_poor'], '+.1%')})",
    }[cause]

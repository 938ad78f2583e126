"""Behavioural clusters: k-means on each subscriber's service mix, time of day, data volume and mobility,
named in words from each cluster's centre against the base (e.g. "video-heavy evening commuters")."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sklearn.cluster import KMeans

from .common import DAY_PARTS, Behaviour

CLUSTERS = 6
SEED = 0
NO_SESSIONS = "no data sessions"
# a cluster is named after a service or part of the day whose share is this many times the base's
HEAVY_RATIO = 1.25
PART_RATIO = 1.15
Z_NOTABLE = 0.5  # a centre this many standard deviations from the base's mean names volume and mobility
COMMUTE_KM = 2.0  # mobility classes: weekday day place this far from the night place
ROAMING_KM = 3.0  # radius of gyration of the located reports beyond which a non-commuter is on the move


@dataclass
class Clusters:
    labels: np.ndarray  # cluster name per subscriber
    names: list[str]  # in the order of the clusters' sizes, largest first
    definitions: dict[str, str]


def features(b: Behaviour) -> tuple[np.ndarray, list[str]]:
    """The clustering features of the subscribers with sessions (rows of ``b`` where sessions > 0), unscaled."""
    active = b.sessions > 0
    n = b.sessions[active][:, None]
    svc = b.service_sessions[active] / n
    part = b.part_sessions[active] / np.maximum(b.part_sessions[active].sum(axis=1, keepdims=True), 1)

    def filled(v: np.ndarray) -> np.ndarray:
        v = v[active]
        med = np.nanmedian(v) if np.isfinite(v).any() else 0.0
        return np.where(np.isfinite(v), v, med)

    x = np.column_stack([svc, part, np.log1p(b.mb_per_day[active]), np.log1p(filled(b.home_work_km)),
                         np.log1p(filled(b.gyration_km)), filled(b.sites_per_day)])
    names = [f"service:{s}" for s in b.services] + [f"part:{p}" for p in DAY_PARTS] + [
        "log_mb_per_day", "log_home_work_km", "log_gyration_km", "sites_per_day"]
    return np.round(x, 6), names


def cluster(b: Behaviour, k: int = CLUSTERS, seed: int = SEED) -> Clusters:
    """K-means (fixed seed) on standardised features; subscribers without sessions form their own group."""
    active = b.sessions > 0
    x, names = features(b)
    labels = np.full(len(b.ids), NO_SESSIONS, dtype=object)
    if len(x) == 0:
        return Clusters(labels, [NO_SESSIONS], {NO_SESSIONS: "no xDR session in the window"})
    mu, sd = x.mean(axis=0), x.std(axis=0)
    z = (x - mu) / np.where(sd > 0, sd, 1.0)
    k = max(1, min(k, len(np.unique(z, axis=0))))
    km = KMeans(n_clusters=k, n_init=10, random_state=seed).fit(z)
    sizes = np.bincount(km.labels_, minlength=k)
    order = np.lexsort((np.arange(k), -sizes))  # largest first
    centre_z = km.cluster_centers_
    words, defs = [], []
    for c in order:
        members = km.labels_ == c
        words.append(_name(x[members].mean(axis=0), mu, centre_z[c], names))
        defs.append(_definition(x[members], x, names))
    seen: dict[str, int] = {}
    final = []
    for w in words:
        seen[w] = seen.get(w, 0) + 1
        final.append(w if seen[w] == 1 else f"{w} ({seen[w]})")
    name_of = np.empty(k, dtype=object)
    name_of[order] = final
    labels[active] = name_of[km.labels_]
    definitions = dict(zip(final, defs))
    if (~active).any():
        final.append(NO_SESSIONS)
        definitions[NO_SESSIONS] = "no xDR session in the window"
    return Clusters(labels, final, definitions)


def _name(centre: np.ndarray, base: np.ndarray, z: np.ndarray, names: list[str]) -> str:
    """Words for a cluster from its centre (raw units) against the base mean, and its standardised centre."""
    idx = {n: i for i, n in enumerate(names)}
    svc = [n for n in names if n.startswith("service:")]
    parts = [n for n in names if n.startswith("part:")]
    words = []
    if svc:
        ratio = {n: centre[idx[n]] / base[idx[n]] if base[idx[n]] > 0 else 0.0 for n in svc}
        top = max(svc, key=lambda n: (ratio[n], n))
        words.append(f"{top[8:].replace('_', ' ')}-heavy" if ratio[top] >= HEAVY_RATIO else "mixed-use")
    ratio = {n: centre[idx[n]] / base[idx[n]] if base[idx[n]] > 0 else 0.0 for n in parts}
    top = max(parts, key=lambda n: (ratio[n], n))
    words.append(top[5:] if ratio[top] >= PART_RATIO else "all-day")
    vol = z[idx["log_mb_per_day"]]
    if vol >= Z_NOTABLE:
        words.append("high-volume")
    elif vol <= -Z_NOTABLE:
        words.append("light")
    if z[idx["log_home_work_km"]] >= Z_NOTABLE:
        words.append("commuters")
    elif z[idx["log_gyration_km"]] >= Z_NOTABLE or z[idx["sites_per_day"]] >= Z_NOTABLE:
        words.append("users on the move")
    elif z[idx["log_gyration_km"]] <= -Z_NOTABLE:
        words.append("stay-local users")
    else:
        words.append("users")
    return " ".join(words)


def _definition(xc: np.ndarray, x: np.ndarray, names: list[str]) -> str:
    """The centre in units, against the base: the two services and parts of the day most over the base's
    share, volume, mobility."""
    idx = {n: i for i, n in enumerate(names)}
    mc, mb = xc.mean(axis=0), x.mean(axis=0)
    out = []
    for prefix in ("service:", "part:"):
        cols = sorted((n for n in names if n.startswith(prefix)),
                      key=lambda n: (-(mc[idx[n]] / mb[idx[n]] if mb[idx[n]] > 0 else 0.0), n))[:2]
        out += [f"{n[len(prefix):]} {100 * mc[idx[n]]:.0f} % (base {100 * mb[idx[n]]:.0f} %)" for n in cols]
    med = np.median
    out.append(f"{med(np.expm1(xc[:, idx['log_mb_per_day']])):.0f} MB/day (base {med(np.expm1(x[:, idx['log_mb_per_day']])):.0f})")
    out.append(f"night-day places {med(np.expm1(xc[:, idx['log_home_work_km']])):.1f} km "
               f"(base {med(np.expm1(x[:, idx['log_home_work_km']])):.1f})")
    out.append(f"gyration {med(np.expm1(xc[:, idx['log_gyration_km']])):.1f} km (base {med(np.expm1(x[:, idx['log_gyration_km']])):.1f})")
    return "; ".join(out) + " (shares of sessions; medians)"


def mobility_class(b: Behaviour) -> np.ndarray:
    """home-based / commuter / on the move / unknown, by the thresholds above."""
    hw, gy = b.home_work_km, b.gyration_km
    out = np.full(len(b.ids), "home-based", dtype=object)
    out[np.isfinite(gy) & (gy >= ROAMING_KM)] = "on the move"
    out[np.isfinite(hw) & (hw >= COMMUTE_KM)] = "commuter"
    out[~np.isfinite(hw) & ~np.isfinite(gy)] = "unknown"
    return out

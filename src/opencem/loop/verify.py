"""Verify executed fixes: the change of the subscribers a fix touched against matched controls.

Treated: subscribers with at least MIN_SESSIONS sessions on the fix's cells (or with its device model)
in the PRE_DAYS before the fix, and not in reach of another fix of the period (no session on its cells
then, not its handset model: their change would carry part of that fix's effect). Controls: subscribers
out of reach of every fix of the period (no session on a cell of the same sites or transport links as any
fix's cells, no handset of a fixed model), CONTROLS nearest to each treated subscriber on their usage
(sessions in the pre window) and ARPU, standardised. Not on their experience or NPS before the fix: the
treated are poor then because of the fault, which would go on without the fix, while controls picked for
being as poor then are mostly poor by chance and recover on their own. Matching on it read that recovery
as the counterfactual (regression to the mean; Daw and Hatfield, 2018): device campaigns at half their
truth, and placebos that drifted (docs/loop.md, "The loop in stop 52").

The NPS is the model's estimate of each subscriber on every day: a window's NPS is the mean over its
days, so the estimate is the fix's mean effect over the days after it, as the customers lived them.
Per metric, each treated subscriber's after - before change minus their controls' mean change is one
difference-in-differences, both changes first adjusted by a linear fit of the change on the matching
covariates over the controls (what the match left unbalanced); the estimate is their mean. Its 95 %
interval holds the spread across the treated, clustered by their main cell (who share a cell share its
shocks); the group-level error: how far groups of controls like the treated (the users of one place, or
of one handset model) drift from their own matched controls with no fix at all; and, for the NPS, the
model's error: the same estimate with each of the model's bootstrap replicas.

Around it: an event study (the same difference on every day from 2 x PRE_DAYS before the fix to the
end: a fault's onset shows there), and a placebo that runs the whole design, matching included, inside
the pre window as if the fix had been made half of it earlier. A placebo interval that excludes 0 says the
groups were drifting apart just before the fix, so part of the estimate may be that drift. An experience
that got worse after the fix, or an NPS that moved without the experience, says something else moved it.
"""

from __future__ import annotations

import datetime as dt
import math
from pathlib import Path

import numpy as np
import pyarrow as pa
from sklearn.neighbors import NearestNeighbors

from ..engine import Engine
from ..engine.base import quote_ident
from ..engine.pipeline import sql_file
from ..errors import InputError
from ..indicators.tree import load_tree, poor_session_sql
from ..nps.features import build_features, feature_list
from ..nps.model import NpsModel, critical_value
from ..twin.whatif import scope_sql
from ..workspace import Workspace

MIN_SESSIONS = 3
CONTROLS = 5
PRE_DAYS = 7  # the baseline before a fix; the placebo splits it in two
POST_DAYS = 28  # after a fix: long enough for the NPS to settle; shortened to the days the data has
MIN_TREATED = 30  # fewer treated subscribers and a verdict is called unsafe
METRICS = ("nps", "cei", "poor_share", "throughput_kbps", "rtt_ms", "dou_mb", "complaints", "churned", "revenue_eur")
# how much they use the network and what they pay; not their experience or NPS before the fix (see the module's docstring)
MATCH_ON = ("log_sessions", "arpu_monthly")
Z95 = 1.959964
MIN_FIT_ROWS = 10  # controls per coefficient the bias correction needs
PLACEBO_GROUPS = 40  # groups of controls verified as if they had been fixed: the group-level error
MIN_GROUP = 20  # treated subscribers a segment or area needs before its deltas are shown


def verify(workspace: Path, fixes: list[dict], days: int = POST_DAYS, model: NpsModel | None = None) -> list[dict]:
    """``fixes``: each with fix_id, cells, device_model, fix_date (the first day it was in place),
    optionally expected_nps_lift. Fixes verified together keep each other's subscribers out of their
    controls. Returns per fix the treated subscribers, the effects, the event study, the placebo, the
    verdict and the deltas by segment and location; a fix that cannot be verified gets ``not_verified``
    with the reason instead."""
    ws = Workspace(workspace)
    model = model or NpsModel.load(ws.model("nps"))
    with ws.session() as engine:
        first, last = engine.query_row(sql_file("opencem.loop", "session_days"), step="session_days")
        designs = {}
        for f in fixes:
            try:
                designs[f["fix_id"]] = _design(engine, f, fixes, first, last, days)
            except InputError as e:  # reported with the others, not hidden
                designs[f["fix_id"]] = str(e)
        ready = [d for d in designs.values() if isinstance(d, dict)]
        panel = _NpsPanel(engine, model, ready) if ready else None
        return [_verify_one(engine, panel, d) if isinstance(d, dict) else {"fix_id": i, "not_verified": d}
                for i, d in designs.items()]


def _reach(fixes: list[dict]) -> tuple[list[str], list[str]]:
    """The cells and the handset models the fixes touch."""
    return (sorted({c for f in fixes if not f.get("device_model") for c in (f.get("cells") or [])}),
            sorted({f["device_model"] for f in fixes if f.get("device_model")}))


def _design(engine: Engine, fix: dict, fixes: list[dict], first: dt.date, last: dt.date, days: int) -> dict:
    """The fix's windows and subjects: treated, and possible controls out of reach of every fix of ``fixes``."""
    day = dt.date.fromisoformat(str(fix["fix_date"]))
    w = min(PRE_DAYS, (day - first).days // 2)  # the placebo needs two pre windows
    n = min(days, (last - day).days + 1)
    if w < 2 or n < 1:
        raise InputError(f"fix {fix['fix_id']} on {day}: need {2 * PRE_DAYS} days before it and 1 after in {first} .. {last}")
    scope, scope_params = scope_sql(list(fix.get("cells") or []), fix.get("device_model"))
    others = [f for f in fixes if f["fix_id"] != fix["fix_id"]]
    # a cell this fix shares with another is that fix's scope too: who uses it carries both effects
    own_cells = set(fix.get("cells") or []) if not fix.get("device_model") else set()
    for o in others:
        if own_cells and not o.get("device_model") and own_cells <= set(o.get("cells") or []):
            raise InputError(f"fix {fix['fix_id']}: every cell of it is also in the scope of fix {o['fix_id']}, "
                             "so the two effects cannot be told apart")
    (near_cells, near_models), (other_cells, other_models) = _reach(fixes), _reach(others)
    params = {"start": day - dt.timedelta(days=w), "end": day, "near_start": day - dt.timedelta(days=2 * w),
              "post_end": day + dt.timedelta(days=n), "min_sessions": MIN_SESSIONS, "near_cells": near_cells,
              "near_models": near_models, "other_cells": other_cells, "other_models": other_models, **scope_params}
    t = engine.query_arrow(sql_file("opencem.loop", "fix_subjects").format(scope=scope), params, step="fix_subjects")
    treated = t["treated"].to_numpy(zero_copy_only=False)
    if treated.sum() < 10 or (~treated).sum() < CONTROLS:
        raise InputError(f"fix {fix['fix_id']}: too few subscribers to verify: {int(treated.sum())} treated, "
                         f"{int((~treated).sum())} possible controls")
    cell = np.array(t["main_cell"].to_pylist(), dtype=object).astype(str)
    if fix.get("device_model"):
        groups = _placebo_groups(treated, cell, model=np.array(t["device_model"].to_pylist(), dtype=object).astype(str))
    else:
        lat, lon = (t[c].to_numpy(zero_copy_only=False).astype(float) for c in ("main_lat", "main_lon"))
        groups = _placebo_groups(treated, cell, place=np.column_stack([lat, lon * np.cos(np.radians(lat))]))
    return {"fix": fix, "day": day, "pre_days": w, "post_days": n, "who": t.select(["subscriber_id"]), "treated": treated,
            "cell": cell, "groups": groups}


def _placebo_groups(treated: np.ndarray, cell: np.ndarray, model: np.ndarray | None = None,
                    place: np.ndarray | None = None) -> list[np.ndarray]:
    """Groups of controls like the treated, each verified as if it had been fixed (placebos in space; Abadie,
    Diamond and Hainmueller, 2010): for a device campaign the users of each other handset model, for a fix
    of cells the users of the main cells nearest to each of PLACEBO_GROUPS cells (``place``: each subject's
    main cell position), cell by cell until there are as many as the treated (at most a third of the
    controls). The treated share their cells, or their handset, and so their shocks: a failure over part of
    the city, a busy week. The spread of these groups' estimates says how far such a group drifts from its
    matched controls with no fix at all, which the treated's own spread does not show. Groups are made of
    whole cells and handset models, chosen in the order of their names, so that they do not depend on the
    order of the pseudonymous ids (a new pseudonymisation key)."""
    ctrl = np.flatnonzero(~treated)
    if model is not None:
        labels, counts = np.unique(model[ctrl], return_counts=True)
        big = [lab for n, lab in sorted(zip(-counts, labels)) if -n >= MIN_TREATED][:PLACEBO_GROUPS]
        return [ctrl[model[ctrl] == lab] for lab in big]
    size = min(int(treated.sum()), len(ctrl) // 3)
    if place is None or size < MIN_TREATED:
        return []
    cells, first, of = np.unique(cell[ctrl], return_index=True, return_inverse=True)
    users, at = np.bincount(of, minlength=len(cells)), place[ctrl][first]
    groups = []
    for c in np.random.default_rng(0).choice(len(cells), min(PLACEBO_GROUPS, len(cells)), replace=False):
        near = np.lexsort((cells, np.nansum((at - at[c]) ** 2, axis=1)))  # nearest first, ties by name
        take = near[:int(np.searchsorted(np.cumsum(users[near]), size)) + 1]
        groups.append(ctrl[np.isin(of, take)])
    return groups


class _NpsPanel:
    """The model's NPS (x100) of every subject of the designs on every day they need, once: the
    model's and each replica's, per (subscriber, day of experience)."""

    def __init__(self, engine: Engine, model: NpsModel, designs: list[dict]):
        self.start = min(d["day"] - dt.timedelta(days=2 * d["pre_days"]) for d in designs)
        end = max(d["day"] + dt.timedelta(days=d["post_days"]) for d in designs)
        ids = sorted({s for d in designs for s in d["who"]["subscriber_id"].to_pylist()})
        self.days = (end - self.start).days
        self.row = {s: i for i, s in enumerate(ids)}
        self.nps, self.replicas = self._estimate(engine, model, ids)

    def _estimate(self, engine: Engine, model: NpsModel, ids: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """(subscribers x days, replicas x subscribers x days) NPS; experience through day t is the estimate as of t + 1."""
        as_of = [self.start + dt.timedelta(days=k + 1) for k in range(self.days)]
        req = pa.table({"subscriber_id": pa.array(np.repeat(np.array(ids, dtype=object), self.days).tolist(), pa.string()),
                        "as_of": pa.array(as_of * len(ids), pa.date32())})
        feats = build_features(engine, req, feature_list(load_tree()))
        if not feats["subscriber_id"].equals(req["subscriber_id"]):  # the rows are reshaped by position below
            raise RuntimeError("features came back in another order than the requests")
        x = model.encoder.matrix(feats)
        p = model.proba(x)
        return ((100 * (p[:, 2] - p[:, 0])).reshape(len(ids), self.days),
                (100 * model.replica_nps(x)).reshape(len(model.replicas), len(ids), self.days))

    def of(self, who: pa.Table, start: dt.date, end: dt.date) -> tuple[np.ndarray, np.ndarray]:
        """(model, replicas) daily NPS of ``who`` over start <= day < end."""
        rows = np.array([self.row[s] for s in who["subscriber_id"].to_pylist()])
        a, b = (start - self.start).days, (end - self.start).days
        return self.nps[rows, a:b], self.replicas[:, rows, a:b]


def _verify_one(engine: Engine, panel: _NpsPanel, d: dict) -> dict:
    fix, day, w, n = d["fix"], d["day"], d["pre_days"], d["post_days"]
    real = _did(engine, panel, d, day, w, n)
    h = w // 2  # the placebo: the same design inside the pre window, as if the fix had been made h days early
    placebo = _did(engine, panel, d, day - dt.timedelta(days=h), w - h, h)
    unsafe, notes = [], []
    if real["subscribers"] < MIN_TREATED:
        unsafe.append(f"only {real['subscribers']} treated subscribers (fewer than {MIN_TREATED})")
    p = placebo["effects"][0]
    if not p["ci_low"] <= 0 <= p["ci_high"]:
        unsafe.append(f"the placebo {h} days earlier reads {p['estimate']:+.1f} NPS: the treated and their controls "
                      "were already drifting apart just before the fix, and part of the estimate may be that drift")
    disagrees = _experience_disagrees(real["effects"])
    if disagrees:
        unsafe.append(disagrees)
    nps = real["effects"][0]
    if nps["group_error_share"] > 0.5:  # the larger part of the interval's variance
        notes.append(f"groups of subscribers like the treated moved by {nps['group_error_sd']:.1f} NPS (one standard "
                     "deviation) in this period with no fix at all, a shock over part of the network: the interval is "
                     "wide for that, and a small effect cannot be told from it")
    if n < POST_DAYS:
        notes.append(f"{n} of {POST_DAYS} days after the fix: the NPS may not have settled")
    return {"fix_id": fix["fix_id"], "fix_date": str(day), "window_days": n, "pre_days": w,
            "subscribers": real["subscribers"], "treated_ids": real["treated_ids"].tolist(), "controls": real["controls"],
            "placebo_groups": len(d["groups"]), "effects": real["effects"],
            "event_study": _event_study(panel, d, real["match"], real["x"]), "placebo": p, "placebo_effects": placebo["effects"],
            "verdict": "unsafe" if unsafe else "safe", "warnings": unsafe + notes,
            "predicted_nps_lift": fix.get("expected_nps_lift"), "realised_nps_lift": real["effects"][0]["estimate"],
            "deltas": _deltas(engine, real)}


def _experience_disagrees(effects: list[dict]) -> str | None:
    """Why the NPS change may not be the fix's lift: the treated's experience (CEI) got worse after the fix,
    or the NPS moved (its interval excludes 0) while their experience did not clearly move the same way. A
    network fix reaches the NPS only through experience. On the synthetic operator: a crowd event at the
    fixed site two days after a fix that repaired nothing, and a city-wide failure over the treated's half
    of the city (docs/loop.md, "The loop in stop 52")."""
    nps, cei = (next(e for e in effects if e["metric"] == m) for m in ("nps", "cei"))
    ci = f"CEI {cei['estimate']:+.2f}, 95 % CI {cei['ci_low']:+.2f} to {cei['ci_high']:+.2f}"
    if cei["ci_high"] < 0:
        return f"the treated's experience got worse after the fix ({ci}): the fix did harm, or another fault hit them"
    if nps["ci_low"] <= 0 <= nps["ci_high"] or (nps["estimate"] > 0 and cei["ci_low"] > 0):
        return None
    return (f"the NPS moved {nps['estimate']:+.1f} but the treated's experience did not move with it ({ci}): "
            "something other than the fix moved it")


def _event_study(panel: _NpsPanel, d: dict, match: np.ndarray, x: np.ndarray) -> list[dict]:
    """The NPS difference on each day from 2 x pre_days before the fix to the end, against the pre
    window's mean, with the controls and adjustment of the estimate (day 0 is the fix's first day)."""
    day, w, treated = d["day"], d["pre_days"], d["treated"]
    y, _ = panel.of(d["who"], day - dt.timedelta(days=2 * w), day + dt.timedelta(days=d["post_days"]))
    base = y[:, w:2 * w].mean(1)
    out = []
    for k in range(y.shape[1]):
        e = _differences(y[:, k] - base, treated, match, x)
        mean, se = float(e.mean()), float(e.std(ddof=1) / np.sqrt(len(e)))
        out.append({"day": k - 2 * w, "estimate": round(mean, 3), "ci_low": round(mean - Z95 * se, 3), "ci_high": round(mean + Z95 * se, 3)})
    return out


def _did(engine: Engine, panel: _NpsPanel, d: dict, day: dt.date, w: int, n: int) -> dict:
    """Matched difference-in-differences of every metric, the fix taken as made on ``day``: the ``n``
    days from it against the ``w`` days before, on which the controls are matched."""
    who, treated = d["who"], d["treated"]
    pre, post = (day - dt.timedelta(days=w), day), (day, day + dt.timedelta(days=n))
    y, y_rep = panel.of(who, pre[0], post[1])
    a, b = _window(engine, who, *pre), _window(engine, who, *post)
    a["nps"], b["nps"] = y[:, :w].mean(1), y[:, w:].mean(1)
    x = _standardised(np.column_stack([a[c] for c in MATCH_ON]))
    match = _match(x, treated)
    ctrl = np.flatnonzero(~treated)
    placebos = [(g, _match(x[ctrl], g)) for g in (np.isin(ctrl, members) for members in d["groups"])]
    effects, per_sub = [], {}
    cells = d["cell"][treated]
    for m in METRICS:
        per_sub[m] = _differences(b[m] - a[m], treated, match, x)
        fin = np.isfinite(per_sub[m])
        ok = per_sub[m][fin]
        est = float(ok.mean())
        var, df = _mean_variance(ok, cells[fin])
        group = _group_error((b[m] - a[m])[ctrl], x[ctrl], d["cell"][ctrl], placebos)
        parts = [(var, df), group]
        if m == "nps" and len(y_rep) > 1:  # the model's error: the estimate again with each bootstrap replica
            reps = [np.nanmean(_differences(r[:, w:].mean(1) - r[:, :w].mean(1), treated, match, x)) for r in y_rep]
            parts.append((float(np.var(reps, ddof=1)), len(reps) - 1))
        total = sum(v for v, _ in parts)
        half = float(critical_value(parts)) * float(np.sqrt(total))
        effects.append({"metric": m, "estimate": round(est, 4), "ci_low": round(est - half, 4), "ci_high": round(est + half, 4),
                        "subscribers": int(len(ok)), "treated_before": round(float(np.nanmean(a[m][treated])), 4),
                        "treated_after": round(float(np.nanmean(b[m][treated])), 4),
                        "group_error_sd": round(float(np.sqrt(group[0])), 4),
                        "group_error_share": round(group[0] / total, 4) if total > 0 else 0.0})
    ids = np.array(who["subscriber_id"].to_pylist(), dtype=object)[treated]
    return {"subscribers": int(treated.sum()), "controls": int(len(np.unique(match))), "effects": effects,
            "match": match, "x": x, "treated_ids": ids, "per_subscriber": per_sub}


def _group_error(delta: np.ndarray, x: np.ndarray, cell: np.ndarray, placebos: list[tuple[np.ndarray, np.ndarray]]) -> tuple[float, float]:
    """The variance a group's shared shocks add to an estimate, and its degrees of freedom: over the controls
    (their change ``delta``, covariates ``x``, main ``cell``), each placebo group (a mask and its matched
    controls) gets the estimate of a fix; what these spread beyond their own sampling variance is the
    group-level error (none when fewer than 3 groups could be read)."""
    est, own = [], []
    for group, match in placebos:
        e = _differences(delta, group, match, x)
        ok = np.isfinite(e)
        if ok.sum() > 1:
            est.append(float(e[ok].mean()))
            own.append(_mean_variance(e[ok], cell[group][ok])[0])
    if len(est) < 3:
        return 0.0, math.inf
    return max(0.0, float(np.var(est, ddof=1) - np.mean(own))), len(est) - 1


def _adjusted(delta: np.ndarray, x: np.ndarray, treated: np.ndarray) -> np.ndarray:
    """Each subject's change less what the matching covariates ``x`` predict of it, by a linear fit on the
    controls (the bias-corrected matching estimator of Abadie and Imbens): a treated subscriber and their
    nearest controls still differ a little on usage and ARPU, and that gap would otherwise pass into the
    estimate as a drift (docs/loop.md, "Bias correction")."""
    design = np.column_stack([np.ones(len(x)), x])
    ctrl = np.flatnonzero(~treated & np.isfinite(delta))
    if len(ctrl) < MIN_FIT_ROWS * design.shape[1]:  # too few controls to fit the slopes on: no adjustment
        return delta
    beta = np.linalg.lstsq(design[ctrl], delta[ctrl], rcond=None)[0]
    return delta - design[:, 1:] @ beta[1:]


def _mean_variance(x: np.ndarray, cluster: np.ndarray) -> tuple[float, float]:
    """The variance of the mean of ``x`` and its degrees of freedom. Subscribers of one main cell share its
    shocks (a busy evening, a neighbour's outage, a fault of another kind), so the variance is the
    cluster-robust one over ``cluster``, never under the one that takes them as independent, on clusters - 1
    degrees of freedom (few cells, wide intervals)."""
    n = len(x)
    if n < 2:
        return float("nan"), math.inf
    independent = float(x.var(ddof=1) / n)
    _, g = np.unique(cluster.astype(str), return_inverse=True)
    k = int(g.max()) + 1
    if k < 2:  # one cell: its shock cannot be told from the fix's
        return independent, math.inf
    s = np.bincount(g, weights=x - x.mean())
    return max(independent, k / (k - 1) * float((s ** 2).sum()) / n ** 2), k - 1


def _standardised(x: np.ndarray) -> np.ndarray:
    """Each column less its mean over its standard deviation, missing values at the column's median."""
    x = np.where(np.isfinite(x), x, np.nanmedian(x, axis=0))
    return (x - x.mean(0)) / np.where(x.std(0) > 0, x.std(0), 1)


def _match(x: np.ndarray, treated: np.ndarray) -> np.ndarray:
    """The CONTROLS nearest untreated subjects of each treated one on standardised ``x``: (treated, CONTROLS) indices."""
    ctrl = np.flatnonzero(~treated)
    nn = NearestNeighbors(n_neighbors=CONTROLS).fit(x[ctrl])
    return ctrl[nn.kneighbors(x[treated], return_distance=False)]


def _differences(delta: np.ndarray, treated: np.ndarray, match: np.ndarray, x: np.ndarray | None = None) -> np.ndarray:
    """Each treated subject's change minus the mean change of their matched controls; with the matching
    covariates ``x``, both changes adjusted first (:func:`_adjusted`)."""
    if x is not None:
        delta = _adjusted(delta, x, treated)
    return delta[treated] - np.nanmean(delta[match], axis=1)


def _window(engine: Engine, who: pa.Table, start: dt.date, end: dt.date) -> dict[str, np.ndarray]:
    """Every metric but the NPS per subscriber of ``who`` over start <= day < end (NaN where they had no sessions)."""
    engine.register_arrow("who_in", who)
    sql = sql_file("opencem.loop", "subscriber_window").format(poor_session=poor_session_sql(load_tree()))
    t = engine.query_arrow(sql, {"start": start, "end": end, "days": (end - start).days}, step="subscriber_window")
    engine.drop("who_in")
    out = {c: t[c].to_numpy(zero_copy_only=False).astype(float) for c in t.column_names if c != "subscriber_id"}
    out["log_sessions"] = np.log1p(np.nan_to_num(out.pop("n")))
    return out


def _deltas(engine: Engine, real: dict) -> list[dict]:
    """The per-subscriber differences-in-differences averaged by plan (segment) and home area (location),
    for groups of at least MIN_GROUP treated subscribers."""
    engine.register_arrow("treated_in", pa.table({"subscriber_id": real["treated_ids"].tolist(),
                                                  **{m: pa.array(real["per_subscriber"][m], from_pandas=True) for m in METRICS}}))
    rows = []
    for dim, col in (("segment", "plan"), ("location", "home_area")):
        sql = sql_file("opencem.loop", "fix_deltas").format(column=quote_ident(col))
        rows += engine.query_arrow(sql, {"dimension": dim, "min_group": MIN_GROUP}, step="fix_deltas").to_pylist()
    engine.drop("treated_in")
    return rows

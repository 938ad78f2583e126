"""Verification's design on the shared workspace: who is compared, and what a verdict holds."""

import datetime as dt
import math

import numpy as np
import pytest

from opencem.loop.verify import (MIN_TREATED, PLACEBO_GROUPS, PRE_DAYS, POST_DAYS, _adjusted, _design, _differences,
                                 _experience_disagrees, _group_error, _match, _mean_variance, _placebo_groups, _standardised,
                                 verify)
from opencem.workspace import Workspace


def _busiest(engine):
    cell = engine.query_row("SELECT cell_id FROM xdr GROUP BY 1 ORDER BY count(*) DESC, 1 LIMIT 1", step="test")[0]
    model = engine.query_row("SELECT device_model FROM subscribers GROUP BY 1 ORDER BY count(*) DESC, 1 LIMIT 1", step="test")[0]
    return cell, model


@pytest.fixture(scope="module")
def two_fixes(shared):
    """A cell fix and a device campaign, made on the same day, two days before the data ends."""
    with Workspace(shared.ws).session() as engine:
        cell, model = _busiest(engine)
        last = engine.query_row("SELECT max(CAST(start_time AS DATE)) FROM xdr", step="test")[0]
    day = last - dt.timedelta(days=1)
    return [{"fix_id": "A", "cells": [cell], "device_model": None, "fix_date": day},
            {"fix_id": "B", "cells": [], "device_model": model, "fix_date": day}]


def test_controls_are_out_of_reach_of_every_fix_of_the_period(shared, two_fixes):
    a, b = two_fixes
    with Workspace(shared.ws).session() as engine:
        first, last = engine.query_row("SELECT min(CAST(start_time AS DATE)), max(CAST(start_time AS DATE)) FROM xdr", step="test")
        design = {f["fix_id"]: _design(engine, f, two_fixes, first, last, POST_DAYS) for f in two_fixes}
        engine.register_arrow("controls_a", design["A"]["who"].filter(~design["A"]["treated"]))
        engine.register_arrow("controls_b", design["B"]["who"].filter(~design["B"]["treated"]))
        # the cell fix's controls have none of the campaign's handsets ...
        fixed_handsets = engine.query_row("SELECT count(*) FROM controls_a JOIN subscribers USING (subscriber_id) "
                                          "WHERE device_model = $m", {"m": b["device_model"]}, step="test")[0]
        # ... and the campaign's controls used no cell of the fixed cell's site, before or after the fix
        near_cell = engine.query_row(
            "SELECT count(DISTINCT subscriber_id) FROM xdr WHERE subscriber_id IN (SELECT subscriber_id FROM controls_b) "
            "AND cell_id IN (SELECT cell_id FROM cells WHERE site_id = (SELECT site_id FROM cells WHERE cell_id = $c)) "
            "AND start_time >= CAST($s AS TIMESTAMP)", {"c": a["cells"][0], "s": a["fix_date"] - dt.timedelta(days=2 * PRE_DAYS)},
            step="test")[0]
        # the campaign's treated had not one session on the cell fix's cell in the week before the fixes
        engine.register_arrow("treated_b", design["B"]["who"].filter(design["B"]["treated"]))
        on_other = engine.query_row(
            "SELECT count(*) FROM xdr WHERE subscriber_id IN (SELECT subscriber_id FROM treated_b) AND cell_id = $c "
            "AND start_time >= CAST($s AS TIMESTAMP) AND start_time < CAST($e AS TIMESTAMP)",
            {"c": a["cells"][0], "s": a["fix_date"] - dt.timedelta(days=PRE_DAYS), "e": a["fix_date"]}, step="test")[0]
    assert design["A"]["treated"].sum() >= 10 and design["B"]["treated"].sum() >= 10
    assert (~design["A"]["treated"]).sum() >= 100 and (~design["B"]["treated"]).sum() >= 100
    assert fixed_handsets == 0 and near_cell == 0 and on_other == 0


def test_a_fix_inside_another_fixs_scope_is_not_verified_and_its_users_are_not_the_others(shared, two_fixes):
    """A fix whose cells all lie in another fix's scope (an interference fix on one cell of a site whose
    backhaul was fixed the same day) cannot be told apart from it; the wider fix keeps only the users who
    did not use the shared cell."""
    a = two_fixes[0]
    with Workspace(shared.ws).session() as engine:
        site_cells = engine.query_arrow("SELECT cell_id FROM cells WHERE site_id = (SELECT site_id FROM cells "
                                        "WHERE cell_id = $c) ORDER BY 1", {"c": a["cells"][0]}, step="test")["cell_id"].to_pylist()
    wide = {"fix_id": "W", "cells": site_cells, "device_model": None, "fix_date": a["fix_date"]}
    alone = {v["fix_id"]: v for v in verify(shared.ws, [wide], model=shared.model)}
    both = {v["fix_id"]: v for v in verify(shared.ws, [a, wide], model=shared.model)}
    assert "also in the scope of fix W" in both["A"]["not_verified"]
    assert 0 < both["W"]["subscribers"] < alone["W"]["subscribers"]


def test_verification_reads_an_event_study_a_placebo_and_a_verdict(shared, two_fixes):
    out = {v["fix_id"]: v for v in verify(shared.ws, two_fixes, model=shared.model)}
    v = out["A"]
    assert v["pre_days"] == PRE_DAYS and v["window_days"] == 2
    assert [r["day"] for r in v["event_study"]] == list(range(-2 * PRE_DAYS, 2))
    # the study's days after the fix average to the estimate's NPS (same controls, same baseline)
    nps = v["effects"][0]
    after = [r["estimate"] for r in v["event_study"] if r["day"] >= 0]
    assert nps["metric"] == "nps" and abs(sum(after) / len(after) - nps["estimate"]) < 0.01
    assert v["verdict"] in ("safe", "unsafe")
    assert any("may not have settled" in w for w in v["warnings"])
    for e in v["effects"] + [v["placebo"]]:
        assert e["ci_low"] <= e["estimate"] <= e["ci_high"]
        assert 0 <= e["group_error_share"] <= 1 and e["group_error_sd"] >= 0
    # groups of controls like each fix's treated were read for the group-level error
    assert v["placebo_groups"] >= 3 and out["B"]["placebo_groups"] >= 3


def test_cli_verify_prints_the_estimate_the_event_study_and_the_verdict(shared, two_fixes):
    from typer.testing import CliRunner

    from opencem.cli import app

    b = two_fixes[1]
    res = CliRunner().invoke(app, ["verify", "--workspace", str(shared.ws), "--fix-date", str(b["fix_date"]),
                                   "--device-model", b["device_model"], "--predicted", "2.5"])
    out = " ".join(res.output.split())
    assert res.exit_code == 0, res.output
    assert f"{PRE_DAYS} days before and 2 after" in out and "event study" in out and "-14:" in out
    assert "verdict: safe" in out or "verdict: unsafe" in out
    assert "may not have settled" in out and "predicted NPS lift +2.50" in out


def test_subscribers_of_one_cell_share_its_shocks_so_the_interval_is_clustered_by_cell():
    """A shock common to a cell's subscribers widens the interval (cluster-robust variance, t on cells - 1
    degrees of freedom); without one it is never narrower than the independent one."""
    rng = np.random.default_rng(3)
    cell = np.repeat(np.arange(6), 50).astype(str)
    alone = rng.normal(0, 1, cell.size)
    var0, df0 = _mean_variance(alone, cell)
    assert var0 >= alone.var(ddof=1) / alone.size and df0 == 5  # 6 cells: t on 5 degrees of freedom
    shared = alone + np.repeat(rng.normal(0, 1, 6), 50)
    var1, _ = _mean_variance(shared, cell)
    assert var1 > 5 * shared.var(ddof=1) / shared.size
    assert _mean_variance(alone, np.zeros(cell.size))[1] == math.inf  # one cell: nothing to cluster on


def test_a_shock_groups_share_widens_the_interval_by_its_size():
    """Placebo groups of controls, each verified as if it had been fixed: a shock each group shares (a
    failure over part of the city) spreads their estimates, and that spread beyond their own sampling
    variance is the group-level error; with no such shock there is next to none."""
    rng = np.random.default_rng(3)
    group = np.repeat(np.arange(20), 60)
    x = _standardised(rng.normal(size=(group.size, 2)))
    cell = np.char.add(group.astype(str), rng.integers(0, 5, group.size).astype(str))
    placebos = [(group == g, _match(x, group == g)) for g in range(20)]
    alone = rng.normal(0, 1, group.size)
    shared = alone + np.repeat(rng.normal(0, 2, 20), 60)  # each group's own shock, sd 2
    var, df = _group_error(shared, x, cell, placebos)
    assert 2.0 < var < 8.0 and df == 19
    assert _group_error(alone, x, cell, placebos)[0] < 0.3
    assert _group_error(shared, x, cell, placebos[:2]) == (0.0, math.inf)  # too few groups to read it from


def test_placebo_groups_are_like_the_treated():
    # a fix of cells: the users of the cells nearest to each of PLACEBO_GROUPS cells, whole cells, until there
    # are as many as the treated; 5 subscribers per cell along a line
    place = np.column_stack([np.repeat(np.arange(80, dtype=float), 5), np.zeros(400)])
    cell = np.char.add("c", np.repeat(np.arange(80), 5).astype(str))
    treated = np.arange(400) < 42
    groups = _placebo_groups(treated, cell, place=place)
    assert len(groups) == PLACEBO_GROUPS
    for g in groups:
        assert 42 <= g.size < 42 + 5 and not treated[g].any()
        assert np.ptp(place[g, 0]) <= g.size // 5  # one stretch of neighbouring cells
        assert all(np.isin(np.flatnonzero((cell == c) & ~treated), g).all() for c in set(cell[g]))  # whole cells
    # the same groups whatever order the subscribers come in (their pseudonymous ids change with the key)
    order = np.random.default_rng(1).permutation(400)
    again = _placebo_groups(treated[order], cell[order], place=place[order])
    assert [set(cell[g]) for g in groups] == [set(cell[order][g]) for g in again]
    # a device campaign: the users of each other handset model with at least MIN_TREATED of them
    model = np.array(["A"] * 40 + ["B"] * 200 + ["C"] * 100 + ["D"] * (MIN_TREATED - 1) + ["E"] * (60 - MIN_TREATED + 1))
    groups = _placebo_groups(np.arange(400) < 40, cell, model=model)
    assert [set(model[g]) for g in groups] == [{"B"}, {"C"}, {"E"}]


def test_what_the_match_leaves_unbalanced_is_adjusted_away():
    # the change depends on the trajectory before (x); the treated sit at the edge of the controls' x, so
    # their nearest controls are a little further in: a matched difference alone reads a drift, never a fix
    rng = np.random.default_rng(3)
    x = np.concatenate([rng.normal(2.5, 0.5, 200), rng.normal(0.0, 1.0, 2000)])[:, None]
    treated = np.arange(x.size) < 200
    change = -3.0 * x[:, 0] + rng.normal(0, 0.5, x.size)  # no effect of the fix at all
    z = _standardised(x)
    match = _match(z, treated)
    raw = _differences(change, treated, match).mean()
    adjusted = _differences(_adjusted(change, z, treated), treated, match).mean()
    assert abs(raw) > 0.1
    assert abs(adjusted) < abs(raw) / 3
    few = np.arange(x.size) >= 15  # 15 controls cannot carry a fitted slope: left as they are
    assert np.array_equal(_adjusted(change, z, few), change)


def _effect(metric, estimate, low, high):
    return {"metric": metric, "estimate": estimate, "ci_low": low, "ci_high": high}


def test_an_nps_change_without_the_experience_behind_it_is_not_the_fixs():
    """A fix moves the NPS through experience: an experience that got worse after the fix, or an NPS that
    moved while the treated's CEI did not, is flagged; a fix whose CEI moved with its NPS, or an NPS and a CEI
    that did not move, is not."""
    fixed = [_effect("nps", 7.1, 3.5, 10.6), _effect("cei", 1.46, 1.24, 1.68)]
    assert _experience_disagrees(fixed) is None
    assert _experience_disagrees([_effect("nps", 0.1, -0.5, 0.7), _effect("cei", 0.05, -0.1, 0.2)]) is None
    crowd = [_effect("nps", -1.8, -3.2, -0.4), _effect("cei", -0.32, -0.54, -0.09)]  # a crowd event after the fix
    assert "got worse after the fix" in _experience_disagrees(crowd)
    flat = [_effect("nps", 4.0, 0.5, 7.5), _effect("cei", 0.14, -0.63, 0.92)]
    why = _experience_disagrees(flat)
    assert why and "+4.0" in why and "CEI +0.14" in why
    assert _experience_disagrees([_effect("nps", -1.5, -2.6, -0.4), _effect("cei", -0.18, -0.41, 0.05)])

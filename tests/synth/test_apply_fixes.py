"""The synthetic operator carries out requested fixes: the world before the fix day is untouched, a
fix that matches a fault ends it, one that matches nothing changes nothing."""

from pathlib import Path
from types import SimpleNamespace

import duckdb
import numpy as np
import pytest

from opencem.synth.faults import MIN_PER_DAY, Fault, FixRequest, _requested_fix
from opencem.synth.generator import SynthConfig, generate


def q(sql: str) -> list[tuple]:
    with duckdb.connect() as con:  # its own connection: the default one may hold another test's result
        return con.sql(sql).fetchall()


CFG = SynthConfig(subscribers=1500, days=8, seed=3, fixes=False, fix_day=5)


@pytest.fixture(scope="module")
def worlds(tmp_path_factory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("apply")
    generate(root / "a", CFG)
    faults = q(f"SELECT cause, cells, start_time FROM '{root}/a/truth/faults.parquet'")
    congested = next(c for cause, c, t in faults if cause == "congestion" and t.day == 5 and t.hour == 0)
    transport = next(c for cause, c, t in faults if cause == "transport" and t.day == 5 and t.hour == 0)
    requests = (FixRequest("C1", "add_capacity", (congested.split(";")[0],)), FixRequest("C2", "fix_device", (), "Nova X5"),
                FixRequest("C3", "fix_transport", tuple(transport.split(";")[:1])),
                FixRequest("C4", "clear_interference", (transport.split(";")[0],)))  # no interference there
    generate(root / "b", SynthConfig(**{**CFG.__dict__, "apply": requests}))
    return root / "a", root / "b"


@pytest.mark.slow
def test_days_before_the_fix_are_byte_identical(worlds):
    a, b = worlds
    for table in ("xdr", "radio_samples", "pm"):
        for day in ("2026-10-05", "2026-10-09"):
            fa, fb = sorted((a / "inputs" / table).glob(f"*{day}*/*")), sorted((b / "inputs" / table).glob(f"*{day}*/*"))
            assert fa and [f.read_bytes() for f in fa] == [f.read_bytes() for f in fb], (table, day)
    after = sorted((a / "inputs" / "xdr").glob("*2026-10-11*/*"))
    assert [f.read_bytes() for f in after] != [f.read_bytes() for f in sorted((b / "inputs" / "xdr").glob("*2026-10-11*/*"))]


@pytest.mark.slow
def test_each_fix_is_matched_to_its_fault_and_has_its_true_effect(worlds):
    _, b = worlds
    rows = {r[0]: r[1:] for r in q(f"""SELECT fix_id, fault_id, subscribers_affected, nps_with - nps_without,
        bad_session_share_without - bad_session_share_with FROM '{b}/truth/fixes.parquet'""")}
    causes = dict(q(f"SELECT fault_id, cause FROM '{b}/truth/faults.parquet'"))
    assert causes[rows["C1"][0]] == "congestion" and causes[rows["C2"][0]] == "device" and causes[rows["C3"][0]] == "transport"
    assert rows["C4"][0] is None  # nothing to clear: carried out, no effect
    assert rows["C4"][2] == 0 and rows["C4"][3] == 0
    for fix in ("C1", "C2", "C3"):
        assert rows[fix][1] > 0 and rows[fix][3] > 0, fix  # fewer bad sessions with the fix than without
    # C3 names one cell of the link and repairs the link: the truth counts the effect on all its cells
    fix_cells = dict(q(f"SELECT fix_id, cells FROM '{b}/truth/fixes.parquet'"))
    fault_cells = dict(q(f"SELECT fault_id, cells FROM '{b}/truth/faults.parquet'"))
    assert len(fault_cells[rows["C3"][0]].split(";")) > 1
    assert set(fault_cells[rows["C3"][0]].split(";")) <= set(fix_cells["C3"].split(";"))
    fixed_end = dict(q(f"SELECT fault_id, end_time FROM '{b}/truth/faults.parquet'"))
    assert str(fixed_end[rows["C3"][0]]) == "2026-10-10 00:00:00"


def test_unknown_action_or_cell_is_a_clear_error(tmp_path):
    with pytest.raises(ValueError, match="unknown action 'paint'"):
        generate(tmp_path / "x", SynthConfig(**{**CFG.__dict__, "apply": (FixRequest("C1", "paint", ("S0001-1-B3",)),)}))
    with pytest.raises(ValueError, match="unknown cell NOPE"):
        generate(tmp_path / "y", SynthConfig(**{**CFG.__dict__, "apply": (FixRequest("C1", "add_capacity", ("NOPE",)),)}))
    assert not (tmp_path / "x").exists() and not (tmp_path / "y").exists()


def test_a_fix_repairs_a_fault_going_on_at_the_fix_not_one_that_begins_later():
    city = SimpleNamespace(cells={"cell_id": np.array(["A", "B", "C"])})
    day = 5 * MIN_PER_DAY
    later = Fault("F1", "core_dns", day + 60, day + 300, np.array([0, 1]), np.array([0]))
    going = Fault("F2", "core_dns", day - 60, day + 300, np.array([1, 2]), np.array([1]))
    fix = _requested_fix(city, [later, going], FixRequest("C1", "fix_core", ("B",)), 5)
    assert fix.fault_id == "F2" and later.fixed_by is None
    assert sorted(fix.cells) == [1, 2]  # every cell of the fault it repairs, not only the one named
    assert _requested_fix(city, [later], FixRequest("C2", "fix_core", ("A",)), 5).fault_id == ""

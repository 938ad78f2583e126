"""What a missing input takes away is read from the SQL that runs."""

from opencem.contracts.lineage import kpi_counters, reach, readers


def test_kpis_know_their_counters_from_their_sql():
    k = kpi_counters()
    assert k["prb_util_dl"] == {"RRU.PrbUsedDl", "RRU.PrbAvailDl"}
    assert k["ul_interference_dbm"] == {"VS.UlInterfAvg"}
    assert k["accessibility"] == {"RRC.ConnEstabSucc", "RRC.ConnEstabAtt", "DRB.EstabSucc", "DRB.EstabAtt"}


def test_a_missing_counter_names_its_kpis_and_the_steps_that_read_them():
    lost = reach("pm", ["VS.UlInterfAvg", "MM.HoExeIntraSucc"])
    assert lost[0].startswith("KPI ho_sr (from MM.HoExeIntraSucc)")
    assert lost[1].startswith("KPI ul_interference_dbm (from VS.UlInterfAvg), read by ")
    assert "twin/state_grid_hour" in lost[1] and "twin/sess_cell_hour" in lost[1]  # the episode evidence reads it from there
    assert reach("pm", ["RRC.ConnEstabAtt"])[0].startswith("KPI rrc_setup_sr")
    # an xDR column unique to its table is followed to the steps that read it; a shared name (lat) is not guessed
    assert reach("xdr", ["page_load_ms"]) == ["xdr.page_load_ms, read by measure/kqi_pspu_day"]
    assert reach("radio_samples", ["lat"]) == []
    assert "measure/kpi_cell_15min" not in readers("VS.UlInterfAvg")

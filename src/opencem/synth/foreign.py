"""The "foreign" profile: the synthetic operator's inputs as another operator would export them.

Same customers, sessions and faults as the canonical profile of the same seed, but written the way a
real operator's extracts look, so that `opencem import` and its mapping are tested on data that does
not speak OpenCEM's language:

* its own file layout and column names (CSV, one file per day for the big tables);
* its own names for services, care categories, survey triggers, area types, channels, codecs and plans;
* its own units: volumes in kB / MB, RTT and page loads in seconds, throughput in Mbit/s, power in W;
* local time in ``ZONE``: naive wall-clock text in the BSS and xDR exports, ISO 8601 with the offset in PM;
* a reduced PM counter set (no UL interference, no RRC.ConnMax, no antenna height), with vendor names;
* no PM rows at all for a cell while its site is off air, as real OSS exports behave.

The mapping that brings it back is `foreign_mapping.yaml` beside this file, the worked example of
docs/byod.md. It is written by hand, not derived from the tables below, so a test of import against
the canonical profile checks both.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pyarrow.csv as pacsv

from ..contracts.validate import find_table_files
from ..engine import make_engine, quote_ident, quote_literal

ZONE = "Asia/Kolkata"
MAPPING = Path(__file__).with_name("foreign_mapping.yaml")

# The foreign operator's words for values that carry a meaning in OpenCEM.
SERVICES = {"web": "BROWSING", "video": "STREAMING_VIDEO", "voice": "VOLTE", "gaming": "GAMES",
            "social": "SOCIAL_MEDIA", "file_transfer": "DOWNLOADS"}
CARE_CATEGORIES = {"coverage": "No signal / coverage", "data_speed": "Slow internet", "voice_quality": "Call quality",
                   "device": "Handset problem", "billing": "Bill query", "price": "Tariff complaint", "other": "General"}
TRIGGERS = {"relationship": "PERIODIC", "after_care": "POST_INTERACTION"}
AREA_TYPES = {"core": "Dense urban", "suburb": "Suburban", "highway": "Road corridor"}
CODECS = {"EVS": "EVS-SWB", "AMR-WB": "AMR-WB 12.65", "AMR-NB": "AMR 12.2"}
# Counters the foreign PM export does not have (a reduced set); its names for the others.
PM_DROPPED = ("RRC.ConnMax", "VS.UlInterfAvg")
CELLS_DROPPED = ("height_m",)


def _local(col: str) -> str:
    """A UTC timestamp as naive local wall-clock text, with milliseconds."""
    return f"strftime(timezone({quote_literal(ZONE)}, timezone('UTC', {quote_ident(col)})), '%Y-%m-%d %H:%M:%S.%g')"


def _local_with_offset(col: str) -> str:
    """A UTC timestamp as ISO 8601 local time with its offset, e.g. 2026-10-05T05:30:00+05:30."""
    local = f"timezone({quote_literal(ZONE)}, timezone('UTC', {quote_ident(col)}))"
    diff = f"CAST(epoch({local}) - epoch({quote_ident(col)}) AS BIGINT)"
    return (f"strftime({local}, '%Y-%m-%dT%H:%M:%S') || printf('%s%02d:%02d', CASE WHEN {diff} < 0 THEN '-' ELSE '+' END, "
            f"abs({diff}) // 3600, abs({diff}) % 3600 // 60)")


def _rename(col: str, words: dict[str, str]) -> str:
    cases = " ".join(f"WHEN {quote_literal(k)} THEN {quote_literal(v)}" for k, v in words.items())
    return f"CASE {quote_ident(col)} {cases} ELSE {quote_ident(col)} END"


def _yes_no(col: str) -> str:
    return f"CASE WHEN {quote_ident(col)} THEN 'Y' WHEN NOT {quote_ident(col)} THEN 'N' END"


def _plan(col: str) -> str:
    """Plans get the foreign operator's brand names (the same plan keeps one name in every table)."""
    return f"'Verde ' || upper(replace({quote_ident(col)}, '_', ' '))"


def _c(col: str) -> str:
    return quote_ident(col)


# Per table: its folder and file stem in the foreign export, and (foreign column, SQL over the canonical row).
EXPORTS: dict[str, tuple[str, list[tuple[str, str]]]] = {
    "subscribers": ("crm/customer_base", [
        ("MSISDN", _c("subscriber_id")), ("TARIFF_NAME", _plan("plan")), ("ARPU_3M", _c("arpu_monthly")),
        ("TENURE_M", _c("tenure_months")), ("HANDSET", _c("device_model")), ("TAC", _c("device_tac")), ("HANDSET_MAKER", _c("device_vendor")),
        ("HANDSET_TECH", _c("device_capability")), ("HOME_ZONE", _c("home_area")), ("AGE_GROUP", _c("age_band")),
        ("CONSENT_LOC", _yes_no("consent_location")), ("CONSENT_PREF", _yes_no("consent_preferences")),
        ("CONSENT_MKT", _yes_no("consent_marketing"))]),
    "subscriber_contracts": ("crm/contracts", [
        ("MSISDN", _c("subscriber_id")), ("CONTRACT", f"upper({_c('contract_type')})"),
        ("SIGNED", f"strftime({_c('start_date')}, '%d/%m/%Y')"), ("MIN_TERM_END", f"strftime({_c('commitment_end')}, '%d/%m/%Y')")]),
    "tariffs": ("crm/tariff_history", [
        ("TARIFF_NAME", _plan("plan")), ("MONTHLY_FEE", _c("monthly_price")),
        ("VALID_FROM", f"strftime({_c('valid_from')}, '%d/%m/%Y')"), ("VALID_TO", f"strftime({_c('valid_to')}, '%d/%m/%Y')")]),
    "portouts": ("crm/port_out", [
        ("MSISDN", _c("subscriber_id")), ("PORT_DATE", f"strftime({_c('portout_date')}, '%d/%m/%Y')"),
        ("RECIPIENT", _c("recipient_operator"))]),
    "surveys": ("cx/nps_answers", [
        ("RESPONSE_ID", _c("survey_id")), ("MSISDN", _c("subscriber_id")), ("ANSWERED_AT", _local("survey_time")),
        ("CHANNEL", f"upper({_c('channel')})"), ("LIKELIHOOD_0_10", _c("score"))]),
    "survey_invitations": ("cx/nps_invitations", [
        ("INVITE_ID", _c("invitation_id")), ("MSISDN", _c("subscriber_id")), ("SENT_AT", _local("invite_time")),
        ("CHANNEL", f"upper({_c('channel')})"), ("REASON", _rename("trigger", TRIGGERS)), ("RESPONSE_ID", _c("survey_id"))]),
    "nps_tracker": ("cx/brand_tracker", [
        ("RESP_NO", _c("response_id")), ("MSISDN", _c("subscriber_id")), ("WAVE", f"strftime({_c('wave_date')}, '%d/%m/%Y')"),
        ("ANSWERED_AT", _local("answer_time")), ("SCORE", _c("score"))]),
    "care_contacts": ("care/tickets", [
        ("TICKET_NO", _c("contact_id")), ("MSISDN", _c("subscriber_id")), ("OPENED_AT", _local("contact_time")),
        ("CHANNEL", f"upper({_c('channel')})"), ("TOPIC", _rename("category", CARE_CATEGORIES)),
        ("COMPLAINT", _yes_no("is_complaint")), ("RESOLVED", _yes_no("resolved"))]),
    "cells": ("oss/cell_inventory", [
        ("CELL_NAME", _c("cell_id")), ("SITE_NAME", _c("site_id")), ("LATITUDE", _c("lat")), ("LONGITUDE", _c("lon")),
        ("AZIMUTH", _c("azimuth_deg")), ("TECH", _c("rat")), ("BAND", _c("band")), ("DL_FREQ_MHZ", _c("freq_mhz")),
        ("BW_MHZ", _c("bandwidth_mhz")), ("N_PRB", _c("prbs")), ("TX_POWER_W", f"round(POW(10, {_c('tx_power_dbm')} / 10) / 1000, 6)"),
        ("CLUTTER", _rename("area_type", AREA_TYPES)), ("BACKHAUL_ID", _c("transport_link_id")),
        ("BACKHAUL_TYPE", f"upper({_c('transport_type')})"), ("ON_AIR", f"strftime({_c('on_air_date')}, '%d/%m/%Y')")]),
    "pm": ("oss/pm/pm", [
        ("CELL", _c("cell_id")), ("START_TIME", _local_with_offset("period_start")), ("PERIOD_S", _c("granularity_s")),
        ("pmRrcConnEstabAtt", _c("RRC.ConnEstabAtt")), ("pmRrcConnEstabSucc", _c("RRC.ConnEstabSucc")),
        ("pmRrcConnMean", _c("RRC.ConnMean")), ("pmErabEstabAtt", _c("DRB.EstabAtt")),
        ("pmErabEstabSucc", _c("DRB.EstabSucc")), ("pmErabRelAbnormal", _c("DRB.RelActNbr")),
        ("pmSessionTimeUe", _c("DRB.SessionTime")), ("pmUeThpDlKbps", _c("DRB.UEThpDl")), ("pmUeThpUlKbps", _c("DRB.UEThpUl")),
        ("pmPdcpVolDlMB", f"{_c('DRB.PdcpSduVolumeDl')} / 8"), ("pmPdcpVolUlMB", f"{_c('DRB.PdcpSduVolumeUl')} / 8"),
        ("pmRlcDelayDl", _c("DRB.RlcSduDelayDl")), ("pmPrbUsedDl", _c("RRU.PrbUsedDl")), ("pmPrbUsedUl", _c("RRU.PrbUsedUl")),
        ("pmPrbAvailDl", _c("RRU.PrbAvailDl")), ("pmPrbAvailUl", _c("RRU.PrbAvailUl")),
        ("pmHoExeAtt", _c("MM.HoExeIntraReq")), ("pmHoExeSucc", _c("MM.HoExeIntraSucc")), ("pmCqiAvg", _c("VS.CqiAvg"))]),
    "radio_samples": ("oss/mr/mr", [
        ("MSISDN", _c("subscriber_id")), ("MEAS_TIME", _local("sample_time")), ("LAT", _c("lat")), ("LON", _c("lon")),
        ("CELL", _c("cell_id")), ("RSRP", _c("rsrp_dbm")), ("RSRQ", _c("rsrq_db")), ("SINR", _c("sinr_db"))]),
    "xdr": ("ipdr/sessions", [
        ("REC_ID", _c("session_id")), ("MSISDN", _c("subscriber_id")), ("APP_CLASS", _rename("service", SERVICES)),
        ("START_LOCAL", _local("start_time")), ("END_LOCAL", _local("end_time")), ("CELL", _c("cell_id")), ("TECH", _c("rat")),
        ("DL_KB", f"{_c('volume_dl_bytes')} / 1000"), ("UL_KB", f"{_c('volume_ul_bytes')} / 1000"),
        ("OK", f"CAST({_c('success')} AS INTEGER)"), ("DL_THP_MBPS", f"{_c('throughput_dl_kbps')} / 1000"),
        ("RTT_S", f"{_c('rtt_ms')} / 1000"), ("PAGE_LOAD_S", f"{_c('page_load_ms')} / 1000"),
        ("INIT_BUFFER_MS", _c("initial_buffer_ms")), ("STALLS", _c("stall_count")), ("STALL_MS", _c("stall_ms")),
        ("VIDEO_KBPS", _c("video_bitrate_kbps")), ("VIDEO_LINES", _c("video_resolution_p")),
        ("SETUP_MS", _c("call_setup_ms")), ("DROPPED", f"CAST({_c('call_dropped')} AS INTEGER)"),
        ("MOUTH_EAR_MS", _c("voice_delay_ms")), ("JITTER_MS", _c("jitter_ms")), ("LOSS_PCT", _c("packet_loss_pct")),
        ("CODEC", _rename("codec", CODECS))]),
}

# PM rows of a cell while its site is off air: a real OSS exports nothing for them.
_OFF_AIR = """
SELECT p.* FROM pm p WHERE NOT EXISTS (
  SELECT 1 FROM off_air o WHERE o.cell_id = p.cell_id AND p.period_start >= o.start_time AND p.period_start < o.end_time)
"""


def export_foreign(canonical: Path, out: Path) -> None:
    """Rewrite a canonical synth output (`canonical/inputs`, `canonical/truth`) as the foreign operator's export
    in `out/inputs`, with the truth copied and the mapping at `out/mapping.yaml`."""
    canonical, out = Path(canonical), Path(out)
    with make_engine("duckdb") as eng:
        eng.register_parquet("faults", str(canonical / "truth" / "faults.parquet"))
        eng.create_table("off_air", "SELECT unnest(string_split(cells, ';')) AS cell_id, start_time, end_time "
                                    "FROM faults WHERE cause = 'coverage' AND cells <> ''")
        for name, (stem, columns) in EXPORTS.items():
            select = ", ".join(f"{sql} AS {quote_ident(col)}" for col, sql in columns)
            for i, f in enumerate(find_table_files(canonical / "inputs", name)):
                eng.register_parquet(name, str(f), hive_partitioning=False)
                source = _OFF_AIR if name == "pm" else f"SELECT * FROM {name}"
                table = eng.query_arrow(f"SELECT {select} FROM ({source})", step=f"export {name}")
                day = f.parent.name.removeprefix("day=").replace("-", "") if f.parent.name.startswith("day=") else ""
                path = out / "inputs" / (f"{stem}_{day}.csv" if day else f"{stem}.csv")
                path.parent.mkdir(parents=True, exist_ok=True)
                pacsv.write_csv(table, path)
    shutil.copytree(canonical / "truth", out / "truth", dirs_exist_ok=True)
    shutil.copyfile(MAPPING, out / "mapping.yaml")


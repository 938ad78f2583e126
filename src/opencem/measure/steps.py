"""The measure stage as named SQL steps: KPI (cell x 15 min) -> KQI (PSPU) -> CEI (service, subscriber, journey).

SQL is written once in DuckDB's dialect (a portable subset) and transpiled for Spark by the engine.
"""

from __future__ import annotations

from ..engine.pipeline import Step, sql_file
from ..indicators import qoe
from ..indicators.tree import Tree, cei_service_sql, cei_subscriber_sql, journey_sql, poor_session_sql
from ..vocabulary import POOR_RSRP_DBM, POOR_SINR_DB


# Each day of every measure table depends on the same day of these inputs only (and on all of the others:
# PM for the cells' first report, care for the journey's window), so a new day reads only its own rows of them.
PER_DAY_INPUTS = ("xdr", "radio_samples")


def kqi_sql(keys: str = "subscriber_id", period: str = "CAST(start_time AS DATE)", source: str = "xdr") -> str:
    """KQIs per `keys` x `period` (named `day`) x service from the sessions of `source`."""
    stall_ratio = "stall_ms / NULLIF(date_diff('millisecond', start_time, end_time) - stall_ms, 0)"
    video = qoe.video_mos_sql("initial_buffer_ms", stall_ratio, "stall_count", "video_resolution_p")
    layers, r = qoe.emodel_r_sql_layers("voice_delay_ms", "packet_loss_pct", "codec", "jitter_ms")
    # every E-model term is computed for the successful voice sessions only: on the other sessions (most of
    # them) the engine would evaluate it all to NULL, which costs as much as the terms themselves
    voice = "service = 'voice' AND success"
    layers = [[(alias, f"CASE WHEN {voice} THEN {expr} END") for alias, expr in layer] for layer in layers]
    layers = layers + [[("voice_r", f"CASE WHEN {voice} THEN {r} END")]]
    ctes, prev = [], "r"
    for i, layer in enumerate(layers):
        cols = ", ".join(f"{expr} AS {alias}" for alias, expr in layer)
        ctes.append(f"e{i} AS (SELECT *, {cols} FROM {prev})")
        prev = f"e{i}"
    return sql_file("opencem.measure", "kqi_pspu_day").format(
        video_mos=f"CASE WHEN service = 'video' AND success THEN {video} END",
        emodel_ctes=",\n".join(ctes), emodel_last=prev, voice_mos=qoe.r_to_mos_sql("voice_r"),
        keys=keys, period=period, source=source,
    )


def radio_day_sql(source: str = "radio_samples") -> str:
    """Each subscriber's measurement reports of `source` per day, as counts and sums."""
    return sql_file("opencem.measure", "radio_subscriber_day").format(poor_rsrp=POOR_RSRP_DBM, poor_sinr=POOR_SINR_DB, source=source)


def measure_steps(tree: Tree) -> list[Step]:
    return [
        Step("kpi_cell_15min", sql_file("opencem.measure", "kpi_cell_15min"), partition_by=["day"]),
        Step("kqi_pspu_day", kqi_sql(), partition_by=["day"]),
        Step("cei_service_day", cei_service_sql(tree, "kqi_pspu_day"), partition_by=["day"]),
        Step("cei_subscriber_day", cei_subscriber_sql(tree, "cei_service_day"), partition_by=["day"]),
        Step("cei_journey_day", journey_sql(tree, "cei_subscriber_day", "care_contacts"), partition_by=["day"]),
        # per-subscriber daily summaries of the raw radio and session rows, so that NPS features and
        # scores over a window of days read one small row per subscriber and day
        Step("radio_subscriber_day", radio_day_sql(), partition_by=["day"]),
        Step("subscriber_position_day", sql_file("opencem.measure", "subscriber_position_day"), partition_by=["day"]),
        Step("subscriber_cell_day", sql_file("opencem.measure", "subscriber_cell_day").format(
            poor_session=poor_session_sql(tree)), partition_by=["day"]),
        Step("poor_session_day", sql_file("opencem.measure", "poor_session_day").format(
            poor_session=poor_session_sql(tree)), partition_by=["day"]),
    ]

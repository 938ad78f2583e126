"""xDR: one row per user session per service, from the probes / DPI on the user plane and IMS."""

from ..indicators.qoe import CODECS
from ..vocabulary import SERVICES
from .base import Check, Column, Table

XDR = Table(
    name="xdr",
    family="xDR",
    description=(
        "One row per session per service. Quality fields belong to one service and are null for the others; "
        "`success` means: web page loaded, video playback started, voice call set up, file transfer completed, "
        "gaming / social session completed without a transport error."
    ),
    grain="session",
    key=("session_id",),
    partition_by="start_time",
    columns=(
        Column("session_id", "int64", "-", "Session identifier"),
        Column("subscriber_id", "string", "-", "Subscriber"),
        Column("service", "string", "-", "Service class from DPI; a service the indicator tree does not score counts as usage, without a CEI", known=SERVICES),
        Column("start_time", "timestamp", "UTC", "Session start"),
        Column("end_time", "timestamp", "UTC", "Session end"),
        Column("cell_id", "string", "-", "Serving cell at session start"),
        Column("rat", "string", "-", "RAT at session start", allowed=("LTE", "NR")),
        Column("volume_dl_bytes", "int64", "byte", "Downlink volume", min=0),
        Column("volume_ul_bytes", "int64", "byte", "Uplink volume", min=0),
        Column("success", "bool", "-", "Session achieved its purpose (see table description)"),
        Column("throughput_dl_kbps", "float64", "kbit/s", "Mean DL throughput while transferring (data services)", nullable=True, min=0),
        Column("rtt_ms", "float64", "ms", "Mean TCP / application round-trip time", nullable=True, min=0),
        Column("page_load_ms", "float64", "ms", "Web: time to page load event", nullable=True, min=0),
        Column("initial_buffer_ms", "float64", "ms", "Video: time from request to first frame", nullable=True, min=0),
        Column("stall_count", "int32", "count", "Video: rebuffering events", nullable=True, min=0),
        Column("stall_ms", "float64", "ms", "Video: total rebuffering time", nullable=True, min=0),
        Column("video_bitrate_kbps", "float64", "kbit/s", "Video: mean played bitrate", nullable=True, min=0),
        Column("video_resolution_p", "int32", "lines", "Video: most played resolution (240-2160)", nullable=True, min=144, max=4320),
        Column("call_setup_ms", "float64", "ms", "Voice: INVITE to 180 Ringing", nullable=True, min=0),
        Column("call_dropped", "bool", "-", "Voice: call released abnormally", nullable=True),
        Column("voice_delay_ms", "float64", "ms", "Voice: mean one-way mouth-to-ear delay", nullable=True, min=0),
        Column("jitter_ms", "float64", "ms", "Voice / gaming: mean packet delay variation", nullable=True, min=0),
        Column("packet_loss_pct", "float64", "%", "Voice: RTP packet loss", nullable=True, min=0, max=100),
        Column("codec", "string", "-", "Voice: speech codec; without G.107 parameters for it the E-model MOS is left out (NULL)", nullable=True, known=tuple(CODECS)),
    ),
    checks=(
        Check("end_time >= start_time", "session ends before it starts", ("end_time",)),
        Check("stall_ms IS NULL OR stall_count > 0 OR stall_ms = 0", "stall time without stalls", ("stall_ms",)),
    ),
)

TABLES = (XDR,)

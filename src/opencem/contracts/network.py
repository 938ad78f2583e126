"""OSS tables: cell configuration (CM), performance counters (PM), radio measurements (MR)."""

from .base import Check, Column, Table

CELLS = Table(
    name="cells",
    family="CM",
    description="Configuration of every cell; a cell added during the window has a later on_air_date.",
    grain="cell",
    key=("cell_id",),
    columns=(
        Column("cell_id", "string", "-", "Cell identifier (NCGI / ECGI style)"),
        Column("site_id", "string", "-", "Site (eNB / gNB) the cell belongs to"),
        Column("lat", "float64", "deg WGS84", "Antenna latitude", min=-90, max=90),
        Column("lon", "float64", "deg WGS84", "Antenna longitude", min=-180, max=180),
        Column("azimuth_deg", "int32", "deg", "Antenna azimuth, clockwise from north", min=0, max=359),
        Column("height_m", "float64", "m", "Antenna height above ground", min=0, max=300, nullable=True, optional=True),
        Column("rat", "string", "-", "Radio access technology", allowed=("LTE", "NR")),
        Column("band", "string", "-", "3GPP band (B20, B3, B7, n78)"),
        Column("freq_mhz", "float64", "MHz", "Downlink centre frequency", min=400, max=7200),
        Column("bandwidth_mhz", "float64", "MHz", "Channel bandwidth", min=1.4, max=400),
        Column("prbs", "int32", "PRB", "Downlink physical resource blocks", min=6, max=275),
        Column("tx_power_dbm", "float64", "dBm", "Total transmit power", min=0, max=60),
        Column("area_type", "string", "-", "Morphology of the site", known=("core", "suburb", "highway")),
        Column("transport_link_id", "string", "-", "Backhaul link the site hangs on"),
        Column("transport_type", "string", "-", "Backhaul medium (the operator's own names, e.g. fibre, microwave)"),
        Column("on_air_date", "date", "-", "First day the cell carries traffic"),
    ),
)

# Counter names follow TS 28.552 (NR); for LTE cells the TS 32.425 counter with the same meaning
# is reported under the same name (noted per column), so one KPI formula serves both RATs.
PM = Table(
    name="pm",
    family="PM",
    description="Cell performance counters per 15-minute granularity period (TS 32.425 / TS 28.552).",
    grain="cell x 15 minutes",
    key=("cell_id", "period_start"),
    partition_by="period_start",
    columns=(
        Column("cell_id", "string", "-", "Measured cell"),
        Column("period_start", "timestamp", "UTC", "Start of the granularity period"),
        Column("granularity_s", "int32", "s", "Granularity period length", min=60, max=86400),
        Column("RRC.ConnEstabAtt", "int64", "count", "RRC connection establishment attempts (28.552 5.1.1.15.1; 32.425 4.1.1.1)", min=0),
        Column("RRC.ConnEstabSucc", "int64", "count", "Successful RRC connection establishments (28.552 5.1.1.15.2; 32.425 4.1.1.2)", min=0),
        Column("RRC.ConnMean", "float64", "UE", "Mean number of RRC-connected UEs (28.552 5.1.1.4.1; 32.425 4.1.3.1)", min=0),
        Column("RRC.ConnMax", "int64", "UE", "Max number of RRC-connected UEs (28.552 5.1.1.4.2; 32.425 4.1.3.2)", min=0, nullable=True, optional=True),
        Column("DRB.EstabAtt", "int64", "count", "DRB (E-RAB) setup attempts (28.552 5.1.1.10.1; 32.425 ERAB.EstabInitAttNbr)", min=0),
        Column("DRB.EstabSucc", "int64", "count", "Successful DRB (E-RAB) setups (28.552 5.1.1.10.2; 32.425 ERAB.EstabInitSuccNbr)", min=0),
        Column("DRB.RelActNbr", "int64", "count", "Abnormal releases of DRBs with data in buffer (28.552 5.1.1.10.x; 32.425 ERAB.RelActNbr)", min=0),
        Column("DRB.SessionTime", "float64", "s", "Aggregate time UEs had data in buffer (28.552 5.1.1.10.x; 32.425 ERAB.SessionTimeUE)", min=0, nullable=True, optional=True),
        Column("DRB.UEThpDl", "float64", "kbit/s", "Average DL UE throughput (28.552 5.1.1.3.1; 32.425 4.4.6.1)", min=0, nullable=True, optional=True),
        Column("DRB.UEThpUl", "float64", "kbit/s", "Average UL UE throughput (28.552 5.1.1.3.3; 32.425 4.4.6.3)", min=0, nullable=True, optional=True),
        Column("DRB.PdcpSduVolumeDl", "float64", "Mbit", "DL PDCP SDU data volume (28.552 5.1.2.1.1.1; 32.425 DRB.PdcpSduVolumeDl)", min=0),
        Column("DRB.PdcpSduVolumeUl", "float64", "Mbit", "UL PDCP SDU data volume (28.552 5.1.2.1.2.1; 32.425 DRB.PdcpSduVolumeUl)", min=0, nullable=True, optional=True),
        Column("DRB.RlcSduDelayDl", "float64", "ms", "Average DL RLC SDU delay on the air interface (28.552 5.1.1.1.1; 32.425 DRB.PdcpSduDelayDl)", min=0, nullable=True, optional=True),
        Column("RRU.PrbUsedDl", "float64", "PRB", "Mean DL PRBs used (28.552 5.1.1.2.1; 32.425 RRU.PrbDl)", min=0),
        Column("RRU.PrbUsedUl", "float64", "PRB", "Mean UL PRBs used (28.552 5.1.1.2.2; 32.425 RRU.PrbUl)", min=0, nullable=True, optional=True),
        Column("RRU.PrbAvailDl", "float64", "PRB", "DL PRBs available (28.552 5.1.1.2.3)", min=0),
        Column("RRU.PrbAvailUl", "float64", "PRB", "UL PRBs available (28.552 5.1.1.2.4)", min=0, nullable=True, optional=True),
        Column("MM.HoExeIntraReq", "int64", "count", "Outgoing handover executions requested (28.552 5.1.1.6.1; 32.425 HO.ExeAtt)", min=0, nullable=True, optional=True),
        Column("MM.HoExeIntraSucc", "int64", "count", "Successful outgoing handover executions (28.552 5.1.1.6.1; 32.425 HO.ExeSucc)", min=0, nullable=True, optional=True),
        Column("VS.UlInterfAvg", "float64", "dBm/PRB", "Vendor-specific: mean UL interference-plus-noise per PRB (VS. prefix per TS 32.404)", min=-140, max=-40, nullable=True, optional=True),
        Column("VS.CqiAvg", "float64", "CQI 0-15", "Vendor-specific: mean wideband CQI reported", min=0, max=15, nullable=True, optional=True),
    ),
    checks=(
        Check('"RRC.ConnEstabSucc" <= "RRC.ConnEstabAtt"', "more RRC successes than attempts", ("RRC.ConnEstabSucc",)),
        Check('"DRB.EstabSucc" <= "DRB.EstabAtt"', "more DRB successes than attempts", ("DRB.EstabSucc",)),
        Check('"MM.HoExeIntraSucc" <= "MM.HoExeIntraReq"', "more handover successes than attempts", ("MM.HoExeIntraSucc",)),
        Check('"RRU.PrbUsedDl" <= "RRU.PrbAvailDl" * 1.0001', "more DL PRBs used than available", ("RRU.PrbUsedDl",)),
    ),
)

RADIO_SAMPLES = Table(
    name="radio_samples",
    family="MR",
    description="UE measurement reports (MR / MDT): serving-cell radio at a time, with GPS position when the UE reported one.",
    grain="measurement report",
    key=(),
    partition_by="sample_time",
    columns=(
        Column("subscriber_id", "string", "-", "Reporting subscriber"),
        Column("sample_time", "timestamp", "UTC", "Measurement time"),
        Column("lat", "float64", "deg WGS84", "UE latitude (MDT / GPS); null when not reported", nullable=True, min=-90, max=90),
        Column("lon", "float64", "deg WGS84", "UE longitude; null when not reported", nullable=True, min=-180, max=180),
        Column("cell_id", "string", "-", "Serving cell"),
        Column("rsrp_dbm", "float64", "dBm", "Reference signal received power (TS 36.214 / 38.215)", min=-156, max=-31),
        Column("rsrq_db", "float64", "dB", "Reference signal received quality", min=-43, max=20),
        Column("sinr_db", "float64", "dB", "Signal to interference-plus-noise ratio", min=-23, max=40),
    ),
)

TABLES = (CELLS, PM, RADIO_SAMPLES)

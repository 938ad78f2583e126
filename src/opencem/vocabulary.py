"""The domain's words, defined once: services, causes of poor experience and fix actions. Every stage
(twin, NPS, loop, report, synthetic truth) takes them from here. What makes a session poor is data, in
the indicator tree (``poor_session`` per service; :func:`opencem.indicators.tree.poor_session_sql`).
"""

from __future__ import annotations

# Services of the xDR contract and of the default indicator tree.
SERVICES = ("web", "video", "voice", "gaming", "social", "file_transfer")

# Causes of poor experience the twin names; the last is "not the network".
NON_NETWORK = "non_network"
NETWORK_CAUSES = ("coverage", "interference", "congestion", "transport", "core_dns", "device")
CAUSES = NETWORK_CAUSES + (NON_NETWORK,)

# The fix for each network cause; the what-if, prioritise, tickets and the synthetic operator use it.
ACTION_FOR_CAUSE = {
    "congestion": "add_capacity",
    "transport": "fix_transport",
    "interference": "clear_interference",
    "core_dns": "fix_core",
    "device": "fix_device",
    "coverage": "restore_coverage",
}
FIX_ACTIONS = tuple(ACTION_FOR_CAUSE.values())
CAUSE_OF_ACTION = {a: c for c, a in ACTION_FOR_CAUSE.items()}


# A measurement report with weak coverage or heavy interference (the NPS radio features count them).
POOR_RSRP_DBM = -110
POOR_SINR_DB = 0

"""Proactive care: subscribers newly flagged as potential detractors with a network cause, and why,
in words a care agent can read to the customer."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pcsv
import pyarrow.parquet as pq

from ..engine.files import atomic_dir
from ..engine.pipeline import sql_file
from ..nps.score import ScoreResult
from ..vocabulary import NON_NETWORK
from ..workspace import Workspace

# the twin's tables the care list reads; a workspace not diagnosed yet has none: nobody was caught in an episode
NO_EPISODES = {
    "episodes": pa.schema([("episode_id", pa.string()), ("cause", pa.string()), ("start_time", pa.timestamp("us")),
                           ("evidence", pa.string())]),
    "episode_subscribers": pa.schema([("episode_id", pa.string()), ("subscriber_id", pa.string()), ("poor_sessions", pa.int64())]),
}


def outreach(workspace: Path, scored: ScoreResult, out: Path) -> pa.Table:
    """Potential detractors with a network cause who fell to detractor since the previous scoring,
    most valuable first, with the twin's episode (if they were in one) added to the reason."""
    ws = Workspace(workspace)
    diagnosed = (ws.twin / "episodes.parquet").exists()
    with ws.session(tables=()) as engine:
        engine.register_arrow("det", scored.detractors)
        engine.register_arrow("sc", scored.scores.select(["subscriber_id", "risk_flag", "plan", "value_tier", "predicted_class"]))
        for name, schema in NO_EPISODES.items():
            if diagnosed:
                engine.register_parquet(name, str(ws.twin / f"{name}.parquet"), hive_partitioning=False)
            else:
                engine.register_arrow(name, schema.empty_table())
        t = engine.query_arrow(sql_file("opencem.loop", "outreach"), {"non_network": NON_NETWORK}, step="outreach")
    with atomic_dir(out) as tmp:
        tmp.mkdir()
        pq.write_table(t, tmp / "outreach.parquet")
        pcsv.write_csv(t, tmp / "outreach.csv")
    return t

"""Proactive care: subscribers newly flagged as potential detractors with a network cause, and why,
in words a care agent can read to the customer."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pcsv
import pyarrow.parquet as pq

from ..engine.files import atomic_dir
from ..nps.features import connect
from ..nps.score import ScoreResult
from ..twin.run import twin_dir


def outreach(workspace: Path, scored: ScoreResult, out: Path) -> pa.Table:
    """Potential detractors with a network cause who fell to detractor since the previous scoring,
    most valuable first, with the twin's episode (if they were in one) added to the reason."""
    ws = Path(workspace)
    con = connect(ws)
    con.register("det", scored.detractors)
    con.register("sc", scored.scores.select(["subscriber_id", "risk_flag", "plan", "value_tier", "predicted_class"]))
    ep = twin_dir(ws) / "episodes.parquet"
    episodes = f"""SELECT es.subscriber_id, e.episode_id, e.cause AS episode_cause, e.start_time, e.evidence
                   FROM read_parquet('{twin_dir(ws) / 'episode_subscribers.parquet'}') es JOIN read_parquet('{ep}') e USING (episode_id)
                   WHERE e.cause <> 'non_network' AND es.poor_sessions > 0""" if ep.exists() else \
        "SELECT NULL::VARCHAR AS subscriber_id, NULL AS episode_id, NULL AS episode_cause, NULL::TIMESTAMP AS start_time, NULL AS evidence WHERE false"
    t = con.sql(f"""
      WITH last_ep AS (SELECT subscriber_id, arg_max(episode_id, start_time) AS episode_id, arg_max(episode_cause, start_time) AS episode_cause,
                              arg_max(start_time, start_time) AS episode_start, arg_max(evidence, start_time) AS evidence
                       FROM ({episodes}) GROUP BY subscriber_id)
      SELECT d.subscriber_id, sc.plan, sc.value_tier, round(d.arpu_monthly, 2) AS arpu_monthly, round(d.p_detractor, 3) AS p_detractor,
             -- the twin's episode names the cause where the subscriber's own evidence could not
             CASE WHEN d.cause = 'network (unclear)' AND e.episode_cause IS NOT NULL THEN e.episode_cause ELSE d.cause END AS cause,
             e.episode_id,
             d.reason || CASE WHEN e.episode_id IS NULL THEN ''
                              ELSE '; caught in ' || replace(e.episode_cause, '_', ' ') || ' episode ' || e.episode_id || ' from '
                                   || strftime(e.episode_start, '%d %b %H:%M') END AS reason
      FROM det d JOIN sc USING (subscriber_id) LEFT JOIN last_ep e USING (subscriber_id)
      WHERE d.network_cause AND sc.risk_flag
      ORDER BY d.arpu_monthly DESC, d.p_detractor DESC, d.subscriber_id""").to_arrow_table()
    con.close()
    with atomic_dir(out) as tmp:
        tmp.mkdir()
        pq.write_table(t, tmp / "outreach.parquet")
        pcsv.write_csv(t, tmp / "outreach.csv")
    return t

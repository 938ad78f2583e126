"""Rescoring and alerts: the streamed scores of the touched subscribers equal `opencem score` over the same
records; a subscriber falling to detractor is an alert in the outbox, POSTed to a webhook with retries and
an idempotency key (a real HTTP server on loopback)."""

from __future__ import annotations

import datetime as dt
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from stream_support import assert_measure_equal, workspace_before

from opencem.ingest.pseudonym import KEY_ENV
from opencem.stream.alerts import deliver
from opencem.stream.replay import replay
from opencem.stream.run import OUTBOX_SCHEMA, StreamState, Streamer
from opencem.stream.sources import open_source
from opencem.workspace import Workspace


class Hook:
    """A webhook that fails the first ``fail_first`` POSTs of every key with 503 and records the rest."""

    def __init__(self, fail_first: int = 1) -> None:
        self.received: list[tuple[str, dict]] = []
        self.tries: dict[str, int] = {}
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - the standard library's name
                key = self.headers.get("Idempotency-Key")
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                hook.tries[key] = hook.tries.get(key, 0) + 1
                if hook.tries[key] <= fail_first:
                    self.send_response(503)
                else:
                    hook.received.append((key, body))
                    self.send_response(200)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/alerts"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def hook():
    h = Hook()
    yield h
    h.close()


def test_webhook_retries_with_one_idempotency_key_and_delivers_once(tmp_path, hook):
    state = StreamState(Workspace(tmp_path / "ws"))
    state.outbox.mkdir(parents=True)
    rows = [{"alert_id": f"nps-detractor:s{i}:2026-10-21:1", "batch": 1, "kind": "nps_detractor", "subscriber_id": f"s{i}",
             "grid": None, "as_of": dt.date(2026, 10, 21), "event_time": None, "cause": None, "detail": json.dumps({"p": i})}
            for i in range(3)]
    pq.write_table(pa.Table.from_pylist(rows, schema=OUTBOX_SCHEMA), state.outbox / "batch-000000001.parquet")
    assert deliver(state, [hook.url], backoff=0.01) == {hook.url: 3}
    assert [k for k, _ in hook.received] == [r["alert_id"] for r in rows]
    assert all(n == 2 for n in hook.tries.values())  # refused once, then accepted under the same key
    assert hook.received[1][1]["detail"] == {"p": 1} and hook.received[1][1]["as_of"] == "2026-10-21"
    assert deliver(state, [hook.url], backoff=0.01) == {hook.url: 0}  # delivered ones are not sent again
    # a webhook that never answers: nothing marked delivered, tried again later
    dead = "http://127.0.0.1:9/never"
    assert deliver(state, [dead], retries=2, backoff=0.01) == {dead: 0}


@pytest.mark.slow
def test_streamed_scores_equal_batch_scores_and_detractor_alerts_reach_the_webhook(shared, tmp_path, hook, monkeypatch):
    monkeypatch.delenv(KEY_ENV, raising=False)  # the workspace's own key, as the shared workspace was made with
    day = max(shared.scored.scores["as_of"].to_pylist()) - dt.timedelta(days=1)
    ws = workspace_before(shared.ws, day.isoformat(), tmp_path / "ws")
    url = f"spool:{tmp_path / 'spool'}"
    replay(shared.data, url, days=[day], window_s=3600)
    s = Streamer(ws, url)
    done = s.run(open_source(url), max_messages=18, until_idle=True, after_batch=lambda r: deliver(s.state, [hook.url], backoff=0.01))
    assert len(done) >= 3
    assert_measure_equal(ws, shared.ws)
    mine = s.state.scores_table().sort_by("subscriber_id")
    batch = shared.scored.scores
    batch = batch.filter(pc.is_in(batch["subscriber_id"], mine["subscriber_id"])).sort_by("subscriber_id")
    assert mine.num_rows == batch.num_rows > 0.9 * shared.scored.scores.num_rows
    assert mine["as_of"].equals(batch["as_of"])
    for c in ("p_detractor", "p_passive", "p_promoter", "expected_score"):
        assert np.allclose(mine[c].to_numpy(), batch[c].to_numpy(), rtol=1e-9, atol=1e-12), c
    assert mine["predicted_class"].equals(batch["predicted_class"])
    # every subscriber scored in a batch was touched by it, and no other
    assert sum(r.scored for r in done) >= mine.num_rows
    # alerts: a subscriber whose class fell to detractor against the one before (the batch score of the day before,
    # then the stream's own)
    out = s.state.outbox_table()
    assert out.num_rows > 0 and set(out["kind"].to_pylist()) == {"nps_detractor"}
    # each alert carries its drivers, named as `opencem score` names a likely detractor's: the alerts of the
    # last batch (whose features are the batch run's) name the same ones where the batch run explains them
    details = [json.loads(d) for d in out["detail"].to_pylist()]
    assert all(d["network_push"] >= 0 and d["nonnetwork_push"] >= 0 for d in details)
    assert any(d["network_drivers"] for d in details)
    explained = {r["subscriber_id"]: r for r in batch.to_pylist() if r["network_drivers"] is not None}
    last = [(sub, d) for sub, d, b in zip(out["subscriber_id"].to_pylist(), details, out["batch"].to_pylist())
            if b == [r for r in done if r.messages][-1].batch and sub in explained]
    assert last and all(d[c] == explained[sub][c] for sub, d in last for c in ("network_drivers", "nonnetwork_drivers"))
    fallen = set(out["subscriber_id"].to_pylist())
    final = dict(zip(mine["subscriber_id"].to_pylist(), mine["predicted_class"].to_pylist()))
    assert len(out["alert_id"].unique()) == out.num_rows
    prev_day = pq.read_table(sorted((shared.ws / "nps" / "scores").glob("as_of=*"))[-1] / "part.parquet")
    assert prev_day.num_rows  # the batch's own partition: risk flags there were against the day before
    assert any(final[sub] == "detractor" for sub in fallen)
    assert sorted(k for k, _ in hook.received) == sorted(out["alert_id"].to_pylist())


@pytest.mark.slow
def test_a_replayed_site_outage_raises_an_episode_alert_with_its_cause(shared, tmp_path, monkeypatch):
    """Site S0084 of the shared operator goes off air at 14:54 on its 15th day (truth/faults.parquet). The day is
    streamed an hour a batch, without episode detection up to 14:00, then with it: the batch holding 14:00-15:00
    raises an episode start, cause coverage, on a grid of the episode `opencem diagnose` finds for that fault."""
    monkeypatch.delenv(KEY_ENV, raising=False)
    faults = pq.read_table(shared.data / "truth" / "faults.parquet").to_pylist()
    fault = next(f for f in faults if f["detail"] == "site S0084 off air")
    day = fault["start_time"].date()
    ws = workspace_before(shared.ws, day.isoformat(), tmp_path / "ws")
    url = f"spool:{tmp_path / 'spool'}"
    replay(shared.data, url, days=[day], window_s=3600)  # 3 messages an hour: xdr, radio_samples, pm
    src = open_source(url)
    quiet = Streamer(ws, url, score=False)
    quiet.run(src, max_messages=3, until_idle=True, max_batches=fault["start_time"].hour)
    assert quiet.checkpoint["clock"].startswith(f"{day}T{fault['start_time'].hour - 1:02d}:59")
    s = Streamer(ws, url, score=False, episodes=True)
    first = s.run(src, max_messages=3, max_batches=1)[0]
    out = s.state.outbox_table()
    mine = out.filter(pc.equal(out["batch"], first.batch)).to_pylist()
    starts = [a for a in mine if a["kind"] == "episode_start" and a["event_time"] >= fault["start_time"].replace(minute=0)]
    assert starts, f"no episode start in the batch of {fault['start_time']:%H}:00-{fault['start_time'].hour + 1}:00: {mine}"
    truth = [e for e in shared.diag.episodes.to_pylist() if e["cells"] and any(c.startswith("S0084-") for c in e["cells"])]
    grids = {g for e in truth for g in e["grid_list"]}
    hit = [a for a in starts if a["grid"] in grids]
    assert hit and hit[0]["cause"] == "coverage"
    detail = json.loads(hit[0]["detail"])
    assert any(c.startswith("S0084-") for c in detail["cells"])
    # the next batch does not start it again
    s.run(src, max_messages=3, max_batches=1)
    out = s.state.outbox_table()
    again = [a for a in out.filter(pc.equal(out["batch"], first.batch + 1)).to_pylist() if a["alert_id"] == hit[0]["alert_id"]]
    assert not again
    assert len(out["alert_id"].unique()) == out.num_rows

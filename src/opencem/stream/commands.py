"""The command-line verbs of this part, added to `opencem` by :func:`register` (heavy imports inside the verbs)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path

import typer


def register(app: typer.Typer, friendly_errors: Callable) -> None:
    """Add this part's verbs to the `opencem` app; each verb is wrapped in ``friendly_errors``."""

    @app.command("stream")
    @friendly_errors
    def stream(
        workspace: Path = typer.Option(..., "--workspace", help="A workspace `opencem measure` has filled (and `train nps`, for scores)"),
        source: str = typer.Option(..., "--source", help="spool:DIR (or a folder), redis://HOST:PORT/DB?stream=KEY, "
                                                         "nats://HOST:PORT?stream=NAME&subject=PREFIX, kafka://HOST:PORT?topic=NAME"),
        webhook: list[str] = typer.Option(None, "--webhook", help="POST each alert here (repeatable)"),
        max_messages: int = typer.Option(64, help="Messages per micro-batch at most"),
        until_idle: bool = typer.Option(False, "--until-idle", help="Stop when the source has nothing new"),
        max_batches: int = typer.Option(None, help="Stop after this many micro-batches"),
        poll: float = typer.Option(0.5, help="Seconds between polls of an idle source"),
        no_scores: bool = typer.Option(False, "--no-scores", help="Measure only, even with an NPS model"),
        episodes: bool = typer.Option(True, "--episodes/--no-episodes", help="Episode alerts: the twin's diagnosis after each batch"),
        episode_days: int = typer.Option(7, help="Days of grid state the episode detection looks at"),
        compact_after: int = typer.Option(None, help="Write a day folder's streamed files as one when it would hold this many (default 32)"),
        engine: str = typer.Option("duckdb", help="duckdb (the stream polls the source) or spark (Spark Structured "
                                                  "Streaming reads a spool folder and triggers the batches)"),
        spark_master: str = typer.Option("local[2]", help="With --engine spark: the Spark master"),
    ) -> None:
        """Consume session records, radio samples and PM as they arrive: measure the touched subscribers' days,
        rescore them, raise alerts; every micro-batch committed exactly once."""
        from opencem.stream.alerts import deliver
        from opencem.stream.run import Streamer
        from opencem.stream.sources import open_source

        def say(msg: str) -> None:
            typer.echo(msg)

        from opencem.errors import InputError

        if engine not in ("duckdb", "spark"):
            raise InputError(f"--engine {engine}: use duckdb or spark")
        s = Streamer(workspace, source, say=say, score=not no_scores, episodes=episodes, episode_days=episode_days,
                     **({"compact_after": compact_after} if compact_after else {}))
        typer.echo(f"streaming {source} into {workspace} after batch {s.checkpoint['batch']} (offset {s.checkpoint['offset']})")

        def after(r) -> None:
            recs = ", ".join(f"{n:,} {t}" for t, n in r.records.items()) or "no records"
            written = f"; measure tables of {', '.join(r.written)} written" if r.written else ""
            typer.echo(f"batch {r.batch}: {recs}; {r.pairs:,} subscriber-days measured, {r.scored:,} scored, "
                       f"{r.alerts} alerts{written}, {r.seconds:.2f} s")
            if webhook:
                deliver(s.state, list(webhook), say=say)

        try:
            if engine == "spark":
                import time

                from opencem.stream.sources import _kind
                from opencem.stream.spark import run_spark

                kind, where = _kind(source)
                if kind != "spool":
                    raise InputError(f"--engine spark reads a spool folder, not {source}")
                while True:
                    run_spark(s, Path(where), spark_master, max_messages, after_batch=after)
                    if until_idle:
                        return
                    time.sleep(poll)
            src = open_source(source)
            try:
                s.run(src, max_messages=max_messages, until_idle=until_idle, poll_seconds=poll, max_batches=max_batches,
                      after_batch=after)
            finally:
                src.close()
        finally:
            s.close()  # its engine

    @app.command("synth-replay")
    @friendly_errors
    def synth_replay(
        data: Path = typer.Option(..., "--data", help="A synth output folder (or a folder of input tables)"),
        source: str = typer.Option(..., "--source", help="Where to put the records: spool:DIR, redis://..., nats://..., kafka://...?topic=NAME[&partitions=N]"),
        rate: float = typer.Option(0.0, "--rate", help="Records per second (0: as fast as the source takes them)"),
        speed: float = typer.Option(None, "--speed", help="Times the records' own clock instead (1: real time)"),
        day: list[str] = typer.Option(None, "--day", help="Replay only this day, YYYY-MM-DD (repeatable)"),
        window: int = typer.Option(60, "--window", help="Seconds of records per message"),
    ) -> None:
        """Play a synthetic operator's session records, radio samples and PM into a source in time order."""
        from opencem.errors import InputError
        from opencem.stream.replay import replay

        try:
            days = [dt.date.fromisoformat(d) for d in day] if day else None
        except ValueError as e:
            raise InputError(f"--day: {e}") from None
        r = replay(data, source, days, rate=rate, speed=speed, window_s=window, say=typer.echo)
        total = sum(r.records.values())
        typer.echo(f"replayed {total:,} records in {r.messages:,} messages in {r.seconds:.1f} s "
                   f"({total / max(r.seconds, 1e-9):,.0f} records/s)")

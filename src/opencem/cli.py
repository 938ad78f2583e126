"""`opencem <verb>`: the command line of the loop."""

from __future__ import annotations

import datetime as dt
import functools
import os
import time
from pathlib import Path

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table as RichTable

from .api import commands as api_commands
from .errors import InputError
from .stream import commands as stream_commands

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="OpenCEM: customer experience management and network NPS for mobile operators.")
console = Console()


# Every option that takes a day: Typer parses it (to a datetime) and names the option when it fails.
DAY = {"formats": ["%Y-%m-%d"], "metavar": "YYYY-MM-DD"}


def _day(value: dt.datetime | None) -> dt.date | None:
    return value.date() if value else None


def friendly_errors(fn):
    """Show an error the user caused as one line (exit code 2, or 1 for data failing validation);
    anything else is a bug and keeps its traceback."""
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except Exception as e:
            code = _input_error_code(e)
            if code is None:
                raise
            console.print(f"[red]error:[/red] {escape(str(e))}", soft_wrap=True)  # one line, whatever the width
            raise typer.Exit(code) from None
    return wrapper


def _input_error_code(e: Exception) -> int | None:
    """The exit code of an error caused by the user's input, or None for a programming error. A StepError
    is one too: the inputs are checked (contracts, tree) before any SQL runs, so a failing step is our bug."""
    from opencem.contracts.validate import ContractError
    from opencem.indicators.tree import TreeError
    from opencem.loop.ticketing import TicketError

    if isinstance(e, (ContractError, TicketError)):  # data failing validation: a file's contract, the ticketing system
        return 1
    if isinstance(e, (FileNotFoundError, FileExistsError, TreeError)):
        return 2
    if isinstance(e, InputError):
        return 2
    return None


def _check_engine(engine: str) -> None:
    if engine not in ("duckdb", "spark"):
        raise InputError(f"unknown engine {engine!r}: use duckdb or spark")


def _progress() -> Progress:
    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                    console=console, transient=False)


@app.command()
def version() -> None:
    """Print the OpenCEM version."""
    from opencem import __version__

    console.print(__version__)


@app.command()
@friendly_errors
def contracts(
    table: str = typer.Argument(None, help="Only this table"),
    markdown: bool = typer.Option(False, "--markdown", help="Print the whole dictionary as Markdown"),
) -> None:
    """Print the data dictionary: every input table's columns with type, unit and meaning."""
    from opencem import contracts as c
    from opencem.contracts.dictionary import _range, to_markdown

    if markdown:
        print(to_markdown())
        return
    if table and table not in c.TABLES:
        raise InputError(f"unknown table {table!r}; known: {', '.join(c.TABLES)}")
    for t in [c.TABLES[table]] if table else c.TABLES.values():
        rt = RichTable(title=f"{t.name} ({t.family}) - {t.grain}; key: {', '.join(t.key) or '-'}", title_justify="left")
        for col in ("column", "type", "unit", "null", "range / values", "meaning"):
            rt.add_column(col, overflow="fold")
        for col in t.columns:
            rt.add_row(col.name, col.dtype, col.unit, "yes" if col.nullable else "no", _range(col), col.description)
        console.print(rt)


@app.command()
@friendly_errors
def synth(
    out: Path = typer.Option(..., "--out", help="Folder to create; gets inputs/ and truth/"),
    subscribers: int = typer.Option(10_000, help="Subscribers in the base"),
    days: int = typer.Option(14, help="Days of data"),
    seed: int = typer.Option(7, help="Random seed; the same seed gives the same files"),
    start: dt.datetime = typer.Option("2026-10-05", **DAY, help="First day"),
    fmt: str = typer.Option("parquet", "--format", help="parquet or csv (truth is always Parquet)"),
    workers: int = typer.Option(os.cpu_count() or 1, help="Processes (the output does not depend on it)"),
    fixes: bool = typer.Option(True, "--fixes/--no-fixes", help="Apply the scenario's fixes (add a carrier, repair a backhaul)"),
    survey_rate: float = typer.Option(0.03, help="Share of subscribers answering an NPS survey per month"),
    fix_day: int = typer.Option(None, help="Day index (0 = first day) the fixes take effect; default 60 % into the window"),
    apply_fixes: Path = typer.Option(None, "--apply-fixes", help="JSON list of fixes to carry out on --fix-day instead of "
                                     "the scenario's (fix_id, action, cells, device_model), e.g. a prioritise run's fix_requests.json"),
    overwrite: bool = typer.Option(False, help="Replace OUT if it exists"),
    profile: str = typer.Option("canonical", help="canonical (OpenCEM's contracts) or foreign (another operator's "
                                "names, units, local time and reduced PM, with OUT/mapping.yaml for `opencem import`)"),
) -> None:
    """Generate a synthetic operator: OSS/BSS input tables plus its hidden ground truth."""
    import shutil
    import tempfile

    from opencem.synth.faults import load_requests
    from opencem.synth.foreign import export_foreign
    from opencem.synth.generator import SynthConfig

    if profile not in ("canonical", "foreign"):
        raise InputError(f"--profile {profile!r}: use canonical or foreign")
    requests = load_requests(apply_fixes) if apply_fixes else ()
    cfg = SynthConfig(subscribers, days, seed, start.date().isoformat(), fmt, fixes, survey_rate, workers, fix_day, requests)
    if profile == "canonical":
        _run_synth(out, cfg, overwrite)
        return
    if out.exists() and not overwrite:
        raise InputError(f"{out} exists; pass --overwrite to replace it")
    with tempfile.TemporaryDirectory(dir=out.parent if out.parent.exists() else None) as tmp:
        _run_synth(Path(tmp) / "canonical", cfg, overwrite=False)
        with console.status("writing the foreign operator's export"):
            shutil.rmtree(out, ignore_errors=True)
            export_foreign(Path(tmp) / "canonical", out)
    console.print(f"foreign export in {out / 'inputs'}; bring it in with: opencem import --from {out / 'inputs'} "
                  f"--mapping {out / 'mapping.yaml'} --out DATA")


def _run_synth(out: Path, cfg, overwrite: bool) -> None:
    from opencem.synth.generator import generate

    t0 = time.perf_counter()
    with _progress() as bar:
        task = bar.add_task(f"synth {cfg.subscribers:,} subscribers x {cfg.days} days", total=None)
        generate(out, cfg, progress=lambda done, total: bar.update(task, completed=done, total=total), overwrite=overwrite)
    _print_summary(out, time.perf_counter() - t0)


def _print_summary(out: Path, seconds: float) -> None:
    from opencem.synth.summary import table_counts, truth_facts

    counts = table_counts(out / "inputs")
    rt = RichTable(title=f"inputs in {out / 'inputs'}", title_justify="left")
    for col in ("table", "rows", "files", "MiB"):
        rt.add_column(col, justify="right" if col != "table" else "left")
    for name, n, files, mib in counts:
        rt.add_row(name, f"{n:,}", str(files), f"{mib:.1f}")
    console.print(rt)
    total = sum(n for _, n, _, _ in counts)
    console.print(f"{total:,} rows in {seconds:.1f} s ({total / seconds:,.0f} rows/s)")
    f = truth_facts(out / "truth")
    d0, d1, n0, n1 = f["nps"]
    console.print(f"ground truth in {out / 'truth'}: census NPS {n0:+.1f} on {d0} -> {n1:+.1f} on {d1}")
    console.print("faults: " + ", ".join(f"{c} {n}" for c, n in f["fault_causes"]))
    console.print("churn decisions by cause (port-outs in window / all): "
                  + ", ".join(f"{c} {a}/{b}" for c, a, b in f["churn"]))
    for fx in f["fixes"]:
        console.print(f"fix {fx[0]} {fx[1]} {fx[2]} on {fx[3]}: {fx[4]} subscribers affected, throughput "
                      f"{fx[6] / 1000:.1f} -> {fx[5] / 1000:.1f} Mbit/s, their NPS {fx[8]:+.1f} -> {fx[7]:+.1f} (true effect)")


@app.command()
@friendly_errors
def validate(
    data: Path = typer.Argument(..., help="Folder with input tables (a synth output or its inputs/)"),
    quarantine: Path = typer.Option(None, help="Where bad rows go (default DATA/_quarantine)"),
) -> None:
    """Check every input file against its contract; bad rows go to a quarantine table with the reason."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from opencem.contracts import TABLES
    from opencem.contracts.validate import ContractError, collapse_warnings, find_table_files, inputs_folder, validate_file

    inputs = inputs_folder(data)
    quarantine = quarantine or inputs / "_quarantine"
    jobs = [(name, f) for name in TABLES for f in find_table_files(inputs, name)]
    if not jobs:
        raise FileNotFoundError(f"no input tables found in {inputs} (expected e.g. subscribers.parquet, xdr/)")
    bad, rejected, rows, own = [], [], {}, []
    with _progress() as bar:
        task = bar.add_task("validate", total=len(jobs))
        for name, f in jobs:
            try:
                r = validate_file(f, name, f.relative_to(inputs).as_posix())
                rows[name] = rows.get(name, 0) + r.valid.num_rows
                own += r.warnings()
                if not r.ok:
                    bad.append(r)
            except ContractError as e:
                rejected.append(str(e))
            bar.advance(task)
    for name in TABLES:
        if name in rows:
            n_bad = sum(r.quarantine.num_rows for r in bad if r.table == name)
            console.print(f"{name:15s} {rows[name]:>12,} valid rows  {n_bad:>8,} quarantined")
    for msg in collapse_warnings(own):
        console.print(f"[yellow]warning[/yellow] {escape(msg)}", soft_wrap=True)
    for msg in rejected:
        console.print(f"[red]rejected[/red] {msg}")
    if bad:
        quarantine.mkdir(parents=True, exist_ok=True)
        q = pa.concat_tables([r.quarantine for r in bad])
        pq.write_table(q, quarantine / "quarantine.parquet")
        for r in bad:
            for m in r.messages(5):
                console.print(f"[yellow]quarantined[/yellow] {m}")
        console.print(f"{q.num_rows:,} bad rows written to {quarantine / 'quarantine.parquet'}")
    if bad or rejected:
        raise typer.Exit(1)
    console.print("[green]all files meet their contracts[/green]")


@app.command("import")
@friendly_errors
def import_cmd(
    source: Path = typer.Option(..., "--from", help="The operator's folder of tables (CSV, Parquet, PM XML)"),
    mapping: Path = typer.Option(..., "--mapping", help="YAML: columns, units, time zone and values (docs/byod.md)"),
    out: Path = typer.Option(..., "--out", help="Folder to write OpenCEM's input tables to (replaced as a whole)"),
) -> None:
    """Bring an operator's own tables into OpenCEM's contracts through a mapping file."""
    from opencem.ingest.importer import REPORT_FOLDER, import_tables

    with _progress() as bar:
        task = bar.add_task("import", total=None)
        results = import_tables(source, mapping, out, lambda step, done, total: bar.update(
            task, description=step, completed=done, total=total))
    rt = RichTable(title=f"imported into {out}", title_justify="left")
    for col in ("table", "files", "rows", "quarantined", "rejected files"):
        rt.add_column(col, justify="left" if col == "table" else "right")
    for r in results:
        rt.add_row(r.table, str(len(r.files)), f"{r.rows:,}", f"{r.quarantined:,}", str(len(r.rejected)))
    console.print(rt)
    for r in results:
        for msg in r.rejected:
            console.print(f"[red]rejected[/red] {escape(msg)}", soft_wrap=True)
        for msg in r.warnings:
            console.print(f"[yellow]warning[/yellow] {escape(msg)}", soft_wrap=True)
    if any(r.quarantined for r in results):
        console.print(f"bad rows, with their source file, row and column: {out / REPORT_FOLDER / 'quarantine.parquet'}")
    if any(r.rejected for r in results):
        raise typer.Exit(1)


@app.command()
@friendly_errors
def doctor(
    data: Path = typer.Argument(..., help="Input tables (a synth output, its inputs/, or an operator's folder)"),
    json_out: Path = typer.Option(None, "--json", help="Also write the report as JSON here"),
) -> None:
    """Readiness of an operator's data: per table its rows, days, quarantined rows, values outside OpenCEM's
    defaults and empty columns, and what each missing table or column takes away."""
    import json

    from opencem.ingest.readiness import as_dict, check_readiness

    with _progress() as bar:
        task = bar.add_task("doctor", total=None)
        report = check_readiness(data, lambda step, done, total: bar.update(task, description=step, completed=done, total=total))
    rt = RichTable(title=f"readiness of {data}", title_justify="left")
    for col, just in (("table", "left"), ("status", "left"), ("files", "right"), ("rows", "right"),
                      ("quarantined", "right"), ("days", "left")):
        rt.add_column(col, justify=just)
    for r in report:
        days = f"{r.first_day} .. {r.last_day}" if r.first_day else ""
        rt.add_row(r.table, r.status, f"{r.files:,}", f"{r.rows:,}", f"{r.quarantined:,}", days)
    console.print(rt)
    for r in report:
        if r.effect:
            console.print(f"[yellow]{r.table}[/yellow]: {escape(r.effect)}", soft_wrap=True)
        for msg in r.rejected:
            console.print(f"[red]rejected[/red] {escape(msg)}", soft_wrap=True)
        for msg in r.warnings:
            console.print(f"[yellow]warning[/yellow] {escape(msg)}", soft_wrap=True)
    doc = as_dict(report)
    if json_out:
        json_out.write_text(json.dumps(doc, indent=1))
    console.print("[green]ready for `opencem measure`[/green]" if doc["ready_for_measure"]
                  else "[red]not ready for `opencem measure`: see the tables above[/red]")
    if not doc["ready_for_measure"]:
        raise typer.Exit(1)


@app.command()
@friendly_errors
def measure(
    data: Path = typer.Option(..., "--data", help="Input tables (a synth output or its inputs/)"),
    workspace: Path = typer.Option(..., "--workspace", help="Workspace: lake/, measure/, catalog.duckdb"),
    engine: str = typer.Option("duckdb", help="duckdb (embedded) or spark"),
    spark_master: str = typer.Option(None, help="Spark master URL (default local[*]); also OPENCEM_SPARK_MASTER"),
    tree: Path = typer.Option(None, help="Indicator tree YAML (default: the packaged tree)"),
    new_only: bool = typer.Option(False, "--new-only", help="Ingest only input files new or changed since the last "
                                  "run and recompute only the days they hold; keep every other day"),
) -> None:
    """KPI -> KQI -> CEI: ingest and pseudonymise the inputs, then compute every indicator table."""
    from opencem.measure.run import measure as run_measure

    _check_engine(engine)
    t0 = time.perf_counter()
    with _progress() as bar:
        task = bar.add_task("measure", total=None)

        def progress(step: str, done: int, total: int) -> None:
            bar.update(task, description=f"{step:28s}", completed=done, total=total)

        res = run_measure(data, workspace, engine, tree, spark_master or os.environ.get("OPENCEM_SPARK_MASTER"), progress,
                          new_only=new_only)
    if res.days is not None:
        days = ", ".join(d.isoformat() for d in res.days) or "none"
        console.print(f"{res.ingest.skipped:,} input files unchanged since the last run; days computed: {days}")
    rt = RichTable(title=f"measure on {res.engine} in {time.perf_counter() - t0:.1f} s", title_justify="left")
    rt.add_column("table")
    rt.add_column("rows", justify="right")
    for name, n in res.ingest.rows.items():
        rt.add_row(f"lake/{name}", f"{n:,}")
    for name, n in res.rows.items():
        rt.add_row(f"measure/{name}", f"{n:,}")
    console.print(rt)
    for msg in res.ingest.warnings:
        console.print(f"[yellow]warning[/yellow] {escape(msg)}", soft_wrap=True)
    for name, n in res.ingest.quarantined.items():
        console.print(f"[yellow]quarantined[/yellow] {n:,} rows of {name}: see {workspace / 'quarantine' / (name + '.parquet')}")
    for msg in res.ingest.rejected:
        console.print(f"[red]rejected[/red] {msg}")
    console.print(f"query the results: cd {workspace} && duckdb catalog.duckdb")


@app.command()
@friendly_errors
def calibrate(
    workspace: Path = typer.Option(..., "--workspace", help="A workspace `opencem measure` has filled"),
    tree: Path = typer.Option(None, help="Tree to start from (default: the packaged tree)"),
    out: Path = typer.Option(None, help="Where to write the calibrated tree (default WS/tree.calibrated.yaml)"),
    window_days: int = typer.Option(14, help="Days of experience before each answer"),
) -> None:
    """Fit the indicator tree's weights to survey answers and report CEI-survey correlations."""
    from opencem.indicators.tree import load_tree
    from opencem.measure.calibrate import calibrate as run_calibrate
    from opencem.workspace import Workspace

    rep = run_calibrate(workspace, load_tree(tree), window_days)
    out = out or Workspace(workspace).calibrated_tree
    rep.tree.to_yaml(out)
    console.print(f"surveys: {rep.surveys_train} fit, {rep.surveys_valid} to choose the blend, {rep.surveys_test} to test; "
                  f"blend towards the fitted weights: {rep.blend:g}")
    console.print(f"CEI vs answer, per respondent (test surveys): r = {rep.respondent_r_default:.3f} with the default "
                  f"weights, {rep.respondent_r_calibrated:.3f} calibrated (Spearman {rep.respondent_spearman_calibrated:.3f})")
    for seg, (groups, r0, r1) in rep.segment_r.items():
        console.print(f"CEI vs answer, segment means by {seg} ({groups} groups): r = {r0:.3f} default, {r1:.3f} calibrated")
    console.print(f"calibrated tree written to {out}; apply it with `opencem measure --tree {out}`")


@app.command("synth-check")
@friendly_errors
def synth_check(data: Path = typer.Argument(..., help="A synth output folder")) -> None:
    """Compare the synthetic operator's throughput, RTT and page loads with the 5Gophers measurements."""
    from opencem.contracts.validate import inputs_folder
    from opencem.synth.realism import compare_with_5gophers, render_markdown

    print(render_markdown(compare_with_5gophers(inputs_folder(data))))


train_app = typer.Typer(no_args_is_help=True, help="Fit models on a workspace (a scheduled step, separate from scoring).")
app.add_typer(train_app, name="train")


def _anchors(values: list[str] | None) -> list[tuple[dt.date, float]]:
    out = []
    for v in values or []:
        day, sep, nps = v.partition("=")
        try:
            out.append((dt.date.fromisoformat(day), float(nps)))
        except ValueError:
            raise InputError(f"--anchor {v!r}: expected DAY=NPS, e.g. 2026-10-19=12.5") from None
        if not sep:
            raise InputError(f"--anchor {v!r}: expected DAY=NPS, e.g. 2026-10-19=12.5")
    return out


@train_app.command("nps")
@friendly_errors
def train_nps_cmd(
    workspace: Path = typer.Option(..., "--workspace", help="A workspace `opencem measure` has filled"),
    anchor: list[str] = typer.Option(None, help="DAY=NPS from a representative study (market-research tracker); repeatable"),
    until: dt.datetime = typer.Option(None, **DAY, help="Only answers before this day, e.g. to judge a later change fairly"),
) -> None:
    """Train the network NPS model on the survey answers (time-split), save it with its model card."""
    from opencem.nps.train import train_nps
    from opencem.workspace import Workspace

    with console.status("training") as st:
        model = train_nps(workspace, anchor=_anchors(anchor), progress=lambda m: st.update(m), until=_day(until))
    folder = model.save(Workspace(workspace).model("nps"))
    c = model.card
    w = c["training_window"]
    console.print(f"answers: {w['answers']['fit']:,} fit ({w['fit'][0]}..{w['fit'][1]}), {w['answers']['validation']:,} "
                  f"validation, {w['answers']['test']:,} test ({w['test'][0]}..{w['test'][1]})")
    rt = RichTable(title="accuracy on later answers (respondents)", title_justify="left")
    for col in ("set", "answers", "detractor AUC", "promoter AUC", "log loss", "score MAE", "NPS answered", "NPS predicted"):
        rt.add_column(col, justify="right")
    for name, m in c["metrics_on_respondents"].items():
        rt.add_row(name, str(m["answers"]), f"{m['detractor_auc']:.3f}", f"{m['promoter_auc']:.3f}", f"{m['log_loss']:.3f}",
                   f"{m['score_mae']:.2f}", f"{m['nps_answers']:+.1f}", f"{m['nps_predicted']:+.1f}")
    console.print(rt)
    lv = c["level"]
    if lv["correction"] == "respondents":
        console.print(f"[yellow]level:[/yellow] {lv['meaning']}; add an nps_tracker table (a representative study) "
                      "or pass --anchor DAY=NPS")
    else:
        console.print(f"level: {lv['meaning']} (score shift {lv['shift']:+.3f}; {lv['tracker_answers']:,} tracker answers)")
    rw = c["response_weighting"]
    console.print("answers weighted by inverse response propensity" if rw["used"] else f"no response weighting: {rw['reason']}")
    console.print("top drivers: " + ", ".join(f["name"] for f in c["top_features_by_gain"][:8]))
    console.print(f"model and model card written to {folder}")


@train_app.command("churn")
@friendly_errors
def train_churn_cmd(
    workspace: Path = typer.Option(..., "--workspace", help="A workspace `opencem measure` has filled (with port-outs)"),
    until: dt.datetime = typer.Option(None, **DAY, help="Only port-outs known before this day (a model that has not seen later ones)"),
    every: int = typer.Option(7, help="Days between scoring days"),
) -> None:
    """Train the churn model (port-out hazard in months 1-4) on earlier scoring days, test on later ones, save it with its card."""
    from opencem.churn.train import train_churn
    from opencem.workspace import Workspace

    if every < 1:
        raise InputError(f"--every {every}: give at least 1")
    with console.status("training") as st:
        model = train_churn(workspace, until=_day(until), every=every, progress=lambda m: st.update(m))
    folder = model.save(Workspace(workspace).model("churn"))
    c = model.card
    w = c["training_window"]
    console.print(f"scoring days {w['scoring_days'][0]}..{w['scoring_days'][1]} every {w['every_days']} days; fit on days up to "
                  f"{w['fit_days'][1]} ({w['fit_person_months']:,} person-months, {w['fit_portouts']} port-outs), test from {w['test_days'][0]}")
    rt = RichTable(title="test: later scoring days, labels the fit could not see", title_justify="left")
    for col in ("horizon", "subscribers", "port-outs", "ROC-AUC", "top-decile lift"):
        rt.add_column(col, justify="right")
    for name, m in c["metrics"].items():
        rt.add_row(name.replace("_", " "), f"{m['subjects']:,}", str(m["churners"]), str(m["roc_auc"]), str(m["top_decile_lift"]))
    console.print(rt)
    console.print("top drivers: " + ", ".join(f["name"] for f in c["top_features_by_gain"][:8]))
    console.print(f"model and model card (JSON and Markdown) written to {folder}")


@app.command()
@friendly_errors
def score(
    what: str = typer.Argument("nps", help="nps (default) or churn"),
    workspace: Path = typer.Option(..., "--workspace", help="A workspace with measure tables and a trained model"),
    as_of: dt.datetime = typer.Option(None, **DAY, help="Score as of this day (default: the day after the last data)"),
    top: int = typer.Option(10, help="Potential detractors to print"),
    engine: str = typer.Option("duckdb", help="duckdb (embedded) or spark: where the features and evidence SQL runs"),
    spark_master: str = typer.Option(None, help="Spark master URL (default local[*]); also OPENCEM_SPARK_MASTER"),
    save_rates: Path = typer.Option(None, help="churn: YAML of action: save rate (0-1) replacing the stated defaults"),
    value_months: float = typer.Option(12.0, help="churn: months of ARPU a kept customer is worth"),
) -> None:
    """Score every subscriber's network NPS; NPS of the base, segments, grids and cells; potential detractors.
    `score churn`: each subscriber's port-out probability in months 1-4, the cause of the likely churners, the retention list."""
    import pyarrow.compute as pc

    from opencem.nps.score import score as run_score

    if what == "churn":
        return _score_churn(workspace, _day(as_of), top, save_rates, value_months)
    if what != "nps":
        raise InputError(f"score {what!r}: use nps (the default) or churn")
    _check_engine(engine)
    t0 = time.perf_counter()
    with console.status("scoring") as st:
        res = run_score(workspace, _day(as_of), progress=lambda m: st.update(m), engine=engine,
                        spark_master=spark_master or os.environ.get("OPENCEM_SPARK_MASTER"))
    secs = time.perf_counter() - t0
    b = res.base
    console.print(f"as of {res.as_of}: base network NPS {b['nps']:+.1f} (95 % {b['ci_low']:+.1f}..{b['ci_high']:+.1f}), "
                  f"{b['subscribers']:,} subscribers scored in {secs:.1f} s")
    seg = res.segments
    for dim in ("plan", "value_tier", "home_area"):
        rows = seg.filter(pc.equal(seg["dimension"], dim)).to_pylist()
        console.print(f"by {dim}: " + ", ".join(f"{r['segment']} {r['nps']:+.0f}" for r in rows))
    for dim in ("grid", "cell"):
        rows = seg.filter(pc.and_(pc.equal(seg["dimension"], dim), pc.greater_equal(seg["subscribers"], 30)))
        rows = rows.sort_by("nps").slice(0, 3).to_pylist()
        console.print(f"worst {dim}s (30+ subscribers): " + ", ".join(f"{r['segment']} {r['nps']:+.0f} (n={r['subscribers']})" for r in rows))
    d = res.detractors
    n_net = pc.sum(d["network_cause"]).as_py() or 0
    flags = pc.sum(res.scores["risk_flag"]).as_py() or 0
    console.print(f"potential detractors: {d.num_rows:,} ({n_net:,} with a network cause); "
                  f"{flags:,} newly fell to detractor since the previous scoring")
    rt = RichTable(title=f"top {top} potential detractors by value", title_justify="left")
    for col in ("rank", "subscriber", "ARPU", "P(detractor)", "cause", "why"):
        rt.add_column(col, overflow="fold")
    for r in d.slice(0, top).to_pylist():
        rt.add_row(str(r["rank"]), r["subscriber_id"][:10], f"{r['arpu_monthly']:.0f}", f"{r['p_detractor']:.2f}", r["cause"], r["reason"])
    console.print(rt)
    console.print(f"tables in {res.folder}: scores, segments, potential_detractors (as_of={res.as_of})")


def _score_churn(workspace: Path, as_of: dt.date | None, top: int, save_rates: Path | None, value_months: float) -> None:
    """`opencem score churn`: probabilities, causes and the retention list, printed and written."""
    import collections

    from opencem.churn.score import load_save_rates, score_churn

    rates = load_save_rates(save_rates)
    t0 = time.perf_counter()
    with console.status("scoring churn") as st:
        res = score_churn(workspace, as_of, save_rates=rates, value_months=value_months, progress=lambda m: st.update(m))
    s, r = res.scores, res.retention
    p4 = s["p_4m"].to_numpy()
    console.print(f"as of {res.as_of}: {s.num_rows:,} subscribers scored in {time.perf_counter() - t0:.1f} s; expected port-outs "
                  f"in 4 months {p4.sum():,.1f} ({100 * p4.mean():.2f} % of the base)")
    counts = collections.Counter(r["cause"].to_pylist())
    console.print("causes of the riskiest: " + ", ".join(f"{c} {n:,}" for c, n in counts.most_common()))
    console.print("save rates assumed: " + ", ".join(f"{a} {v:.0%}" for a, v in rates.items()) + f"; value = ARPU x {value_months:g} months")
    rt = RichTable(title=f"top {top} of the retention list by expected value saved", title_justify="left")
    for col in ("rank", "subscriber", "P(4 months)", "ARPU", "value saved", "action", "why"):
        rt.add_column(col, overflow="fold")
    for row in r.slice(0, top).to_pylist():
        rt.add_row(str(row["rank"]), row["subscriber_id"][:10], f"{row['p_4m']:.3f}", f"{row['arpu_monthly']:.0f}",
                   f"{row['expected_value_saved']:.2f}", row["action"], escape(row["evidence"] or ""))
    console.print(rt)
    console.print(f"tables in {res.folder}: scores, retention (as_of={res.as_of})")


@app.command()
@friendly_errors
def diagnose(
    workspace: Path = typer.Option(..., "--workspace", help="A workspace with measure tables"),
    start: dt.datetime = typer.Option(None, **DAY, help="First day (default: the first day of data)"),
    end: dt.datetime = typer.Option(None, **DAY, help="Day after the last (default: the day after the last data)"),
    resolution: int = typer.Option(9, help="H3 resolution of the grid (9: hexagons of about 0.1 km2)"),
    threshold: float = typer.Option(8.0, help="Robust z a grid-hour must pass to be anomalous"),
    geojson: Path = typer.Option(None, help="Also write the episodes as GeoJSON to this file"),
    state_geojson: Path = typer.Option(None, "--state-geojson", help="Also write the twin state of the whole window as GeoJSON"),
    top: int = typer.Option(15, help="Episodes to print"),
    engine: str = typer.Option("duckdb", help="duckdb (embedded) or spark: where the state and evidence SQL runs"),
    spark_master: str = typer.Option(None, help="Spark master URL (default local[*]); also OPENCEM_SPARK_MASTER"),
) -> None:
    """Digital twin: grid x hour state, poor-experience episodes with root cause, cells and evidence."""
    import collections

    from opencem.twin.episodes import DetectConfig
    from opencem.twin.run import diagnose as run_diagnose
    from opencem.twin.run import episodes_geojson, write_geojson
    from opencem.twin.run import state_geojson as twin_state_geojson

    _check_engine(engine)
    t0 = time.perf_counter()
    with console.status("diagnosing") as st:
        d = run_diagnose(workspace, _day(start), _day(end), resolution, DetectConfig(threshold=threshold), progress=lambda m: st.update(m),
                         engine=engine, spark_master=spark_master or os.environ.get("OPENCEM_SPARK_MASTER"))
    ep = d.episodes
    console.print(f"{d.start} .. {d.end - dt.timedelta(days=1)}: {d.grid_hours:,} grid-hours, {ep.num_rows} episodes "
                  f"in {time.perf_counter() - t0:.0f} s (state of {d.days_built} days built, {d.days_reused} kept from earlier runs)")
    if ep.num_rows:
        by = collections.Counter(ep["cause"].to_pylist())
        console.print("by cause: " + ", ".join(f"{c} {n}" for c, n in by.most_common()))
        rt = RichTable(title=f"top {top} episodes by affected subscribers' value (ARPU)", title_justify="left")
        for col in ("episode", "start", "hours", "grids", "affected", "ARPU", "cause", "conf", "cells", "evidence"):
            rt.add_column(col, overflow="fold")
        for r in ep.sort_by([("affected_arpu", "descending"), ("episode_id", "ascending")]).slice(0, top).to_pylist():
            hours = (r["end_time"] - r["start_time"]).total_seconds() / 3600
            cells = ", ".join(r["cells"][:2]) + (" ..." if len(r["cells"]) > 2 else "") if r["cells"] else (r["device_model"] or "")
            rt.add_row(r["episode_id"], f"{r['start_time']:%m-%d %H:%M}", f"{hours:.0f}", str(r["grids"]), str(r["affected_subscribers"]),
                       f"{r['affected_arpu']:,.0f}", r["cause"], f"{r['confidence']:.2f}", cells, r["evidence"])
        console.print(rt)
    if geojson:
        write_geojson(geojson, episodes_geojson(ep))
        console.print(f"episodes GeoJSON: {geojson}")
    if state_geojson:
        write_geojson(state_geojson, twin_state_geojson(workspace, dt.datetime.combine(d.start, dt.time()),
                                                        dt.datetime.combine(d.end, dt.time())))
        console.print(f"twin state GeoJSON: {state_geojson}")
    console.print(f"tables in {d.folder}: state_grid_hour, state_grid_cell_hour, episodes, episode_units, episode_subscribers")


@app.command()
@friendly_errors
def whatif(
    workspace: Path = typer.Option(..., "--workspace", help="A workspace with measure tables and a trained NPS model"),
    action: str = typer.Option(..., help="add_capacity, fix_transport, clear_interference, fix_core, fix_device or restore_coverage"),
    start: dt.datetime = typer.Option(..., **DAY, help="First day the change applies"),
    end: dt.datetime = typer.Option(..., **DAY, help="Day after the last; NPS is predicted as of this day"),
    cells: str = typer.Option(None, help="Comma-separated cells the change touches"),
    device_model: str = typer.Option(None, "--device-model", help="The device model (fix_device)"),
    factor: float = typer.Option(0.5, help="add_capacity: PRB load multiplier (0.5 = a second carrier of the same size)"),
    horizon_days: int = typer.Option(None, help="Make the change this many days before END (default: at START); "
                                                "the NPS lift is the mean over those days"),
) -> None:
    """Predict what a fix would have changed: replay the sessions it touches, measure and score them."""
    from opencem.twin.whatif import whatif as run_whatif

    with console.status("replaying the sessions, measuring and scoring"):
        w = run_whatif(workspace, action, start.date(), end.date(), cells=cells.split(",") if cells else None,
                       device_model=device_model, factor=factor, horizon_days=horizon_days)
    b, a = w.kqi_before, w.kqi_after
    console.print(f"{w.action} on {w.scope}: {w.sessions:,} sessions of {w.subscribers:,} subscribers")
    console.print(f"poor sessions {b['poor_share']:.1%} -> {a['poor_share']:.1%}, RTT {b['rtt_ms']:.0f} -> {a['rtt_ms']:.0f} ms, "
                  f"throughput {b['throughput_kbps'] / 1000:.1f} -> {a['throughput_kbps'] / 1000:.1f} Mbit/s")
    low, high = w.nps_lift_interval
    console.print(f"CEI {w.cei_change:+.2f} points per subscriber-day touched; their network NPS "
                  f"{w.nps_before:+.1f} -> {w.nps_after:+.1f} ({w.nps_lift:+.1f} points; 95 % {low:+.1f}..{high:+.1f} for the model's error)")


@app.command()
@friendly_errors
def prioritise(
    workspace: Path = typer.Option(..., "--workspace", help="A workspace `opencem diagnose` has filled, with a trained NPS model"),
    as_of: dt.datetime = typer.Option(None, **DAY, help="Day the fixes would start (default: the day after the data)"),
    lookback_days: int = typer.Option(14, help="Days of episodes and what-if before AS_OF"),
    budget: int = typer.Option(8, help="Budget in cost units (low 1, medium 2, high 4)"),
    horizon_days: int = typer.Option(7, help="Days after a fix its expected NPS lift is averaged over (verification's window)"),
) -> None:
    """Candidate fixes from the twin's episodes (transient and chronic), ranked by expected NPS lift x value per cost."""
    from opencem.loop.prioritise import prioritise as run_prioritise

    with _progress() as bars:
        task = bars.add_task("what-if", total=None)
        p = run_prioritise(workspace, _day(as_of), lookback_days, budget,
                           progress=lambda m, d, t: bars.update(task, description=m[:40], completed=d, total=t),
                           horizon_days=horizon_days)
    rt = RichTable(title=f"candidate fixes as of {p.as_of}", title_justify="left")
    for col in ("rank", "fix", "sev. rank", "action", "target", "days/7", "subscribers", "ARPU", "NPS lift", "95 %", "base lift", "cost"):
        rt.add_column(col, overflow="fold")
    for r in p.candidates.to_pylist():
        rt.add_row(str(r["rank"]), r["fix_id"], str(r["severity_rank"]), r["action"], r["target"][:40], str(r["days_seen_last_week"]),
                   f"{r['subscribers']:,}", f"{r['revenue']:,.0f}", f"{r['expected_nps_lift']:+.2f}",
                   f"{r['expected_nps_lift_low']:+.1f}..{r['expected_nps_lift_high']:+.1f}", f"{r['expected_base_nps_lift']:+.3f}", r["cost_class"])
    console.print(rt)
    c = p.comparison
    console.print(f"budget {c['budget_units']} units buys {', '.join(c['ours']['fixes'])} by our rank (expected {c['ours']['expected_base_nps_lift']:+.3f} "
                  f"base NPS, 95 % {c['ours']['expected_base_nps_lift_low']:+.3f}..{c['ours']['expected_base_nps_lift_high']:+.3f} for the "
                  f"model's error) vs {', '.join(c['severity']['fixes'])} by severity ({c['severity']['expected_base_nps_lift']:+.3f})")
    console.print(f"{len(p.plans)} plans; tables in {p.folder}: candidates.parquet, plans.json, fix_requests.json, comparison.json")


@app.command()
@friendly_errors
def tickets(
    workspace: Path = typer.Option(..., "--workspace", help="A workspace `opencem prioritise` has filled"),
    out: Path = typer.Option(None, help="Folder for the TMF JSON files (default WS/loop/tickets)"),
    endpoint: str = typer.Option(None, help="TMF621 API root to POST the trouble tickets to, e.g. http://host/tmf-api/troubleTicket/v5"),
) -> None:
    """Export the plans as TMF621 TroubleTicket and TMF656 ServiceProblem JSON (validated), and send them."""
    import json

    from opencem.loop import tmf
    from opencem.loop.ticketing import send_tickets
    from opencem.workspace import Workspace

    loop = Workspace(workspace).loop
    plans = json.loads((loop / "prioritise" / "plans.json").read_text())
    out = out or loop / "tickets"
    paths = tmf.export(plans, out)
    ok = all(tmf.spec_available(a) for a in ("TMF621", "TMF656"))
    console.print(f"{len(plans)} plans -> {len(paths)} files in {out}" + (" (validated against TMF621 / TMF656 v5)" if ok else
                  f" [yellow](not validated: no specs in {tmf.spec_dir()}; set OPENCEM_TMF_SPECS)[/yellow]"))
    if endpoint:
        rep = send_tickets([tmf.trouble_ticket(p) for p in plans], endpoint, out / "ledger.json")
        console.print(f"sent {rep.sent}, already sent {rep.skipped}, failed {rep.failed} (ledger {out / 'ledger.json'})")


@app.command()
@friendly_errors
def verify(
    workspace: Path = typer.Option(..., "--workspace", help="A workspace measured after the fix, with a trained NPS model"),
    fix_date: dt.datetime = typer.Option(..., **DAY, help="First day the fix was in place"),
    cells: str = typer.Option(None, help="Comma-separated cells the fix touched"),
    device_model: str = typer.Option(None, "--device-model", help="Or the device model of a device campaign"),
    days: int = typer.Option(28, help="Days after the fix to read (fewer if the data ends sooner); the 7 before are the baseline"),
    predicted: float = typer.Option(None, help="The NPS lift the fix was expected to bring (for the comparison)"),
) -> None:
    """NPS, CEI and KQI change of the subscribers a fix touched against matched controls (DiD, event study, placebo)."""
    from opencem.loop.verify import verify as run_verify

    if bool(cells) == bool(device_model):
        raise InputError("give either --cells or --device-model")
    with console.status("matching controls and scoring every day around the fix"):
        v = run_verify(workspace, [{"fix_id": "fix", "cells": cells.split(",") if cells else [], "device_model": device_model,
                                    "fix_date": fix_date.date(), "expected_nps_lift": predicted}], days)[0]
    if "not_verified" in v:
        raise InputError(v["not_verified"])
    rt = RichTable(title=f"{v['subscribers']:,} treated vs {v['controls']:,} matched controls, {v['pre_days']} days before "
                         f"and {v['window_days']} after", title_justify="left")
    for col in ("metric", "treated before", "treated after", "DiD", "95 % CI"):
        rt.add_column(col, justify="right")
    for e in v["effects"]:
        rt.add_row(e["metric"], f"{e['treated_before']:.3f}", f"{e['treated_after']:.3f}", f"{e['estimate']:+.3f}",
                   f"{e['ci_low']:+.3f} .. {e['ci_high']:+.3f}")
    console.print(rt)
    p = v["placebo"]
    console.print(f"placebo ({v['pre_days']} days earlier, nothing done): NPS {p['estimate']:+.2f} ({p['ci_low']:+.2f} .. {p['ci_high']:+.2f})")
    console.print("event study, NPS treated - controls by day from the fix: "
                  + " ".join(f"{r['day']:+d}:{r['estimate']:+.1f}" for r in v["event_study"]))
    console.print(f"verdict: {v['verdict']}" + "".join(f"\n  - {w}" for w in v["warnings"]))
    if predicted is not None:
        console.print(f"predicted NPS lift {predicted:+.2f}, realised {v['realised_nps_lift']:+.2f}")


@app.command()
@friendly_errors
def segments(
    workspace: Path = typer.Option(..., "--workspace", help="A workspace `opencem score` has filled"),
    as_of: dt.datetime = typer.Option(None, **DAY, help="A day the NPS stage scored (default: the latest)"),
    clusters: int = typer.Option(6, help="Behavioural clusters (k-means, fixed seed)"),
    timezone: str = typer.Option("UTC", help="The operator's time zone (IANA name), for time of day and day / night places"),
) -> None:
    """Segments of the base (value x experience, behaviour, mobility, device, place), each with its size, NPS,
    churn risk and ARPU."""
    from opencem.segments.segment import segment

    if clusters < 1:
        raise InputError(f"--clusters {clusters}: give at least 1")
    t0 = time.perf_counter()
    with console.status("segmenting") as st:
        res = segment(workspace, _day(as_of), clusters, timezone, progress=lambda m: st.update(m))
    th = res.thresholds
    n = res.members.num_rows
    console.print(f"as of {res.as_of}: {n:,} subscribers in {time.perf_counter() - t0:.1f} s; value x experience split at the "
                  f"base's medians: ARPU {th['arpu_median']:.2f} EUR/month, network NPS estimate {th['expected_score_median']:.2f} "
                  f"(expected 0-10 answer); behaviour over the {th['window_days']} days before, in {th['timezone']}")
    seg = res.segments
    for dim in ("value_experience", "behaviour", "mobility", "device_capability", "device_vendor", "district", "grid"):
        rows = [r for r in seg.to_pylist() if r["dimension"] == dim]
        shown = rows if dim != "grid" else sorted((r for r in rows if r["subscribers"] >= 30), key=lambda r: r["nps"])[:5]
        title = f"{dim} ({len(rows)} segments)" + (": the 5 worst grids with 30+ subscribers" if dim == "grid" else "")
        rt = RichTable(title=title, title_justify="left")
        for col in ("segment", "subscribers", "share", "NPS", "churn risk", "ARPU"):
            rt.add_column(col, justify="left" if col == "segment" else "right", overflow="fold")
        for r in shown:
            risk = f"{r['churn_risk']:.3f}" if r["churn_risk"] is not None else "-"
            rt.add_row(r["segment"], f"{r['subscribers']:,}", f"{r['share']:.1%}", f"{r['nps']:+.1f}", risk, f"{r['arpu_mean']:.2f}")
        console.print(rt)
        if dim == "behaviour":
            for r in shown:
                console.print(f"  {escape(r['segment'])}: {escape(r['definition'])}", soft_wrap=True)
    for note in res.notes:
        console.print(f"[yellow]note:[/yellow] {escape(note)}", soft_wrap=True)
    console.print(f"tables in {res.folder}: segments.parquet, members.parquet")


@app.command()
@friendly_errors
def campaigns(
    workspace: Path = typer.Option(..., "--workspace", help="A workspace `opencem score` has filled"),
    as_of: dt.datetime = typer.Option(None, **DAY, help="A day the NPS stage scored (default: the latest)"),
    area: list[str] = typer.Option(None, help="Proactive care only in this district (home_area) or grid; repeatable"),
    without_nr: list[str] = typer.Option(None, "--without-nr", help="Device capability labels that cannot use NR (default: "
                                         "the labels whose devices were never seen on NR); repeatable"),
    care_effect: float = typer.Option(0.3, help="Share of contacted likely detractors a proactive contact and fix turn passive"),
    device_take_up: float = typer.Option(0.05, help="Share of the device-upsell list assumed to buy an NR device"),
    plan_take_up: float = typer.Option(0.10, help="Share of the plan-upsell list assumed to move up a plan"),
    save_rate: float = typer.Option(0.2, help="Share of would-be churners a retention offer keeps (when the churn list has no value)"),
    win_back_rate: float = typer.Option(0.05, help="Share of port-outs a win-back offer brings back"),
    win_back_days: int = typer.Option(90, help="Port-outs of this many days before the day are won back"),
) -> None:
    """Campaign lists (proactive care, NR device upsell, plan upsell, retention, win-back) with size, expected uplift
    and its assumption; marketing lists hold only subscribers with marketing consent. CSV and Parquet."""
    from opencem.segments.campaigns import Assumptions
    from opencem.segments.campaigns import campaigns as run_campaigns

    for name, v in (("--care-effect", care_effect), ("--device-take-up", device_take_up), ("--plan-take-up", plan_take_up),
                    ("--save-rate", save_rate), ("--win-back-rate", win_back_rate)):
        if not 0 <= v <= 1:
            raise InputError(f"{name} {v}: a share between 0 and 1")
    a = Assumptions(care_effect, device_take_up, plan_take_up, save_rate, win_back_rate)
    with console.status("building the lists") as st:
        res = run_campaigns(workspace, _day(as_of), area or None, a, without_nr or None, win_back_days,
                            progress=lambda m: st.update(m))
    rt = RichTable(title=f"campaign lists as of {res.as_of}", title_justify="left")
    for col in ("list", "marketing", "subscribers", "left out: no consent", "expected uplift", "assumption"):
        rt.add_column(col, justify="right" if col in ("subscribers", "left out: no consent") else "left", overflow="fold")
    for r in res.summary.to_pylist():
        up = f"{r['expected_uplift']:,.2f} {r['uplift_unit']}" if r["expected_uplift"] is not None else "-"
        rt.add_row(r["list"], "yes" if r["marketing"] else "no (service)", f"{r['subscribers']:,}" if r["available"] else "-",
                   f"{r['left_out_without_consent']:,}", up, r["assumption"])
    console.print(rt)
    for note in res.notes:
        console.print(f"[yellow]note:[/yellow] {escape(note)}", soft_wrap=True)
    console.print(f"lists in {res.folder}: <list>.csv and <list>.parquet, summary in campaigns.csv / campaigns.parquet")


@app.command()
@friendly_errors
def demo(
    out: Path = typer.Option(Path("opencem-demo"), "--out", help="Working folder"),
    subscribers: int = typer.Option(10_000, help="Subscribers in the base"),
    days: int = typer.Option(28, help="Days of data"),
    seed: int = typer.Option(7, help="Random seed"),
    fix_day: int = typer.Option(21, help="Day index (0 = first day) from which the operator's fixes are in place"),
    budget: int = typer.Option(8, help="Fix budget in cost units (low 1, medium 2, high 4)"),
    engine: str = typer.Option("duckdb", help="duckdb or spark"),
    survey_rate: float = typer.Option(0.3, help="Share of subscribers answering an NPS survey per month"),
    ticket_endpoint: str = typer.Option(None, help="TMF621 API root to send the trouble tickets to (they are written as files anyway)"),
) -> None:
    """The closed loop on a fresh synthetic operator: measure, diagnose, prioritise, plan and ticket, the
    operator carries out the top fixes, verify; writes OUT/report.html."""
    from opencem.demo import LoopConfig, run_loop

    _check_engine(engine)
    if not 7 <= fix_day <= days - 3:
        raise InputError(f"--fix-day {fix_day}: needs a week of data before it and 3 days after (7 .. {days - 3})")
    cfg = LoopConfig(subscribers, days, seed, fix_day, budget, survey_rate, os.cpu_count() or 1, engine, ticket_endpoint)
    t0 = time.perf_counter()
    with _progress() as bars:
        tasks: dict[str, int] = {}

        def bar(label: str):
            if label in tasks:
                bars.remove_task(tasks.pop(label))
            tasks[label] = bars.add_task(label, total=None)
            return lambda done, total: bars.update(tasks[label], completed=done, total=total)

        res = run_loop(out, cfg, say=lambda m: bars.console.rule(m) if m[0].isdigit() else bars.console.print(m), bar=bar)
    s = res.summary
    k, r = s["kpis"], s["ranking"]
    console.print(f"base network NPS {k['base_nps']:+.1f} (true {k['true_nps']:+.1f}); {k['episodes']} episodes; "
                  f"{k['fixes_applied']} fixes carried out")
    console.print(f"same budget ({r['budget']}): our ranking gains {r['ours']['true']:+.3f} base-NPS points (expected "
                  f"{r['ours']['expected']:+.3f}, 95 % {r['ours']['expected_low']:+.2f}..{r['ours']['expected_high']:+.2f}), severity "
                  f"ranking {r['severity']['true']:+.3f} (expected {r['severity']['expected']:+.3f})")
    for v in s["verification"]:
        e = next(x for x in v["effects"] if x["metric"] == "nps")
        console.print(f"verified {v['fix_id']}: NPS {e['estimate']:+.1f} (95 % {e['ci_low']:+.1f}..{e['ci_high']:+.1f}) on {v['subscribers']} "
                      f"subscribers; predicted {v['predicted_nps_lift']:+.1f}, true {v['true_nps_lift']:+.1f} "
                      f"({v['true_nps_lift_treated']:+.1f} on these subscribers); placebo {v['placebo']['estimate']:+.1f}; "
                      f"{v['verdict']}")
    t = s["tickets"]
    console.print(f"{t['plans']} plans -> {t['files']} TMF621/TMF656 files in {out / 'tickets'}" + ("" if t["validated"] else
                  " [yellow](not validated: TMF specs not found)[/yellow]") + (f"; sent {t['sent']}, skipped {t['skipped']}" if "sent" in t else ""))
    console.print(f"proactive care list: {s['care_total']} subscribers in {out / 'care' / 'outreach.csv'}")
    lists = ", ".join(f"{c['list'].replace('_', ' ')} {c['subscribers']:,}" for c in s["campaigns"] if c["available"])
    console.print(f"campaign lists: {lists} in {out / 'after' / 'workspace' / 'segments' / 'campaigns'}")
    console.print(f"report: {res.report}  ({time.perf_counter() - t0:.0f} s)")


# the parts that add verbs of their own: the HTTP API (serve, clients) and streaming (stream, synth-replay)
api_commands.register(app, friendly_errors)
stream_commands.register(app, friendly_errors)

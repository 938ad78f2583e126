"""The workspace: one folder per operator, and the one object that knows its layout and opens its engine.

```
WS/
  .secrets/pseudonym.key   the keyed-hash key (never leaves the workspace)
  .spill/                  the engine's spill files past its memory limit
  lake/<table>/            validated, pseudonymised inputs (ingest)
  measure/<table>/         KPI, KQI, CEI (measure)
  catalog.duckdb           views over measure/ for ad-hoc SQL
  models/<name>/           trained models and their cards (train)
  nps/<table>/as_of=D/     scores, segments, potential detractors (score)
  twin/                    grid x hour state, episodes (diagnose)
  loop/                    candidates, plans, tickets, verifications (prioritise, verify)
  churn/<table>/as_of=D/   churn probabilities, causes, the retention list (score churn)
  segments/<table>/as_of=D/ segments and campaign lists (segments, campaigns)
```

Every stage after measure reads the lake and measure tables through :meth:`Workspace.session`, an
engine with one view per table; no stage builds a workspace path or opens a database itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from . import contracts
from .contracts.base import DUCKDB_TYPES
from .engine import Engine, make_engine, quote_ident

LAKE_TABLES = ("subscribers", "cells", "pm", "xdr", "radio_samples", "surveys", "care_contacts", "portouts",
               "tariffs", "survey_invitations", "nps_tracker", "subscriber_contracts")
MEASURE_TABLES = ("kpi_cell_15min", "kqi_pspu_day", "cei_service_day", "cei_subscriber_day", "cei_journey_day",
                  "radio_subscriber_day", "subscriber_position_day", "subscriber_cell_day", "poor_session_day")
# lake tables an operator may not have: an empty table of the contract's shape stands in
# (nobody left, no tariff history, no invitation log, no representative study)
OPTIONAL_LAKE = ("portouts", "tariffs", "survey_invitations", "nps_tracker", "subscriber_contracts")


def empty_table_sql(name: str) -> str:
    """A SELECT giving no rows with the columns and types of the contract ``name``."""
    cols = ", ".join(f"CAST(NULL AS {DUCKDB_TYPES[c.dtype]}) AS {quote_ident(c.name)}" for c in contracts.get(name).columns)
    return f"SELECT {cols} WHERE false"


@dataclass(frozen=True)
class Workspace:
    root: Path

    def __init__(self, root: str | Path) -> None:
        object.__setattr__(self, "root", Path(root))

    # -- layout ------------------------------------------------------------------------------------
    @property
    def lake(self) -> Path:
        return self.root / "lake"

    @property
    def measure(self) -> Path:
        return self.root / "measure"

    @property
    def catalog(self) -> Path:
        return self.root / "catalog.duckdb"

    @property
    def nps(self) -> Path:
        return self.root / "nps"

    @property
    def twin(self) -> Path:
        return self.root / "twin"

    @property
    def twin_days(self) -> Path:
        """The twin's state of each day, kept between runs (twin/state.py)."""
        return self.root / "twin_days"

    @property
    def loop(self) -> Path:
        return self.root / "loop"

    @property
    def churn(self) -> Path:
        return self.root / "churn"

    @property
    def segments(self) -> Path:
        return self.root / "segments"

    @property
    def calibrated_tree(self) -> Path:
        """The indicator tree `opencem calibrate` fitted to this operator's surveys."""
        return self.root / "tree.calibrated.yaml"

    @property
    def spill(self) -> Path:
        """Where the engine spills what does not fit in its memory limit (emptied by the engine)."""
        return self.root / ".spill"

    @property
    def pseudonym_key(self) -> Path:
        return self.root / ".secrets" / "pseudonym.key"

    def model(self, name: str) -> Path:
        return self.root / "models" / name

    def lake_files(self, table: str) -> list[str]:
        return _parquet_files(self.lake / table)

    def measure_files(self, table: str) -> list[str]:
        return _parquet_files(self.measure / table)

    def twin_files(self, table: str) -> list[str]:
        return _parquet_files(self.twin / table)

    # -- engine ------------------------------------------------------------------------------------
    def session(self, engine: str = "duckdb", tables: tuple[str, ...] = LAKE_TABLES + MEASURE_TABLES,
                on_disk: str | None = None, **kwargs) -> Engine:
        """An engine with a view per lake and measure table of this workspace.

        ``on_disk`` (DuckDB): the session's tables live in a scratch database file of that name in the spill
        folder, deleted on close. DuckDB stores them compressed and can evict them without writing them
        again, where the tables of an in-memory database spill uncompressed: for stages whose tables
        outgrow the memory limit.

        A table without files raises a one-line error naming its folder, except the optional lake
        tables (:data:`OPTIONAL_LAKE`) and the measure tables nobody asked for.
        """
        if on_disk:
            kwargs.update(database=self.spill / f"{on_disk}.duckdb", scratch=True)
        eng = make_engine(engine, spill_dir=self.spill, **kwargs)
        try:
            self.register(eng, tables)
        except BaseException:
            eng.close()
            raise
        return eng

    def register(self, eng: Engine, tables: tuple[str, ...], known: dict[str, list[str]] | None = None) -> None:
        """A view per table in ``eng`` over this workspace's files (see :meth:`session`). ``known``: the files
        each view was made over before, in an engine kept open; a view over the same files is kept, and
        ``known`` is updated."""
        for name in tables:
            folder = (self.measure if name in MEASURE_TABLES else self.lake) / name
            files = _parquet_files(folder)
            if known is not None and known.get(name) == files:
                continue
            if files:
                eng.register_parquet(name, files)
            elif name in OPTIONAL_LAKE:
                eng.create_view(name, empty_table_sql(name))
            else:
                raise FileNotFoundError(f"{folder}: no table '{name}' here; run `opencem measure` on this workspace first")
            if known is not None:
                known[name] = files


def _parquet_files(folder: Path) -> list[str]:
    return sorted(str(p) for p in folder.rglob("*.parquet")) if folder.is_dir() else []

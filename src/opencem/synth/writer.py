"""Writes tables of the synthetic operator as Parquet (default) or CSV, inputs apart from truth."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from .. import contracts
from ..errors import InputError


def conform(table: pa.Table, name: str) -> pa.Table:
    """Select and cast a table to its contract's schema, in the contract's column order; an optional column the
    synthetic operator does not have (a survey's reason) is left out, as an operator's file would."""
    contract = contracts.get(name)
    schema = pa.schema([f for f in contract.arrow_schema
                        if f.name in table.column_names or not contract.column(f.name).optional])
    return pa.Table.from_arrays([table.column(f.name).cast(f.type) for f in schema], schema=schema)


class LakeWriter:
    def __init__(self, root: Path, fmt: str = "parquet") -> None:
        if fmt not in ("parquet", "csv"):
            raise InputError(f"unknown format {fmt!r}: use parquet or csv")
        self.root, self.fmt = Path(root), fmt

    def write(self, name: str, table: pa.Table, *, day: str | None = None, part: int | None = None,
              truth: bool = False) -> Path:
        base = self.root / ("truth" if truth else "inputs")
        if not truth:
            table = conform(table, name)
        fmt = "parquet" if truth else self.fmt  # ground truth is always Parquet
        if day is None and part is None:
            path = base / f"{name}.{fmt}"
        else:
            folder = base / name / (f"day={day}" if day else "")
            path = folder / f"part-{part or 0:05d}.{fmt}"
        path.parent.mkdir(parents=True, exist_ok=True)
        if fmt == "parquet":
            pq.write_table(table, path, compression="zstd", compression_level=1)
        else:
            pacsv.write_csv(table, path)
        return path

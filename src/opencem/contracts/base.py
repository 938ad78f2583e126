"""The shape of a data contract: a table is a list of typed, documented columns plus row checks."""

from __future__ import annotations

from dataclasses import dataclass, field

import pyarrow as pa

from ..errors import InputError

# Logical types used in contracts, with the Arrow type each is stored as and the DuckDB type
# a raw (text) value is cast to during validation.
ARROW_TYPES: dict[str, pa.DataType] = {
    "string": pa.string(),
    "int64": pa.int64(),
    "int32": pa.int32(),
    "float64": pa.float64(),
    "bool": pa.bool_(),
    "timestamp": pa.timestamp("ms"),
    "date": pa.date32(),
}
DUCKDB_TYPES: dict[str, str] = {
    "string": "VARCHAR",
    "int64": "BIGINT",
    "int32": "INTEGER",
    "float64": "DOUBLE",
    "bool": "BOOLEAN",
    "timestamp": "TIMESTAMP",
    "date": "DATE",
}


@dataclass(frozen=True)
class Column:
    name: str
    dtype: str
    unit: str
    description: str
    nullable: bool = False
    min: float | None = None
    max: float | None = None
    allowed: tuple[str, ...] | None = None  # a closed vocabulary (a standard's: RAT); other values are bad rows
    # an open vocabulary: the values OpenCEM gives a meaning by default. Any other string is the operator's
    # own: it is kept, and validation counts it (ValidationResult.unknown) instead of quarantining the row.
    known: tuple[str, ...] | None = None
    # a counter or attribute not every operator has: a file without the column reads it as NULL, and what
    # is computed from it is unavailable (NULL) rather than made up; implies nullable
    optional: bool = False

    def __post_init__(self) -> None:
        if self.dtype not in ARROW_TYPES:
            raise InputError(f"column {self.name}: unknown type {self.dtype!r}")
        if self.optional and not self.nullable:
            raise InputError(f"column {self.name}: an optional column must be nullable")


@dataclass(frozen=True)
class Check:
    """A row-level rule across columns, written as a SQL predicate that must hold."""

    sql: str
    reason: str
    columns: tuple[str, ...]


@dataclass(frozen=True)
class Table:
    name: str
    family: str  # BSS, CM, PM, MR, xDR, survey
    description: str
    grain: str
    columns: tuple[Column, ...]
    key: tuple[str, ...] = ()
    checks: tuple[Check, ...] = field(default_factory=tuple)
    partition_by: str | None = None  # column whose date names the day partition

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]

    def column(self, name: str) -> Column:
        for c in self.columns:
            if c.name == name:
                return c
        raise KeyError(f"{self.name} has no column {name!r}")

    @property
    def arrow_schema(self) -> pa.Schema:
        return pa.schema(
            [pa.field(c.name, ARROW_TYPES[c.dtype], nullable=c.nullable) for c in self.columns]
        )

"""The import mapping: how an operator's own tables become OpenCEM's contracts (docs/byod.md).

A YAML file, checked as a whole when it is loaded, so a typo stops the import before any file is read::

    timezone: Asia/Kolkata             # local timestamps without an offset are in this IANA zone
    tables:
      xdr:                             # an OpenCEM contract
        files: [ipdr/*.csv]            # globs under --from
        columns:                       # contract column: the operator's column ...
          subscriber_id: MSISDN_HASH
          rtt_ms: {from: RTT, unit: s}                    # ... with its unit, converted to the contract's
          service: {from: APP, values: {WEB: web}}        # ... and what its values mean in OpenCEM's terms
          start_time: {from: START, format: "%d/%m/%Y %H:%M:%S"}

A contract column the mapping does not name is read from the operator's column of the same name.
"""

from __future__ import annotations

import zoneinfo
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from .. import contracts
from ..errors import InputError
from .units import conversion_sql


class ColumnMap(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    source: str = Field(alias="from", description="The operator's column (or PM counter) name")
    unit: str | None = Field(None, description="The operator's unit; for a timestamp, an epoch unit (s, ms)")
    format: str | None = Field(None, description="strptime format of a date or timestamp written as text")
    values: dict[str, str | int | float | bool] = Field(default_factory=dict,
                                                        description="operator's value -> OpenCEM's value")

    @field_validator("values")
    @classmethod
    def _as_text(cls, v: dict) -> dict[str, str]:
        return {k: (str(x).lower() if isinstance(x, bool) else str(x)) for k, x in v.items()}


class TableMap(BaseModel):
    model_config = ConfigDict(extra="forbid")

    files: list[str] = Field(description="Globs, relative to the import folder")
    format: Literal["csv", "parquet", "pm_xml"] | None = Field(None, description="Default: from the file suffix")
    timezone: str | None = Field(None, description="Overrides the mapping's time zone for this table")
    delimiter: str = ","
    encoding: str = "utf8"
    columns: dict[str, str | ColumnMap] = Field(default_factory=dict)

    @field_validator("files", mode="before")
    @classmethod
    def _listed(cls, v):
        return [v] if isinstance(v, str) else v

    def column(self, name: str) -> ColumnMap:
        """The mapping of one contract column (the same name, no conversion, when the mapping is silent)."""
        m = self.columns.get(name, name)
        return ColumnMap(source=m) if isinstance(m, str) else m


class Mapping(BaseModel):
    model_config = ConfigDict(extra="forbid")

    timezone: str = "UTC"
    tables: dict[str, TableMap]

    def zone(self, table: str) -> str:
        return self.tables[table].timezone or self.timezone


def _check(m: Mapping, where: str) -> None:
    """What pydantic cannot know: contract names, units that convert, zones that exist."""
    for zone in {m.timezone, *(t.timezone for t in m.tables.values() if t.timezone)}:
        try:
            zoneinfo.ZoneInfo(zone)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            raise InputError(f"{where}: unknown time zone {zone!r} (use an IANA name such as Europe/Lisbon)") from None
    for name, t in m.tables.items():
        if name not in contracts.TABLES:
            raise InputError(f"{where}: tables.{name}: no such contract (one of {', '.join(contracts.TABLES)})")
        contract = contracts.get(name)
        for col, cm in t.columns.items():
            at = f"{where}: tables.{name}.columns.{col}"
            if col not in contract.column_names:
                raise InputError(f"{at}: {name} has no column {col!r}")
            cm = t.column(col)
            dtype = contract.column(col).dtype
            if cm.unit and dtype == "timestamp":
                conversion_sql("x", cm.unit, "s")
            elif cm.unit:
                if dtype not in ("float64", "int64", "int32"):
                    raise InputError(f"{at}: a unit is given for a {dtype} column")
                try:
                    conversion_sql("x", cm.unit, contract.column(col).unit)
                except InputError as e:
                    raise InputError(f"{at}: {e}") from None
            if cm.format and dtype not in ("timestamp", "date"):
                raise InputError(f"{at}: a format is given for a {dtype} column")


def load_mapping(path: Path) -> Mapping:
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as e:
        raise InputError(f"{path}: cannot read the mapping ({e.strerror})") from None
    except yaml.YAMLError as e:
        raise InputError(f"{path}: not valid YAML ({str(e).splitlines()[0]})") from None
    try:
        m = Mapping.model_validate(raw if raw is not None else {})
    except ValidationError as e:
        err = e.errors()[0]
        at = ".".join(str(p) for p in err["loc"])
        raise InputError(f"{path.name}: {at}: {err['msg']}") from None
    _check(m, path.name)
    return m

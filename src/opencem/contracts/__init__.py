"""Data contracts: every input table's columns with type, unit and meaning (the data dictionary)."""

from . import bss, network, xdr
from .base import Check, Column, Table

TABLES: dict[str, Table] = {t.name: t for t in (*bss.TABLES, *network.TABLES, *xdr.TABLES)}


def get(name: str) -> Table:
    try:
        return TABLES[name]
    except KeyError:
        raise KeyError(f"unknown table {name!r}; known: {', '.join(TABLES)}") from None


__all__ = ["TABLES", "Check", "Column", "Table", "get"]

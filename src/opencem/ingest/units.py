"""Unit conversion for imported columns: an operator's unit -> the contract's unit, as a SQL expression.

Pint knows the units and their factors (MB -> Mbit, s -> ms, kB/s -> kbit/s, ft -> m, GHz -> MHz).
Decibel units are logarithmic, so a conversion that crosses between a linear and a decibel unit is
``10 log10`` or ``10^(x/10)`` around pint's linear factor (mW -> dBm, W -> dBm, dBW -> dBm).
"""

from __future__ import annotations

import math
from functools import lru_cache

import pint

from ..errors import InputError

# The contracts write a few units in words pint does not parse; what each means to pint.
_CONTRACT_ALIASES = {"%": "percent", "dBm/PRB": "dBm", "count": "dimensionless"}
# A decibel unit and the linear unit it is 10 log10 of.
_DECIBEL_BASE = {"dBm": "mW", "dBW": "W", "dB": "dimensionless"}


@lru_cache(maxsize=1)
def _registry() -> pint.UnitRegistry:
    return pint.UnitRegistry()


def _factor(src: str, dst: str) -> float:
    try:
        return float(_registry().Quantity(1.0, src).to(dst).magnitude)
    except (pint.errors.DimensionalityError, pint.errors.UndefinedUnitError, AttributeError, ValueError) as e:
        raise InputError(f"cannot convert {src!r} to {dst!r}: {str(e).splitlines()[0]}") from None


def conversion_sql(value: str, src: str, dst: str) -> str:
    """SQL that turns the DOUBLE expression `value`, measured in `src`, into `dst` (the contract's unit)."""
    dst = _CONTRACT_ALIASES.get(dst, dst)
    src = _CONTRACT_ALIASES.get(src, src)
    if src == dst:
        return value
    src_db, dst_db = _DECIBEL_BASE.get(src), _DECIBEL_BASE.get(dst)
    if src_db is None and dst_db is None:
        return f"({value}) * {_factor(src, dst)!r}"
    if src_db is None:  # linear -> decibel, e.g. W -> dBm
        return f"10 * LOG10(({value}) * {_factor(src, dst_db)!r})"
    if dst_db is None:  # decibel -> linear, e.g. dBm -> mW
        return f"POW(10, ({value}) / 10) * {_factor(src_db, dst)!r}"
    return f"({value}) + {10 * math.log10(_factor(src_db, dst_db))!r}"  # decibel -> decibel, e.g. dBW -> dBm

"""Positions on the H3 hexagon grid: the one place a latitude / longitude becomes a grid cell."""

from __future__ import annotations

import h3
import numpy as np

DEFAULT_RESOLUTION = 9  # H3 resolution 9: hexagons of about 0.1 km2, edge about 175 m
POSITION_DECIMALS = 4  # positions are snapped to 1e-4 degrees (about 10 m) before the hexagon lookup


def grid_of(lat: np.ndarray, lon: np.ndarray, resolution: int = DEFAULT_RESOLUTION) -> list[str | None]:
    """H3 cell of each position (None where the position is missing); one lookup per distinct position."""
    lat = np.round(np.asarray(lat, dtype=float), POSITION_DECIMALS)
    lon = np.round(np.asarray(lon, dtype=float), POSITION_DECIMALS)
    ok = ~(np.isnan(lat) | np.isnan(lon))
    lat, lon = lat[ok], lon[ok]
    # one integer per snapped position (a 1-D unique is 20x faster than np.unique over rows)
    scale = 10**POSITION_DECIMALS
    key = np.rint(lat * scale).astype(np.int64) * (360 * scale + 1) + np.rint(lon * scale).astype(np.int64) + 180 * scale
    _, first, inverse = np.unique(key, return_index=True, return_inverse=True)
    cells = np.array([h3.latlng_to_cell(lat[i], lon[i], resolution) for i in first], dtype=object)
    out = np.full(len(ok), None, dtype=object)
    out[ok] = cells[inverse.ravel()]
    return out.tolist()

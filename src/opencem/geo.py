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
    pairs, inverse = np.unique(np.stack([lat[ok], lon[ok]], axis=1), axis=0, return_inverse=True)
    cells = np.array([h3.latlng_to_cell(a, b, resolution) for a, b in pairs], dtype=object)
    out = np.full(len(lat), None, dtype=object)
    out[ok] = cells[inverse.ravel()]
    return out.tolist()

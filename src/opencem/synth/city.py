"""The synthetic city: sites and cells over a dense core, suburbs and a highway."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa

# A fictional city centre; positions are generated in metres on a local plane around it.
LAT0, LON0 = 45.0, 4.0
M_PER_DEG_LAT = 111_320.0
M_PER_DEG_LON = M_PER_DEG_LAT * np.cos(np.radians(LAT0))

CORE_RADIUS_M = 1_800.0
CITY_RADIUS_M = 6_500.0
HIGHWAY_END_M = 20_000.0  # the highway runs east from the city edge

# Radio layers: band, RAT, DL frequency, bandwidth, PRBs, total TX power.
LAYERS = {
    "B20": ("LTE", 806.0, 10.0, 50, 43.0),
    "B3": ("LTE", 1842.5, 20.0, 100, 46.0),
    "B7": ("LTE", 2655.0, 20.0, 100, 46.0),  # only added by capacity fixes
    "n78": ("NR", 3550.0, 100.0, 273, 49.0),
}


def xy_to_latlon(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return LAT0 + y / M_PER_DEG_LAT, LON0 + x / M_PER_DEG_LON


def latlon_to_xy(lat: np.ndarray, lon: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return (lon - LON0) * M_PER_DEG_LON, (lat - LAT0) * M_PER_DEG_LAT


def _hex_grid(isd: float, r_min: float, r_max: float, rng: np.random.Generator) -> np.ndarray:
    n = int(r_max / isd) + 2
    i, j = np.meshgrid(np.arange(-n, n + 1), np.arange(-n, n + 1))
    x = (i + 0.5 * (j % 2)) * isd
    y = j * isd * np.sqrt(3) / 2
    pts = np.column_stack([x.ravel(), y.ravel()])
    r = np.hypot(pts[:, 0], pts[:, 1])
    pts = pts[(r >= r_min) & (r < r_max)]
    return pts + rng.normal(0, 0.12 * isd, pts.shape)  # real sites are never on a perfect grid


@dataclass
class City:
    """Sites and cells as column arrays; cell index i is row i of `cells`."""

    site_xy: np.ndarray  # (S, 2) metres
    site_area: np.ndarray  # (S,) 'core' / 'suburb' / 'highway'
    site_link: np.ndarray  # (S,) transport link id
    site_core_pool: np.ndarray  # (S,) which core / DNS pool serves the site (0 west, 1 east)
    cells: dict[str, np.ndarray]  # column arrays, one row per cell
    # cell index per (site, sector, layer); -1 where the site has no such layer
    cell_of: np.ndarray  # (S, 3, len(LAYERS))

    @property
    def n_sites(self) -> int:
        return len(self.site_xy)

    @property
    def n_cells(self) -> int:
        return len(self.cells["cell_id"])

    def add_cell(self, site: int, sector: int, band: str, on_air_day: int) -> int:
        """Add a carrier to a sector (a capacity fix) and return the new cell's index."""
        c = self.cells
        base = int(np.flatnonzero((c["site"] == site) & (c["sector"] == sector))[0])
        rat, freq, bw, prbs, power = LAYERS[band]
        new = {k: v[base] for k, v in c.items()}
        new.update(
            cell_id=f"{c['site_id'][base]}-{sector + 1}-{band}", rat=rat, band=band, freq_mhz=freq,
            bandwidth_mhz=bw, prbs=prbs, tx_power_dbm=power, layer=list(LAYERS).index(band),
            on_air_day=on_air_day,
        )
        for k in c:
            c[k] = np.append(c[k], new[k])
        idx = self.n_cells - 1
        self.cell_of[site, sector, list(LAYERS).index(band)] = idx
        return idx

    def cells_table(self, start_date: np.datetime64) -> pa.Table:
        c = self.cells
        lat, lon = xy_to_latlon(c["x"], c["y"])
        on_air = (start_date + c["on_air_day"].astype("timedelta64[D]")).astype("datetime64[D]")
        return pa.table({
            "cell_id": c["cell_id"], "site_id": c["site_id"],
            "lat": np.round(lat, 6), "lon": np.round(lon, 6),
            "azimuth_deg": c["azimuth_deg"].astype(np.int32), "height_m": c["height_m"],
            "rat": c["rat"], "band": c["band"], "freq_mhz": c["freq_mhz"],
            "bandwidth_mhz": c["bandwidth_mhz"], "prbs": c["prbs"].astype(np.int32),
            "tx_power_dbm": c["tx_power_dbm"], "area_type": c["area_type"],
            "transport_link_id": c["transport_link_id"], "transport_type": c["transport_type"],
            "on_air_date": pa.array(on_air, pa.date32()),
        })


def build_city(rng: np.random.Generator) -> City:
    core = _hex_grid(450.0, 0.0, CORE_RADIUS_M, rng)
    suburb = _hex_grid(1_300.0, CORE_RADIUS_M, CITY_RADIUS_M, rng)
    hx = np.arange(CITY_RADIUS_M + 700, HIGHWAY_END_M, 1_500.0)
    highway = np.column_stack([hx, 250.0 * np.where(np.arange(len(hx)) % 2, 1, -1)])
    site_xy = np.vstack([core, suburb, highway])
    site_area = np.array(["core"] * len(core) + ["suburb"] * len(suburb) + ["highway"] * len(highway))
    n_sites = len(site_xy)

    # Backhaul: core sites on fibre; suburban and highway sites partly on microwave chains of
    # 2-3 sites that share one hub link, so one link fault takes several sites down together.
    site_link = np.empty(n_sites, dtype=object)
    transport = np.empty(n_sites, dtype=object)
    chain = 0
    i = 0
    while i < n_sites:
        if site_area[i] == "core" or rng.random() < 0.45:
            site_link[i], transport[i] = f"TL-F{i:04d}", "fibre"
            i += 1
        else:
            size = int(rng.integers(2, 4))
            for k in range(i, min(i + size, n_sites)):
                site_link[k], transport[k] = f"TL-M{chain:03d}", "microwave"
            chain += 1
            i += size
    site_core_pool = (site_xy[:, 0] > 0).astype(np.int8)

    layer_names = list(LAYERS)
    cell_of = np.full((n_sites, 3, len(layer_names)), -1, dtype=np.int64)
    rows: dict[str, list] = {k: [] for k in (
        "cell_id", "site_id", "site", "sector", "layer", "x", "y", "azimuth_deg", "height_m", "rat",
        "band", "freq_mhz", "bandwidth_mhz", "prbs", "tx_power_dbm", "area_type",
        "transport_link_id", "transport_type", "on_air_day")}
    for s in range(n_sites):
        area = site_area[s]
        if area == "core":
            bands = ["B3"] + (["n78"] if rng.random() < 0.7 else [])
        elif area == "suburb":
            bands = ["B20", "B3"] + (["n78"] if rng.random() < 0.3 else [])
        else:
            bands = ["B20"]
        rotation = float(rng.uniform(0, 120))
        for sector in range(3):
            az = int(round(rotation + 120 * sector)) % 360
            for band in bands:
                rat, freq, bw, prbs, power = LAYERS[band]
                cell_of[s, sector, layer_names.index(band)] = len(rows["cell_id"])
                for k, v in (
                    ("cell_id", f"S{s:04d}-{sector + 1}-{band}"), ("site_id", f"S{s:04d}"), ("site", s),
                    ("sector", sector), ("layer", layer_names.index(band)), ("x", site_xy[s, 0]),
                    ("y", site_xy[s, 1]), ("azimuth_deg", az), ("height_m", 25.0 if area == "core" else 30.0),
                    ("rat", rat), ("band", band), ("freq_mhz", freq), ("bandwidth_mhz", bw), ("prbs", prbs),
                    ("tx_power_dbm", power), ("area_type", area), ("transport_link_id", site_link[s]),
                    ("transport_type", transport[s]), ("on_air_day", 0),
                ):
                    rows[k].append(v)
    cells = {k: np.array(v) for k, v in rows.items()}
    return City(site_xy, site_area, site_link.astype(str), site_core_pool, cells, cell_of)

"""Radio physics of the synthetic operator: path loss, serving cell, SINR, throughput, latency.

Propagation follows the macro-cell model of 3GPP TR 36.942 §4.5.2 with log-normal shadowing and the
3-sector antenna pattern of §4.4; throughput is the attenuated Shannon bound of TR 36.942 Annex A.2,
shared by the load on the serving cell's PRBs.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.spatial import cKDTree

from .city import LAYERS, City

K_NEAREST = 5  # sites considered for service and interference
NOISE_DBM_PER_RE = -174 + 10 * np.log10(15_000) + 7.0  # thermal noise over one subcarrier, UE NF 7 dB
ANTENNA_GAIN_DBI = 15.0 - 2.0  # antenna gain less feeder loss
SHADOW_SIGMA_DB = 6.0
AREA_LOSS_OFFSET_DB = {"core": 0.0, "suburb": -4.0, "highway": -8.0}  # more open morphology
LAYER_NAMES = list(LAYERS)
NR_LAYER = LAYER_NAMES.index("n78")


def pathloss_db(d_m: np.ndarray, f_mhz: np.ndarray | float, h_bs: float = 15.0) -> np.ndarray:
    """TR 36.942 §4.5.2 urban macro: L = 40(1-4e-3 Dhb) log10 R - 18 log10 Dhb + 21 log10 f + 80."""
    r_km = np.maximum(d_m, 20.0) / 1000.0
    return 40 * (1 - 4e-3 * h_bs) * np.log10(r_km) - 18 * np.log10(h_bs) + 21 * np.log10(f_mhz) + 80


def sector_gain_db(delta_deg: np.ndarray) -> np.ndarray:
    """TR 36.942 §4.4 horizontal pattern: -min(12 (theta/theta_3dB)^2, Am), 65 deg beamwidth, Am 20 dB."""
    return -np.minimum(12 * (delta_deg / 65.0) ** 2, 20.0)


@dataclass
class RadioModel:
    city: City

    def __post_init__(self) -> None:
        c = self.city
        self.tree = cKDTree(c.site_xy)
        # sector azimuths per site, from the first cell of each sector
        self.site_az = np.zeros((c.n_sites, 3))
        for s_idx, sec, az in zip(c.cells["site"], c.cells["sector"], c.cells["azimuth_deg"]):
            self.site_az[s_idx, sec] = az
        self.layer_freq = np.array([LAYERS[b][1] for b in LAYER_NAMES])
        self.layer_re_power = np.array(
            [LAYERS[b][4] - 10 * np.log10(12 * LAYERS[b][3]) for b in LAYER_NAMES]
        )
        self.site_offset = np.array([AREA_LOSS_OFFSET_DB[a] for a in c.site_area])

    def geometry(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Nearest sites, the facing sector of each, and the link loss (dB) excluding frequency."""
        d, s = self.tree.query(np.column_stack([x, y]), k=K_NEAREST)
        dx = x[:, None] - self.city.site_xy[s, 0]
        dy = y[:, None] - self.city.site_xy[s, 1]
        bearing = np.degrees(np.arctan2(dx, dy)) % 360
        diff = np.abs((bearing[:, :, None] - self.site_az[s] + 180) % 360 - 180)  # (N, K, 3)
        sector = diff.argmin(axis=2)
        gain = sector_gain_db(np.take_along_axis(diff, sector[:, :, None], 2)[:, :, 0])
        # path loss without the 21 log10 f term, which is added per layer
        base_loss = pathloss_db(d, 1.0) - self.site_offset[s] - gain
        return s, sector, base_loss

    def serve(
        self,
        s: np.ndarray,
        sector: np.ndarray,
        base_loss: np.ndarray,
        extra_loss_db: np.ndarray,
        use_nr: np.ndarray,
        load_of_cell,  # callable(cell_idx array (N, K)) -> load (N, K)
        cell_atten_db,  # callable(cell_idx array (N, K)) -> extra attenuation from faults (N, K)
        ext_interf_mw,  # callable(layer array (N,)) -> external interference per RE (N,)
        shadow: np.ndarray,  # (N, K) shadow fading draws, dB
        u_b7: np.ndarray,  # (N,) uniform draws for the capacity-layer split
    ) -> dict[str, np.ndarray]:
        """Pick the serving cell per sample and return its radio conditions.

        Random draws come in as arguments so that the same sample can be replayed in another
        world (for example without a fix) and differ only by what the world changes.
        """
        n = len(s)
        cells = self.city.cell_of[s, sector]  # (N, K, L)
        rsrp = (
            self.layer_re_power[None, None, :] + ANTENNA_GAIN_DBI
            - (base_loss + shadow + extra_loss_db[:, None])[:, :, None]
            - 21 * np.log10(self.layer_freq)[None, None, :]
        )
        exists = cells >= 0
        rsrp = np.where(exists, rsrp - cell_atten_db(np.where(exists, cells, 0)), -np.inf)
        # Serving site: strongest anchor LTE layer (B20 / B3), as idle-mode reselection would.
        anchor = rsrp[:, :, [LAYER_NAMES.index("B20"), LAYER_NAMES.index("B3")]].max(axis=2)
        k_srv = anchor.argmax(axis=1)
        rows = np.arange(n)
        own = rsrp[rows, k_srv]  # (N, L)
        b3, b20, nr = LAYER_NAMES.index("B3"), LAYER_NAMES.index("B20"), NR_LAYER
        layer = np.where(own[:, b3] > -113, b3, np.where(np.isfinite(own[:, b20]), b20, b3))
        layer = np.where(use_nr & (own[:, nr] > -108), nr, layer)
        cell = cells[rows, k_srv, layer]
        # A capacity layer (B7) takes half of the sector's LTE traffic once it is on air.
        b7 = LAYER_NAMES.index("B7")
        cell_b7 = cells[rows, k_srv, b7]
        to_b7 = (cell_b7 >= 0) & (layer != nr) & (u_b7 < 0.5) & np.isfinite(own[:, b7])
        layer = np.where(to_b7, b7, layer)
        cell = np.where(to_b7, cell_b7, cell)
        signal_dbm = own[rows, layer]

        # Interference from the same layer on the other nearby sites, weighted by their load.
        ks = np.arange(K_NEAREST)[None, :]
        same_layer = cells[rows[:, None], ks, layer[:, None]]
        rsrp_same = rsrp[rows[:, None], ks, layer[:, None]]
        p_other = np.where(np.isfinite(rsrp_same), 10 ** (rsrp_same / 10), 0.0)
        p_other[rows, k_srv] = 0.0
        load = load_of_cell(np.where(same_layer >= 0, same_layer, 0))
        interf_mw = (p_other * load).sum(axis=1) + 10 ** (NOISE_DBM_PER_RE / 10) + ext_interf_mw(layer)
        sinr = np.minimum(signal_dbm - 10 * np.log10(interf_mw), 30.0)
        own_load = load_of_cell(cell[:, None])[:, 0]
        rsrq = -10 * np.log10(12 * (np.maximum(own_load, 0.2) + 10 ** (-sinr / 10)))
        return {
            "cell": cell, "layer": layer, "rsrp": np.clip(signal_dbm, -150.0, -40.0),
            "sinr": np.clip(sinr, -20.0, 30.0), "rsrq": np.clip(rsrq, -19.5, -3.0), "load": own_load,
        }


def spectral_efficiency(sinr_db: np.ndarray, is_nr: np.ndarray) -> np.ndarray:
    """Attenuated Shannon (TR 36.942 A.2): alpha*log2(1+SINR) between SINR_min and the max rate."""
    alpha = np.where(is_nr, 0.65, 0.6)
    se_max = np.where(is_nr, 5.5, 4.4)
    se = np.minimum(alpha * np.log2(1 + 10 ** (sinr_db / 10)), se_max)
    return np.where(sinr_db < -10, 0.0, se)


def mimo_layers(sinr_db: np.ndarray, is_nr: np.ndarray) -> np.ndarray:
    lte = np.clip(1 + (sinr_db - 2) / 8, 1, 2)
    nr = np.clip(1 + (sinr_db - 2) / 5, 1, 4)
    return np.where(is_nr, nr, lte)


def user_throughput_kbps(sinr_db, is_nr, bandwidth_mhz, load, fading) -> np.ndarray:
    """Throughput one user gets: link rate times the PRB share left by the other users' load."""
    # 25 % control / reference-signal overhead; n78 is TDD with about 70 % of slots downlink
    duplex = np.where(is_nr, 0.7, 1.0)
    peak_bps = spectral_efficiency(sinr_db, is_nr) * mimo_layers(sinr_db, is_nr) * bandwidth_mhz * 1e6 * 0.75 * duplex
    share = np.clip(1 - 0.92 * load, 0.03, 1.0)
    return peak_bps * share * fading / 1000.0


def radio_rtt_ms(sinr_db, is_nr, load, jitter) -> np.ndarray:
    """Air-interface part of the round trip: scheduling, HARQ retransmissions, queueing under load."""
    base = np.where(is_nr, 9.0, 20.0)
    harq = 18.0 / (1 + np.exp(sinr_db / 3.0))
    queue = np.minimum(6.0 * load / np.maximum(1 - load, 0.02), 300.0)
    return (base + harq + queue) * jitter

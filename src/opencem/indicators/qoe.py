"""Service QoE models for the KPI -> KQI -> CEI engine.

Every model exists twice and the two forms agree (tests check 1e-9 relative):

* a vectorised numpy reference function (NaN in -> NaN out), and
* a ``*_sql`` function returning a portable ANSI SQL expression string
  (NULL in -> NULL out) that runs unchanged on DuckDB and Spark SQL.

SQL portability rules followed here:

* only CASE, LN, LOG10, EXP, POWER, SQRT and arithmetic are emitted (plus
  ``CAST(NULL AS DOUBLE)`` when a Python ``None`` argument is passed);
* GREATEST/LEAST are *not* used for clamping because both DuckDB and Spark
  skip NULL arguments (``GREATEST(NULL, 1) = 1``), which would turn a NULL
  input into a value; clamps are ``CASE WHEN x < lo THEN lo ... ELSE x END``
  so that a NULL ``x`` falls through to ``ELSE x`` and stays NULL;
* every numeric literal is written in exponent form (``0.035E0``) so that
  both engines type it DOUBLE (a plain ``0.035`` is a DECIMAL literal in
  DuckDB and Spark);
* arguments of the ``*_sql`` functions are column names / SQL expressions
  (``str``, wrapped in parentheses) or Python numbers (inlined as literals).

Models
------
1. ITU-T G.107 (06/2015) E-model: ``emodel_r``, ``r_to_mos`` (+ SQL twins).
2. Video streaming MOS from start-up delay, stalling and resolution:
   ``video_mos`` (+ SQL twin).
3. Web browsing MOS from page-load time, G.1030-style log model:
   ``web_mos`` (+ SQL twin).
4. Generic KQI -> 0..100 scoring curves for the CEI tree:
   ``score_logistic``, ``score_linear`` (+ SQL twins).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ..errors import InputError

__all__ = [
    "G107_DEFAULTS",
    "CODECS",
    "emodel_r",
    "emodel_r_sql",
    "emodel_mos",
    "emodel_mos_sql",
    "r_to_mos",
    "r_to_mos_sql",
    "video_mos",
    "video_mos_sql",
    "web_mos",
    "web_mos_sql",
    "score_logistic",
    "score_logistic_sql",
    "score_linear",
    "score_linear_sql",
]

# ---------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------


def sql_double(v: float) -> str:
    """DOUBLE SQL literal, exponent form, parenthesised when negative."""
    v = float(v)
    if not math.isfinite(v):
        raise InputError(f"cannot inline non-finite literal {v!r}")
    r = repr(v).replace("e", "E")
    if "E" not in r:
        r += "E0"
    return f"({r})" if r.startswith("-") else r


_lit = sql_double


def _sql(x: Any) -> str:
    """Column name / SQL expression (parenthesised) or inlined number."""
    if x is None:
        return "CAST(NULL AS DOUBLE)"
    if isinstance(x, bool):
        raise TypeError("booleans are not valid SQL numeric arguments")
    if isinstance(x, (int, float, np.integer, np.floating)):
        return _lit(x)
    if isinstance(x, str):
        s = x.strip()
        if not s:
            raise InputError("empty SQL expression")
        return f"({s})"
    raise TypeError(f"unsupported SQL argument type {type(x).__name__}")


def _sql_max0(e: str) -> str:
    """max(e, 0) that keeps NULL."""
    return f"(CASE WHEN {e} < 0 THEN {_lit(0.0)} ELSE {e} END)"


def _sql_clamp(e: str, lo: float, hi: float) -> str:
    """clip(e, lo, hi) that keeps NULL."""
    return f"(CASE WHEN {e} < {_lit(lo)} THEN {_lit(lo)} WHEN {e} > {_lit(hi)} THEN {_lit(hi)} ELSE {e} END)"


def _f(x: Any) -> np.ndarray:
    """float ndarray, None -> NaN."""
    return np.asarray(x, dtype=float)


def _np_max0(a: np.ndarray) -> np.ndarray:
    return np.where(a < 0, 0.0, a)  # NaN < 0 is False -> NaN kept


def _np_clamp(a: np.ndarray, lo: float, hi: float) -> np.ndarray:
    return np.where(a <= lo, lo, np.where(a >= hi, hi, a))  # NaN kept


def _out(a: np.ndarray):
    """0-d arrays come back as numpy scalars, others as arrays."""
    a = np.asarray(a, dtype=float)
    return a[()] if a.ndim == 0 else a


# ---------------------------------------------------------------------------
# 1. ITU-T G.107 (06/2015) E-model
# ---------------------------------------------------------------------------

#: G.107 Table 1 default values (all parameters not varied per call).
G107_DEFAULTS: dict[str, float] = {
    "SLR": 8.0,  # send loudness rating, dB
    "RLR": 2.0,  # receive loudness rating, dB
    "STMR": 15.0,  # sidetone masking rating, dB
    "LSTR": 18.0,  # listener sidetone rating, dB
    "Ds": 3.0,  # D-value of telephone, send side
    "Dr": 3.0,  # D-value of telephone, receive side (unused by formulas)
    "TELR": 65.0,  # talker echo loudness rating, dB
    "WEPL": 110.0,  # weighted echo path loss, dB
    "qdu": 1.0,  # quantizing distortion units
    "Nc": -70.0,  # circuit noise referred to 0 dBr point, dBm0p
    "Nfor": -64.0,  # noise floor at the receive side, dBmp
    "Ps": 35.0,  # room noise at the send side, dB(A)
    "Pr": 35.0,  # room noise at the receive side, dB(A)
    "A": 0.0,  # advantage factor
}


def _g107_constants() -> dict[str, float]:
    """Delay-independent E-model terms from G.107 §7.2-7.4 with defaults."""
    p = G107_DEFAULTS
    slr, rlr, ds = p["SLR"], p["RLR"], p["Ds"]
    olr = slr + rlr
    # §7.2 basic signal-to-noise ratio Ro
    nfo = p["Nfor"] + rlr
    pre = p["Pr"] + 10.0 * math.log10(1.0 + 10.0 ** ((10.0 - p["LSTR"]) / 10.0))
    nor = rlr - 121.0 + pre + 0.008 * (pre - 35.0) ** 2
    nos = p["Ps"] - slr - ds - 100.0 + 0.004 * (p["Ps"] - olr - ds - 14.0) ** 2
    no = 10.0 * math.log10(
        10.0 ** (p["Nc"] / 10.0) + 10.0 ** (nos / 10.0) + 10.0 ** (nor / 10.0) + 10.0 ** (nfo / 10.0)
    )
    ro = 15.0 - 1.5 * (slr + no)
    # §7.3 simultaneous impairment Is = Iolr + Ist + Iq (Ist depends on T)
    xolr = olr + 0.2 * (64.0 + no - rlr)
    iolr = 20.0 * ((1.0 + (xolr / 8.0) ** 8) ** (1.0 / 8.0) - xolr / 8.0)
    q = 37.0 - 15.0 * math.log10(p["qdu"])
    g = 1.07 + 0.258 * q + 0.0602 * q**2
    y = (ro - 100.0) / 15.0 + 46.0 / 8.4 - g / 9.0
    z = 46.0 / 30.0 - g / 40.0
    iq = 15.0 * math.log10(1.0 + 10.0**y + 10.0**z)
    # §7.4 talker echo: Roe and the T-independent part of Roe - Re
    roe = -1.5 * (no - rlr)
    # TERV = TELR - 40 log10((1+T/10)/(1+T/150)) + 6 exp(-0.3 T^2)
    # (the STMR < 9 correction TERV += Ist/2 and the STMR > 20 correction of
    # Idte do not apply to the default STMR = 15)
    assert 9.0 <= p["STMR"] <= 20.0
    # Roe - Re = Roe - 80 - 2.5 (TERV - 14) = u0 + 100 log10(...) - 15 exp(-0.3 T^2)
    u0 = roe - 80.0 - 2.5 * (p["TELR"] - 14.0)
    return {
        "Ro": ro,
        "Iolr": iolr,
        "Iq": iq,
        "R_const": ro - iolr - iq + p["A"],  # R without Ist(T), Id, Ie-eff
        "u0": u0,
        "stmr_lin": 10.0 ** (-p["STMR"] / 10.0),
        "telr_lin": 10.0 ** (-p["TELR"] / 10.0),
        "rle0": 10.5 * (p["WEPL"] + 7.0),  # Rle = rle0 * (Tr + 1)^-0.25
    }


_G = _g107_constants()
_LOG10_2 = math.log10(2.0)

#: Codec table: name -> (Ie, Bpl) on the narrowband (G.107) R scale.
#: Sources: ITU-T G.113 Appendix I (Tables I.1 / I.3, provisional planning
#: values) as reproduced in G.113 amendments and the literature:
#:   G.711 without PLC, random loss: Ie = 0, Bpl = 4.3
#:   G.711 with G.711 Appendix I PLC: Ie = 0, Bpl = 25.1
#:   G.729A (+VAD): Ie = 11, Bpl = 19.0
#:   AMR-NB 12.2 kbit/s: Ie = 5, Bpl = 10.0
#: AMR-WB and EVS are wideband/super-wideband codecs; G.107 is narrowband and
#: the wideband E-model (G.107.1, Ro = 129, Ie,wb values in G.113 Amd.) is
#: NOT implemented here.  Simplification (design choice, 'chosen'): on the
#: narrowband scale a wideband codec is treated as transparent, Ie = 0
#: (its wideband advantage is therefore not rewarded; R saturates at the
#: G.711 value), and its packet-loss robustness is set to the AMR-NB 12.2
#: value Bpl = 10 (same ACELP family / 3GPP error concealment; no public
#: narrowband-equivalent Bpl exists for AMR-WB or EVS, so this is chosen and
#: conservative for EVS, whose PLC is better).
CODECS: dict[str, tuple[float, float]] = {
    "G.711": (0.0, 4.3),
    "G.711-PLC": (0.0, 25.1),
    "G.729A": (11.0, 19.0),
    "AMR-NB": (5.0, 10.0),
    "AMR-WB": (0.0, 10.0),
    "EVS": (0.0, 10.0),
}

#: Jitter convention: effective one-way delay = delay + JITTER_FACTOR * jitter
#: (de-jitter buffer sized at twice the mean jitter; a common planning
#: convention in VoIP monitoring, e.g. the "effective latency = latency +
#: 2 * jitter (+ codec delay)" simplification).  Chosen, overridable.
JITTER_FACTOR = 2.0


def _codec_params(codec: Any) -> tuple[np.ndarray, np.ndarray]:
    names = np.asarray(codec, dtype=object)
    keys = np.asarray(names, dtype=str)  # None -> 'None', never a codec name
    uniq, inv = np.unique(keys, return_inverse=True)
    ie_u = np.array([CODECS.get(k, (np.nan, np.nan))[0] for k in uniq], dtype=float)
    bpl_u = np.array([CODECS.get(k, (np.nan, np.nan))[1] for k in uniq], dtype=float)
    inv = inv.reshape(keys.shape)
    return ie_u[inv], bpl_u[inv]


def emodel_r(delay_ms, loss_pct, codec, jitter_ms=0.0, *, burst_r=1.0, jitter_factor=JITTER_FACTOR):
    """G.107 (06/2015) transmission rating R, all other parameters at defaults.

    ``R = Ro - Is - Id - Ie,eff + A`` (G.107 §7).  Per-call inputs:

    * ``delay_ms``: mean one-way (mouth-to-ear) delay, ms; ``jitter_ms`` is
      added as a de-jitter buffer: ``d = delay + jitter_factor * jitter``
      (negative inputs are clipped to 0).  As in G.114 Figure 1 the three
      delay parameters are coupled: ``Ta = T = d`` and ``Tr = 2 d``.
      Idte/Idle use the default TELR = 65 dB / WEPL = 110 dB, Idd uses Ta
      (§7.4, ``X = log10(Ta/100)/log10(2)``, Idd = 0 for Ta <= 100 ms).
      Note: with T > 0 the G.107 Idte term is slightly negative for very small
      T (about -0.2), so R rises by ~0.2 between 0 and 5 ms before falling;
      this is the standard's behaviour, not a bug.
    * ``loss_pct``: packet loss Ppl in percent (clipped to 0..100);
      ``Ie,eff = Ie + (95 - Ie) Ppl / (Ppl/BurstR + Bpl)`` (§7.5).
    * ``codec``: name(s) from :data:`CODECS` giving Ie and Bpl; unknown -> NaN.

    With all defaults (d = 0, Ppl = 0, Ie = 0) R = 93.2.
    """
    with np.errstate(all="ignore"):
        d = _np_max0(_f(delay_ms)) + float(jitter_factor) * _np_max0(_f(jitter_ms))
        ppl = _np_clamp(_f(loss_pct), 0.0, 100.0)
        ie, bpl = _codec_params(codec)
        burst = _f(burst_r)
        t, tr, ta = d, 2.0 * d, d
        # Ist(T) (§7.3): STMRo = -10 log10(10^(-STMR/10) + e^(-T/4) 10^(-TELR/10))
        stmro = -10.0 * np.log10(_G["stmr_lin"] + np.exp(-t / 4.0) * _G["telr_lin"])
        ist = (
            12.0 * np.power(1.0 + np.power((stmro - 13.0) / 6.0, 8.0), 1.0 / 8.0)
            - 28.0 * np.power(1.0 + np.power((stmro + 1.0) / 19.4, 35.0), 1.0 / 35.0)
            - 13.0 * np.power(1.0 + np.power((stmro - 3.0) / 33.0, 13.0), 1.0 / 13.0)
            + 29.0
        )
        # Idte (§7.4): u = Roe - Re
        u = _G["u0"] + 100.0 * np.log10((1.0 + t / 10.0) / (1.0 + t / 150.0)) - 15.0 * np.exp(-0.3 * t * t)
        idte = (u / 2.0 + np.sqrt(np.power(u, 2.0) / 4.0 + 100.0) - 1.0) * (1.0 - np.exp(-t))
        # Idle (§7.4)
        v = _G["Ro"] - _G["rle0"] * np.power(tr + 1.0, -0.25)
        idle = v / 2.0 + np.sqrt(np.power(v, 2.0) / 4.0 + 169.0)
        # Idd (§7.4)
        ta_s = np.where(ta <= 100.0, 100.0, ta)
        x = np.log10(ta_s / 100.0) / _LOG10_2
        idd_f = 25.0 * (
            np.power(1.0 + np.power(x, 6.0), 1.0 / 6.0)
            - 3.0 * np.power(1.0 + np.power(x / 3.0, 6.0), 1.0 / 6.0)
            + 2.0
        )
        idd = np.where(ta <= 100.0, 0.0, idd_f)
        # Ie,eff (§7.5)
        ie_eff = ie + (95.0 - ie) * ppl / (ppl / burst + bpl)
        r = _G["R_const"] - ist - idte - idle - idd - ie_eff
    return _out(r)


def _sql_codec(codec: Any) -> tuple[str, str]:
    if isinstance(codec, str) and codec in CODECS:
        ie, bpl = CODECS[codec]
        return _lit(ie), _lit(bpl)
    e = _sql(codec)

    def case(i: int) -> str:
        arms = " ".join(f"WHEN '{k}' THEN {_lit(v[i])}" for k, v in CODECS.items())
        return f"(CASE {e} {arms} END)"  # no ELSE: unknown -> NULL

    return case(0), case(1)


class _Lets:
    """Names intermediate SQL expressions: inline (one expression) or as columns in successive layers."""

    def __init__(self, layered: bool, prefix: str) -> None:
        self.layered, self.prefix = layered, prefix
        self.layers: list[list[tuple[str, str]]] = []

    def __call__(self, name: str, expr: str, depth: int) -> str:
        if not self.layered:
            return expr
        while len(self.layers) <= depth:
            self.layers.append([])
        alias = self.prefix + name
        self.layers[depth].append((alias, expr))
        return alias


def _emodel_r(let: _Lets, delay, loss, codec, jitter, burst_r, jitter_factor) -> str:
    ie, bpl = _sql_codec(codec)
    d = _sql_max0(_sql(delay))
    if jitter is not None:
        d = f"({d} + {_lit(jitter_factor)} * {_sql_max0(_sql(jitter))})"
    d = let("d", d, 0)
    ppl = let("ppl", _sql_clamp(_sql(loss), 0.0, 100.0), 0)
    ie, bpl = let("ie", ie, 0), let("bpl", bpl, 0)
    burst = _sql(burst_r)
    t, ta = d, d
    tr = f"({_lit(2.0)} * {d})"
    L = _lit
    stmro = let("stmro", f"({L(-10.0)} * LOG10({L(_G['stmr_lin'])} + EXP(-{t} / {L(4.0)}) * {L(_G['telr_lin'])}))", 1)

    def ist_term(c: float, off: float, div: float, n: float) -> str:
        return f"{L(c)} * POWER({L(1.0)} + POWER(({stmro} + {L(off)}) / {L(div)}, {L(n)}), {L(1.0 / n)})"

    ist = let("ist", (
        f"({ist_term(12.0, -13.0, 6.0, 8.0)} - {ist_term(28.0, 1.0, 19.4, 35.0)}"
        f" - {ist_term(13.0, -3.0, 33.0, 13.0)} + {L(29.0)})"
    ), 2)
    u = let("u", (
        f"({L(_G['u0'])} + {L(100.0)} * LOG10(({L(1.0)} + {t} / {L(10.0)}) / ({L(1.0)} + {t} / {L(150.0)}))"
        f" - {L(15.0)} * EXP({L(-0.3)} * {t} * {t}))"
    ), 1)
    idte = let("idte", (
        f"(({u} / {L(2.0)} + SQRT(POWER({u}, {L(2.0)}) / {L(4.0)} + {L(100.0)}) - {L(1.0)})"
        f" * ({L(1.0)} - EXP(-{t})))"
    ), 2)
    v = let("v", f"({L(_G['Ro'])} - {L(_G['rle0'])} * POWER({tr} + {L(1.0)}, {L(-0.25)}))", 1)
    idle = let("idle", f"({v} / {L(2.0)} + SQRT(POWER({v}, {L(2.0)}) / {L(4.0)} + {L(169.0)}))", 2)
    x = let("x", f"(LOG10({ta} / {L(100.0)}) / {L(_LOG10_2)})", 1)
    idd = let("idd", (
        f"(CASE WHEN {ta} <= {L(100.0)} THEN {L(0.0)} ELSE {L(25.0)} * ("
        f"POWER({L(1.0)} + POWER({x}, {L(6.0)}), {L(1.0 / 6.0)})"
        f" - {L(3.0)} * POWER({L(1.0)} + POWER({x} / {L(3.0)}, {L(6.0)}), {L(1.0 / 6.0)})"
        f" + {L(2.0)}) END)"
    ), 2)
    ie_eff = let("ie_eff", f"({ie} + ({L(95.0)} - {ie}) * {ppl} / ({ppl} / {burst} + {bpl}))", 1)
    return f"({L(_G['R_const'])} - {ist} - {idte} - {idle} - {idd} - {ie_eff})"


def emodel_r_sql(delay, loss, codec, jitter=None, *, burst_r=1.0, jitter_factor=JITTER_FACTOR) -> str:
    """SQL twin of :func:`emodel_r`.

    ``delay``, ``loss``, ``jitter``, ``burst_r``: column names / SQL
    expressions or numbers (``jitter=None`` means no jitter term).
    ``codec``: a name from :data:`CODECS` (inlined as constants) or any other
    SQL expression yielding codec names (mapped with a CASE; unknown -> NULL).
    """
    return _emodel_r(_Lets(False, ""), delay, loss, codec, jitter, burst_r, jitter_factor)


def emodel_r_sql_layers(delay, loss, codec, jitter=None, *, prefix="em_", burst_r=1.0,
                        jitter_factor=JITTER_FACTOR) -> tuple[list[list[tuple[str, str]]], str]:
    """The same R as :func:`emodel_r_sql`, computed in layers of named columns.

    Returns ``(layers, r_expr)``: each layer is a list of ``(alias, expression)`` that may use the
    aliases of earlier layers; ``r_expr`` uses the last layer's. Evaluating shared terms once this way
    is several times cheaper than the single inlined expression.
    """
    let = _Lets(True, prefix)
    r = _emodel_r(let, delay, loss, codec, jitter, burst_r, jitter_factor)
    return let.layers, r


def r_to_mos(r):
    """G.107 Annex B: MOS_CQE from R.

    MOS = 1 for R < 0; 4.5 for R > 100; else
    ``1 + 0.035 R + R (R - 60)(100 - R) 7e-6``.
    The Annex B cubic dips slightly below 1 (min ~0.99) for 0 < R < ~6.5;
    it is floored at 1 there so the result always lies on the 1..4.5 scale
    (deviation < 0.01 MOS, documented design choice).
    """
    r = _f(r)
    with np.errstate(all="ignore"):
        mid = 1.0 + 0.035 * r + r * (r - 60.0) * (100.0 - r) * 7e-6
        mos = np.where(r < 0.0, 1.0, np.where(r > 100.0, 4.5, np.where(mid < 1.0, 1.0, mid)))
    return _out(mos)


def r_to_mos_sql(r) -> str:
    """SQL twin of :func:`r_to_mos`."""
    e = _sql(r)
    L = _lit
    mid = f"({L(1.0)} + {L(0.035)} * {e} + {e} * ({e} - {L(60.0)}) * ({L(100.0)} - {e}) * {L(7e-6)})"
    return (
        f"(CASE WHEN {e} < {L(0.0)} THEN {L(1.0)} WHEN {e} > {L(100.0)} THEN {L(4.5)}"
        f" WHEN {mid} < {L(1.0)} THEN {L(1.0)} ELSE {mid} END)"
    )


def emodel_mos(delay_ms, loss_pct, codec, jitter_ms=0.0, **kw):
    """Convenience: ``r_to_mos(emodel_r(...))``."""
    return r_to_mos(emodel_r(delay_ms, loss_pct, codec, jitter_ms, **kw))


def emodel_mos_sql(delay, loss, codec, jitter=None, **kw) -> str:
    """SQL twin of :func:`emodel_mos`."""
    return r_to_mos_sql(emodel_r_sql(delay, loss, codec, jitter, **kw))


# ---------------------------------------------------------------------------
# 2. Video streaming MOS
# ---------------------------------------------------------------------------
# MOS = 1 + (Q_res - 1) * S_init * S_stall, in [1, VIDEO_MOS_MAX].
# The multiplicative combination of normalised degradation factors is a
# design choice (chosen), in the spirit of ITU-T P.1203.3 where stalling and
# initial loading degrade the audiovisual quality score.

#: Ceiling of the video MOS (chosen: equals the E-model MOS ceiling of G.107
#: Annex B, so that services share a comparable top of scale).
VIDEO_MOS_MAX = 4.5
#: Resolution quality Q_res = a + b ln(lines), clipped to [1, VIDEO_MOS_MAX].
#: Anchors (chosen, not a P.1203 coefficient set): 240 lines -> 2.5,
#: 1080 lines -> 4.5 (log-shaped saturation with resolution as in
#: P.1203.1 mode 0 behaviour on small screens); gives 360p ~3.0, 480p ~3.4,
#: 720p ~4.0, >= 1080p 4.5.
VIDEO_RES_ANCHORS = ((240.0, 2.5), (1080.0, 4.5))
_RES_B = (VIDEO_RES_ANCHORS[1][1] - VIDEO_RES_ANCHORS[0][1]) / math.log(
    VIDEO_RES_ANCHORS[1][0] / VIDEO_RES_ANCHORS[0][0]
)
_RES_A = VIDEO_RES_ANCHORS[0][1] - _RES_B * math.log(VIDEO_RES_ANCHORS[0][0])
#: Initial-loading factor S_init = 1 - W_INIT (1 - exp(-T0 / TAU_INIT_S)).
#: Chosen: start-up delay matters much less than stalling (Hossfeld et al.,
#: "Initial delay vs. interruptions: between the devil and the deep blue
#: sea", QoMEX 2012), so at most 25 % of the quality headroom is lost;
#: 1 s costs ~0.1 MOS, 4 s ~0.35, 16 s ~0.75 at 1080p.
VIDEO_W_INIT = 0.25
VIDEO_TAU_INIT_S = 8.0
#: Stalling: Hossfeld et al., "Quantification of YouTube QoE via
#: crowdsourcing", IEEE ISM 2011: MOS = 3.50 exp(-(0.15 L + 0.19) N) + 1.50,
#: L = mean stall length (s), N = number of stalls.  Normalised to a factor
#: S_stall = (MOS_hossfeld - 1) / 4.  Since L N = total stall time
#: = stall_ratio * playback time, the exponent becomes
#: 0.19 N + 0.15 * stall_ratio * VIDEO_REF_PLAYBACK_S.
VIDEO_STALL_A = 3.50
VIDEO_STALL_B = 1.50
VIDEO_STALL_PER_S = 0.15
VIDEO_STALL_PER_EVENT = 0.19
#: Reference playback duration used to turn the stall ratio into stalled
#: seconds (chosen: 30 s, the order of the clip length in the crowdsourcing
#: tests behind the fit).
VIDEO_REF_PLAYBACK_S = 30.0


def video_mos(initial_buffering_ms, stall_ratio, stall_count, resolution_lines, *, ref_playback_s=VIDEO_REF_PLAYBACK_S):
    """Video streaming MOS (1..4.5) from start-up, stalling and resolution.

    ``MOS = 1 + (Q_res - 1) * S_init * S_stall`` with

    * ``Q_res = clip(a + b ln(lines), 1, 4.5)`` (anchors 240p -> 2.5,
      1080p -> 4.5; chosen);
    * ``S_init = 1 - 0.25 (1 - exp(-T0 / 8 s))`` (chosen, after Hossfeld et al.
      QoMEX 2012: initial delay is a minor factor);
    * ``S_stall = (0.5 + 3.5 exp(-(0.19 N + 0.15 * ratio * 30 s))) / 4``
      (Hossfeld et al. ISM 2011 exponential stalling model, normalised).

    Negative inputs are clipped to 0 (lines to >= 1); NaN propagates.
    ``stall_ratio`` = total stall time / playback time (a fraction).
    """
    with np.errstate(all="ignore"):
        lines = _f(resolution_lines)
        lines = np.where(lines < 1.0, 1.0, lines)
        q = _np_clamp(_RES_A + _RES_B * np.log(lines), 1.0, VIDEO_MOS_MAX)
        t0 = _np_max0(_f(initial_buffering_ms)) / 1000.0
        s_init = 1.0 - VIDEO_W_INIT * (1.0 - np.exp(-t0 / VIDEO_TAU_INIT_S))
        n = _np_max0(_f(stall_count))
        ratio = _np_max0(_f(stall_ratio))
        x = VIDEO_STALL_PER_EVENT * n + VIDEO_STALL_PER_S * float(ref_playback_s) * ratio
        s_stall = (VIDEO_STALL_B - 1.0 + VIDEO_STALL_A * np.exp(-x)) / 4.0
        mos = 1.0 + (q - 1.0) * s_init * s_stall
    return _out(mos)


def video_mos_sql(initial_buffering_ms, stall_ratio, stall_count, resolution_lines, *, ref_playback_s=VIDEO_REF_PLAYBACK_S) -> str:
    """SQL twin of :func:`video_mos`."""
    L = _lit
    lines = _sql(resolution_lines)
    lines = f"(CASE WHEN {lines} < {L(1.0)} THEN {L(1.0)} ELSE {lines} END)"
    q = _sql_clamp(f"({L(_RES_A)} + {L(_RES_B)} * LN({lines}))", 1.0, VIDEO_MOS_MAX)
    t0 = f"({_sql_max0(_sql(initial_buffering_ms))} / {L(1000.0)})"
    s_init = f"({L(1.0)} - {L(VIDEO_W_INIT)} * ({L(1.0)} - EXP(-{t0} / {L(VIDEO_TAU_INIT_S)})))"
    n = _sql_max0(_sql(stall_count))
    ratio = _sql_max0(_sql(stall_ratio))
    x = f"({L(VIDEO_STALL_PER_EVENT)} * {n} + {L(VIDEO_STALL_PER_S * float(ref_playback_s))} * {ratio})"
    s_stall = f"(({L(VIDEO_STALL_B - 1.0)} + {L(VIDEO_STALL_A)} * EXP(-{x})) / {L(4.0)})"
    return f"({L(1.0)} + ({q} - {L(1.0)}) * {s_init} * {s_stall})"


# ---------------------------------------------------------------------------
# 3. Web browsing MOS (G.1030-style logarithmic model)
# ---------------------------------------------------------------------------
#: ITU-T G.1030 (Appendix I opinion model for web browsing) relates MOS
#: linearly to the logarithm of the (page-load / session) time, anchored at
#: MOS 5 for a context-dependent minimum time and MOS 1 for a maximum time:
#:   MOS = 5 - 4 ln(PLT / Min) / ln(Max / Min) = a - b ln(PLT), clipped 1..5.
#: Anchor values are chosen (G.1030 gives context-specific ones): Min = 1 s
#: (response feels immediate, Nielsen's 1 s limit), Max = 20 s.  In seconds
#: this is MOS = 5 - 1.3352 ln(PLT_s): 2 s -> 4.07, 3 s -> 3.53,
#: 5 s -> 2.85, 10 s -> 1.93.
WEB_MIN_MS = 1000.0
WEB_MAX_MS = 20000.0


def _web_ab(min_ms: float, max_ms: float) -> tuple[float, float]:
    min_ms, max_ms = float(min_ms), float(max_ms)
    if not (0.0 < min_ms < max_ms):
        raise InputError("need 0 < min_ms < max_ms")
    b = 4.0 / math.log(max_ms / min_ms)
    a = 5.0 + b * math.log(min_ms)
    return a, b


def web_mos(plt_ms, *, min_ms=WEB_MIN_MS, max_ms=WEB_MAX_MS):
    """Web MOS from page-load time (ms), G.1030 log model.

    ``MOS = a - b ln(PLT_ms)`` with ``b = 4 / ln(max/min)``,
    ``a = 5 + b ln(min)``; 5 for PLT <= min, 1 for PLT >= max.
    Defaults min = 1000 ms, max = 20000 ms (chosen).
    """
    a, b = _web_ab(min_ms, max_ms)
    p = _f(plt_ms)
    with np.errstate(all="ignore"):
        mid = a - b * np.log(np.where(p <= 0, 1.0, p))  # NaN stays NaN
        mos = np.where(p <= float(min_ms), 5.0, np.where(p >= float(max_ms), 1.0, mid))
    return _out(mos)


def web_mos_sql(plt_ms, *, min_ms=WEB_MIN_MS, max_ms=WEB_MAX_MS) -> str:
    """SQL twin of :func:`web_mos`."""
    a, b = _web_ab(min_ms, max_ms)
    p = _sql(plt_ms)
    L = _lit
    return (
        f"(CASE WHEN {p} <= {L(min_ms)} THEN {L(5.0)} WHEN {p} >= {L(max_ms)} THEN {L(1.0)}"
        f" ELSE {L(a)} - {L(b)} * LN({p}) END)"
    )


# ---------------------------------------------------------------------------
# 4. Generic KQI scoring curves (0..100)
# ---------------------------------------------------------------------------
_LN9 = math.log(9.0)


def _check_good_bad(good, bad) -> None:
    if np.isscalar(good) and np.isscalar(bad) and float(good) == float(bad):
        raise InputError("good and bad must differ")


def score_logistic(x, good, bad):
    """Logistic KQI score in (0, 100): ``score(good) = 90``, ``score(bad) = 10``.

    ``score = 100 / (1 + exp(-k (x - m)))`` with ``m = (good + bad)/2`` and
    ``k = 2 ln 9 / (good - bad)``; the sign of k makes it work for both
    higher-is-better (good > bad) and lower-is-better (good < bad) KQIs.
    Evaluated in an overflow-free form.  NaN propagates.
    """
    _check_good_bad(good, bad)
    with np.errstate(all="ignore"):
        g, b = _f(good), _f(bad)
        k = 2.0 * _LN9 / (g - b)
        m = (g + b) / 2.0
        z = k * (_f(x) - m)
        e = np.exp(-np.abs(z))
        s = np.where(z >= 0.0, 100.0 / (1.0 + e), 100.0 * e / (1.0 + e))
    return _out(s)


def score_logistic_sql(x, good, bad) -> str:
    """SQL twin of :func:`score_logistic` (good/bad: numbers or SQL expressions)."""
    L = _lit
    e = _sql(x)
    if isinstance(good, str) or isinstance(bad, str):
        g, b = _sql(good), _sql(bad)
        k = f"({L(2.0 * _LN9)} / ({g} - {b}))"
        m = f"(({g} + {b}) / {L(2.0)})"
    else:
        _check_good_bad(good, bad)
        k = L(2.0 * _LN9 / (float(good) - float(bad)))
        m = L((float(good) + float(bad)) / 2.0)
    z = f"({k} * ({e} - {m}))"
    return (
        f"(CASE WHEN {z} >= {L(0.0)} THEN {L(100.0)} / ({L(1.0)} + EXP(-{z}))"
        f" ELSE {L(100.0)} * EXP({z}) / ({L(1.0)} + EXP({z})) END)"
    )


def score_linear(x, good, bad):
    """Linear KQI score: ``100 (x - bad) / (good - bad)`` clipped to 0..100.

    ``good`` scores 100 and ``bad`` scores 0; works in both directions.
    """
    _check_good_bad(good, bad)
    with np.errstate(all="ignore"):
        g, b = _f(good), _f(bad)
        s = 100.0 * (_f(x) - b) / (g - b)
        s = _np_clamp(s, 0.0, 100.0)
    return _out(s)


def score_linear_sql(x, good, bad) -> str:
    """SQL twin of :func:`score_linear` (good/bad: numbers or SQL expressions)."""
    L = _lit
    e = _sql(x)
    if isinstance(good, str) or isinstance(bad, str):
        g, b = _sql(good), _sql(bad)
        s = f"({L(100.0)} * ({e} - {b}) / ({g} - {b}))"
    else:
        _check_good_bad(good, bad)
        s = f"({L(100.0)} * ({e} - {L(bad)}) / {L(float(good) - float(bad))})"
    return _sql_clamp(s, 0.0, 100.0)

"""Stateless counter-based random numbers: Philox4x32-10.

Philox4x32-10 (Salmon, Moraes, Dror & Shaw, "Parallel random numbers: as easy as
1, 2, 3", SC'11; the Random123 library) maps a 128-bit counter and a 64-bit key to
128 random bits. There is no generator state: the draw for a scenario, month and
purpose is a pure function of those numbers, so a chunk of scenarios computed alone,
on another machine, or on a GPU gets exactly the draws it would get in one big array.

Counter layout
--------------
======  =====================================================================
word    meaning
======  =====================================================================
``c0``  scenario index, low 32 bits
``c1``  scenario index, high 32 bits
``c2``  month index ``t`` (0 is the first month of the horizon)
``c3``  stream id: what is being drawn (see below)
======  =====================================================================

The key is the seed: ``k0 = seed & 0xFFFFFFFF``, ``k1 = (seed >> 32) & 0xFFFFFFFF``.
One Philox call yields four 32-bit words, hence up to four uniforms or two normals.

Stream ids
----------
A stream id is built from a *kind* below 64 (6 bits):

* ``0`` is reserved and never drawn, so an uninitialised stream is a visible bug.
* ``1..15`` global market factors: :data:`STREAM_BTC`, :data:`STREAM_HASHRATE`,
  :data:`STREAM_FEES`, :data:`STREAM_FACTOR` (the common factor's innovations, and the AI
  rent index's own noise), :data:`STREAM_FACTOR_LEVEL` (the factor's level).
* ``16..31`` power markets: market ``m`` (``0 <= m < 16``) draws from
  ``power_stream(m) = STREAM_POWER_BASE + m``.
* ``32..63`` per-entity events: :data:`STREAM_OVERRUN`, :data:`STREAM_DELAY`,
  :data:`STREAM_EXIT`, :data:`STREAM_RELET`, :data:`STREAM_RENEWAL`
  (drawn at "month" k for the k-th end of a tenancy), :data:`STREAM_SALE`.

A global draw uses the kind itself as the stream (values ``< 64``). A draw that
belongs to one site (or other entity) uses
``entity_stream(kind, i) = kind + 64 * (1 + i)`` (values ``>= 64``). The map
``(kind, i) -> stream`` is one-to-one, and global and per-entity ids never meet,
so no two purposes share draws. A kind must be used with one entity type only
(e.g. the site list), so that site 3 and contract 3 never collide.

``PHILOX_CUDA_SRC`` is the same generator in CUDA C for fused kernels; it is kept a
line-by-line twin of :func:`philox4x32_10`, :func:`uniform` and :func:`normal_pair`.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

import numpy as np

__all__ = [
    "PHILOX_CUDA_SRC",
    "STREAM_BTC",
    "STREAM_DELAY",
    "STREAM_EXIT",
    "STREAM_FACTOR",
    "STREAM_FACTOR_LEVEL",
    "STREAM_FEES",
    "STREAM_HASHRATE",
    "STREAM_OVERRUN",
    "STREAM_POWER_BASE",
    "STREAM_RELET",
    "STREAM_RENEWAL",
    "STREAM_SALE",
    "entity_stream",
    "normal",
    "normal_pair",
    "philox4x32_10",
    "power_stream",
    "site_stream",
    "uniform",
    "uniforms4",
]

PHILOX_M0 = np.uint32(0xD2511F53)
PHILOX_M1 = np.uint32(0xCD9E8D57)
PHILOX_W0 = np.uint32(0x9E3779B9)
PHILOX_W1 = np.uint32(0xBB67AE85)
PHILOX_ROUNDS = 10

_MASK32 = np.uint64(0xFFFFFFFF)
_SHIFT32 = np.uint64(32)
# 2**-32 in float64 is exact, so (x + 0.5) * 2**-32 is exact for every uint32 x.
_TWO_POW_M32 = 2.0**-32
# Written out so the CUDA twin uses the identical double.
_TWO_PI = 6.283185307179586  # == 2.0 * math.pi

KIND_BITS = 6
N_KINDS = 1 << KIND_BITS  # 64

STREAM_BTC = 1
STREAM_HASHRATE = 2
STREAM_FEES = 3
STREAM_FACTOR = 4  # the common factor's monthly innovation and the AI rent index's noise
STREAM_FACTOR_LEVEL = 5  # the common factor's level over the horizon (month 0)
STREAM_POWER_BASE = 16
N_POWER_MARKETS_MAX = 16
STREAM_OVERRUN = 32
STREAM_DELAY = 33
STREAM_EXIT = 34
STREAM_RELET = 35
STREAM_RENEWAL = 36
STREAM_SALE = 37  # whether a site's sale closes (entity: the site)

_UINT32_MAX = 0xFFFFFFFF
_UINT64_MAX = 0xFFFFFFFFFFFFFFFF


def power_stream(market_index: int) -> int:
    """Stream id of power market ``market_index``.

    Parameters
    ----------
    market_index : int
        Position of the market in the scenario's market list, ``0 <= m < 16``.

    Returns
    -------
    int
        ``STREAM_POWER_BASE + market_index``.
    """
    if not 0 <= market_index < N_POWER_MARKETS_MAX:
        raise ValueError(f"power market index {market_index} outside 0..{N_POWER_MARKETS_MAX - 1}")
    return STREAM_POWER_BASE + market_index


def entity_stream(kind: int, entity_index: int) -> int:
    """Stream id of draw ``kind`` for one entity (site, contract, ...).

    Parameters
    ----------
    kind : int
        What is drawn, ``0 < kind < 64`` (e.g. :data:`STREAM_OVERRUN`).
    entity_index : int
        Position of the entity in its list, ``>= 0``.

    Returns
    -------
    int
        ``kind + 64 * (1 + entity_index)``; always ``>= 64``, so it never equals a
        global stream, and distinct ``(kind, entity_index)`` give distinct ids.
    """
    if not 0 < kind < N_KINDS:
        raise ValueError(f"stream kind {kind} outside 1..{N_KINDS - 1}")
    if entity_index < 0:
        raise ValueError(f"entity index {entity_index} is negative")
    stream = kind + N_KINDS * (1 + entity_index)
    if stream > _UINT32_MAX:
        raise ValueError(f"entity index {entity_index} too large for a 32-bit stream id")
    return stream


def site_stream(kind: int, site_index: int) -> int:
    """Stream id of draw ``kind`` for site ``site_index``; see :func:`entity_stream`."""
    return entity_stream(kind, site_index)


def _mulhilo(a: Any, m: np.uint32, xp: ModuleType) -> tuple[Any, Any]:
    """High and low 32-bit halves of the 64-bit product ``a * m`` (both uint32).

    The low half is the wrapping uint32 product; only the high half needs uint64.
    """
    hi = ((a.astype(xp.uint64) * np.uint64(m)) >> _SHIFT32).astype(xp.uint32)
    lo = a * m
    return hi, lo


def philox4x32_10(
    c0: Any, c1: Any, c2: Any, c3: Any, k0: Any, k1: Any, *, xp: ModuleType
) -> tuple[Any, Any, Any, Any]:
    """Philox4x32-10 block function, vectorised with broadcasting.

    Parameters
    ----------
    c0, c1, c2, c3 : array_like of uint32
        Counter words; any mutually broadcastable shapes.
    k0, k1 : array_like of uint32
        Key words; broadcastable against the counter.
    xp : module
        ``numpy`` or ``cupy``.

    Returns
    -------
    tuple of 4 arrays of uint32
        Output words, each of the broadcast shape.
    """
    words = [xp.asarray(w, dtype=xp.uint32) for w in (c0, c1, c2, c3, k0, k1)]
    shape = np.broadcast_shapes(*(w.shape for w in words))
    # Work on >= 1-d arrays: numpy scalar arithmetic warns on wraparound, arrays don't.
    x0, x1, x2, x3, key0, key1 = (xp.atleast_1d(w) for w in words)
    for r in range(PHILOX_ROUNDS):
        hi0, lo0 = _mulhilo(x0, PHILOX_M0, xp)
        hi1, lo1 = _mulhilo(x2, PHILOX_M1, xp)
        x0, x1, x2, x3 = hi1 ^ x1 ^ key0, lo1, hi0 ^ x3 ^ key1, lo0
        if r < PHILOX_ROUNDS - 1:
            key0 = key0 + PHILOX_W0
            key1 = key1 + PHILOX_W1
    # After three rounds every word has mixed in every input, so each has `shape`,
    # except that 0-d inputs were lifted to 1-d above.
    return tuple(x.reshape(shape) for x in (x0, x1, x2, x3))


def _counter_and_key(
    seed: int, scenario: Any, month: Any, stream: int, xp: ModuleType
) -> tuple[Any, ...]:
    """Validate the draw coordinates and lay them out as (c0, c1, c2, c3, k0, k1)."""
    if not 0 <= seed <= _UINT64_MAX:
        raise ValueError(f"seed {seed} outside 0..2**64-1")
    if not 0 <= stream <= _UINT32_MAX:
        raise ValueError(f"stream {stream} outside 0..2**32-1")
    scen = xp.asarray(scenario)
    mon = xp.asarray(month)
    for name, arr in (("scenario", scen), ("month", mon)):
        if arr.dtype.kind not in "iu":
            raise TypeError(f"{name} index must be an integer array, got {arr.dtype}")
    # Through int64, a uint64 index >= 2**63 turns negative and is rejected too.
    scen64 = scen.astype(xp.int64)
    mon64 = mon.astype(xp.int64)
    if scen64.size and bool(xp.any(scen64 < 0)):
        raise ValueError("scenario index outside 0..2**63-1")
    if mon64.size and bool(xp.any((mon64 < 0) | (mon64 > np.int64(_UINT32_MAX)))):
        raise ValueError("month index outside 0..2**32-1")
    scen_u64 = scen64.astype(xp.uint64)
    c0 = (scen_u64 & _MASK32).astype(xp.uint32)
    c1 = (scen_u64 >> _SHIFT32).astype(xp.uint32)
    c2 = mon64.astype(xp.uint32)
    c3 = np.uint32(stream)
    k0 = np.uint32(seed & _UINT32_MAX)
    k1 = np.uint32((seed >> 32) & _UINT32_MAX)
    return c0, c1, c2, c3, k0, k1


def _to_uniform(x: Any, xp: ModuleType) -> Any:
    """Map uint32 words to float64 in (0, 1): ``(x + 0.5) * 2**-32``, exactly."""
    return (x.astype(xp.float64) + 0.5) * _TWO_POW_M32


def uniforms4(
    seed: int, scenario: Any, month: Any, stream: int, *, xp: ModuleType
) -> tuple[Any, Any, Any, Any]:
    """Four independent uniforms per (scenario, month) from one Philox call.

    Parameters
    ----------
    seed : int
        Run seed, ``0 <= seed < 2**64``; it is the Philox key.
    scenario : array_like of int
        Scenario indices ``>= 0``, any shape.
    month : int or array_like of int
        Month indices ``t >= 0`` [month], broadcastable against ``scenario``.
    stream : int
        Stream id naming what is drawn (module docstring).
    xp : module
        ``numpy`` or ``cupy``.

    Returns
    -------
    tuple of 4 arrays of float64
        Uniforms in the open interval (0, 1), of the broadcast shape;
        bit-identical on every backend.
    """
    words = philox4x32_10(*_counter_and_key(seed, scenario, month, stream, xp), xp=xp)
    return tuple(_to_uniform(w, xp) for w in words)


def uniform(
    seed: int, scenario: Any, month: Any, stream: int, *, xp: ModuleType, word: int = 0
) -> Any:
    """Uniforms in (0, 1), one per (scenario, month); see :func:`uniforms4`.

    Parameters
    ----------
    word : int
        Which of the four Philox output words to use, ``0..3``. Draws from
        different words of the same counter are independent.

    Returns
    -------
    array of float64
        ``(x_word + 0.5) * 2**-32``, never 0 or 1.
    """
    if word not in (0, 1, 2, 3):
        raise ValueError(f"word {word} outside 0..3")
    words = philox4x32_10(*_counter_and_key(seed, scenario, month, stream, xp), xp=xp)
    return _to_uniform(words[word], xp)


def _box_muller(u0: Any, u1: Any, xp: ModuleType) -> tuple[Any, Any]:
    """Two independent standard normals from two uniforms in (0, 1)."""
    radius = xp.sqrt(-2.0 * xp.log(u0))
    angle = _TWO_PI * u1
    return radius * xp.cos(angle), radius * xp.sin(angle)


def normal_pair(
    seed: int, scenario: Any, month: Any, stream: int, *, xp: ModuleType
) -> tuple[Any, Any]:
    """Two independent standard normals per (scenario, month), Box-Muller.

    Uses words 0 and 1: ``z0 = sqrt(-2 ln u0) cos(2 pi u1)`` and
    ``z1 = sqrt(-2 ln u0) sin(2 pi u1)``. Parameters as in :func:`uniforms4`.

    Returns
    -------
    tuple of 2 arrays of float64
        ``(z0, z1)``. Backends agree to a few ulps (``log``, ``cos`` and ``sin``
        are not correctly rounded), not bit for bit.
    """
    u0, u1, _, _ = uniforms4(seed, scenario, month, stream, xp=xp)
    return _box_muller(u0, u1, xp)


def normal(seed: int, scenario: Any, month: Any, stream: int, *, xp: ModuleType) -> Any:
    """One standard normal per (scenario, month): ``z0`` of :func:`normal_pair`.

    Returns
    -------
    array of float64
        ``sqrt(-2 ln u0) cos(2 pi u1)`` from words 0 and 1.
    """
    u0, u1, _, _ = uniforms4(seed, scenario, month, stream, xp=xp)
    return xp.sqrt(-2.0 * xp.log(u0)) * xp.cos(_TWO_PI * u1)


PHILOX_CUDA_SRC = r"""
// Philox4x32-10 (Salmon et al. 2011), twin of siteopt.kernels.rng. Plain CUDA C,
// no includes, for a cupy RawKernel / ElementwiseKernel preamble.
// Counter: ctr[0] = scenario low 32 bits, ctr[1] = scenario high 32 bits,
// ctr[2] = month, ctr[3] = stream id. Key: key[0] = seed low, key[1] = seed high.
#define SITEOPT_PHILOX_M0 0xD2511F53u
#define SITEOPT_PHILOX_M1 0xCD9E8D57u
#define SITEOPT_PHILOX_W0 0x9E3779B9u
#define SITEOPT_PHILOX_W1 0xBB67AE85u

// In place: ctr[4] holds the counter on entry and the four output words on exit.
__device__ __forceinline__ void philox4x32_10(unsigned int ctr[4], const unsigned int key[2])
{
    unsigned int key0 = key[0];
    unsigned int key1 = key[1];
    for (int r = 0; r < 10; ++r) {
        unsigned long long prod0 = (unsigned long long)ctr[0] * SITEOPT_PHILOX_M0;
        unsigned long long prod1 = (unsigned long long)ctr[2] * SITEOPT_PHILOX_M1;
        unsigned int hi0 = (unsigned int)(prod0 >> 32);
        unsigned int lo0 = ctr[0] * SITEOPT_PHILOX_M0;
        unsigned int hi1 = (unsigned int)(prod1 >> 32);
        unsigned int lo1 = ctr[2] * SITEOPT_PHILOX_M1;
        unsigned int x1 = ctr[1];
        unsigned int x3 = ctr[3];
        ctr[0] = hi1 ^ x1 ^ key0;
        ctr[1] = lo1;
        ctr[2] = hi0 ^ x3 ^ key1;
        ctr[3] = lo0;
        if (r < 9) {
            key0 += SITEOPT_PHILOX_W0;
            key1 += SITEOPT_PHILOX_W1;
        }
    }
}

// (x + 0.5) * 2^-32 in double: exact, in the open interval (0, 1).
__device__ __forceinline__ double philox_uniform(unsigned int x)
{
    return ((double)x + 0.5) * 2.3283064365386963e-10;
}

// Four words for (seed, scenario, month, stream), same layout as the numpy code.
__device__ __forceinline__ void philox_draw(unsigned long long seed,
                                            unsigned long long scenario,
                                            unsigned int month, unsigned int stream,
                                            unsigned int out[4])
{
    unsigned int key[2];
    key[0] = (unsigned int)(seed & 0xFFFFFFFFull);
    key[1] = (unsigned int)(seed >> 32);
    out[0] = (unsigned int)(scenario & 0xFFFFFFFFull);
    out[1] = (unsigned int)(scenario >> 32);
    out[2] = month;
    out[3] = stream;
    philox4x32_10(out, key);
}

// Box-Muller from two uniforms: z0 = sqrt(-2 ln u0) cos(2 pi u1), z1 with sin.
__device__ __forceinline__ void philox_box_muller(double u0, double u1,
                                                  double* z0, double* z1)
{
    double radius = sqrt(-2.0 * log(u0));
    double angle = 6.283185307179586 * u1;
    *z0 = radius * cos(angle);
    *z1 = radius * sin(angle);
}

// Two standard normals for (seed, scenario, month, stream) from words 0 and 1.
__device__ __forceinline__ void philox_normal_pair(unsigned long long seed,
                                                   unsigned long long scenario,
                                                   unsigned int month, unsigned int stream,
                                                   double* z0, double* z1)
{
    unsigned int w[4];
    philox_draw(seed, scenario, month, stream, w);
    philox_box_muller(philox_uniform(w[0]), philox_uniform(w[1]), z0, z1);
}
"""

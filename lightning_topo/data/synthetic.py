"""Synthetic binary data sets with known topology (Naitzat, Zhitnikov & Lim, 2020).

Each generator returns ``(points, labels)``: ``float32`` points of shape ``(n, d)`` and
``int64`` labels in ``{0, 1}`` (0 is class *a*, 1 is class *b*).  The known Betti numbers of each
class are given by :func:`known_betti`; with ``units`` disks/tori/shells they are

========  ============================  ==============================
set       class a                       class b
========  ============================  ==============================
``d1``    ``(units, 0)``                ``(1, units)``
``d2``    ``(units, units, 0)``         ``(units, units, 0)``
``d3``    ``(units, 0, units)``         ``(2 * units, 0, units)``
========  ============================  ==============================

``units=9`` reproduces the original layouts (a centre and a ring of 8); any other perfect square
``m * m`` lays the units out on an ``m x m`` grid, so ``d1(units=169)`` gives the "Betti numbers
> 150" sets of the seed paper.

Example:
    >>> x, y = make_d1(units=9, n_points=7800, seed=0)   # a jittered grid: about n_points points
    >>> x.shape, sorted(set(y.tolist()))
    ((7884, 2), [0, 1])
    >>> known_betti("d1", units=9)
    {0: (9, 0), 1: (1, 9)}
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

__all__ = [
    "DATASETS",
    "DEFAULT_K",
    "check_arguments",
    "known_betti",
    "make_d1",
    "make_d2",
    "make_d3",
    "make_dataset",
    "unit_centres",
]

# D-I geometry (Naitzat et al.): disks of radius 1.3, holes of radius 1.8, ring of radius 7 in [-10, 10]^2.
_D1_DISK, _D1_HOLE, _D1_RING, _D1_HALF_SIDE = 1.3, 1.8, 7.0, 10.0
_GRID_SPACING_2D = 5.0  # centre-to-centre distance of grid layouts (> 2 * hole radius, with margin)


def check_arguments(units: int, n_points: int | None = None, per_unit: int = 2) -> None:
    """Raise a ``ValueError`` naming the argument unless ``units`` (and ``n_points``, at least ``per_unit`` points
    per unit, if given) are usable."""
    if not isinstance(units, (int, np.integer)) or units < 1:
        raise ValueError(f"units must be a positive integer, got {units!r}")
    if units != 9 and math.isqrt(units) ** 2 != units:
        raise ValueError(
            f"units must be 9 (the original layout) or a perfect square m*m (a grid), got {units}; "
            f"for example units=169 gives a 13x13 grid"
        )
    if n_points is not None and (not isinstance(n_points, (int, np.integer)) or n_points < per_unit * units):
        raise ValueError(f"n_points must be an integer >= {per_unit} * units ({per_unit * units}), got {n_points!r}")


def unit_centres(units: int, dim: int, spacing: float) -> np.ndarray:
    """Centres of ``units`` units in ``dim`` dimensions.

    ``units=9`` gives the original layout: the origin plus 8 points on a ring of radius ``spacing``
    (``dim=2``) or at the cube corners ``(+-s, +-s, +-s)`` with ``s = spacing`` (``dim=3``).  A
    perfect square ``m * m`` gives an ``m x m`` grid with the given spacing (in the xy-plane for 3-D).
    """
    if units == 9:
        if dim == 2:
            angles = np.arange(8) * (2 * math.pi / 8)
            ring = spacing * np.stack([np.cos(angles), np.sin(angles)], axis=1)
            return np.vstack([np.zeros((1, 2)), ring])
        corners = np.array([[sx, sy, sz] for sx in (-1, 1) for sy in (-1, 1) for sz in (-1, 1)], dtype=float)
        return np.vstack([np.zeros((1, 3)), spacing * corners])
    check_arguments(units)
    side = math.isqrt(units)
    offsets = (np.arange(side) - (side - 1) / 2) * spacing
    gx, gy = np.meshgrid(offsets, offsets, indexing="ij")
    centres = np.stack([gx.ravel(), gy.ravel()], axis=1)
    if dim == 3:
        centres = np.hstack([centres, np.zeros((units, 1))])
    return centres


def make_d1(units: int = 9, n_points: int = 7800, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """D-I: disks (class a) and the square with a hole around each disk (class b) in R^2.

    Points lie on a jittered regular grid (as in the original data; a uniformly random sample shows
    spurious loops at the protocol's k).  Points in the ring between radius 1.3 and 1.8 of a centre
    are left out, so the classes are separated by a margin.  ``n_points`` is matched approximately
    (within about 1%) by choosing the grid spacing.

    Known Betti numbers: class a ``(units, 0)``, class b ``(1, units)``.
    """
    check_arguments(units, n_points)
    rng = np.random.default_rng(seed)
    if units == 9:
        centres = unit_centres(9, 2, _D1_RING)
        half = _D1_HALF_SIDE
    else:
        centres = unit_centres(units, 2, _GRID_SPACING_2D)
        half = (math.isqrt(units) * _GRID_SPACING_2D) / 2
    kept_area = (2 * half) ** 2 - units * math.pi * (_D1_HOLE**2 - _D1_DISK**2)
    step = math.sqrt(kept_area / n_points)
    axis = np.arange(-half + step / 2, half, step)
    gx, gy = np.meshgrid(axis, axis, indexing="ij")
    grid = np.stack([gx.ravel(), gy.ravel()], axis=1)
    grid += rng.uniform(-0.2 * step, 0.2 * step, size=grid.shape)
    dist = np.min(np.linalg.norm(grid[:, None, :] - centres[None, :, :], axis=2), axis=1)
    in_disk, outside_holes = dist <= _D1_DISK, dist > _D1_HOLE
    points = np.vstack([grid[in_disk], grid[outside_holes]])
    labels = np.concatenate([np.zeros(in_disk.sum(), np.int64), np.ones(outside_holes.sum(), np.int64)])
    return _shuffle(points, labels, rng)


def _solid_torus(rng: np.random.Generator, n: int, ring: float, tube: float) -> np.ndarray:
    """``n`` points uniform in a solid torus around the z-axis (exact volume measure, by rejection)."""
    out: list[np.ndarray] = []
    count = 0
    while count < n:
        m = 2 * (n - count) + 16
        rho = tube * np.sqrt(rng.uniform(0, 1, m))
        phi = rng.uniform(0, 2 * math.pi, m)
        theta = rng.uniform(0, 2 * math.pi, m)
        radial = ring + rho * np.cos(phi)
        keep = rng.uniform(0, ring + tube, m) < radial  # volume element is proportional to the radius
        pts = np.stack([radial * np.cos(theta), radial * np.sin(theta), rho * np.sin(phi)], axis=1)[keep]
        out.append(pts)
        count += len(pts)
    return np.vstack(out)[:n]


_D2_RING, _D2_TUBE, _D2_SPACING = 2.5, 0.6, 7.0


def make_d2(units: int = 9, n_points: int = 45000, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """D-II: ``units`` pairs of interlocked solid tori in R^3, one torus of each pair per class.

    In each pair, torus a lies in the xy-plane and torus b in the xz-plane, shifted by the ring
    radius so that each ring passes through the other's hole (two links of a chain).

    Known Betti numbers: both classes ``(units, units, 0)``.
    """
    check_arguments(units, n_points)
    rng = np.random.default_rng(seed)
    centres = unit_centres(units, 3, _D2_SPACING)
    per_torus = n_points // (2 * units)
    extra = n_points - per_torus * 2 * units
    swap_yz = np.array([[1, 0, 0], [0, 0, 1], [0, 1, 0]], dtype=float)
    shift = np.array([_D2_RING / 2, 0.0, 0.0])
    points, labels = [], []
    for i, centre in enumerate(centres):
        n_a = per_torus + (1 if 2 * i < extra else 0)
        n_b = per_torus + (1 if 2 * i + 1 < extra else 0)
        points.append(_solid_torus(rng, n_a, _D2_RING, _D2_TUBE) + centre - shift)
        points.append(_solid_torus(rng, n_b, _D2_RING, _D2_TUBE) @ swap_yz + centre + shift)
        labels += [np.zeros(n_a, np.int64), np.ones(n_b, np.int64)]
    return _shuffle(np.vstack(points), np.concatenate(labels), rng)


def _shell(rng: np.random.Generator, n: int, inner: float, outer: float) -> np.ndarray:
    """``n`` points uniform in the region between two concentric spheres (``inner=0``: a ball)."""
    direction = rng.normal(size=(n, 3))
    direction /= np.linalg.norm(direction, axis=1, keepdims=True)
    radius = np.cbrt(rng.uniform(inner**3, outer**3, n))
    return direction * radius[:, None]


# D-III radii: class b inner ball, class a shell, class b outer shell.
_D3_BALL, _D3_A_SHELL, _D3_B_SHELL, _D3_SPACING = (0.0, 1.0), (1.8, 2.5), (3.6, 4.3), 10.0
_D3_SHARES = (0.12, 0.33, 0.55)


def make_d3(units: int = 9, n_points: int = 37800, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """D-III: nested spheres in R^3.

    Each unit is a small ball (class b) inside a spherical shell (class a) inside a larger shell
    (class b), holding 12%, 33% and 55% of the unit's points: the ball gets more than its volume's
    share so that, at the protocol's k=35, its neighbourhoods stay inside it even at a quarter of
    the default size.

    Known Betti numbers: class a ``(units, 0, units)``, class b ``(2 * units, 0, units)``.  ``n_points`` is
    matched exactly; it must be at least ``9 * units``, so that 12% of a unit's points is one point or more.
    """
    check_arguments(units, n_points, per_unit=9)  # fewer, and every part's one point overshot the size (27 for 18)
    rng = np.random.default_rng(seed)
    centres = unit_centres(units, 3, _D3_SPACING)
    parts = [(_D3_BALL, 1), (_D3_A_SHELL, 0), (_D3_B_SHELL, 1)]
    per_unit = n_points / units
    counts = np.maximum(np.floor(per_unit * np.array(_D3_SHARES)).astype(int), 1)
    points, labels = [], []
    for centre in centres:
        for ((inner, outer), label), count in zip(parts, counts):
            points.append(_shell(rng, int(count), inner, outer) + centre)
            labels.append(np.full(int(count), label, np.int64))
    points_arr, labels_arr = np.vstack(points), np.concatenate(labels)
    short = n_points - len(points_arr)  # top up with outer-shell points so the size is exact
    if short > 0:
        fill = [_shell(rng, 1, *_D3_B_SHELL) + centres[i % units] for i in range(short)]
        points_arr = np.vstack([points_arr, *fill])
        labels_arr = np.concatenate([labels_arr, np.ones(short, np.int64)])
    return _shuffle(points_arr, labels_arr, rng)


def _shuffle(points: np.ndarray, labels: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    order = rng.permutation(len(points))
    return points[order].astype(np.float32), labels[order]


DATASETS: dict[str, Callable[..., tuple[np.ndarray, np.ndarray]]] = {"d1": make_d1, "d2": make_d2, "d3": make_d3}

# Protocol k calibrated on the default sizes (Naitzat et al.: k=14 for D-I, k=35 for D-II/D-III).
DEFAULT_K: dict[str, int] = {"d1": 14, "d2": 35, "d3": 35}


def make_dataset(name: str, **kwargs: int) -> tuple[np.ndarray, np.ndarray]:
    """Generate a synthetic set by name (``"d1"``, ``"d2"`` or ``"d3"``); keyword arguments as the generators."""
    try:
        generator = DATASETS[name.lower()]
    except (KeyError, AttributeError):
        raise ValueError(f"unknown synthetic dataset {name!r}; choose one of {sorted(DATASETS)}") from None
    return generator(**kwargs)


def known_betti(name: str, units: int = 9) -> dict[int, tuple[int, ...]]:
    """The Betti numbers of each class of a synthetic set, ``{label: (beta_0, beta_1[, beta_2])}``."""
    key = name.lower() if isinstance(name, str) else name
    table = {
        "d1": {0: (units, 0), 1: (1, units)},
        "d2": {0: (units, units, 0), 1: (units, units, 0)},
        "d3": {0: (units, 0, units), 1: (2 * units, 0, units)},
    }
    if key not in table:
        raise ValueError(f"unknown synthetic dataset {name!r}; choose one of {sorted(table)}")
    return table[key]

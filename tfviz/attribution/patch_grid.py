"""Where occlusion puts its patches: the patch and stride checks, the patch offsets along
each axis, the grid of positions they make, and the two ways a grid of drops turns into
something else (a per-pixel map; a fine grid estimated from a coarse one).

Plain numpy, no model: :mod:`.occlusion` (which scores the positions) and
:mod:`.incremental` (which plans which part of each layer a patch can change) both
build on it.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .errors import PatchSizeError, StrideError


def _int_pair(v, what, error):
    if isinstance(v, (tuple, list)) and len(v) == 2:
        a, b = v
    else:
        a = b = v
    for t in (a, b):
        if isinstance(t, bool) or not isinstance(t, (int, np.integer)):
            raise error(f"{what} must be a positive integer or a pair (height, width), got {v!r}")
    return int(a), int(b)


def positions(size: int, patch: int, stride: int) -> np.ndarray:
    """Patch offsets along one axis: every ``stride`` pixels, plus one flush with the
    far edge so every pixel is covered."""
    pos = list(range(0, size - patch + 1, stride))
    if pos[-1] != size - patch:
        pos.append(size - patch)
    return np.asarray(pos, np.int32)


def check_patch(h: int, w: int, patch, stride):
    """Validated ``(ph, pw), (sh, sw)``; defaults: patch 1/8 of the smaller side,
    stride half the patch."""
    if patch is None:
        patch = max(1, min(h, w) // 8)
    ph, pw = _int_pair(patch, "patch", PatchSizeError)
    if ph <= 0 or pw <= 0:
        raise PatchSizeError(f"patch must be positive, got {patch!r}")
    if ph > h or pw > w:
        raise PatchSizeError(f"patch {ph}x{pw} is larger than the image {h}x{w}; use a patch of at most {h}x{w}")
    if stride is None:
        stride = (max(1, ph // 2), max(1, pw // 2))
    sh, sw = _int_pair(stride, "stride", StrideError)
    if sh <= 0 or sw <= 0:
        raise StrideError(f"stride must be a positive integer, got {stride!r}")
    return (ph, pw), (sh, sw)


@dataclass(frozen=True)
class PatchGrid:
    """The patch positions on an ``h`` x ``w`` image: rows ``tops`` x columns ``lefts``
    of a ``ph`` x ``pw`` patch moved by ``sh`` x ``sw``. Position ``j`` of the flat
    grid (row-major) is ``(tops[j // nx], lefts[j % nx])``."""
    h: int
    w: int
    ph: int
    pw: int
    sh: int
    sw: int

    @classmethod
    def of(cls, h: int, w: int, patch=None, stride=None) -> "PatchGrid":
        """The grid of ``patch`` / ``stride`` (checked, defaults as :func:`check_patch`)."""
        (ph, pw), (sh, sw) = check_patch(h, w, patch, stride)
        return cls(int(h), int(w), ph, pw, sh, sw)

    @property
    def tops(self) -> np.ndarray:
        return positions(self.h, self.ph, self.sh)

    @property
    def lefts(self) -> np.ndarray:
        return positions(self.w, self.pw, self.sw)

    @property
    def ny(self) -> int:
        return len(self.tops)

    @property
    def nx(self) -> int:
        return len(self.lefts)

    @property
    def size(self) -> int:
        return self.ny * self.nx

    @property
    def flat_tops(self) -> np.ndarray:
        """The top of every position of the flat grid."""
        return np.repeat(self.tops, self.nx)

    @property
    def flat_lefts(self) -> np.ndarray:
        """The left of every position of the flat grid."""
        return np.tile(self.lefts, self.ny)

    def coarser(self, factor: int) -> "PatchGrid":
        """The same patch moved ``factor`` times as far."""
        return PatchGrid(self.h, self.w, self.ph, self.pw, self.sh * factor, self.sw * factor)

    def refine(self, coarse: "PatchGrid", drops: np.ndarray, frac: float):
        """``drops [coarse.ny, coarse.nx]`` interpolated (bilinear) at this grid's
        positions ``[ny, nx]``, the positions of this grid to re-run (those with the
        largest ``frac`` of interpolated drops that are not coarse positions), and which
        positions are coarse ones."""
        ctops, clefts, tops, lefts = coarse.tops, coarse.lefts, self.tops, self.lefts
        ry = np.stack([np.interp(tops, ctops, e) for e in np.eye(len(ctops))], 1)
        rx = np.stack([np.interp(lefts, clefts, e) for e in np.eye(len(clefts))], 1)
        est = ry @ drops @ rx.T
        thr = np.quantile(est, 1.0 - frac)
        on_coarse = np.isin(tops, ctops)[:, None] & np.isin(lefts, clefts)[None, :]
        return est.astype(np.float32), (est >= thr) & ~on_coarse, on_coarse

    def per_pixel(self, grid: np.ndarray) -> np.ndarray:
        """``grid [N, ny, nx]`` of drops as ``[N, h, w]``: each pixel the mean drop of
        the patches that cover it."""
        r = self._cover(self.tops, self.ph, self.h)
        c = self._cover(self.lefts, self.pw, self.w)
        num = np.einsum("iy,nij,jx->nyx", r, grid, c, optimize=True)
        den = np.einsum("iy,jx->yx", r, c)
        return (num / den[None]).astype(np.float32)

    @staticmethod
    def _cover(starts, patch, size):
        """``[positions, size]``: 1 where the patch at each start covers the pixel."""
        px = np.arange(size)[None, :]
        return ((px >= starts[:, None]) & (px < starts[:, None] + patch)).astype(np.float32)


__all__ = ["positions", "check_patch", "PatchGrid"]

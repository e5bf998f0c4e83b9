"""Checks of tiled pictures (filter grids, activation grids), worked out here rather than
by tfviz: the layout tfviz.images.tile promises and the min-max scale of each tile."""
import numpy as np


def min_max_255(a):
    """Min-max rescale to 0..255 as floats (all zero when constant)."""
    a = np.asarray(a, np.float64)
    lo, hi = a.min(), a.max()
    return np.zeros(a.shape) if hi - lo < 1e-12 else (a - lo) / (hi - lo) * 255


def grid_tiles(grid, n, size, cols=None, gap=1):
    """The ``n`` square tiles of side ``size`` of an RGB grid laid out row-major in
    ``cols`` columns (default ``ceil(sqrt(n))``) with white ``gap`` pixels between them;
    checks the grid's size and that the gaps are white."""
    cols = cols or int(np.ceil(np.sqrt(n)))
    rows = -(-n // cols)
    assert grid.shape == (rows * size + (rows - 1) * gap, cols * size + (cols - 1) * gap, 3), grid.shape
    white = np.ones(grid.shape[:2], bool)
    tiles = []
    for i in range(n):
        r, q = divmod(i, cols)
        y, x = r * (size + gap), q * (size + gap)
        tiles.append(grid[y:y + size, x:x + size].astype(np.int64))
        white[y:y + size, x:x + size] = False
    assert (grid[white] == 255).all(), "the gaps between tiles are not white"
    return tiles


def enlarged(tile, factor):
    """A tile enlarged ``factor`` times by nearest neighbour -> the original pixels
    (checks every block is one colour)."""
    small = tile[::factor, ::factor]
    np.testing.assert_array_equal(np.repeat(np.repeat(small, factor, 0), factor, 1), tile)
    return small

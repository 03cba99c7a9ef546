"""What a removed feature becomes: the mean, zero, a conditional kNN in-fill, or given values."""
import numbers

import numpy as np

__all__ = ['REMOVALS', 'removal_values', 'removal_name']

#: the named removal values
REMOVALS = ('mean', 'zero', 'knn')


#: at most this many entries in one (rows, reference rows) distance matrix of the kNN in-fill
_KNN_BLOCK = 1 << 22


class _KNNInfill:
    """Conditional in-fill: mean of the removed features over the nearest reference rows, searched on the kept ones."""

    def __init__(self, reference, n_neighbors):
        if isinstance(n_neighbors, bool) or not isinstance(n_neighbors, numbers.Integral) or n_neighbors < 1:
            raise ValueError(f'n_neighbors must be a positive int, got {n_neighbors!r}.')
        self.reference = reference
        self.mean = reference.mean(0)
        scale = reference.std(0)
        self.scale = np.where(scale > 0, scale, 1.0)
        scaled = (reference - self.mean) / self.scale
        # [keep * z, keep] @ weights = sum_j keep_j (r_j^2 - 2 z_j r_j): one product per step
        self.weights = np.concatenate([-2.0 * scaled, scaled * scaled], axis=1).T.copy()
        self.n_neighbors = min(int(n_neighbors), max(1, reference.shape[0] - 1))
        self.rows_of = {}
        for index, row in enumerate(reference):
            self.rows_of.setdefault(row.tobytes(), []).append(index)

    def __call__(self, x, removed):
        """In-fill values (n, D) for rows ``x`` (n, D) whose features ``removed`` (n, D bool) are removed."""
        fill = np.empty_like(x)
        rows = max(1, _KNN_BLOCK // self.reference.shape[0])
        for start in range(0, x.shape[0], rows):
            block = slice(start, start + rows)
            fill[block] = self._fill(x[block], removed[block])
        return fill

    def _fill(self, x, removed):
        z = (x - self.mean) / self.scale
        keep = (~removed).astype(np.float64)
        # squared distances over the kept features only: sum_j keep_j (z_j - r_j)^2
        distance = np.concatenate([keep * z, keep], axis=1) @ self.weights
        distance += (keep * z * z).sum(1, keepdims=True)
        # skip exact copies of the point itself
        for i, row in enumerate(np.ascontiguousarray(x)):
            copies = self.rows_of.get(row.tobytes())
            if copies:
                distance[i, copies] = np.inf
        # ties are common (integer data, few kept features): quantize away the rounding of the expansion
        # (which depends on the batch) and break ties by reference row order, so results never depend on it
        distance = np.round(distance, 8)
        k = self.n_neighbors
        kth = np.partition(distance, k - 1, axis=1)[:, k - 1:k]
        chosen = distance < kth
        short = k - chosen.sum(1)
        tied_rows = np.flatnonzero(short > 0)
        if tied_rows.size:
            tied = distance[tied_rows] == kth[tied_rows]
            chosen[tied_rows] |= tied & (np.cumsum(tied, axis=1, dtype=np.int32) <= short[tied_rows, None])
        fill = (chosen.astype(np.float64) @ self.reference) / k
        # points with every feature removed: no condition left, the unconditional mean
        fill[keep.sum(1) == 0] = self.mean
        return fill


def removal_values(removal, X, X_reference, n_neighbors):
    """A function ``(rows, x, removed) -> values`` giving what removed features become."""
    if isinstance(removal, str):
        if removal == 'mean':
            mean = X_reference.mean(0, dtype=np.float64)
            return lambda rows, x, removed: mean
        if removal == 'zero':
            zero = np.zeros(X.shape[1])
            return lambda rows, x, removed: zero
        if removal == 'knn':
            # the in-fill searches all reference rows: it holds a float64 copy of them (memory O(reference))
            infill = _KNNInfill(np.asarray(X_reference, dtype=np.float64), n_neighbors)
            return lambda rows, x, removed: infill(x, removed)
        raise ValueError(f"removal must be one of {', '.join(map(repr, REMOVALS))} or an array, got {removal!r}.")
    values = np.asarray(removal, dtype=np.float64)
    if values.shape == (X.shape[1],):
        return lambda rows, x, removed: values
    if values.shape == X.shape:
        return lambda rows, x, removed: values[rows]
    raise ValueError(f'a removal array must have shape ({X.shape[1]},) or {X.shape}, got {values.shape}.')


def removal_name(removal):
    return removal if isinstance(removal, str) else 'array'

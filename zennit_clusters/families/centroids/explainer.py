"""The closed-form NEON explainer of centroid models: label, evidence and relevance in one forward pass.

It computes what the layered model with the Zennit rules computes, through the same equations, but only for the
cluster being explained: O(N K D) work in two (N, M) x (M, D) matrix products. For k-means (the flat layout) on
CPU the whole row step runs as one compiled function (:mod:`.row_step`), whose torch twin is
:meth:`CentroidExplainer._forward_flat`; tests/families/centroids/test_backends.py holds the two together.
"""
import torch

from ... import compiled
from ...core import Explainer, labels_and_explained
from ...equations import (centroid_scores, grouped_direction, masked_min, midpoint_relevance, pair_factors,
                          pair_margins, root_contributions, sign_stabilize, softmin_shares)
from ...validation import check_cluster, check_n_features, sign_stabiliser
from . import row_step
from .equations import (competitor_columns, flat_logits, flat_margin_weights, margin_weights, metric_flat_relevance,
                        metric_pair_relevance, metric_tables, top_two)

__all__ = ['CentroidExplainer']


class CentroidExplainer(Explainer):
    """NEON for centroid models (k-means, bisecting k-means, centroid heads), in closed form.

    Parameters
    ----------
    model : NeuralizedCentroids
    cluster : int or None
        Explain this cluster for every row, or (None) each row's assigned cluster.
    beta : float
        Soft-min stiffness of the redistribution to competitors.
    epsilon : float or None
        Stabiliser of the division by a margin ``h = s_c - s_k``: None for the relative one, machine epsilon of the
        dtype x ``(|s_c| + |s_k|)`` (:func:`.sign_stabiliser`); a float for an absolute one.

    Notes
    -----
    ``forward(x)`` returns ``label`` (int64, -1 for rows with NaN or infinity), ``logits`` (N, K) and
    ``relevance`` (N, D) with ``relevance.sum(1) == logits[c]`` for the explained cluster c.
    When c is not the assigned cluster, ``f_c < 0`` and the factors ``f_c / h`` are no longer bounded in
    [0, 1]: the explanation stays conservative but individual relevances can be large.
    """
    def __init__(self, model, cluster, beta, epsilon=None, output='relevance'):
        margin = model.margin
        super().__init__(model.n_features_in_, margin.origin)
        for name in ('centres', 'own', 'rival', 'valid'):
            self.register_buffer(name, getattr(margin, name).clone())
        # a metric of the margins' own (k-means after a whitened PCA), else None: the Euclidean paths, unchanged
        directions = getattr(margin, 'directions', None)
        self.register_buffer('directions', None if directions is None else directions.clone())
        # k-means under a metric: one (K, D) table per explained cluster for the compiled row step (metric_tables)
        self.register_buffer('metric_tables', metric_tables(self.centres, self.directions)
                             if directions is not None and model.is_flat else None)
        self.cluster = check_cluster(cluster, model.n_clusters)
        self.beta = beta
        self.epsilon = epsilon
        self.flat = model.is_flat
        self.output = output
        # (K, K) pair column of "c against k" and the number of clusters that share each column
        column, share = competitor_columns(self.own, self.rival, self.valid, model.leaves)
        self.register_buffer('column', column)
        self.register_buffer('column_share', share)
        # whether every pair of clusters has a margin between them (a Python bool: exported graphs need no check)
        self.separable = bool(((column >= 0).sum(1) == column.shape[0] - 1).all())
        if output != 'relevance':
            self.row_elements = 6 * self.own.shape[1] * self.centres.shape[1]

    writes_out = True
    outputs = ('relevance', 'parts', 'direction', 'contrasts')
    row_options = ('contrast', 'reference')
    #: how output='direction' is computed without a reference: 'grouped' (rows grouped by their explained cluster,
    #: (N_c, L) x (L, D) products, :meth:`_direction_grouped`) or 'pairs' (every pair's (N, L, D) contributions,
    #: :meth:`_forward_pairs`; the slow reading of the definition, kept for tests and for reference points)
    direction_path = 'grouped'

    def row_elements_for(self, options):
        """The grouped direction holds O(L + D) per row; every other pairwise output (N, L, D)."""
        if self.output == 'direction' and 'reference' not in options and self.direction_path == 'grouped':
            return 4 * (self.own.shape[1] + self.centres.shape[1])
        return self.row_elements

    def logits(self, scores):
        """Cluster evidence ``f_c = min over c's pairs of s_own - s_rival`` for every cluster."""
        if self.flat:
            _, first, second = top_two(scores)
            return flat_logits(scores, first, second)
        margins = pair_margins(scores, self.own.flatten(), self.rival.flatten())
        return masked_min(margins.reshape(scores.shape[0], *self.own.shape), self.valid)

    def forward(self, x, out=None, contrast=None, reference=None):
        """``(label, logits, relevance)`` of the rows of ``x``; the relevance is written into ``out`` if given.

        ``contrast`` (N,) and ``reference`` (N, D), and an ``output`` other than 'relevance', take the pairwise
        path :meth:`_forward_pairs` (see :func:`zennit_clusters.explain`)."""
        check_n_features(x, self.centres.shape[1], 'x')
        epsilon = sign_stabiliser(x.dtype, self.epsilon)
        if self.output == 'direction' and reference is None and self.direction_path == 'grouped':
            return self._direction_grouped(x, epsilon, contrast)
        if contrast is not None or reference is not None or self.output != 'relevance':
            return self._forward_pairs(x, epsilon, contrast, reference)
        if self.directions is not None:
            return self._forward_metric(x, epsilon, out)
        if self.flat and compiled.usable(x, self.centres, self.origin) and row_step.available():
            # on CPU, k-means runs row by row in the compiled row step: the steps of _forward_flat, fused
            return row_step.flat_explain(x, self.origin, self.centres, self.cluster, self.beta, *epsilon, out)
        x, origin = compiled.defer_centring(x, self.origin)
        scores = centroid_scores(x, self.centres, origin)
        label, logits, weights = self.centre_weights(scores, epsilon)
        return label, logits, midpoint_relevance(x, self.centres, weights, origin, out)

    def centre_weights(self, scores, epsilon):
        """``(label, logits, weights)`` from the scores ``s_m = 2 mu_m^T x - |mu_m|^2`` of the rows.

        ``weights`` (N, M) are the midpoint rule's factors collected per centre, so that the relevance of feature i
        is ``R_i = sum_m weights_m (x_i - mu_mi)^2`` (:func:`~zennit_clusters.equations.midpoint_relevance`); the
        dense forward and the sparse explainer (:mod:`.sparse`) both apply them. ``epsilon`` is the pair
        ``(absolute, relative)`` of :func:`~zennit_clusters.validation.sign_stabiliser`. Euclidean margins only
        (under a metric the rule has a cross term per pair: :meth:`_forward_metric`).
        """
        if self.directions is not None:
            raise TypeError('centre_weights describes the Euclidean midpoint rule; this model has a metric of its own '
                            '(k-means after a whitened PCA): use the explainer\'s forward.')
        if self.flat:
            return self._flat_weights(scores, epsilon)
        logits = self.logits(scores)
        label, explained = labels_and_explained(logits, self.cluster)
        own, rival, valid = self.own[explained], self.rival[explained], self.valid[explained]
        margins, magnitude, pair_relevance = self._pair_shares(scores, logits, explained, own, rival, valid)
        weights = margin_weights(own, rival, valid, margins, pair_relevance, epsilon[0], self.centres.shape[0],
                                 relative=epsilon[1], magnitude=magnitude)
        return label, logits, weights

    def _flat_weights(self, scores, epsilon):
        """k-means: the explained cluster c against every centroid, one column per centroid (no gathers of
        per-row pair indices, no scatters); the column of c itself is not a pair. Rows with NaN or infinity
        (label -1) get NaN or infinite relevance, as before."""
        return self._flat_parts(scores, epsilon)[:3]

    def _flat_parts(self, scores, epsilon):
        """``(label, logits, weights, explained)`` of :meth:`_flat_weights`, with each row's explained cluster."""
        best, first, second = top_two(scores)
        logits = flat_logits(scores, first, second)
        label, explained = labels_and_explained(logits, self.cluster, best)
        columns = torch.arange(scores.shape[1], device=scores.device)
        if self.cluster is None:
            # the argmax: its score is the largest, its evidence first - second (exactly logits[best])
            is_own = columns == explained.unsqueeze(1)
            own_scores, evidence = first, first - second
        else:
            is_own = columns == self.cluster
            own_scores = scores[:, self.cluster:self.cluster + 1]
            evidence = logits[:, self.cluster:self.cluster + 1]
        margins = own_scores - scores
        magnitude = own_scores.abs() + scores.abs()
        pair_relevance = softmin_shares(margins, ~is_own, self.beta) * evidence
        weights = flat_margin_weights(is_own, margins, pair_relevance, epsilon[0], relative=epsilon[1],
                                      magnitude=magnitude)
        return label, logits, weights, explained

    def _forward_metric(self, x, epsilon, out):
        """The closed form under a metric (``directions``; k-means after a whitened PCA, docs/pipelines.md): the
        same scores, logits and pair factors as the Euclidean path, then the midpoint rule with the directions
        (:func:`.metric_flat_relevance` for k-means, :func:`.metric_pair_relevance` for a bisection tree). The
        k-means row step runs it on CPU with the per-cluster tables (:func:`.metric_tables`); this is its twin."""
        if (self.flat and compiled.usable(x, self.centres, self.origin, self.directions, self.metric_tables)
                and row_step.available()):
            return row_step.flat_explain(x, self.origin, self.centres, self.cluster, self.beta, *epsilon, out,
                                         directions=self.directions, tables=self.metric_tables)
        x, origin = compiled.defer_centring(x, self.origin)
        scores = centroid_scores(x, self.centres, origin, directions=self.directions)
        if self.flat:
            label, logits, weights, explained = self._flat_parts(scores, epsilon)
            return label, logits, metric_flat_relevance(x, self.centres, self.directions, weights, explained,
                                                        origin, out)
        logits = self.logits(scores)
        label, explained = labels_and_explained(logits, self.cluster)
        own, rival, valid = self.own[explained], self.rival[explained], self.valid[explained]
        margins, magnitude, pair_relevance = self._pair_shares(scores, logits, explained, own, rival, valid)
        factors = pair_factors(margins, pair_relevance, valid, epsilon[0], epsilon[1], magnitude)
        return label, logits, metric_pair_relevance(x, self.centres, self.directions, factors, own, rival, origin,
                                                    out)

    def _pair_shares(self, scores, logits, explained, own, rival, valid):
        """``(margins, magnitude, pair_relevance)`` of each row's pairs: the margins h, the score magnitude the
        relative stabiliser scales with, and the soft-min share of the evidence each pair carries."""
        margins = pair_margins(scores, own, rival)
        magnitude = scores.gather(1, own).abs() + scores.gather(1, rival).abs()
        evidence = logits.gather(1, explained.unsqueeze(1))
        return margins, magnitude, softmin_shares(margins, valid, self.beta) * evidence

    def _forward_flat(self, x, origin, scores, epsilon, out):
        """The torch twin of the compiled k-means row step (:mod:`.row_step`): scores, the flat weights and the
        midpoint rule."""
        label, logits, weights = self._flat_weights(scores, epsilon)
        return label, logits, midpoint_relevance(x, self.centres, weights, origin, out)

    def _pair_columns(self, explained, contrast, dtype):
        """(N, L) indicator of the one pair of each row's explained cluster that separates it from ``contrast``
        (all zero where the contrast is the cluster itself: h_cc = 0 has no pair)."""
        column = self.column[explained, contrast]
        factors = torch.zeros(self.own[explained].shape, dtype=dtype, device=explained.device)
        return factors.scatter_(1, column.clamp(min=0).unsqueeze(1), (column >= 0).to(dtype).unsqueeze(1))

    def _direction_grouped(self, x, epsilon, contrast=None):
        """``(label, logits, direction)`` without the (N, L, D) contributions of :meth:`_forward_pairs`.

        The pair l of cluster c has the part ``a_l w_l,i (x_i - m_l,i)`` of R_i, so ``|part| sign(x_i - m_l,i) =
        |a_l| |w_l,i| (x_i - m_l,i)``, and the direction is the sign of ``sum_l |a_l| |w_l,i| (x_i - m_l,i)``
        (:func:`~zennit_clusters.equations.grouped_direction`): per explained cluster, two (N_c, L) x (L, D)
        products, the cost of the explanation itself. The factors ``a_l = R_l / h_l`` are the midpoint rule's, with
        h from the scores (the pairs path takes h from the sum of the contributions; the two differ by rounding).
        """
        if not self.separable and contrast is not None:
            raise ValueError('this margin graph has clusters that no pair separates from another: no contrastive '
                             'reading exists for it.')
        x = x if self.origin is None else x - self.origin
        scores = centroid_scores(x, self.centres, directions=self.directions)
        logits = self.logits(scores)
        label, explained = labels_and_explained(logits, self.cluster)
        own, rival, valid = self.own[explained], self.rival[explained], self.valid[explained]
        if contrast is not None:
            factors = self._pair_columns(explained, contrast, x.dtype)
        else:
            margins, magnitude, pair_relevance = self._pair_shares(scores, logits, explained, own, rival, valid)
            factors = pair_factors(margins, pair_relevance, valid, epsilon[0], epsilon[1], magnitude)
        own_centres, rival_centres = self.centres[self.own], self.centres[self.rival]  # (K, L, D)
        # under a metric the weights are the directions' differences, the roots still the centres' midpoints
        directions = self.centres if self.directions is None else self.directions
        weight = (directions[self.own] - directions[self.rival]).abs() * self.valid.unsqueeze(2).to(x.dtype)
        midpoint = 0.5 * (own_centres + rival_centres)
        return label, logits, grouped_direction(x, explained, factors.abs(), weight, midpoint)

    def _forward_pairs(self, x, epsilon, contrast=None, reference=None):
        """Every pair's per-feature contributions ``C = w (x - rho)`` at once, (N, L, D): the contrastive
        relevance, the per-competitor parts, the directions, and the rule with a reference point.

        ``R = sum_l a_l C_l`` with ``a_l = R_l / h_l`` is the explanation (the midpoint rule without a reference);
        ``C_l`` alone is the relevance of the margin ``h_l`` (contrast); ``a_l C_l`` split over the clusters behind
        pair l is the part of each competitor; the sign of ``x - rho`` weighted by ``|a_l C_l|`` is the direction.
        """
        if not self.separable:
            raise ValueError('this margin graph has clusters that no pair separates from another: no contrastive '
                             'or per-competitor reading exists for it.')
        origin = self.origin
        x = x if origin is None else x - origin
        scores = centroid_scores(x, self.centres, directions=self.directions)
        logits = self.logits(scores)
        label, explained = labels_and_explained(logits, self.cluster)
        own, rival, valid = self.own[explained], self.rival[explained], self.valid[explained]
        own_centres, rival_centres = self.centres[own], self.centres[rival]
        # the margins' weights: 2 (mu_own - mu_rival), or 2 (a_own - a_rival) under a metric; the midpoint is the
        # root either way (docs/pipelines.md)
        directions = self.centres if self.directions is None else self.directions
        weight = 2.0 * (directions[own] - directions[rival])
        midpoint = 0.5 * (own_centres + rival_centres)
        if reference is not None and origin is not None:
            reference = reference - origin
        contributions, offset = root_contributions(x, weight, midpoint, reference)
        contributions = contributions * valid.unsqueeze(2).to(x.dtype)
        if self.output == 'contrasts':
            return label, logits, self._contrasts(explained, contributions, contrast)
        if contrast is not None:
            # the margin h_ck itself is the relevance of its pair (a = 1); rows with k == c have none (h_cc = 0)
            factors = self._pair_columns(explained, contrast, x.dtype)
        else:
            margins, magnitude, pair_relevance = self._pair_shares(scores, logits, explained, own, rival, valid)
            # h from the root (sum of the contributions), so that each pair's part sums to its relevance
            h = sign_stabilize(contributions.sum(2), epsilon[0], epsilon[1], magnitude)
            factors = (pair_relevance / h).masked_fill(~valid, 0.0)
        parts = factors.unsqueeze(2) * contributions
        if self.output == 'direction':
            weight = (parts.abs() * torch.sign(offset)).sum(1)
            return label, logits, torch.sign(weight).to(torch.int8)
        if self.output == 'parts':
            if contrast is not None:
                raise ValueError('per-competitor parts of a contrastive explanation are the explanation itself; '
                                 'ask for contrast= or per_competitor=, not both.')
            # cluster k's part: the pair that separates c from k, shared evenly among the clusters behind it
            column = self.column[explained]
            share = self.column_share[explained]
            per_cluster = parts.gather(1, column.clamp(min=0).unsqueeze(2).expand(-1, -1, parts.shape[2]))
            return label, logits, per_cluster * share.unsqueeze(2)
        return label, logits, parts.sum(1)

    def _contrasts(self, explained, contributions, contrast):
        """(N, K, D): ``[n, k]`` the relevance of the margin h_ck against every competitor k at once, what
        ``contrast=k`` gives row by row: the contributions of the pair that separates c from k (a = 1), zero at
        k = c. One gather of the (N, L, D) contributions, no pass per competitor."""
        if contrast is not None:
            raise ValueError('output="contrasts" explains the margin against every competitor at once; '
                             'contrast= asks for one of them: ask for one of the two.')
        column = self.column[explained]
        index = column.clamp(min=0).unsqueeze(2).expand(-1, -1, contributions.shape[2])
        return contributions.gather(1, index) * (column >= 0).unsqueeze(2).to(contributions.dtype)

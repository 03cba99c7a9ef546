"""The closed-form NEON explainer of Gaussian mixtures, every covariance type."""
import torch

from ...core import Explainer, labels_and_explained
from ...equations import soft_min, softmin_shares
from ...validation import sign_epsilon
from .equations import stabilized_factors
from .splits import SPLITS

__all__ = ['MixtureExplainer']


class MixtureExplainer(Explainer):
    """NEON for Gaussian mixtures (every covariance type), in closed form.

    The logits are the exact posterior log-odds ``f_c = log p(c|x) / (1 - p(c|x)) = -log sum_{k != c}
    exp(-h_ck)`` of the pairwise log-ratios ``h_ck = log pi_c N(x|c) - log pi_k N(x|k)``. The evidence of
    the explained cluster c is split over competitors with the soft-min shares ``softmax_k(-beta h_ck)``
    (``beta = 1``, the model's own, gives shares ``p(k|x) / (1 - p(c|x))``), then each log-ratio over the
    features by :class:`.LogRatioSplit`: a root point on the boundary for tied
    covariances; for diagonal and spherical ones the per-feature terms, whose x-independent rest (log
    weights and log-determinants) is reported as a separate constant; for full covariances the exact
    integrated gradient from a root point on the line through the two means.

    Parameters
    ----------
    model : NeuralizedMixture
    cluster : int or None
        Explain this cluster for every row, or (None) each row's assigned cluster.
    beta : float
        Soft-min stiffness of the redistribution to competitors.
    epsilon : float or None
        Stabiliser of the division by a log-ratio; None for the machine epsilon of the dtype at run time.

    Notes
    -----
    ``forward(x)`` returns ``label`` (int64, -1 for rows with NaN or infinity), ``logits`` (N, K) and
    ``relevance`` (N, D), like :class:`.CentroidExplainer`. :meth:`forward_with_constant` also returns the
    constant term ``R_const`` (N,), with ``relevance.sum(1) + R_const == logits[c]`` for the explained
    cluster c. ``R_const`` is zero for tied covariances (unless two components share their mean) and
    for full ones (unless the line through two means crosses no boundary).
    When c is not the assigned cluster, ``f_c`` can be negative and the factors ``f_c / h_ck`` are not
    bounded in [0, 1]: the explanation stays conservative but individual relevances can be large.
    """
    def __init__(self, model, cluster, beta, epsilon=None, output='relevance'):
        ratio = model.ratio
        super().__init__(model.n_features_in_, ratio.origin)
        names = ['means', 'precisions', 'biases', 'own', 'rival', 'valid', 'null']
        if ratio.linear:
            names += ['weight', 'root', 'kappa', 'offset']
        elif ratio.covariance_type == 'full':
            names += ['root', 'slope', 'kappa']
        for name in names:
            self.register_buffer(name, getattr(ratio, name).clone())
        for name in ('factor', 'factor_precisions'):  # a mixture pulled back through a projection (or None)
            value = getattr(ratio, name, None)
            self.register_buffer(name, None if value is None else value.clone())
        self.covariance_type = ratio.covariance_type
        self.split = SPLITS[ratio.covariance_type]
        self.cluster = cluster
        self.beta = beta
        self.epsilon = epsilon
        self.output = output
        # the widest per-row intermediate, for the chunking of explain(): (K, D) terms of full covariances,
        # the K (K - 1) linear log-ratios of tied ones
        n_clusters, n_features = ratio.means.shape
        self.row_elements = {'full': 2 * n_clusters * n_features, 'tied': n_clusters * (n_clusters - 1)}.get(
            ratio.covariance_type, n_clusters)
        if output in ('parts', 'direction', 'contrasts'):  # (K, D) parts or per-pair terms, one pass's intermediates
            self.row_elements = max(self.row_elements, 4 * n_clusters * n_features)

    has_constant = True
    outputs = ('relevance', 'parts', 'direction', 'contrasts')
    row_options = ('contrast',)

    def forward_with_constant(self, x, contrast=None):
        """``(label, logits, relevance, constant)``; see the class notes.

        With ``contrast`` (N,), the relevance of the log-ratio ``h_ck`` against that competitor alone
        (``relevance.sum(1) + constant == h_ck``; zero where k is c). With ``output='parts'`` the relevance is
        (N, K, D) and the constant (N, K): each competitor's part, summing over axis 1 to the explanation. With
        ``output='contrasts'`` they are (N, K, D) and (N, K) too: ``[n, k]`` what ``contrast=k`` gives, the
        relevance of the log-ratio h_ck and its constant (zero at k = c)."""
        x = x if self.origin is None else x - self.origin
        n_rows, n_clusters = x.shape[0], self.means.shape[0]
        h, products = self.split.log_ratios(self, x)
        h = h.reshape(n_rows, n_clusters, n_clusters - 1)
        logits = soft_min(h, self.valid, 1.0)
        label, explained = labels_and_explained(logits, self.cluster)
        # the explained cluster's pairs, c (K - 1) + j, in the layer's flat order
        pairs = explained.unsqueeze(1) * (n_clusters - 1) + torch.arange(n_clusters - 1, device=x.device)
        margins = h.flatten(1).gather(1, pairs)
        evidence = logits.gather(1, explained.unsqueeze(1))
        if self.output == 'contrasts':
            if contrast is not None:
                raise ValueError('output="contrasts" explains the log-ratio against every competitor at once; '
                                 'contrast= asks for one of them: ask for one of the two.')
            # every pair's relevance is its log-ratio; _parts takes one column at a time, as contrast= does
            epsilon = sign_epsilon(x.dtype) if self.epsilon is None else self.epsilon
            return (label, logits) + self._parts(x, explained, pairs, products, margins, margins, epsilon)
        if contrast is not None:
            # the log-ratio h_ck itself is the pair's relevance; competitor k sits in column k, or k - 1 past c
            column = (contrast - (contrast > explained).long()).clamp(0, n_clusters - 2).unsqueeze(1)
            selected = torch.zeros_like(margins).scatter(1, column, (contrast != explained).to(x.dtype).unsqueeze(1))
            pair_relevance = selected * margins
        else:
            pair_relevance = softmin_shares(margins, self.valid[explained], self.beta) * evidence
        epsilon = sign_epsilon(x.dtype) if self.epsilon is None else self.epsilon
        if self.output == 'direction':
            # only |a| weighs the pairs; a contrast's one pair counts whole (a = 1), also where h_ck = 0
            weights = selected if contrast is not None else stabilized_factors(pair_relevance, margins, epsilon)[0]
            codes = torch.sign(self.split.direction(self, x, weights.abs(), pairs, products)).to(torch.int8)
            return label, logits, codes, torch.zeros(n_rows, dtype=x.dtype, device=x.device)
        if self.output == 'parts':
            return (label, logits) + self._parts(x, explained, pairs, products, pair_relevance, margins, epsilon)
        factors, remainder = stabilized_factors(pair_relevance, margins, epsilon)
        relevance, constant = self.split.relevance(self, x, factors, pairs, products, reference_component=explained)
        return label, logits, relevance, constant + remainder

    def _parts(self, x, explained, pairs, products, pair_relevance, margins, epsilon):
        """(N, K, D) relevance and (N, K) constant of each competitor: the rule is linear in the pair relevance, so
        each column alone gives its competitor's part (K - 1 passes of the closed form)."""
        n_rows, n_features, n_clusters = x.shape[0], x.shape[1], self.means.shape[0]
        relevance = torch.zeros(n_rows, n_clusters, n_features, dtype=x.dtype, device=x.device)
        constant = torch.zeros(n_rows, n_clusters, dtype=x.dtype, device=x.device)
        rows = torch.arange(n_rows, device=x.device)
        for column in range(n_clusters - 1):
            alone = torch.zeros_like(pair_relevance)
            alone[:, column] = pair_relevance[:, column]
            factors, remainder = stabilized_factors(alone, margins, epsilon)
            part, rest = self.split.relevance(self, x, factors, pairs, products, reference_component=explained)
            competitor = column + (column >= explained).long()
            relevance[rows, competitor] = part
            constant[rows, competitor] = rest + remainder
        return relevance, constant

    def forward(self, x, contrast=None):
        label, logits, relevance, _ = self.forward_with_constant(x, contrast)
        return label, logits, relevance

    def constant(self, x):
        """The relevance ``R_const`` (N,) of the x-independent part of the explained cluster's evidence."""
        return self.forward_with_constant(x)[3]

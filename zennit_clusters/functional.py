"""The NEON equations for centroid models, as plain tensor functions.

Every equation of NEON.md sections 1 and 2 lives here once. The layers (:mod:`zennit_clusters.layers`),
the Zennit rules (:mod:`zennit_clusters.rules`) and the closed-form explainer
(:mod:`zennit_clusters.explain`, which the ONNX exporter writes out) all call these functions, so the
three paths agree by construction and the tests tie them together numerically.

A centroid model is described by a *margin graph*: centres ``mu`` of shape (M, D) and, for each
cluster c, up to L pairs ``(own[c, l], rival[c, l])`` of centre indices. The pairwise margin

    h[c, l](x) = |x - mu[rival[c, l]]|^2 - |x - mu[own[c, l]]|^2

is linear in x, and the cluster evidence is ``f_c(x) = min_l h[c, l](x)`` over the valid pairs.
For k-means, M = K, ``own[c, :] = c`` and the rivals are all other centroids; for bisecting k-means,
the pairs are the (path node, sibling) splits on the way down the tree to leaf c.
"""
import math

import torch
import torch.nn.functional as F

from .kernels import centred_addcmul, centred_linear

__all__ = [
    'centroid_scores',
    'score_weights',
    'pair_margins',
    'masked_min',
    'softmin_shares',
    'sign_stabilize',
    'midpoint_relevance',
    'pair_weights',
    'pair_factors',
    'margin_relevance',
    'top_two',
    'flat_logits',
    'flat_margin_relevance',
]


def centroid_scores(x, centres, centre=None):
    """Scores ``s_m = 2 mu_m^T x - |mu_m|^2``, so that ``|x - mu_m|^2 = |x|^2 - s_m``.

    Parameters
    ----------
    x : torch.Tensor of shape (N, D)
        Inputs: centred, or centred here on ``centre``.
    centres : torch.Tensor of shape (M, D)
        Centred centres, same dtype and device as ``x``.
    centre : torch.Tensor of shape (D,), optional
        The centre of the frame, subtracted from ``x`` first (fused with the product on CPU).

    Returns
    -------
    torch.Tensor of shape (N, M)
    """
    return centred_linear(x, centre, *score_weights(centres))


def score_weights(centres):
    """Weight ``2 mu`` and bias ``-|mu|^2`` of the linear scores of :func:`centroid_scores`."""
    return (2.0 * centres).contiguous(), -(centres * centres).sum(1)


def pair_margins(scores, own, rival):
    """Pairwise margins ``h = |x - mu_rival|^2 - |x - mu_own|^2 = s_own - s_rival``.

    Parameters
    ----------
    scores : torch.Tensor of shape (N, M)
        Output of :func:`centroid_scores`.
    own, rival : torch.LongTensor of shape (P,) or (N, P)
        Centre indices of each pair: the same P pairs for every row, or P pairs chosen per row (as
        when each row explains its own cluster).

    Returns
    -------
    torch.Tensor of shape (N, P)
    """
    if own.dim() == 1:
        return scores[:, own] - scores[:, rival]
    return scores.gather(1, own) - scores.gather(1, rival)


def masked_min(h, valid):
    """Minimum over the last axis of the entries marked ``valid`` (the min-pool of NEON.md)."""
    return h.masked_fill(~valid, math.inf).amin(-1)


def softmin_shares(h, valid, beta):
    """Soft-min redistribution weights ``p_k = exp(-beta h_k) / sum_k' exp(-beta h_k')`` over valid pairs.

    Parameters
    ----------
    h : torch.Tensor of shape (..., L)
        Margins of one cluster against its competitors.
    valid : torch.BoolTensor broadcastable to ``h``
        Which of the L entries are real competitors.
    beta : float
        Stiffness, ``>= 0``. ``0`` splits evenly (one-vs-all); ``math.inf`` gives everything to the
        nearest competitor(s), split evenly among exact ties (the limit of the soft-min).

    Returns
    -------
    torch.Tensor of the shape of ``h``, summing to one over the last axis.
    """
    if math.isinf(beta):
        nearest = (h == masked_min(h, valid).unsqueeze(-1)) & valid
        nearest = nearest.to(h.dtype)
        return nearest / nearest.sum(-1, keepdim=True)
    logits = (-beta * h).masked_fill(~valid, -math.inf)
    return torch.softmax(logits, dim=-1)


def sign_stabilize(h, epsilon):
    """``h + epsilon * sign(h)`` with ``sign(0) = +1``: never zero, never flips the sign."""
    return h + epsilon * torch.where(h >= 0, 1.0, -1.0).to(h.dtype)


def midpoint_relevance(x, centres, weights, centre=None, out=None):
    """Per-feature relevance ``R_i = sum_m g_m (x_i - mu_mi)^2`` for centre weights g summing to zero.

    This is the midpoint rule of NEON.md section 2 after collecting, for every centre, the factors
    ``a = R_pair / h_pair`` of the pairs it takes part in: ``+a`` as a rival, ``-a`` as the own centre.
    Expanded, it is two (N, M) x (M, D) matrix products; the ``x_i^2 sum_m g_m`` term vanishes.

    Parameters
    ----------
    x : torch.Tensor of shape (N, D)
        Inputs: centred, or centred here on ``centre``.
    centres : torch.Tensor of shape (M, D)
        Centred centres.
    weights : torch.Tensor of shape (N, M)
        The collected factors g (each row sums to zero).
    centre : torch.Tensor of shape (D,), optional
        The centre of the frame, subtracted from ``x`` first.
    out : torch.Tensor of shape (N, D), optional
        Where to write the relevance.

    Returns
    -------
    torch.Tensor of shape (N, D)
    """
    return centred_addcmul(weights, centres * centres, centres, x, centre, value=-2.0, out=out)


def pair_weights(factors, own, rival, n_centres):
    """Collect per-pair factors into per-component weights: ``+a`` on the rival, ``-a`` on the own component.

    Parameters
    ----------
    factors : torch.Tensor of shape (N, P)
    own, rival : torch.LongTensor of shape (P,) or (N, P)
    n_centres : int

    Returns
    -------
    torch.Tensor of shape (N, n_centres)
    """
    n_rows, n_pairs = factors.shape
    own = own.expand(n_rows, n_pairs)
    rival = rival.expand(n_rows, n_pairs)
    weights = torch.zeros(n_rows, n_centres, dtype=factors.dtype, device=factors.device)
    return weights.scatter_add(1, rival, factors).scatter_add(1, own, -factors)


def margin_relevance(x, centres, own, rival, valid, h, relevance, epsilon, centre=None, out=None):
    """The midpoint rule: relevance of pairwise margins redistributed to the input features.

    ``R_i = sum_pairs w_pair,i (x_i - m_pair,i) / h_pair * R_pair`` with the midpoint root
    ``m = (mu_own + mu_rival) / 2``. Because ``sum_i w_i (x_i - m_i) = h``, the rule is conservative:
    ``sum_i R_i = sum_pairs R_pair`` (up to the stabiliser on pairs with ``h = 0``).

    Parameters
    ----------
    x : torch.Tensor of shape (N, D)
        Inputs: centred, or centred here on ``centre``.
    centres : torch.Tensor of shape (M, D)
        Centred centres.
    own, rival : torch.LongTensor of shape (P,) or (N, P)
        Centre indices of each pair.
    valid : torch.BoolTensor of shape (P,) or (N, P)
        Pairs that exist (padding pairs carry no relevance).
    h : torch.Tensor of shape (N, P)
        Margins of the pairs, from :func:`pair_margins`.
    relevance : torch.Tensor of shape (N, P)
        Relevance of each pair.
    epsilon : float
        Stabiliser of the division by ``h``.
    centre, out : torch.Tensor, optional
        As in :func:`midpoint_relevance`.

    Returns
    -------
    torch.Tensor of shape (N, D)
    """
    factors = pair_factors(h, relevance, valid, epsilon)
    return midpoint_relevance(x, centres, pair_weights(factors, own, rival, centres.shape[0]), centre, out)


def pair_factors(h, relevance, valid, epsilon):
    """Factors ``a = R_pair / (h + epsilon sign(h))`` of the midpoint rule, zero for pairs that do not exist.

    Parameters
    ----------
    h, relevance : torch.Tensor of shape (N, P)
        Margins and relevance of the pairs.
    valid : torch.BoolTensor broadcastable to (N, P)
        Pairs that exist.
    epsilon : float

    Returns
    -------
    torch.Tensor of shape (N, P)
    """
    return (relevance / sign_stabilize(h, epsilon)).masked_fill(~valid, 0.0)


def top_two(scores):
    """Each row's argmax (the first of exact ties), largest score ``t1`` and second largest ``t2`` (``t2 = t1``
    on a tie), with two reductions and no sort (onnxruntime's TopK costs more than all three together).

    Returns
    -------
    best : torch.LongTensor of shape (N,)
    first, second : torch.Tensor of shape (N, 1)
    """
    best = scores.argmax(1)
    first = scores.amax(1, keepdim=True)
    second = scores.scatter(1, best.unsqueeze(1), -math.inf).amax(1, keepdim=True)
    return best, first, second


def flat_logits(scores, first, second):
    """k-means evidence ``f_c = s_c - max_{k != c} s_k`` of every cluster, from the two largest scores.

    This is the min-pool of the flat margin graph (every cluster against every other centroid),
    ``f_c = min_{k != c} h_ck`` with ``h_ck = s_c - s_k``: ``f_c = s_c - t1`` for every c but the argmax,
    whose evidence is ``t1 - t2``. Written as ``(s - t1) + relu(s - t2)``: the second term is ``t1 - t2`` for
    the argmax and exactly 0 elsewhere (``s_c <= t2``), so every entry is rounded once, as
    ``s_c - max_{k != c} s_k`` is, and the evidence of the argmax is exactly ``first - second``. Exact ties of
    the top score give evidence 0 to each tied cluster; the argmax of the scores is that of the logits.

    Parameters
    ----------
    scores : torch.Tensor of shape (N, M)
        Output of :func:`centroid_scores`, M >= 2.
    first, second : torch.Tensor of shape (N, 1)
        From :func:`top_two`.

    Returns
    -------
    torch.Tensor of shape (N, M)
    """
    return (scores - first) + torch.relu(scores - second)


def flat_margin_relevance(x, centres, own, h, relevance, epsilon, centre=None, out=None):
    """:func:`margin_relevance` for the flat k-means layout: one own centre c per row against every centre.

    The pairs are ``(c, k)`` for every centre k, one column each; the column of c itself (``own``) is not a
    pair. The factors are collected as in :func:`pair_weights` (``+a_k`` on centre k, ``-sum_k a_k`` on c),
    with a row sum instead of two scatters.

    Parameters
    ----------
    x : torch.Tensor of shape (N, D)
        Inputs: centred, or centred here on ``centre``.
    centres : torch.Tensor of shape (M, D)
        Centred centres.
    own : torch.BoolTensor of shape (N, M) or (M,)
        True at each row's own centre c.
    h, relevance : torch.Tensor of shape (N, M)
        Margins ``s_c - s_k`` and relevance of the pairs (ignored in the own column).
    epsilon : float
    centre, out : torch.Tensor, optional
        As in :func:`midpoint_relevance`.

    Returns
    -------
    torch.Tensor of shape (N, D)
    """
    factors = pair_factors(h, relevance, ~own, epsilon)
    weights = factors - own.to(factors.dtype) * factors.sum(1, keepdim=True)
    return midpoint_relevance(x, centres, weights, centre, out)


# ---------------------------------------------------------------------------------------------------------
# Gaussian mixtures (NEON.md section 4). A mixture is described, in the centred frame, by means mu (K, D),
# precisions P (K, D, D) for full covariances, (K, D) for diagonal and spherical ones (a spherical precision
# is a diagonal with equal entries) and biases b (K,): the component scores
#
#     s_k(x) = log pi_k N(x | mu_k, Sigma_k) = -1/2 (x - mu_k)^T P_k (x - mu_k) + b_k
#
# (b_k = s_k(mu_k) holds the log weight and the log-determinant). The pairwise log-ratios are
# h[c, k] = s_c - s_k and the posterior log-odds are the soft-min with stiffness 1 of them:
# log p(c|x) / (1 - p(c|x)) = -log sum_{k != c} exp(-h[c, k]).
# Tied covariances make h linear; it is stored per pair as h = w^T (x - x0) + kappa with a root point x0.
# ---------------------------------------------------------------------------------------------------------

__all__ += [
    'soft_min',
    'diagonal_scores',
    'precision_products',
    'quadratic_terms',
    'quadratic_scores',
    'segment_roots',
    'segment_relevance',
    'quadratic_relevance',
    'mixture_constant',
    'tied_root_points',
    'root_point_relevance',
]


def soft_min(h, valid, beta=1.0):
    """Soft-min pool ``f = -(1/beta) log sum_valid exp(-beta h)`` over the last axis.

    With ``beta = 1`` and ``h`` the pairwise log-ratios of a mixture, this is exactly the posterior log-odds
    ``log p(c|x) / (1 - p(c|x))``.

    Parameters
    ----------
    h : torch.Tensor of shape (..., L)
    valid : torch.BoolTensor broadcastable to ``h``
    beta : float
        Stiffness > 0 (finite).

    Returns
    -------
    torch.Tensor of shape (...)
    """
    return -torch.logsumexp((-beta * h).masked_fill(~valid, -math.inf), dim=-1) / beta


def diagonal_scores(x, means, precisions, biases):
    """Scores ``s_k = -1/2 sum_i p_ki (x_i - mu_ki)^2 + b_k`` of diagonal (or spherical) components.

    Expanded into two (N, D) x (D, K) products, as scikit-learn does; with centred inputs float32 is safe.

    Parameters
    ----------
    x : torch.Tensor of shape (N, D)
        Centred inputs.
    means : torch.Tensor of shape (K, D)
        Centred means.
    precisions : torch.Tensor of shape (K, D)
        Inverse variances.
    biases : torch.Tensor of shape (K,)

    Returns
    -------
    torch.Tensor of shape (N, K)
    """
    weighted = precisions * means
    quadratic = F.linear(x * x, precisions) + F.linear(x, -2.0 * weighted, (weighted * means).sum(1))
    return biases - 0.5 * quadratic


def precision_products(x, precisions):
    """``P_k x`` for every full precision, (N, K, D), in one (N, D) x (D, K D) product."""
    n_components, n_features = precisions.shape[:2]
    products = F.linear(x, precisions.reshape(n_components * n_features, n_features))
    return products.reshape(x.shape[0], n_components, n_features)


def quadratic_terms(x, means, precisions, products=None):
    """Per-feature terms ``phi[n, k, i] = (x - mu_k)_i [P_k (x - mu_k)]_i`` of the Mahalanobis forms.

    ``sum_i phi[n, k, i] = (x - mu_k)^T P_k (x - mu_k)``. For a quadratic form with its own mean as the
    baseline, ``phi`` is the exact Shapley value of each feature: the diagonal term ``P_ii d_i^2`` goes to
    feature i and every cross term ``2 P_ij d_i d_j`` is split evenly between i and j. For diagonal
    precisions, ``phi[n, k, i] = p_ki (x_i - mu_ki)^2``.

    Parameters
    ----------
    x : torch.Tensor of shape (N, D)
        Centred inputs.
    means : torch.Tensor of shape (K, D)
        Centred means.
    precisions : torch.Tensor of shape (K, D, D) or (K, D)
        Full (symmetric) or diagonal precisions.
    products : torch.Tensor of shape (N, K, D), optional
        :func:`precision_products` of ``x`` if already computed (full precisions).

    Returns
    -------
    torch.Tensor of shape (N, K, D)
    """
    diff = x.unsqueeze(1) - means
    if precisions.dim() == 2:
        return precisions * diff * diff
    if products is None:
        products = precision_products(x, precisions)
    return diff * (products - (precisions * means.unsqueeze(1)).sum(-1))


def quadratic_scores(terms, biases):
    """Scores ``s_k = -1/2 sum_i phi[., k, i] + b_k`` from :func:`quadratic_terms`."""
    return biases - 0.5 * terms.sum(-1)


def quadratic_relevance(x, means, precisions, weights, terms=None, reference=None):
    """The quadratic split of pairwise log-ratios: ``R_i = 1/2 sum_k g_k phi[., k, i]``.

    With ``g`` from :func:`pair_weights` (factors ``a = R_pair / h_pair``), this is
    ``R_i = sum_pairs a * 1/2 (phi[rival, i] - phi[own, i])``: each pair's log-ratio
    ``h = 1/2 (q_rival - q_own) + (b_own - b_rival)`` is split into its per-feature terms, and the
    constant ``b_own - b_rival`` goes to :func:`mixture_constant`.

    Parameters
    ----------
    x : torch.Tensor of shape (N, D)
        Centred inputs.
    means : torch.Tensor of shape (K, D)
    precisions : torch.Tensor of shape (K, D, D) or (K, D)
    weights : torch.Tensor of shape (N, K)
    terms : torch.Tensor of shape (N, K, D), optional
        :func:`quadratic_terms` of ``x`` if already computed (full precisions).
    reference : torch.Tensor of shape (N, D), optional
        Diagonal precisions only: a point per row to expand the squares around,
        ``p (x - mu)^2 = p v^2 + 2 p (r - mu) v + p (r - mu)^2`` with ``v = x - r``. The result is the same;
        the rounding is smaller where x is far from the centre but near r (use the explained component's
        mean). Default: the centre.

    Returns
    -------
    torch.Tensor of shape (N, D)
    """
    if precisions.dim() == 2:
        # diagonal: three (N, K) x (K, D) products instead of an (N, K, D) tensor
        weighted = precisions * means
        s2, s1, s0 = weights @ precisions, weights @ weighted, weights @ (weighted * means)
        if reference is None:
            return 0.5 * (x * x * s2 - 2.0 * x * s1 + s0)
        v = x - reference
        shift = reference * s2 - s1          # sum_m g_m p_m (r - mu_m)
        offset = reference * (shift - s1) + s0  # sum_m g_m p_m (r - mu_m)^2
        return 0.5 * (v * v * s2 + 2.0 * v * shift + offset)
    if terms is None:
        terms = quadratic_terms(x, means, precisions)
    return 0.5 * (weights.unsqueeze(-1) * terms).sum(1)


def mixture_constant(weights, biases):
    """Relevance of the constant: ``R_const = sum_pairs a (b_own - b_rival) = -sum_k g_k b_k``, shape (N,)."""
    return -(weights * biases).sum(1)


def tied_root_points(means, precision, biases, own, rival):
    """Linear log-ratios of a tied-covariance mixture, each written around a root point on its boundary.

    For the pair (c, k), ``h(x) = w^T x + const`` with ``w = P (mu_c - mu_k)``. With the midpoint
    ``m = (mu_c + mu_k) / 2`` and ``Delta = mu_c - mu_k``, ``h(m) = b_c - b_k`` (the quadratic terms are
    equal there), so the root

        x0 = m - (b_c - b_k) / (Delta^T P Delta) * Delta

    lies on the boundary ``h = 0`` and on the line through both means; it is the point of the boundary
    closest to the midpoint in the model's own (Mahalanobis) metric, and equals the NEON midpoint when
    the weights are equal. Then ``h(x) = w^T (x - x0)`` exactly. Pairs with identical means have
    ``w = 0`` and no root: their constant log-ratio is returned as ``kappa``.

    Parameters
    ----------
    means : torch.Tensor of shape (K, D)
    precision : torch.Tensor of shape (D, D)
    biases : torch.Tensor of shape (K,)
    own, rival : torch.LongTensor of shape (P,)

    Returns
    -------
    weight : torch.Tensor of shape (P, D)
    root : torch.Tensor of shape (P, D)
    kappa : torch.Tensor of shape (P,)
        ``h(x) = weight @ (x - root) + kappa``; zero except for pairs with identical means.
    """
    delta = means[own] - means[rival]
    weight = delta @ precision
    curvature = (weight * delta).sum(1)
    gap = biases[own] - biases[rival]
    has_root = curvature > 0
    step = torch.where(has_root, gap / torch.where(has_root, curvature, 1.0), 0.0)
    root = 0.5 * (means[own] + means[rival]) - step.unsqueeze(1) * delta
    kappa = torch.where(has_root, 0.0, gap)
    return weight, root, kappa


def root_point_relevance(x, weight, root, factors):
    """Root-point rule of linear log-ratios: ``R_i = sum_pairs a w_i (x_i - x0_i)``, two (N, P) x (P, D) products.

    Parameters
    ----------
    x : torch.Tensor of shape (N, D)
        Centred inputs.
    weight, root : torch.Tensor of shape (P, D)
        From :func:`tied_root_points`.
    factors : torch.Tensor of shape (N, P)
        ``a = R_pair / h_pair``.

    Returns
    -------
    torch.Tensor of shape (N, D)
    """
    return x * (factors @ weight) - factors @ (weight * root)


def segment_roots(means, precisions, biases, own, rival):
    """Root points of quadratic log-ratios on the line through the two means (full covariances).

    For the pair (c, k), ``h = s_c - s_k`` restricted to ``x(t) = mu_k + t (mu_c - mu_k)`` is the quadratic
    ``a2 t^2 + a1 t + a0`` with ``a2 = (q_k - q_c) / 2``, ``a1 = q_c``, ``a0 = b_c - b_k - q_c / 2`` and
    ``q_m = Delta^T P_m Delta``. The root is the real root nearest to the midpoint ``t = 1/2`` (a root on
    the segment between the means is always preferred, since exactly one lies there when h changes sign
    along it); with no real root, the vertex (smallest |h| on the line). ``kappa = h(x0)`` (zero up to
    rounding where a root exists) keeps the rule exactly conservative. With equal covariances this is the
    root of :func:`tied_root_points`.

    Parameters
    ----------
    means : torch.Tensor of shape (K, D)
    precisions : torch.Tensor of shape (K, D, D)
    biases : torch.Tensor of shape (K,)
    own, rival : torch.LongTensor of shape (P,)

    Returns
    -------
    root : torch.Tensor of shape (P, D)
    slope : torch.Tensor of shape (P, D)
        ``g0 = (P_k - P_c) x0 / 2 - P_k mu_k + P_c mu_c``, so that the gradient of h at ``(x + x0) / 2`` is
        ``(P_k x - P_c x) / 2 + g0``.
    kappa : torch.Tensor of shape (P,)
    """
    delta = means[own] - means[rival]
    q_own = torch.einsum('pi,pij,pj->p', delta, precisions[own], delta)
    q_rival = torch.einsum('pi,pij,pj->p', delta, precisions[rival], delta)
    a2, a1, a0 = 0.5 * (q_rival - q_own), q_own, biases[own] - biases[rival] - 0.5 * q_own
    discriminant = a1 * a1 - 4.0 * a2 * a0
    real = discriminant >= 0
    # stable roots a0 / q and q / a2 with q = -(a1 + sqrt(disc)) / 2 (a1 >= 0)
    q = -0.5 * (a1 + torch.sqrt(discriminant.clamp(min=0.0)))
    inf = torch.full_like(q, math.inf)
    first = torch.where(q != 0, a0 / torch.where(q != 0, q, 1.0), inf)
    second = torch.where(a2 != 0, q / torch.where(a2 != 0, a2, 1.0), inf)
    root_t = torch.where((first - 0.5).abs() <= (second - 0.5).abs(), first, second)
    vertex = torch.where(a2 != 0, -a1 / (2.0 * torch.where(a2 != 0, a2, 1.0)), 0.5)
    t = torch.where(real & torch.isfinite(root_t), root_t, vertex)
    root = means[rival] + t.unsqueeze(1) * delta

    def score(m, z):
        d = z - means[m]
        return biases[m] - 0.5 * torch.einsum('pi,pij,pj->p', d, precisions[m], d)

    kappa = score(own, root) - score(rival, root)
    p_own, p_rival = precisions[own], precisions[rival]
    slope = (0.5 * torch.einsum('pij,pj->pi', p_rival - p_own, root)
             - torch.einsum('pij,pj->pi', p_rival, means[rival]) + torch.einsum('pij,pj->pi', p_own, means[own]))
    return root, slope, kappa


def segment_relevance(x, products, own, rival, root, slope, factors):
    """The full-covariance rule: ``R_i = sum_pairs a (x - x0)_i [grad h((x + x0) / 2)]_i``.

    For a quadratic h the gradient at the midpoint of the straight path from the root x0 to x is its
    average along the path, so ``sum_i (x - x0)_i grad_i h((x + x0) / 2) = h(x) - h(x0)`` exactly: the
    rule is the exact integrated gradient of each log-ratio from its root, and it is conservative.

    Parameters
    ----------
    x : torch.Tensor of shape (N, D)
        Centred inputs.
    products : torch.Tensor of shape (N, K, D)
        :func:`precision_products` of ``x``.
    own, rival : torch.LongTensor of shape (N, P)
        Component indices of each row's pairs.
    root, slope : torch.Tensor of shape (N, P, D)
        From :func:`segment_roots`, per row and pair.
    factors : torch.Tensor of shape (N, P)
        ``a = R_pair / h_pair``.

    Returns
    -------
    torch.Tensor of shape (N, D)
    """
    n_features = x.shape[1]
    p_own = products.gather(1, own.unsqueeze(-1).expand(*own.shape, n_features))
    p_rival = products.gather(1, rival.unsqueeze(-1).expand(*rival.shape, n_features))
    gradient = 0.5 * (p_rival - p_own) + slope
    return (factors.unsqueeze(-1) * (x.unsqueeze(1) - root) * gradient).sum(1)


# ---------------------------------------------------------------------------------------------------------
# Member-point networks (NEON.md section 3): Gaussian kernel k-means and any labelled partition. Cluster k is
# represented by its member points u_j, j in C_k (a padded index ``groups`` (K, L) into the member axis, with
# a validity mask). With the member scores s = centroid_scores(x, u), the pair margins of the first layer are
#
#     h[i, j] = |x - u_j|^2 - |x - u_i|^2 = s_i - s_j          (i in the explained cluster c, j in a competitor)
#
# and the two log-mean-exp pools collapse: LME^{+gamma}_{i in C_c} h[i, j] = S_c - s_j and
# LME^{-gamma}_{j in C_k} (S_c - s_j) = S_c - S_k, with S_k = LME^{+gamma}_{j in C_k} s_j. Since
# |x - u|^2 = |x|^2 - s, the soft-min distance to cluster k is |x|^2 - S_k, and
# exp(-gamma (|x|^2 - S_k)) = mean_{j in C_k} exp(-gamma |x - u_j|^2) is the mean Gaussian kernel to k's members.
# ---------------------------------------------------------------------------------------------------------

__all__ += [
    'group_index',
    'group_logmeanexp',
    'group_shares',
    'block_pair_relevance',
    'factored_pair_relevance',
    'tie_reciprocal',
]


def tie_reciprocal(h, epsilon):
    """``1 / h`` where ``|h| >= epsilon``, and 0 for ties (``|h| < epsilon``).

    The division of member-pair margins. A pair whose margin is zero (x exactly as far from an own as from a
    rival member, common on grid-valued data) has per-feature midpoint terms that sum to zero but are not
    zero: no finite factor splits its relevance, and any stabiliser ``h + epsilon`` would produce terms of
    size ``R / epsilon`` that depend on epsilon (hence on the dtype). Such ties carry no relevance instead
    (the explanation then falls short of f_c by exactly their share); every other pair conserves exactly.
    """
    return torch.where(h.abs() >= epsilon, h, math.inf).reciprocal()


def group_index(labels, n_groups):
    """Padded index of the members of each group: ``groups`` (K, L), ``valid`` (K, L), ``counts`` (K,).

    Members keep their order within a group; padding entries point at member 0 and are not valid.

    Parameters
    ----------
    labels : torch.LongTensor of shape (M,)
        Group of each member, in ``[0, n_groups)``.
    n_groups : int

    Returns
    -------
    groups : torch.LongTensor of shape (n_groups, L), L = max(1, largest group)
    valid : torch.BoolTensor of shape (n_groups, L)
    counts : torch.LongTensor of shape (n_groups,)
    """
    labels = torch.as_tensor(labels, dtype=torch.long)
    counts = torch.bincount(labels, minlength=n_groups)
    order = torch.argsort(labels, stable=True)
    width = max(1, int(counts.max())) if labels.numel() else 1
    starts = torch.cumsum(counts, 0) - counts
    position = torch.arange(labels.numel()) - starts[labels[order]]
    groups = torch.zeros(n_groups, width, dtype=torch.long)
    valid = torch.zeros(n_groups, width, dtype=torch.bool)
    groups[labels[order], position] = order
    valid[labels[order], position] = True
    return groups, valid, counts


def group_logmeanexp(values, groups, valid, gamma):
    """Log-mean-exp pool over groups of the last axis: ``(1/gamma) log( mean_{m in group k} exp(gamma v_m) )``.

    ``gamma > 0`` is a soft maximum, ``gamma < 0`` a soft minimum; both tend to the mean as ``gamma -> 0``.
    Computed with a max-shift per group (``logsumexp``), so far-away groups do not underflow.

    Parameters
    ----------
    values : torch.Tensor of shape (..., M)
    groups, valid : torch.Tensor of shape (K, L)
        From :func:`group_index`.
    gamma : float
        Non-zero stiffness.

    Returns
    -------
    torch.Tensor of shape (..., K)
        ``-inf / gamma`` for an empty group.
    """
    n_groups, width = groups.shape
    pooled = (gamma * values).index_select(-1, groups.flatten())
    pooled = pooled.unflatten(-1, (n_groups, width)).masked_fill(~valid, -math.inf)
    counts = valid.sum(-1).clamp(min=1).to(values.dtype)
    return (torch.logsumexp(pooled, dim=-1) - counts.log()) / gamma


def group_shares(values, pooled, member_group, counts, gamma):
    """Redistribution weights of a log-mean-exp pool: ``softmax(gamma v)`` within each member's group.

    This is the gradient of the pool: ``share_m = exp(gamma (v_m - LME_k)) / n_k`` for m in group k. The
    shares of a group sum to one, so relevance passed through the pool is conserved.

    Parameters
    ----------
    values : torch.Tensor of shape (..., M)
    pooled : torch.Tensor of shape (..., K)
        :func:`group_logmeanexp` of ``values``.
    member_group : torch.LongTensor of shape (M,)
        Group of each member.
    counts : torch.Tensor of shape (K,)
        Members per group.
    gamma : float

    Returns
    -------
    torch.Tensor of shape (..., M)
    """
    log_counts = counts.to(values.dtype).log().index_select(0, member_group)
    return torch.exp(gamma * (values - pooled.index_select(-1, member_group)) - log_counts)


def block_pair_relevance(x, centres, own, valid, h, relevance, epsilon):
    """The midpoint rule for a block of pairs: own centres ``own[a]`` against every centre j.

    The equation of :func:`margin_relevance` (factors ``R_pair / h_pair``, ``+`` on the rival, ``-`` on
    the own centre, then :func:`midpoint_relevance`) for pairs laid out as ``(own[a], j)``, collected with
    two sums instead of a scatter per pair. Ties (``|h| < epsilon``) get no factor (:func:`tie_reciprocal`),
    so the two agree wherever ``|h| >= epsilon``.

    Parameters
    ----------
    x : torch.Tensor of shape (N, D)
        Centred inputs.
    centres : torch.Tensor of shape (M, D)
        Centred centres.
    own : torch.LongTensor of shape (A,) or (N, A)
        Own centre of each block row.
    valid : torch.BoolTensor broadcastable to (N, A, M)
        Pairs that exist.
    h, relevance : torch.Tensor of shape (N, A, M)
        Margins ``s_own - s_j`` and relevance of the pairs.
    epsilon : float

    Returns
    -------
    torch.Tensor of shape (N, D)
    """
    factors = (relevance * tie_reciprocal(h, epsilon)).masked_fill(~valid, 0.0)
    n_rows, n_own = h.shape[:2]
    weights = factors.sum(1).scatter_add(1, own.expand(n_rows, n_own), -factors.sum(2))
    return midpoint_relevance(x, centres, weights)


def factored_pair_relevance(x, centres, own, own_share, rival_share, h, epsilon):
    """:func:`block_pair_relevance` for pair relevance of rank one, ``R[a, j] = own_share[a] rival_share[j]``.

    This is the form the member-point network's relevance takes (the pools' shares do not depend on the
    other side of the pair), so the factors ``R / h`` never need to be stored: the two sums become two
    batched matrix-vector products with ``1 / h``. Pairs that do not exist must carry a zero share.

    Parameters
    ----------
    x : torch.Tensor of shape (N, D)
    centres : torch.Tensor of shape (M, D)
    own : torch.LongTensor of shape (N, A)
    own_share : torch.Tensor of shape (N, A)
    rival_share : torch.Tensor of shape (N, M)
    h : torch.Tensor of shape (N, A, M)
    epsilon : float

    Returns
    -------
    torch.Tensor of shape (N, D)
    """
    inverse = tie_reciprocal(h, epsilon)
    rival_weights = rival_share * torch.bmm(own_share.unsqueeze(1), inverse).squeeze(1)
    own_weights = -own_share * torch.bmm(inverse, rival_share.unsqueeze(2)).squeeze(2)
    weights = rival_weights.scatter_add(1, own, own_weights)
    return midpoint_relevance(x, centres, weights)


__all__ += ['stabilized_factors']


def stabilized_factors(relevance, h, epsilon):
    """Factors ``a = R_pair / (h + epsilon sign(h))``, zero where ``h = 0``, and what the features cannot carry.

    ``remainder = sum_pairs (R_pair - a h)`` (shape (N,)) is negligible except on pairs with ``h = 0`` (a
    point exactly on a boundary, or two identical components, whose log-ratio is 0 everywhere): there no
    feature can carry the pair's relevance, it is all in the remainder, and the mixture rules report it
    with the constant term, so that ``sum_i R_i + R_const = sum_pairs R_pair`` holds without exception.
    """
    on_boundary = h == 0
    factors = (relevance / sign_stabilize(h, epsilon)).masked_fill(on_boundary, 0.0)
    return factors, (relevance - factors * h).sum(-1)

"""The equations of Gaussian mixtures (docs/method.md, section 4).

Gaussian mixtures A mixture is described, in the centred frame, by means mu (K, D),
precisions P (K, D, D) for full covariances, (K, D) for diagonal and spherical ones (a spherical precision
is a diagonal with equal entries) and biases b (K,): the component scores

    s_k(x) = log pi_k N(x | mu_k, Sigma_k) = -1/2 (x - mu_k)^T P_k (x - mu_k) + b_k

(b_k = s_k(mu_k) holds the log weight and the log-determinant). The pairwise log-ratios are
h[c, k] = s_c - s_k and the posterior log-odds are the soft-min with stiffness 1 of them:
log p(c|x) / (1 - p(c|x)) = -log sum_{k != c} exp(-h[c, k]).
Tied covariances make h linear; it is stored per pair as h = w^T (x - x0) + kappa with a root point x0.
"""
import math

import torch
import torch.nn.functional as F

from ...equations import sign_stabilize

__all__ = ['diagonal_scores', 'precision_products', 'quadratic_terms', 'quadratic_scores', 'quadratic_relevance',
           'mixture_constant', 'tied_root_points', 'root_point_relevance', 'segment_roots', 'segment_relevance',
           'stabilized_factors', 'root_point_direction', 'term_roots', 'quadratic_direction', 'segment_direction']


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


def precision_products(x, precisions, factor=None, factor_precisions=None):
    """``P_k x`` for every full precision, (N, K, D), in one (N, D) x (D, K D) product.

    With a factor ``W`` (d, D) and ``factor_precisions`` ``P'_k`` (K, d, d), where ``P_k = W^T P'_k W`` (a mixture
    pulled back through a projection, :mod:`.projection`): ``W^T (P'_k (W x))``, three products of about
    ``K d D`` per row instead of ``K D^2``.
    """
    if factor is not None:
        n_components, width = factor_precisions.shape[:2]
        z = F.linear(x, factor)  # (N, d)
        projected = F.linear(z, factor_precisions.reshape(n_components * width, width))
        return projected.reshape(x.shape[0], n_components, width) @ factor
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
    gradient = _segment_gradient(products, own, rival, slope)
    return (factors.unsqueeze(-1) * (x.unsqueeze(1) - root) * gradient).sum(1)


def _segment_gradient(products, own, rival, slope):
    """The log-ratio's gradient at the segment's midpoint, per row, pair and feature (N, P, D): the one
    expression behind :func:`segment_relevance` and :func:`segment_direction`."""
    n_features = slope.shape[-1]
    p_own = products.gather(1, own.unsqueeze(-1).expand(*own.shape, n_features))
    p_rival = products.gather(1, rival.unsqueeze(-1).expand(*rival.shape, n_features))
    return 0.5 * (p_rival - p_own) + slope


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


# Direction (docs/method.md, section 7): each rule's part of R_i from pair p is a_p times a term of the
# log-ratio h_p that vanishes at a root rho_p,i; the direction is sign(sum_p |a_p term_p,i| sign(x_i - rho_p,i)).
# The functions below return the sum before its sign, with ``factors`` = |a_p| (or 1 on a contrast's one pair).

def root_point_direction(x, weight, root, factors):
    """Tied covariances: ``sum_p f_p |w_p,i| (x_i - x0_p,i)`` (the part is ``a w_i (x_i - x0_i)``), two
    (N, P) x (P, D) products.

    Parameters
    ----------
    x : torch.Tensor of shape (N, D)
    weight, root : torch.Tensor of shape (P, D)
        From :func:`tied_root_points`.
    factors : torch.Tensor of shape (N, P)
        ``|a|`` of each pair (0 for pairs a row does not use).

    Returns
    -------
    torch.Tensor of shape (N, D)
    """
    magnitude = weight.abs()
    return x * (factors @ magnitude) - factors @ (magnitude * root)


def term_roots(means, precisions, own, rival):
    """Root of each one-feature term of diagonal log-ratios, between the two means.

    The term of feature i in ``h = s_own - s_rival`` is ``t(x_i) = 1/2 [p_r (x_i - mu_r)^2 - p_o (x_i - mu_o)^2]``;
    it vanishes where ``sqrt(p_r) |x_i - mu_r| = sqrt(p_o) |x_i - mu_o|``, at ``(sqrt(p_o) mu_o + sqrt(p_r) mu_r) /
    (sqrt(p_o) + sqrt(p_r))`` (the precision-weighted point between the means, the midpoint for equal
    precisions) and, for unequal precisions, once more outside the segment; the root between the means is taken.

    Parameters
    ----------
    means, precisions : torch.Tensor of shape (K, D)
    own, rival : torch.LongTensor of any shape S

    Returns
    -------
    torch.Tensor of shape S + (D,)
    """
    root_own, root_rival = precisions[own].sqrt(), precisions[rival].sqrt()
    return (root_own * means[own] + root_rival * means[rival]) / (root_own + root_rival)


def quadratic_direction(x, means, precisions, own, rival, factors):
    """Diagonal and spherical covariances: ``sum_p f_p |t_p(x_i)| sign(x_i - rho_p,i)`` with the one-feature terms
    t of :func:`term_roots` (the part of pair p is ``a_p t_p(x_i)``). (N, P, D) intermediates.

    Parameters
    ----------
    x : torch.Tensor of shape (N, D)
    means, precisions : torch.Tensor of shape (K, D)
    own, rival : torch.LongTensor of shape (N, P)
    factors : torch.Tensor of shape (N, P)

    Returns
    -------
    torch.Tensor of shape (N, D)
    """
    z = x.unsqueeze(1)
    mu_own, mu_rival = means[own], means[rival]
    terms = 0.5 * (precisions[rival] * (z - mu_rival) ** 2 - precisions[own] * (z - mu_own) ** 2)
    sides = torch.sign(z - term_roots(means, precisions, own, rival))
    return (factors.unsqueeze(-1) * terms.abs() * sides).sum(1)


def segment_direction(x, products, own, rival, root, slope, factors):
    """Full covariances: ``sum_p f_p |g_p,i| (x_i - x0_p,i)`` with g the gradient of :func:`segment_relevance` at
    ``(x + x0) / 2`` (the part is ``a (x_i - x0_i) g_i``, the integrated gradient from the root x0).

    Parameters
    ----------
    As :func:`segment_relevance`, with ``factors`` = ``|a|``.

    Returns
    -------
    torch.Tensor of shape (N, D)
    """
    gradient = _segment_gradient(products, own, rival, slope)
    return (factors.unsqueeze(-1) * gradient.abs() * (x.unsqueeze(1) - root)).sum(1)

"""One strategy per covariance type: the pairwise log-ratios and how each is split over the features.

The Zennit rule (:class:`.LogRatioSplit`, every pair of every cluster) and the closed-form explainer
(:class:`.MixtureExplainer`, the explained cluster's pairs) both call these, so the two paths share one
implementation of each covariance type's rule (docs/method.md, section 4):

- tied: linear log-ratios ``h = w^T (x - x0) + kappa`` around a root point (:func:`.root_point_relevance`);
- diagonal and spherical: sums of one-feature terms plus a constant (:func:`.quadratic_relevance`);
- full: the exact integrated gradient from a root point on the line through the two means
  (:func:`.segment_relevance`).

A *holder* is the module that keeps the mixture's buffers (the layer or the explainer): ``means``,
``precisions``, ``biases``, ``own``, ``rival``, ``null`` and, by type, ``weight``/``root``/``kappa``/``offset``
(tied) or ``root``/``slope``/``kappa`` (full). Pairs are numbered in the layer's row-major order, ``c (K - 1) + j``.
"""
import torch

from ...equations import pair_margins, pair_weights
from .equations import (diagonal_scores, mixture_constant, precision_products, quadratic_direction,
                        quadratic_relevance, quadratic_scores, quadratic_terms, root_point_direction,
                        root_point_relevance, segment_direction, segment_relevance)

__all__ = ['SPLITS', 'TiedSplit', 'DiagonalSplit', 'FullSplit']


def _float(holder, name, x):
    return getattr(holder, name).to(device=x.device, dtype=x.dtype)


def _factors(holder, x):
    """``(W, P')`` of a full mixture pulled back through a projection (``P_k = W^T P'_k W``), else ``(None, None)``."""
    if getattr(holder, 'factor', None) is None:
        return None, None
    return _float(holder, 'factor', x), _float(holder, 'factor_precisions', x)


def _index(holder, name, x, pairs):
    """The flat pair table ``name`` (own, rival) for the given pairs: (P,) for every pair, else (N, P)."""
    flat = getattr(holder, name).flatten().to(x.device)
    return flat if pairs is None else flat[pairs]


class TiedSplit:
    """Tied covariance: every log-ratio is linear in x, split by the root-point rule."""
    def log_ratios(self, holder, x):
        """``(h, None)``: the (N, K (K - 1)) log-ratios of centred inputs, in one product."""
        return torch.nn.functional.linear(x, _float(holder, 'weight', x), _float(holder, 'offset', x)), None

    def relevance(self, holder, x, factors, pairs=None, products=None, reference_component=None):
        """``(relevance (N, D), constant (N,))`` of the pairs' log-ratios with factors ``a = R / h``.

        ``pairs`` (N, P) selects each row's pairs (``factors`` is then (N, P)); None takes every pair.
        """
        if pairs is not None:  # into the layout of every pair: one product with the (K (K - 1), D) weights
            factors = torch.zeros(x.shape[0], holder.weight.shape[0], dtype=x.dtype, device=x.device).scatter(
                1, pairs, factors)
        relevance = root_point_relevance(x, _float(holder, 'weight', x), _float(holder, 'root', x), factors)
        return relevance, factors @ _float(holder, 'kappa', x)

    def direction(self, holder, x, factors, pairs, products=None):
        """The (N, D) sum whose sign is the direction (:func:`.root_point_direction`); ``factors`` (N, P) are
        ``|a|`` of the rows' pairs ``pairs`` (N, P)."""
        factors = torch.zeros(x.shape[0], holder.weight.shape[0], dtype=x.dtype, device=x.device).scatter(
            1, pairs, factors)
        return root_point_direction(x, _float(holder, 'weight', x), _float(holder, 'root', x), factors)


class _QuadraticSplit:
    """What diagonal and full covariances share: log-ratios from the component scores."""
    def log_ratios(self, holder, x):
        """``(h, products)``: the (N, K (K - 1)) log-ratios of centred inputs, and what the relevance reuses."""
        scores, products = self.scores(holder, x)
        h = pair_margins(scores, _index(holder, 'own', x, None), _index(holder, 'rival', x, None))
        # pairs of identical components: their log-ratio is exactly 0 everywhere, not a rounding residue
        return h.masked_fill(holder.null.flatten().to(x.device), 0.0), products


class DiagonalSplit(_QuadraticSplit):
    """Diagonal and spherical covariances: per-feature terms; log weights and determinants are the constant."""
    def scores(self, holder, x):
        return diagonal_scores(x, *(_float(holder, name, x) for name in ('means', 'precisions', 'biases'))), None

    def relevance(self, holder, x, factors, pairs=None, products=None, reference_component=None):
        """As :meth:`TiedSplit.relevance`; ``reference_component`` (N,), where given, is the component whose mean
        each row's squares are expanded around (the explained component's rounds least)."""
        means, precisions, biases = (_float(holder, name, x) for name in ('means', 'precisions', 'biases'))
        weights = pair_weights(factors, _index(holder, 'own', x, pairs), _index(holder, 'rival', x, pairs),
                               means.shape[0])
        reference = None if reference_component is None else means[reference_component]
        return (quadratic_relevance(x, means, precisions, weights, reference=reference),
                mixture_constant(weights, biases))

    def direction(self, holder, x, factors, pairs, products=None):
        """As :meth:`TiedSplit.direction`, from the one-feature terms (:func:`.quadratic_direction`)."""
        means, precisions = _float(holder, 'means', x), _float(holder, 'precisions', x)
        return quadratic_direction(x, means, precisions, _index(holder, 'own', x, pairs),
                                   _index(holder, 'rival', x, pairs), factors)


class FullSplit(_QuadraticSplit):
    """Full covariances: the exact integrated gradient of each log-ratio from its root point."""
    def scores(self, holder, x):
        means, precisions, biases = (_float(holder, name, x) for name in ('means', 'precisions', 'biases'))
        products = precision_products(x, precisions, *_factors(holder, x))
        return quadratic_scores(quadratic_terms(x, means, precisions, products), biases), products

    def relevance(self, holder, x, factors, pairs=None, products=None, reference_component=None):
        """As :meth:`TiedSplit.relevance`; ``products`` are the precision products of :meth:`log_ratios`."""
        if products is None:
            products = precision_products(x, _float(holder, 'precisions', x), *_factors(holder, x))
        root, slope, kappa = (_float(holder, name, x) for name in ('root', 'slope', 'kappa'))
        n_rows, n_pairs = factors.shape
        if pairs is None:  # the same pairs for every row: views, not copies
            own, rival = (_index(holder, name, x, None).expand(n_rows, n_pairs) for name in ('own', 'rival'))
            root, slope = root.expand(n_rows, *root.shape), slope.expand(n_rows, *slope.shape)
            kappa = kappa.expand(n_rows, n_pairs)
        else:
            own, rival = _index(holder, 'own', x, pairs), _index(holder, 'rival', x, pairs)
            root, slope, kappa = root[pairs], slope[pairs], kappa[pairs]
        relevance = segment_relevance(x, products, own, rival, root, slope, factors)
        return relevance, (factors * kappa).sum(1)

    def direction(self, holder, x, factors, pairs, products=None):
        """As :meth:`TiedSplit.direction`, from the integrated gradient (:func:`.segment_direction`)."""
        if products is None:
            products = precision_products(x, _float(holder, 'precisions', x))
        root, slope = _float(holder, 'root', x)[pairs], _float(holder, 'slope', x)[pairs]
        return segment_direction(x, products, _index(holder, 'own', x, pairs), _index(holder, 'rival', x, pairs),
                                 root, slope, factors)


#: the strategy of each covariance type of scikit-learn's mixtures
SPLITS = {'tied': TiedSplit(), 'diag': DiagonalSplit(), 'spherical': DiagonalSplit(), 'full': FullSplit()}

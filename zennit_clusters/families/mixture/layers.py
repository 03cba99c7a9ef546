"""Torch modules of neuralized Gaussian mixtures: pairwise log-ratios, then a soft-min pool (docs/method.md, 4)."""
import torch

from ...core import CentredFrameLayer, NeuralizedModel
from ...equations import soft_min
from ...validation import check_beta, check_layer_input, frame_origin
from ..centroids.layers import flat_pairs
from .equations import segment_roots, tied_root_points
from .splits import SPLITS

__all__ = ['COVARIANCE_TYPES', 'GaussianLogRatio', 'SoftMinPool', 'NeuralizedMixture']


#: covariance types of scikit-learn's Gaussian mixtures
COVARIANCE_TYPES = ('full', 'tied', 'diag', 'spherical')


class GaussianLogRatio(CentredFrameLayer):
    """Pairwise log-ratios of a Gaussian mixture, ``h[c, j] = log pi_c N(x|c) - log pi_k N(x|k)``, k = rival[c, j].

    Parameters
    ----------
    means : torch.Tensor of shape (K, D)
        Component means, in input coordinates.
    precisions : torch.Tensor
        Inverse covariances: (K, D, D) for ``'full'``, (D, D) for ``'tied'``, (K, D) for ``'diag'``,
        (K,) or (K, D) for ``'spherical'``.
    biases : torch.Tensor of shape (K,)
        ``b_k = log pi_k N(mu_k | mu_k, Sigma_k)``: everything in a component's log-score that does not
        depend on x (log weight, log-determinant, and the variational terms of a Bayesian mixture).
    covariance_type : {'full', 'tied', 'diag', 'spherical'}
    origin : torch.Tensor of shape (D,), optional
        Fixed point subtracted from inputs and means (docs/method.md, section 1); default :func:`.frame_origin` of the
        means.
    factor, factor_precisions : torch.Tensor of shapes (d, D) and (K, d, d), optional
        Full covariances only: ``precisions[k] == factor^T factor_precisions[k] factor`` (a mixture pulled back
        through a projection, :mod:`.projection`); the products ``P_k x`` are then computed through the factor.

    Notes
    -----
    Input (N, D), output (N, K, K - 1), the pairs of :func:`.flat_pairs`. Tied covariances make every
    log-ratio linear: it is stored per pair as ``h = w^T (x - x0) + kappa`` with a root point x0 on the
    boundary (see :func:`.tied_root_points`); the forward pass is one
    (N, D) x (D, K (K - 1)) product. Otherwise ``h = s_c - s_k`` from the component scores; for full
    covariances the layer also keeps, per pair, the root point on the line through the two means that the
    relevance rule starts from (:func:`.segment_roots`).
    """
    def __init__(self, means, precisions, biases, covariance_type, origin=None, factor=None, factor_precisions=None):
        super().__init__()
        if covariance_type not in COVARIANCE_TYPES:
            raise ValueError(f'covariance_type must be one of {COVARIANCE_TYPES}, got {covariance_type!r}.')
        means = torch.as_tensor(means, dtype=torch.float64)
        precisions = torch.as_tensor(precisions, dtype=torch.float64)
        biases = torch.as_tensor(biases, dtype=torch.float64)
        n_components, n_features = means.shape
        expected = {'full': (n_components, n_features, n_features), 'tied': (n_features, n_features),
                    'diag': (n_components, n_features), 'spherical': (n_components,)}[covariance_type]
        if covariance_type == 'spherical' and precisions.dim() == 1:
            precisions = precisions.unsqueeze(1).expand(n_components, n_features).clone()
            expected = (n_components, n_features)
        elif covariance_type == 'spherical':
            expected = (n_components, n_features)
        if tuple(precisions.shape) != expected or tuple(biases.shape) != (n_components,):
            raise ValueError(
                f'a {covariance_type!r} mixture of {n_components} components in {n_features} features needs '
                f'precisions of shape {expected} and biases of shape ({n_components},), got '
                f'{tuple(precisions.shape)} and {tuple(biases.shape)}.'
            )
        if origin is None:
            origin = frame_origin(means)
        origin = torch.as_tensor(origin, dtype=torch.float64)
        self.covariance_type = covariance_type
        self.register_buffer('origin', origin)
        self.register_buffer('means', means - origin)
        self.register_buffer('precisions', precisions)
        self.register_buffer('biases', biases)
        own, rival = flat_pairs(n_components)
        self.register_buffer('own', own.clone())
        self.register_buffer('rival', rival.clone())
        self.register_buffer('valid', torch.ones_like(own, dtype=torch.bool))
        # pairs of identical components: their log-ratio is exactly 0 everywhere (not a rounding residue)
        same = (means[own] == means[rival]).all(-1) & (biases[own] == biases[rival])
        if covariance_type != 'tied':
            same &= (precisions[own] == precisions[rival]).flatten(2).all(-1)
        self.register_buffer('null', same)
        if covariance_type == 'tied':
            weight, root, kappa = tied_root_points(
                self.means, precisions, biases, own.flatten(), rival.flatten()
            )
            self.register_buffer('weight', weight)
            self.register_buffer('root', root)
            self.register_buffer('kappa', kappa)
            self.register_buffer('offset', kappa - (weight * root).sum(1))
        if (factor is None) != (factor_precisions is None) or factor is not None and covariance_type != 'full':
            raise ValueError('factor and factor_precisions come together, and only for full covariances.')
        if factor is not None:
            factor = torch.as_tensor(factor, dtype=torch.float64)
            factor_precisions = torch.as_tensor(factor_precisions, dtype=torch.float64)
            if factor.dim() != 2 or factor.shape[1] != n_features or tuple(factor_precisions.shape) != (
                    n_components, factor.shape[0], factor.shape[0]):
                raise ValueError(f'factor must be (d, {n_features}) and factor_precisions ({n_components}, d, d), got '
                                 f'{tuple(factor.shape)} and {tuple(factor_precisions.shape)}.')
            composed = factor.T @ factor_precisions @ factor
            if not torch.allclose(composed, precisions, rtol=1e-9, atol=1e-12 * float(precisions.abs().max())):
                raise ValueError('precisions[k] must equal factor^T factor_precisions[k] factor.')
        self.register_buffer('factor', factor)
        self.register_buffer('factor_precisions', factor_precisions)
        if covariance_type == 'full':
            root, slope, kappa = segment_roots(self.means, precisions, biases, own.flatten(), rival.flatten())
            self.register_buffer('root', root)
            self.register_buffer('slope', slope)
            self.register_buffer('kappa', kappa)

    @property
    def linear(self):
        """Whether the log-ratios are linear in x (tied covariance)."""
        return self.covariance_type == 'tied'

    @property
    def n_features(self):
        return self.means.shape[1]

    @property
    def n_components(self):
        return self.means.shape[0]

    def _buffer(self, name, x):
        return getattr(self, name).to(device=x.device, dtype=x.dtype)

    def centred(self, x):
        """Inputs in the centred frame (validated), in the input's dtype and on its device."""
        check_layer_input(x, self.n_features, type(self).__name__)
        return x - self._buffer('origin', x)

    @property
    def split(self):
        """The strategy of this covariance type (:mod:`.splits`): its log-ratios and their relevance rule."""
        return SPLITS[self.covariance_type]

    def log_ratios(self, x):
        """Pairwise log-ratios (N, K (K - 1)) of centred inputs, pairs flattened in row-major order."""
        return self.split.log_ratios(self, x)[0]

    def forward(self, x):
        x = self.centred(x)
        return self.log_ratios(x).reshape(x.shape[0], *self.own.shape)

    def extra_repr(self):
        return (f'covariance_type={self.covariance_type!r}, components={self.n_components}, '
                f'features={self.n_features}')


class SoftMinPool(torch.nn.Module):
    """Soft-min pool with stiffness 1 in the forward pass: ``f_c = -log sum_{valid l} exp(-h[c, l])``.

    On the pairwise log-ratios of a mixture, this is exactly the posterior log-odds
    ``log p(c|x) / (1 - p(c|x))``.

    Parameters
    ----------
    valid : torch.BoolTensor of shape (K, L)
        Which entries take part.
    beta : float
        The stiffness of the relevance redistribution through this pool (the
        :class:`.SoftMin` rule reads it when no beta is given). The forward
        stiffness is always 1, the model's own.
    """
    def __init__(self, valid, beta=1.0):
        super().__init__()
        self.register_buffer('valid', torch.as_tensor(valid, dtype=torch.bool))
        self.beta = check_beta(beta, allow_none=False)

    def forward(self, h):
        return soft_min(h, self.valid.to(h.device), 1.0)

    def extra_repr(self):
        return f'beta={self.beta:g}'


class NeuralizedMixture(torch.nn.Sequential, NeuralizedModel):
    """A Gaussian mixture rewritten as a two-layer network: pairwise log-ratios, then a soft-min pool.

    ``model(x)`` returns the (N, K) posterior log-odds ``f_c(x) = log p(c|x) / (1 - p(c|x))``, exactly (no
    approximation); its argmax is the mixture's ``predict``, and ``f_c(x) > 0`` iff ``p(c|x) > 1/2``.

    Parameters
    ----------
    ratio : GaussianLogRatio
    pool : SoftMinPool
    source : str
        Name of the estimator this was made from.

    Attributes
    ----------
    n_clusters : int
    n_features_in_ : int
    covariance_type : str
    beta : float
        Default stiffness of the relevance redistribution; 1 (the model's own soft-min) unless set.
    default_beta : float
        1.0: the stiffness :func:`~zennit_clusters.neuralize` gives a mixture when none is asked for,
        whatever training data it is given.
    """
    default_beta = 1.0

    def __init__(self, ratio, pool, source='GaussianMixture'):
        super().__init__()
        self.ratio = ratio
        self.pool = pool
        self.source = source

    @property
    def covariance_type(self):
        return self.ratio.covariance_type

    @property
    def cluster_centers(self):
        """(K, D) float64 component means, in input coordinates."""
        return self.ratio.means + self.ratio.origin

    @property
    def n_clusters(self):
        return self.ratio.n_components

    @property
    def n_features_in_(self):
        return self.ratio.n_features

    @property
    def evidence_row_elements(self):
        """The (N, K, K - 1) log-ratios, and the (N, K, D) centred products of full covariances."""
        extra = 2 * self.n_clusters * self.n_features_in_ if self.covariance_type == 'full' else 0
        return self.n_clusters * self.n_clusters + extra

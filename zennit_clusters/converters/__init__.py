"""Turn fitted clustering models into neuralized torch modules.

One module per model family registers its converter for the estimator types it handles, so that
supporting a new family is one new file::

    @register(MyEstimator)
    def convert_my_estimator(estimator, X=None, beta=None):
        ...
        return model   # a NeuralizedModel

:func:`neuralize` dispatches on the type (following the MRO, so subclasses are handled too).
"""
import math

import torch

from ..layers import NeuralizedModel, check_beta
from ..validation import as_feature_tensor, check_finite_rows

__all__ = ['neuralize', 'register', 'supported_types', 'resolve_beta']

_CONVERTERS = {}


def register(*types):
    """Class decorator registering ``converter(estimator, X=None, beta=None)`` for ``types``."""
    def decorator(converter):
        for type_ in types:
            _CONVERTERS[type_] = converter
        return converter
    return decorator


def supported_types():
    """Names of the estimator types :func:`neuralize` accepts."""
    return sorted(f'{t.__module__.split(".")[0]}.{t.__qualname__}' for t in _CONVERTERS)


def neuralize(estimator, X=None, beta=None):
    """Rewrite a fitted clustering model as a torch module whose outputs are cluster evidence.

    Parameters
    ----------
    estimator : fitted estimator, torch.Tensor, torch.nn.Module
        A fitted scikit-learn ``KMeans``, ``MiniBatchKMeans`` or ``BisectingKMeans``; a (K, D) tensor of
        centroids; a torch module holding one; or an already neuralized model (returned as is unless
        ``X`` or ``beta`` ask for a new default stiffness).
    X : array-like of shape (n_samples, n_features), optional
        Training data. Sets the default soft-min stiffness to the authors' heuristic
        ``beta = 1 / mean f_c(x)`` over these points (each with its assigned cluster c).
    beta : float, optional
        The default soft-min stiffness of explanations of this model (overrides ``X``). Without ``X``
        and ``beta``, the heuristic is evaluated at the cluster centroids instead of training data:
        ``beta = 1 / mean_c f_c(mu_c)``.

    Returns
    -------
    NeuralizedModel
        A ``torch.nn.Module``; ``model(x)`` gives the (N, K) evidence ``f_c(x)``, whose argmax is the
        estimator's ``predict``. Buffers are float64 on the CPU; inputs of another float dtype or
        device are handled by casting the buffers.

    Raises
    ------
    TypeError
        For an unsupported estimator type.
    sklearn.exceptions.NotFittedError
        For an estimator that was not fitted (a ``ValueError``).
    """
    if isinstance(estimator, NeuralizedModel):
        if X is None and beta is None:
            return estimator
        import copy
        model = copy.deepcopy(estimator)
        model.beta = resolve_beta(model, X, beta)
        return model
    for type_ in type(estimator).__mro__:
        if type_ in _CONVERTERS:
            return _CONVERTERS[type_](estimator, X=X, beta=beta)
    raise TypeError(
        f'Cannot neuralize an object of type {type(estimator).__module__}.{type(estimator).__qualname__}. '
        f'Supported: {", ".join(supported_types())}, or an already neuralized model.'
    )


def resolve_beta(model, X=None, beta=None):
    """The default soft-min stiffness of a freshly neuralized model (see :func:`neuralize`).

    It depends only on the model and its training data, never on a batch being explained.
    """
    beta = check_beta(beta)
    if beta is not None:
        return beta
    if getattr(model, 'default_beta', None) is not None:
        # a model with a stiffness of its own (a mixture's posterior is a soft-min with beta = 1)
        return float(model.default_beta)
    if X is not None:
        x, _ = as_feature_tensor(X, model.n_features_in_, name='X (training data)')
        x = x.to(torch.float64)
    else:
        x = model.cluster_centers.to(torch.float64)
    with torch.no_grad():
        # models whose layered forward is costly (member-point networks: M^2 pairs per row) offer evidence()
        evidence = model.evidence(x) if hasattr(model, 'evidence') else model(x)
    check_finite_rows(x, evidence, name='X (training data)')
    mean_evidence = float(evidence.max(1).values.mean())
    if not mean_evidence > 0 or not math.isfinite(1.0 / mean_evidence):
        # every point on a boundary (e.g. all centroids identical): no scale to take; split evenly
        return 0.0
    return 1.0 / mean_evidence


# the families register themselves on import
from . import kmeans, bisecting, pipeline  # noqa: E402,F401
from . import mixture  # noqa: E402,F401
from . import kernel, deep  # noqa: E402,F401

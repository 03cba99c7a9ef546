"""The contract every model family fulfils, and the one registry of families.

A family (``zennit_clusters/families/<name>/``) contributes, in one :class:`Family` record:

- converters: fitted estimator type -> ``converter(estimator, X=None, beta=None)`` returning a
  :class:`NeuralizedModel`;
- explainers: neuralized model type -> an :class:`Explainer` subclass (the closed form that :func:`explain`
  runs and the ONNX exporter writes out);
- layer rules: ``layer_rules(beta, epsilon)`` -> the Zennit rules of its layers (zennit is imported only when
  this is called);
- pickle names: for each of its estimator types, the extra names its pickles reference (what the safe loader
  of ``exporters.loading`` may admit besides the estimator class itself);
- data adapters: data container type (a Spark or dask DataFrame, a dask array ...) -> the function that runs
  :func:`~zennit_clusters.explain` on that container (lazily, or distributed) and returns the same kind of container.

:func:`register_family` adds the record; :mod:`zennit_clusters.api`, :mod:`zennit_clusters.composites` and the
loader read the registry through the functions below and nowhere else.
"""
import dataclasses
import types

import torch

from .validation import check_beta, check_explainer_input

__all__ = ['NeuralizedModel', 'StackedModel', 'Explainer', 'CentredFrameLayer', 'Family', 'register_family', 'families',
           'converter_for', 'data_adapter_for', 'explainer_type_for', 'full_name', 'layer_rules', 'supported_types', 'pickle_admissions',
           'labels_and_explained', 'optional_origin']


class StackedModel:
    """What a model stacked on a neuralized ``head`` (a pipeline's scaling, a deep model's extractor) takes from
    it: the clusters, the default stiffness, and what a label means."""
    @property
    def n_clusters(self):
        return self.head.n_clusters

    @property
    def beta(self):
        return self.head.beta

    @beta.setter
    def beta(self, value):
        self.head.beta = value

    @property
    def label_rule(self):
        return self.head.label_rule

    @property
    def noise_radius(self):
        """The head's noise radius, in the head's coordinates."""
        return self.head.noise_radius


class NeuralizedModel:
    """Base of every neuralized model: a torch module mapping (N, D) inputs to (N, K) cluster evidence.

    Subclasses (which are also ``torch.nn.Module``) provide

    - ``n_clusters``, ``n_features_in_``;
    - ``cluster_centers``: a (K, D) float64 tensor of representative points in input coordinates (the
      default stiffness is evaluated there when no training data is given);
    - ``source``: the name of the model it was made from (recorded in exports);
    - ``pool``: the last pool, which holds the default soft-min stiffness ``beta`` of explanations (models
      that wrap another neuralized model override ``beta`` to delegate it).

    Class attributes
    ----------------
    default_beta : float or None
        A stiffness the family fixes whatever the training data (a mixture's posterior is a soft-min with
        beta = 1); None to use the authors' heuristic ``1 / mean f_c``.
    label_rule : str
        What a label means, in words (recorded in exports): the estimator's ``predict`` unless a family says
        otherwise (member networks of partitions, which have no ``predict``).
    noise_radius : float or None
        The radius of a noise rule (DBSCAN's ``eps``): labels are -1 for noise; None where no label means noise.
    """
    default_beta = None
    label_rule = "the estimator's predict"
    noise_radius = None

    @property
    def beta(self):
        return self.pool.beta

    @beta.setter
    def beta(self, value):
        self.pool.beta = check_beta(value, allow_none=False)

    def evidence(self, x):
        """The (N, K) evidence ``f_c(x)`` of a float tensor; the forward pass unless a family has a cheaper form."""
        return self(x)

    # -- the user's columns (docs/pipelines.md) ------------------------------------------------------------------
    #: the column names the source estimator was fitted on (scikit-learn's ``feature_names_in_``), or None
    feature_names_in_ = None

    def record_feature_names(self, names):
        """Keep the column names the source estimator was fitted on (``neuralize`` calls it); None for none."""
        import numpy as np
        self.feature_names_in_ = None if names is None else np.asarray(names, dtype=object)
        if names is not None and not getattr(self, '_frames_hooked', False):
            # model(df): the columns checked and encoded as in explain(), then the tensor forward
            self.register_forward_pre_hook(_frame_to_tensor)
            self._frames_hooked = True

    @property
    def n_columns_in_(self):
        """The number of the user's columns (X's width); ``n_features_in_`` is the network's input width."""
        return self.n_features_in_

    def encode(self, X):
        """The numeric matrix the network takes, from the user's X.

        Here the identity after the column check (:func:`~zennit_clusters.validation.check_columns`): a DataFrame
        must have the columns the model was fitted on, in that order, and numbers in them. Pipelines with host-side
        encoders (one-hot, ordinal, imputation, column selection, vectorizers) override it to run them.

        Returns
        -------
        numpy.ndarray, torch.Tensor or scipy.sparse matrix of shape (n_samples, n_features_in_)
        """
        from .validation import check_columns
        return check_columns(X, self.feature_names_in_, numeric=True)

    def get_feature_names_out(self, input_features=None):
        """Names of the network's input columns (after any encoding), as scikit-learn names a transform's output.

        ``x0, x1, ...`` for a model fitted without column names.
        """
        import numpy as np
        if self.feature_names_in_ is not None:
            return np.asarray(self.feature_names_in_, dtype=object)
        return np.asarray([f'x{i}' for i in range(self.n_features_in_)], dtype=object)

    @property
    def feature_groups(self):
        """How the network's input columns map back onto the user's columns, or None where they are the same.

        Returns
        -------
        None or (groups, names)
            ``groups``: int array of shape (n_features_in_,), the index of the user's column each network input
            column was made from (the columns one encoder made from one input column share it); ``names``: the
            user's column names (length ``n_columns_in_``). :func:`~zennit_clusters.explain` sums relevance by it.
        """
        return None

    @property
    def evidence_row_elements(self):
        """The widest per-row intermediate of :meth:`evidence`, in elements (the layered forward's (K, K - 1)
        margins unless a family says otherwise); the chunked passes size their chunks by it."""
        return self.n_clusters * self.n_clusters

    def predict(self, X, chunk_size=None):
        """Each row's cluster, in row chunks: memory beyond X and the labels stays O(chunk) for any N, where
        ``model(x).argmax(1)`` holds the layered forward's intermediates for all rows at once.
        See :func:`zennit_clusters.api.predict`."""
        from .api import predict
        return predict(self, X, chunk_size)

    def predict_evidence(self, X, chunk_size=None, out=None):
        """The (N, K) evidence of every row of X (array or tensor), in row chunks: ``model(x)`` in bounded
        memory. See :func:`zennit_clusters.api.predict_evidence`."""
        from .api import predict_evidence
        return predict_evidence(self, X, chunk_size, out)


def _frame_to_tensor(model, args):
    """Forward pre-hook of models fitted on named columns: a DataFrame becomes the checked, encoded tensor."""
    from .validation import as_feature_tensor, is_dataframe
    if args and is_dataframe(args[0]):
        return (as_feature_tensor(model.encode(args[0]), model.n_features_in_)[0],) + tuple(args[1:])
    return None


class CentredFrameLayer(torch.nn.Module):
    """Base of the layers that compute in the centred frame: they hold its origin as the buffer ``origin``.

    State saved by releases before 0.2, which called the buffer ``centre``, loads under the new name (from a
    state dict and from a pickled module alike).
    """
    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        if prefix + 'centre' in state_dict and prefix + 'origin' not in state_dict:
            state_dict[prefix + 'origin'] = state_dict.pop(prefix + 'centre')
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def __setstate__(self, state):
        buffers = state.get('_buffers', {})
        if 'centre' in buffers and 'origin' not in buffers:
            buffers['origin'] = buffers.pop('centre')
        super().__setstate__(state)


class Explainer(torch.nn.Module):
    """The closed-form NEON explainer of one neuralized model: label, evidence and relevance in one pass.

    Subclasses implement ``forward(x)`` (``forward(x, out=None)`` where ``writes_out``), mapping an (N, D)
    tensor to ``(label, logits, relevance)``: label int64 (N,), -1 for every row whose evidence is not finite
    (:func:`~zennit_clusters.explain` refuses those rows by that label); logits (N, K); relevance (N, D).

    Parameters
    ----------
    n_features_in_ : int
        The width D of the model's input, which the explainer checks before any arithmetic.
    origin : torch.Tensor of shape (D,) or None
        The origin of the model's centred frame (see :func:`zennit_clusters.validation.frame_origin`); kept as
        None when it is zero, so that nothing is subtracted and an exported graph has no subtraction node.

    Attributes
    ----------
    has_constant : bool
        Whether the family's evidence has a part no feature carries; then ``forward_with_constant`` returns it.
    writes_out : bool
        Whether ``forward`` takes ``out=`` and writes the relevance there.
    row_elements : int
        The widest per-row intermediate (in elements); :func:`~zennit_clusters.explain` sizes its chunks by it.
    outputs : tuple of str
        What the explainer can return as its third value (:func:`~zennit_clusters.make_explainer`, ``output=``):
        'relevance' always; 'parts' (per-competitor, (N, K, D)) and 'direction' ((N, D) int8) where the family's
        network has pairwise margins. Explainers that offer more take ``output=`` in their constructor.
    row_options : tuple of str
        The per-row keyword arguments ``forward`` takes: 'contrast' (an (N,) competitor per row) and
        'reference' (an (N, D) reference point per row).
    """
    has_constant = False
    writes_out = False
    row_elements = 0
    outputs = ('relevance',)
    row_options = ()

    def __init__(self, n_features_in_, origin=None):
        super().__init__()
        self.n_features_in_ = int(n_features_in_)
        self.register_buffer('origin', optional_origin(origin))
        # every family's explainer refuses what is not a dense float tensor before its arithmetic sees it
        self.register_forward_pre_hook(_check_explainer_call)

    def row_elements_for(self, options):
        """The widest per-row intermediate of a call with these per-row options (names, as in ``row_options``);
        :func:`~zennit_clusters.explain` sizes its chunks by it. ``row_elements`` unless a family's paths differ."""
        return self.row_elements

    def forward_with_constant(self, x, **options):
        """``(label, logits, relevance, constant)``; the constant is zero for families without one (of shape
        ``relevance.shape[:-1]``: (N,), or (N, K) for per-competitor parts). ``options`` go to ``forward``."""
        label, logits, relevance = self(x, **options)
        return label, logits, relevance, torch.zeros_like(relevance[..., 0])


def _check_explainer_call(explainer, args):
    if args:
        check_explainer_input(args[0], type(explainer).__name__, explainer.n_features_in_)


def optional_origin(origin):
    """The frame's origin as an explainer keeps it: a copy, or None when it is absent or zero."""
    if origin is None or not bool(origin.any()):
        return None
    return origin.clone()


def labels_and_explained(logits, cluster, best=None):
    """Each row's label (argmax; -1 where the evidence is not finite) and the cluster its relevance explains.

    Parameters
    ----------
    logits : torch.Tensor of shape (N, K)
    cluster : int or None
        The cluster explained for every row, or None for each row's own label.
    best : torch.LongTensor of shape (N,), optional
        The argmax if already known (the flat k-means layout takes it from the scores).

    Returns
    -------
    label, explained : torch.LongTensor of shape (N,)
    """
    # one row sum instead of isfinite over (N, K): NaN and infinity propagate into it (a row of finite
    # evidence whose sum overflows would count as not finite, beyond 3e38 / K in float32)
    finite = torch.isfinite(logits.sum(1))
    best = logits.argmax(1) if best is None else best
    label = torch.where(finite, best, torch.full_like(best, -1))
    explained = label.clamp(min=0) if cluster is None else torch.full_like(label, cluster)
    return label, explained


@dataclasses.dataclass(frozen=True)
class Family:
    """What one model family contributes to the library (see the module docstring).

    Parameters
    ----------
    name : str
        The family's folder name under ``zennit_clusters/families``.
    converters : mapping of type or str to callable
        ``converter(estimator, X=None, beta=None) -> NeuralizedModel`` per estimator type, given as the type or
        as its full name ``module.qualname`` (subclasses follow their base's converter unless registered
        themselves). Names let the registry dispatch without importing the estimator's library: scikit-learn
        is imported only by the converters, when they run.
    explainers : mapping of type to type
        Explainer class per neuralized model type: ``explainer(model, cluster, beta, epsilon)``.
    layer_rules : callable, optional
        ``layer_rules(beta, epsilon) -> list of (layer types, zennit Hook)``.
    pickle_names : mapping of str to collection of str, optional
        Full estimator type name -> full names of what fitted estimators of that type hold.
    data_adapters : mapping of str to callable, optional
        Full type name of a data container -> ``adapter(model, X, **options)``, which :func:`explain` calls
        for such an X with its own keyword arguments, instead of running its chunk loop on it (keyed by name,
        so that the registry needs no import of the container's library). :func:`explain_with_constant` calls it
        with ``with_constant=True`` as well, and expects ``(relevance, constant, ...)`` back.
    """
    name: str
    converters: dict = dataclasses.field(default_factory=dict)
    explainers: dict = dataclasses.field(default_factory=dict)
    layer_rules: object = None
    pickle_names: dict = dataclasses.field(default_factory=dict)
    data_adapters: dict = dataclasses.field(default_factory=dict)
    #: the converters' keys that are torch types (never admitted from pickles), derived in __post_init__
    torch_types: frozenset = dataclasses.field(init=False, default=frozenset())

    def __post_init__(self):
        converters = {full_name(key): converter for key, converter in dict(self.converters).items()}
        # torch types come from torch files, never from pickles (see pickle_admissions)
        torch_types = frozenset(full_name(key) for key in self.converters
                                if isinstance(key, type) and issubclass(key, (torch.Tensor, torch.nn.Module)))
        object.__setattr__(self, 'converters', converters)
        object.__setattr__(self, 'torch_types', torch_types)
        # read-only views: a registered family does not change behind the registry's back
        for name in ('converters', 'explainers', 'pickle_names', 'data_adapters'):
            object.__setattr__(self, name, types.MappingProxyType(dict(getattr(self, name))))


_FAMILIES = {}


def register_family(family):
    """Add a family to the registry (once per name); returns it, so a family module can keep a handle."""
    if not isinstance(family, Family):
        raise TypeError(f'register_family takes a Family, got {type(family).__name__}.')
    if family.name in _FAMILIES:
        raise ValueError(f'a family named {family.name!r} is registered already.')
    claimed = {name: other.name for other in _FAMILIES.values() for name in other.converters}
    taken = [f'{name} ({claimed[name]})' for name in family.converters if name in claimed]
    if taken:
        raise ValueError(f'family {family.name!r} registers converters that other families own: {", ".join(taken)}.')
    _FAMILIES[family.name] = family
    return family


def families():
    """The registered families, in registration order."""
    return tuple(_FAMILIES.values())


def full_name(type_or_name):
    """``module.qualname`` of a type (a string is taken to be one already)."""
    if isinstance(type_or_name, str):
        return type_or_name
    return f'{type_or_name.__module__}.{type_or_name.__qualname__}'


def converter_for(estimator_type):
    """The converter registered for ``estimator_type`` or its nearest base class, else None."""
    for candidate in estimator_type.__mro__:
        name = full_name(candidate)
        for family in _FAMILIES.values():
            if name in family.converters:
                return family.converters[name]
    return None


def data_adapter_for(data_type):
    """The data adapter registered for ``data_type`` or its nearest base class, else None."""
    for candidate in data_type.__mro__:
        name = full_name(candidate)
        for family in _FAMILIES.values():
            if name in family.data_adapters:
                return family.data_adapters[name]
    return None


def explainer_type_for(model_type):
    """The explainer class registered for a neuralized model type or its nearest base class, else None."""
    for candidate in model_type.__mro__:
        for family in _FAMILIES.values():
            if candidate in family.explainers:
                return family.explainers[candidate]
    return None


def layer_rules(beta, epsilon):
    """The Zennit rules of every family's layers, ``[(layer types, Hook), ...]``."""
    rules = []
    for family in _FAMILIES.values():
        if family.layer_rules is not None:
            rules += family.layer_rules(beta, epsilon)
    return rules


def supported_types():
    """Names of the estimator types :func:`~zennit_clusters.neuralize` accepts."""
    return sorted(f'{name.split(".")[0]}.{name.rsplit(".", 1)[1]}'
                  for family in _FAMILIES.values() for name in family.converters)


def pickle_admissions():
    """{full estimator type name: frozenset of the extra full names its pickles reference} for every estimator
    type a family converts, torch types excepted (they come from torch files, not pickles)."""
    admitted = {}
    for family in _FAMILIES.values():
        for name in family.converters:
            if name not in family.torch_types:
                admitted[name] = frozenset(family.pickle_names.get(name, ()))
    return admitted

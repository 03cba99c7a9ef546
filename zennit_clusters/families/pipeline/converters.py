"""Pipelines ending in a clustering model: host-side encoders, then numeric layers folded into the network exactly.

See :mod:`.stages` for the split and the table of transformer types. ``make_pipeline(StandardScaler(), KMeans())``
becomes a per-feature scaling in front of the k-means network; the relevance of raw feature i is the head's
relevance of scaled feature i (the midpoint rule is invariant: ``w_i / s_i (x_i - m'_i) = w_i (z_i - m_i)``).
After a PCA (no whitening) or a TruncatedSVD, ``z = (u - mean) C^T`` with orthonormal rows C, a centroid head's
centres are lifted to ``mu C + mean``: ``|u - (mu C + mean)|^2 = |z - mu|^2 + |(I - C^T C)(u - mean)|^2``, and
the second term is the same for every centre, so every pairwise margin, hence the evidence and the labels, is
the head's, and the midpoint rule runs in u with the lifted midpoints as roots (docs/pipelines.md); after a
whitened PCA the centres are lifted to their pre-images and the margins keep the metric ``W^T W``. A Gaussian
mixture after any PCA (whitened too) or TruncatedSVD is pulled back into a mixture in u with precisions
``W^T P_k W`` (:mod:`..mixture.projection`); a member network's members are lifted like centres, DBSCAN's noise
radius kept in the metric ``C^T C`` (:mod:`..members.projection`); :func:`lift_head` dispatches.
"""
import numpy as np

from ...api import neuralize
from ...core import full_name
from ...validation import check_fitted, check_training_data
from .encoding import Encoding
from .layers import FeatureScaling, NeuralizedPipeline, ProjectedNormalization
from .stages import HOST, NETWORK, SCALERS, Projection, _dense, _named, stage_for, supported_stages

__all__ = ['convert_pipeline', 'lift_head', 'lift_centroids', 'PER_FEATURE_SCALERS']

#: kept for the safe loader's admissions (what a scaled pipeline's pickle references)
PER_FEATURE_SCALERS = SCALERS


def _default_names(n):
    return np.asarray([f'x{i}' for i in range(n)], dtype=object)


def _names_out(steps, n_out, fallback):
    from sklearn.pipeline import Pipeline
    try:
        names = np.asarray(Pipeline(list(steps)).get_feature_names_out(), dtype=object)
    except (AttributeError, ValueError, TypeError):  # a transformer without output names
        names = None
    return names if names is not None and len(names) == n_out else (fallback if len(fallback) == n_out
                                                                     else _default_names(n_out))


def convert_pipeline(pipeline, X=None, beta=None):
    """A ``Pipeline`` of registered preprocessing stages (:mod:`.stages`) ending in a supported clustering model."""
    check_fitted(pipeline)
    from .text import convert_text_pipeline, is_text_pipeline  # the vectorizer stage (text.py)
    if is_text_pipeline(pipeline):
        return convert_text_pipeline(pipeline, X=X, beta=beta)
    *preprocessing, (_, estimator) = pipeline.steps
    steps = [(name, step) for name, step in preprocessing if step not in (None, 'passthrough')]
    stages = []
    for name, step in steps:
        stage = stage_for(step)
        if stage is None:
            raise TypeError(f'Pipeline step {name!r} is a {type(step).__name__}; the steps that can precede the '
                            f'clustering model are: {supported_stages()}.')
        stages.append(stage)
    names_in = getattr(pipeline, 'feature_names_in_', None)
    if not steps:
        return neuralize(estimator, X=X, beta=beta)  # neuralize() records the names the pipeline has
    host = [i for i, stage in enumerate(stages) if stage.placement == HOST]
    split = host[-1] + 1 if host else 0
    for (name, step), stage in zip(steps[:split], stages[:split]):
        if stage.placement == NETWORK:
            later = steps[host[-1]][0]
            raise TypeError(f'Pipeline step {name!r} ({type(step).__name__}) mixes columns, and the encoder step '
                            f'{later!r} comes after it; relevance can be summed back onto the input columns only '
                            'when every encoder comes first.')

    # host-side part: which of the user's columns each encoded column was made from
    # a vectorizer takes one column of documents and declares no n_features_in_
    n_columns = int(getattr(steps[0][1], 'n_features_in_', 1))
    original = _default_names(n_columns) if names_in is None else np.asarray(names_in, dtype=object)
    sources, keeps_sparse = np.arange(n_columns), True
    for (name, step), stage in zip(steps[:split], stages[:split]):
        inner = stage.sources(step, len(sources))
        if inner is None:  # new columns of their own (a vectorizer's terms)
            original = np.asarray(step.get_feature_names_out(), dtype=object)
            sources = np.arange(len(original))
        else:
            sources = sources[np.asarray(inner, dtype=np.intp)]
        keeps_sparse = keeps_sparse and stage.keeps_sparse
    names_out = _names_out(steps[:split], len(sources), original) if split else original
    encoding = None
    if split or names_in is not None:
        encoding = Encoding(steps[:split], n_columns, names_in, names_out, sources, original, keeps_sparse)

    # numeric part, folded into the network
    width, layers, projection = len(names_out), [], None
    for name, step in steps[split:]:
        if projection is not None and full_name(type(step)) == 'sklearn.preprocessing._data.Normalizer':
            # LSA's TruncatedSVD -> Normalizer: the normalisation of z, taken in the projection's input space
            layers.append(ProjectedNormalization(step.norm, projection[1].factor, projection[1].mean))
            continue
        if projection is not None:
            raise TypeError(f'Pipeline step {name!r} ({type(step).__name__}) comes after the projection '
                            f'{projection[0]!r}; only a Normalizer and the clustering model can follow a PCA or '
                            'TruncatedSVD.')
        built = stage_for(step).layer(step, width)
        if isinstance(built, Projection):
            projection = (name, built)
        elif isinstance(built, FeatureScaling) and layers and isinstance(layers[-1], FeatureScaling):
            # compose z = ((x - o1) s1 - o2) s2 into one (x - offset) * scale
            first = layers[-1]
            layers[-1] = FeatureScaling(first.offset + built.offset / first.scale, first.scale * built.scale)
        else:
            layers.append(built)

    Z = None
    if X is not None:
        Z = X if encoding is None else encoding.transform(X)
        # what the numeric layers take is checked first (width, dtype, finite), as for any training data; sparse
        # encoded data (a vectorizer's) stays sparse: a dense copy of 100,000 documents x 50,000 terms is 40 GB
        sparse = hasattr(Z, 'toarray') and hasattr(Z, 'nnz')
        if sparse:
            if Z.shape[1] != len(names_out) or not np.isfinite(Z.data).all():
                raise ValueError(f'X (training data) encodes to a sparse matrix of shape {Z.shape} with non-finite '
                                 f'values or not {len(names_out)} columns.')
        else:
            Z = check_training_data(Z, len(names_out), name='X (training data)').numpy()
        for _, step in steps[split:]:
            Z = step.transform(Z if sparse else _named(step, Z))
            sparse = hasattr(Z, 'toarray') and hasattr(Z, 'nnz')
        Z = Z if sparse else _dense(Z)
    head = neuralize(estimator, X=Z, beta=beta)
    if projection is not None:
        head = lift_head(head, projection[1], f'{projection[0]!r} ({type(dict(steps)[projection[0]]).__name__})')
    names = '+'.join(type(step).__name__ for _, step in steps)
    if not layers and encoding is None:
        model = head
        model.source = f'Pipeline({names}, {head.source})'
        return model
    return NeuralizedPipeline(layers, head, source=f'Pipeline({names}, {head.source})', encoding=encoding)


def lift_head(head, projection, step):
    """The head (fitted on ``z = W (u - mean)``) as the same model in the projection's input space u.

    Centroid models: :func:`lift_centroids`; member-point networks (partitions, DBSCAN with its noise rule,
    kernel k-means): :func:`~zennit_clusters.families.members.projection.project_members`; both for an
    orthonormal W only. Gaussian mixtures, every covariance type, whitened or not:
    :func:`~zennit_clusters.families.mixture.projection.project_mixture`. Anything else is refused
    (docs/pipelines.md).
    """
    from ..centroids.layers import NeuralizedCentroids
    from ..members.layers import NeuralizedMembers
    from ..members.projection import project_members
    from ..mixture.layers import NeuralizedMixture
    from ..mixture.projection import project_mixture
    if type(head) is NeuralizedCentroids:
        return lift_centroids(head, projection, step)
    if type(head) is NeuralizedMixture:
        return project_mixture(head, projection.factor, projection.mean)
    if type(head) is NeuralizedMembers:
        if projection.whitened:
            raise TypeError(
                f'Pipeline step {step} is whitened (whiten=True): the member distances in its output, '
                '|z - z_j|^2 = (u - a_j)^T W^T W (u - a_j) with W = diag(1/sqrt(explained_variance_)) components_, '
                'are no Euclidean distances in the input space up to a common term (W^T W is no projector), so '
                f'{head.source} after it is no member network there; fit the projection with whiten=False, or '
                'explain the model on the projected data (explain(pipeline[-1], pipeline[:-1].transform(X))).')
        return project_members(head, projection.components, projection.mean)
    raise TypeError(
        f'Pipeline step {step} projects the data, and only centroid models, member-point networks (partitions, '
        f'DBSCAN, kernel k-means) and Gaussian mixtures are folded exactly after a projection; got {head.source}. '
        'Explain that model on the projected data instead (explain(pipeline[-1], pipeline[:-1].transform(X))).')


def lift_centroids(head, projection, step):
    """The centroid model in the projection's input space: centres ``mu C + mean``, the same margin graph and beta.

    A whitened projection (``Projection.scale``) lifts the centres to ``mean + C^T diag(1/scale) mu`` and keeps its
    metric ``M = W^T W`` (``W = Projection.factor``) in the margins (:class:`~..centroids.layers.PairwiseMargin`);
    without whitening ``|u - (mu C + mean)|^2`` differs from ``|z - mu|^2`` by a term the same for every centre, so
    the Euclidean margins are exact (docs/pipelines.md).
    """
    from ..centroids.layers import NeuralizedCentroids
    if type(head) is not NeuralizedCentroids:
        raise TypeError(f'lift_centroids takes a centroid model, got {head.source}.')
    margin = head.margin
    centres = (margin.centres + margin.origin).numpy()
    # whitened, z = W (u - mean) with W = diag(s) C: the sites b = mean + C^T diag(1/s) mu satisfy z(b) = mu, and
    # |z - mu_k|^2 = |W (u - b_k)|^2 = |u - b_k|_M^2 with M = W^T W (docs/pipelines.md)
    lifted = projection.preimages(centres)
    if not projection.whitened:
        return NeuralizedCentroids.from_pairs(lifted, margin.own, margin.rival, margin.valid, beta=head.beta,
                                              source=head.source, leaves=head.leaves)
    return NeuralizedCentroids.from_pairs(lifted, margin.own, margin.rival, margin.valid, beta=head.beta,
                                          source=head.source, leaves=head.leaves, metric=projection.factor)

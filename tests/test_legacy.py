"""What was saved or written against releases before 0.2 (organised by layer kind) keeps working."""
import pickle
import warnings

import numpy as np
import pytest
import torch
from sklearn.cluster import KMeans
from sklearn.datasets import load_iris

import zennit_clusters
from zennit_clusters import KernelKMeans, explain, neuralize


@pytest.fixture(scope='module')
def iris():
    return load_iris().data


def old_pickle(obj):
    """A pickle of ``obj`` as 0.1 wrote it: its class named by the module it was defined in then."""
    data = pickle.dumps(obj, protocol=2)  # GLOBAL names the class as text, 'module\nname\n', with no length
    new, old = b'czennit_clusters.families.members.kernel_kmeans\n', b'czennit_clusters.kernel_kmeans\n'
    assert data.count(new) == 1
    return data.replace(new, old)


def test_a_kernel_kmeans_pickled_by_0_1_loads(iris, tmp_path):
    estimator = KernelKMeans(n_clusters=3, random_state=0).fit(iris)
    data = old_pickle(estimator)
    with warnings.catch_warnings():
        warnings.simplefilter('ignore', DeprecationWarning)
        loaded = pickle.loads(data)
    assert type(loaded) is KernelKMeans
    np.testing.assert_array_equal(loaded.predict(iris), estimator.predict(iris))

    from exporters.loading import load_model
    path = tmp_path / 'old.pkl'
    path.write_bytes(data)
    safe = load_model(str(path))
    assert type(safe) is KernelKMeans
    np.testing.assert_array_equal(safe.predict(iris), estimator.predict(iris))


def test_old_import_paths_resolve_to_the_new_homes():
    from zennit_clusters.families.centroids.layers import NeuralizedCentroids
    from zennit_clusters.families.members.converters import member_gamma
    from zennit_clusters.validation import frame_origin
    with pytest.warns(DeprecationWarning, match='moved'):
        from zennit_clusters.layers import NeuralizedCentroids as old
    assert old is NeuralizedCentroids
    with pytest.warns(DeprecationWarning):
        from zennit_clusters.layers import frame_centre  # renamed with the move
    assert frame_centre is frame_origin
    with pytest.warns(DeprecationWarning):
        from zennit_clusters.converters.kernel import member_gamma as old_gamma
    assert old_gamma is member_gamma
    with pytest.raises(ImportError):
        from zennit_clusters.layers import NoSuchThing  # noqa: F401
    # the old module zennit_clusters.explain never shadows the function of that name
    import zennit_clusters.explain  # noqa: F401
    assert callable(zennit_clusters.explain) and zennit_clusters.explain is explain


def test_a_neuralized_model_saved_with_the_old_buffer_name_loads(iris):
    """0.1 called the origin of the centred frame ``centre``; state dicts and pickled modules with it load."""
    X = iris + 100.0
    model = neuralize(KMeans(n_clusters=3, n_init=2, random_state=0).fit(X))
    state = {key.replace('margin.origin', 'margin.centre'): value for key, value in model.state_dict().items()}
    assert 'margin.centre' in state
    fresh = neuralize(KMeans(n_clusters=3, n_init=2, random_state=1).fit(X + 1.0))
    fresh.load_state_dict(state)
    fresh.beta = model.beta  # the stiffness is a setting of the model, not part of its state dict
    torch.testing.assert_close(fresh.margin.origin, model.margin.origin)
    np.testing.assert_array_equal(explain(fresh, X), explain(model, X))

    module = pickle.loads(pickle.dumps(model))  # torch.load of a whole module takes the same __setstate__ path
    module.margin._buffers['centre'] = module.margin._buffers.pop('origin')
    restored = pickle.loads(pickle.dumps(module))
    assert 'origin' in restored.margin._buffers and 'centre' not in restored.margin._buffers
    np.testing.assert_array_equal(explain(restored, X), explain(model, X))

"""The family registry: one record per family, dispatch by type name, and what it costs to import."""
import importlib
import importlib.util
import subprocess
import sys

import numpy as np
import pytest
import torch
from sklearn.cluster import KMeans

from zennit_clusters import explain, neuralize
from zennit_clusters.core import (Family, converter_for, families, layer_rules, pickle_admissions, register_family,
                                  supported_types)


#: libraries of optional extras whose types families register by name ([spark])
OPTIONAL = ('pyspark', 'dask_ml')


def test_every_registered_name_is_a_class_of_the_installed_libraries():
    """Converters are keyed by full type names (so that dispatch imports nothing); a library that moves a class
    must fail here, not silently stop converting it."""
    for family in families():
        for name in family.converters:
            module, _, qualname = name.rpartition('.')
            if module.split('.')[0] in OPTIONAL and importlib.util.find_spec(module.split('.')[0]) is None:
                continue  # an optional extra that is not installed: its own tests skip, saying so
            resolved = importlib.import_module(module)
            for part in qualname.split('.'):
                resolved = getattr(resolved, part)
            assert isinstance(resolved, type), name
            assert converter_for(resolved) is family.converters[name]
        for names in family.pickle_names.values():
            for name in names:
                module, _, qualname = name.rpartition('.')
                assert hasattr(importlib.import_module(module), qualname), name


def test_one_family_per_folder_and_no_type_claimed_twice():
    assert [family.name for family in families()] == ['centroids', 'mixture', 'members', 'pipeline', 'deep', 'dask',
                                                       'spark']
    with pytest.raises(ValueError, match='registered already'):
        register_family(Family(name='centroids'))
    with pytest.raises(ValueError, match='other families own: sklearn.cluster._kmeans.KMeans'):
        register_family(Family(name='another', converters={KMeans: lambda estimator, X=None, beta=None: None}))
    assert 'another' not in [family.name for family in families()]
    with pytest.raises(TypeError, match='takes a Family'):
        register_family({'name': 'dict'})


def test_subclasses_follow_their_base_and_unknown_types_are_refused():
    class MyKMeans(KMeans):
        pass

    X = np.random.default_rng(0).normal(size=(60, 3))
    estimator = MyKMeans(n_clusters=3, n_init=1, random_state=0).fit(X)
    assert converter_for(MyKMeans) is converter_for(KMeans)
    labels = explain(estimator, X, return_logits=True)[1]
    np.testing.assert_array_equal(labels, estimator.predict(X))
    with pytest.raises(TypeError, match='Cannot neuralize an object of type builtins.dict. Supported: .*sklearn.KMeans'):
        neuralize({})


def test_torch_types_are_never_admitted_from_pickles():
    admitted = pickle_admissions()
    assert 'sklearn.cluster._kmeans.KMeans' in admitted
    assert not any(name.startswith('torch.') or name.endswith(('CentroidHead', 'StudentTHead', 'NeuralizedDeep'))
                   for name in admitted)
    assert 'sklearn.cluster._bisect_k_means._BisectingTree' in admitted['sklearn.cluster._bisect_k_means.BisectingKMeans']
    assert 'torch.Tensor' in supported_types() and 'sklearn.KMeans' in supported_types()


def test_layer_rules_come_from_every_family_that_has_layers():
    from zennit_clusters import FeatureScaling, GaussianLogRatio, LogMeanExpPool, MemberMargin, MinPool, PairwiseMargin
    covered = {layer for layers, _ in layer_rules(None, None) for layer in (layers if isinstance(layers, tuple) else (layers,))}
    assert {PairwiseMargin, MinPool, GaussianLogRatio, MemberMargin, LogMeanExpPool, FeatureScaling} <= covered


def test_importing_the_package_imports_neither_scikit_learn_nor_zennit():
    """Start-up: `import zennit_clusters` costs little more than `import torch` (scikit-learn and zennit take
    seconds; they are imported when a converter or a Zennit rule is first used)."""
    code = ('import sys, zennit_clusters; '
            "print(sorted(m for m in ('sklearn', 'zennit', 'torchvision', 'onnx', 'scipy') if m in sys.modules))")
    result = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == '[]'
    x = torch.randn(5, 4, dtype=torch.float64)
    assert explain(neuralize(torch.randn(3, 4, dtype=torch.float64)), x).shape == (5, 4)

"""Judge attributions of cluster evidence by removing features (docs/method.md, section 6).

An attribution ranks the features of a point x by how much they support its cluster evidence
``f_c(x)``. Removing features in that order, most relevant first (MoRF), should make ``f_c`` fall fast;
removing them least relevant first (LeRF) should keep it high. The area between the two curves, ABPC =
AUC(LeRF) - AUC(MoRF), is the summary: higher is better, a random ranking scores about zero.

What "removing" means decides the winner: an attribution whose implicit reference point equals the
removal value has an edge (gradient x input under zero removal, mean-baseline integrated gradients under
mean removal). Always compare under several removal values:

``'mean'``
    the removed feature takes its mean over the reference data;
``'zero'``
    it takes the value 0;
``'knn'``
    a conditional in-fill: it takes the mean of that feature over the point's ``n_neighbors`` nearest
    neighbours in the reference data, the neighbours being searched **on the features that remain** at
    that step (distances in units of the reference data's standard deviation per feature). It estimates
    ``E[x_removed | x_kept]``, so the removed values stay plausible for the data; the removed features
    themselves never choose the neighbours. Reference rows identical to the point are skipped (in-filling
    from a copy of the point would remove nothing). With every feature removed it is the reference mean;
an array
    of shape (D,) or (N, D): the removed feature takes that value.

Everything works on numpy arrays and on any function mapping (N, D) inputs to (N, K) evidence; use
:func:`evidence_function` to build one from a neuralized model, a fitted estimator or a torch module.
The perturbed inputs of many steps and points are evaluated together, in batches of ``batch_size`` rows.

>>> from zennit_clusters import neuralize, explain
>>> from zennit_clusters.evaluate import removal_curves, fraction_leaving
>>> model = neuralize(kmeans, X=X)
>>> curves = removal_curves(model, X[:200], explain(model, X[:200]), removal='mean', X_reference=X)
>>> curves.abpc, curves.auc_morf, curves.auc_lerf
>>> fraction_leaving(model, X[:200], explain(model, X[:200]), k=5, X_reference=X)
"""
from .curves import (BATCH_SIZE, NORMALIZATIONS, RemovalCurves, compare_attributions, evidence_function,
                     fraction_leaving, removal_curves)
from .removal import REMOVALS

__all__ = [
    'REMOVALS', 'evidence_function', 'RemovalCurves', 'removal_curves', 'fraction_leaving',
    'compare_attributions', 'BATCH_SIZE', 'NORMALIZATIONS',
]

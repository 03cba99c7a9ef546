"""Tabular showcase: why does each wine sit in its cluster?

The wine data (178 wines, 13 chemical measurements, bundled with scikit-learn) is MinMax-scaled and
clustered with k-means (K = 3). NEON explains every assignment; averaging the relevance over the members
of a cluster gives the cluster's profile: the measurements that, on average, put wines into it. A few
single wines are explained too, and the explanations are checked by feature removal against a random
ranking.

    python examples/tabular_wine.py [--quick] [--out DIR]

Writes wine_profiles.png, wine_profiles_matrix.png, wine_points.png and (without --quick)
wine_removal.png to DIR (default examples/output/).
"""
import argparse
import os
import sys

import numpy as np
from sklearn.cluster import KMeans
from sklearn.datasets import load_wine
from sklearn.metrics import adjusted_rand_score
from sklearn.preprocessing import MinMaxScaler

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..'))
from zennit_clusters import explain, neuralize  # noqa: E402
from zennit_clusters import plot  # noqa: E402

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'output')


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--quick', action='store_true', help='skip the removal curves')
    parser.add_argument('--out', default=OUT, help='folder for the figures')
    args = parser.parse_args(argv)
    os.makedirs(args.out, exist_ok=True)

    data = load_wine()
    names = [name.replace('_', ' ') for name in data.feature_names]
    X = MinMaxScaler().fit_transform(data.data)
    kmeans = KMeans(3, n_init=10, random_state=0).fit(X)
    model = neuralize(kmeans, X=X)                      # beta = 1 / mean f_c over the training data
    R, labels, logits = explain(model, X, return_logits=True)
    evidence = logits[np.arange(len(X)), labels]
    assert np.allclose(R.sum(1), evidence)              # conservation: relevance sums to the evidence
    print(f'k-means on wine: adjusted Rand index against the three cultivars '
          f'{adjusted_rand_score(data.target, labels):.2f}; soft-min stiffness beta = {model.beta:.3g}')

    for cluster in range(3):
        members = labels == cluster
        profile = R[members].mean(0)
        top = np.argsort(-profile)[:3]
        cultivars = np.bincount(data.target[members], minlength=3)
        print(f'cluster {cluster}: {members.sum()} wines (cultivars {cultivars.tolist()}); most relevant: ' +
              ', '.join(f'{names[i]} ({profile[i] / evidence[members].mean():.0%})' for i in top))

    fig = plot.cluster_profiles(R, labels, feature_names=names, top=8,
                                suptitle='Wine clusters: mean NEON relevance (top 8 features per cluster)')
    fig.savefig(os.path.join(args.out, 'wine_profiles.png'), dpi=110)
    fig = plot.cluster_profiles(R, labels, feature_names=names, kind='matrix', normalize=True,
                                suptitle='Share of the mean evidence per feature')
    fig.savefig(os.path.join(args.out, 'wine_profiles_matrix.png'), dpi=110)

    # one typical and one borderline wine per cluster
    from matplotlib.figure import Figure
    fig = Figure(figsize=(14, 7.5), layout='constrained')
    axes = fig.subplots(2, 3)
    for cluster in range(3):
        members = np.flatnonzero(labels == cluster)
        typical = members[np.argmax(evidence[members])]
        border = members[np.argmin(evidence[members])]
        for row, (point, kind) in enumerate(((typical, 'most typical'), (border, 'borderline'))):
            plot.relevance_bars(R[point], names, top=6, values=data.data[point], ax=axes[row, cluster],
                                title=f'wine {point}: {kind} of cluster {cluster}\n(f_c = {evidence[point]:.3f})')
    fig.savefig(os.path.join(args.out, 'wine_points.png'), dpi=110)

    if not args.quick:
        from zennit_clusters.evaluate import compare_attributions
        random = np.random.default_rng(0).normal(size=R.shape)
        curves = compare_attributions(model, X, {'NEON': R, 'random': random}, removals=('mean', 'knn'))
        fig = Figure(figsize=(9, 3.5), layout='constrained')
        axes = fig.subplots(1, 2)
        for ax, (removal, by_method) in zip(axes, curves.items()):
            plot.removal_curves_plot(by_method, ax=ax, title=f'removal: {removal}')
            print(f'ABPC under {removal} removal: NEON {by_method["NEON"].abpc:.3f}, '
                  f'random {by_method["random"].abpc:.3f}')
        fig.savefig(os.path.join(args.out, 'wine_removal.png'), dpi=110)
    print(f'figures written to {args.out}')


if __name__ == '__main__':
    main()

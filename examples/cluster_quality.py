"""Cluster quality: how explanations reveal a merged cluster and a split one.

Four handwritten digits (0, 3, 4, 6; about 720 of scikit-learn's 8 x 8 digits) are clustered with k-means
three times: with the right K = 4, with K = 3 (two digits must share a cluster) and with K = 5 (one digit
is cut in two). The digit labels are never used to judge the clusters; they only confirm, at the end,
what the explanations showed.

What NEON shows, per cluster:

* **coherence**: the mean cosine similarity between a member's explanation and the cluster's mean
  explanation. Members of a merged cluster are there for different reasons (some for the strokes of one
  digit, some for another's), so its coherence is the lowest; grouping its members by their explanations
  (2-means on the normalized relevance) separates the two digits again.
* **evidence**: the mean ``f_c(x)``, the margin by which members win their cluster. The halves of a split
  cluster win only narrowly, and each half's nearest competitor (the one NEON's min-pool passes the
  relevance to) is the other half: they are defined against each other, and their heatmaps show the
  same digit.

    python examples/cluster_quality.py [--quick] [--out DIR]

Writes quality_overview.png, quality_merged.png and quality_scores.png to DIR (default examples/output/).
"""
import argparse
import os
import sys

import numpy as np
from sklearn.cluster import KMeans
from sklearn.datasets import load_digits

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..'))
from zennit_clusters import explain, neuralize  # noqa: E402
from zennit_clusters import plot  # noqa: E402

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'output')
DIGITS = (0, 3, 4, 6)


def unit_rows(R):
    norm = np.linalg.norm(R, axis=1, keepdims=True)
    return R / np.where(norm > 0, norm, 1.0)


def analyse(X, K, n_init):
    """Fit k-means, explain it, and score every cluster by its explanations."""
    kmeans = KMeans(K, n_init=n_init, random_state=0).fit(X)
    model = neuralize(kmeans, X=X)
    R, labels, logits = explain(model, X, return_logits=True)
    evidence = logits[np.arange(len(X)), labels]
    centres = kmeans.cluster_centers_
    distances = ((X[:, None, :] - centres[None]) ** 2).sum(-1)
    distances[np.arange(len(X)), labels] = np.inf
    rival = distances.argmin(1)          # nearest competitor: where the min-pool sends the relevance
    clusters = []
    for c in range(K):
        members = labels == c
        units = unit_rows(R[members])
        profile = units.mean(0)
        coherence = float((units @ (profile / np.linalg.norm(profile))).mean())
        rivals = np.bincount(rival[members], minlength=K)
        clusters.append({'n': int(members.sum()), 'evidence': float(evidence[members].mean()),
                         'coherence': coherence, 'profile': R[members].mean(0), 'rival': int(rivals.argmax()),
                         'rival_share': float(rivals.max() / members.sum())})
    return {'K': K, 'kmeans': kmeans, 'R': R, 'labels': labels, 'evidence': evidence, 'clusters': clusters}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--quick', action='store_true', help='fewer k-means restarts')
    parser.add_argument('--out', default=OUT, help='folder for the figures')
    args = parser.parse_args(argv)
    os.makedirs(args.out, exist_ok=True)
    from matplotlib.figure import Figure

    digits = load_digits()
    keep = np.isin(digits.target, DIGITS)
    X, y = digits.data[keep].astype(np.float64), digits.target[keep]
    n_init = 3 if args.quick else 10
    runs = {K: analyse(X, K, n_init) for K in (3, 4, 5)}

    for K, run in runs.items():
        print(f'K = {K}:')
        for c, info in enumerate(run['clusters']):
            counts = np.bincount(y[run['labels'] == c], minlength=10)[list(DIGITS)]
            print(f'  cluster {c}: n={info["n"]:3d}  evidence {info["evidence"]:6.0f}  coherence '
                  f'{info["coherence"]:.2f}  nearest competitor {info["rival"]} ({info["rival_share"]:.0%})'
                  f'   [digits {dict(zip(DIGITS, counts.tolist()))}: only to confirm]')

    # overview: centroid and mean heatmap of every cluster, one pair of rows per K
    width = max(runs)
    fig = Figure(figsize=(1.9 * width, 2 * 1.9 * len(runs)), layout='constrained')
    axes = fig.subplots(2 * len(runs), width, squeeze=False)
    for row, (K, run) in enumerate(runs.items()):
        coherences = [info['coherence'] for info in run['clusters']]
        evidences = [info['evidence'] for info in run['clusters']]
        for c, info in enumerate(run['clusters']):
            flags = []
            if coherences[c] < 0.9 * np.median(coherences):
                flags.append('low coherence')
            if evidences[c] < 0.75 * np.median(evidences):
                flags.append('weak evidence')
            axes[2 * row, c].imshow(run['kmeans'].cluster_centers_[c].reshape(8, 8), cmap='gray_r')
            axes[2 * row, c].set_title(f'K={K}, cluster {c} (n={info["n"]})', fontsize=8)
            plot.heatmap(info['profile'], (8, 8), ax=axes[2 * row + 1, c],
                         title=f'coh {info["coherence"]:.2f}, f {info["evidence"]:.0f}\n' + ', '.join(flags))
        for c in range(K, width):
            axes[2 * row, c].set_axis_off()
            axes[2 * row + 1, c].set_axis_off()
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle('k-means on digits 0, 3, 4, 6 with K = 3, 4, 5: centroids and mean NEON heatmaps '
                 '(coh = explanation coherence, f = mean evidence)', fontsize=10)
    fig.savefig(os.path.join(args.out, 'quality_overview.png'), dpi=100)

    # the merged cluster: group its members by their explanations
    merged_run = runs[3]
    merged = int(np.argmin([info['coherence'] for info in merged_run['clusters']]))
    members = np.flatnonzero(merged_run['labels'] == merged)
    modes = KMeans(2, n_init=10, random_state=0).fit_predict(unit_rows(merged_run['R'][members]))
    purity = sum(np.bincount(y[members][modes == m]).max() for m in range(2)) / len(members)
    found = [np.bincount(y[members][modes == m]).argmax() for m in range(2)]
    print(f'K = 3: cluster {merged} is the least coherent; grouping its members by their explanations gives '
          f'two modes that are {purity:.0%} pure (mostly the digits {found[0]} and {found[1]})')
    profiles = [merged_run['R'][members[modes == m]].mean(0) for m in range(2)]
    images = [X[members[modes == m]].mean(0) for m in range(2)]
    fig = plot.heatmap_grid([merged_run['clusters'][merged]['profile']] + profiles, (8, 8),
                            images=[merged_run['kmeans'].cluster_centers_[merged]] + images,
                            titles=[f'cluster {merged} (K = 3)', 'explanation mode 1', 'explanation mode 2'],
                            suptitle='the least coherent cluster, split by its members\' explanations',
                            cell_size=2.0)
    fig.savefig(os.path.join(args.out, 'quality_merged.png'), dpi=100)

    # scores per cluster and K
    fig = Figure(figsize=(9, 3.2), layout='constrained')
    axes = fig.subplots(1, 2)
    start = 0
    for K, run in runs.items():
        positions = start + np.arange(K)
        axes[0].bar(positions, [info['coherence'] for info in run['clusters']], 0.8, label=f'K={K}')
        axes[1].bar(positions, [info['evidence'] for info in run['clusters']], 0.8, label=f'K={K}')
        start += K + 1
    for ax, name in zip(axes, ('explanation coherence', 'mean evidence f_c')):
        ax.set_ylabel(name)
        ax.set_xticks([])
        ax.set_xlabel('clusters, grouped by K')
        ax.legend(fontsize=8)
    axes[0].set_ylim(0.5, 1.0)
    fig.savefig(os.path.join(args.out, 'quality_scores.png'), dpi=100)

    split = runs[5]
    weakest = np.argsort([info['evidence'] for info in split['clusters']])[:2]
    a, b = (int(c) for c in weakest)
    mutual = split['clusters'][a]['rival'] == b and split['clusters'][b]['rival'] == a
    print(f'K = 5: the two clusters with the weakest evidence are {a} and {b}; '
          f'{"each is the other" if mutual else "they are not each other"}\'s nearest competitor; '
          f'their members are mostly the digits {np.bincount(y[split["labels"] == a]).argmax()} and '
          f'{np.bincount(y[split["labels"] == b]).argmax()}')
    print(f'figures written to {args.out}')


if __name__ == '__main__':
    main()

"""Image showcase: which pixels put a handwritten digit into its k-means cluster?

k-means (K = 10) on the raw 8 x 8 digits bundled with scikit-learn (1797 images, pixel values 0..16).
NEON explains every assignment as a pixel heatmap (red: evidence for the cluster, blue: against). The
figures show, per cluster, its centroid and the mean heatmap of its members, then single digits with
their heatmaps: the strokes where a digit looks like its cluster and unlike the nearest other clusters.

    python examples/images_digits.py [--quick] [--out DIR]

Writes digits_clusters.png, digits_examples.png and digits_heatmaps.png (Zennit's own image colouring)
to DIR (default examples/output/).
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


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--quick', action='store_true', help='fewer k-means restarts and examples')
    parser.add_argument('--out', default=OUT, help='folder for the figures')
    args = parser.parse_args(argv)
    os.makedirs(args.out, exist_ok=True)

    digits = load_digits()
    X = digits.data.astype(np.float64)
    kmeans = KMeans(10, n_init=2 if args.quick else 10, random_state=0).fit(X)
    model = neuralize(kmeans, X=X)
    R, labels, logits = explain(model, X, return_logits=True)
    evidence = logits[np.arange(len(X)), labels]

    # name each cluster after the digit most of its members show (for the titles only)
    majority = [np.bincount(digits.target[labels == c], minlength=10).argmax() for c in range(10)]
    purity = sum(np.bincount(digits.target[labels == c]).max() for c in range(10)) / len(X)
    print(f'k-means on raw digits: purity {purity:.2f} against the true digits')

    profiles = np.stack([R[labels == c].mean(0) for c in range(10)])
    fig = plot.heatmap_grid(profiles, (8, 8), images=kmeans.cluster_centers_, ncols=10,
                            titles=[f'cluster {c}\n(mostly {majority[c]}, n={np.sum(labels == c)})'
                                    for c in range(10)],
                            suptitle='centroids (top) and mean NEON heatmap of the members (bottom)')
    fig.savefig(os.path.join(args.out, 'digits_clusters.png'), dpi=110)

    # per cluster, its most typical member and its most borderline member
    per_cluster = 1 if args.quick else 2
    chosen, titles = [], []
    for c in range(10):
        members = np.flatnonzero(labels == c)
        picks = [members[np.argmax(evidence[members])], members[np.argmin(evidence[members])]][:per_cluster]
        for point, kind in zip(picks, ('typical', 'borderline')):
            chosen.append(point)
            titles.append(f'#{point} → {c}\n{kind}, f_c={evidence[point]:.0f}')
    fig = plot.heatmap_grid(R[chosen], (8, 8), images=X[chosen], titles=titles, ncols=10,
                            suptitle='single digits (top) and their NEON heatmaps (bottom)')
    fig.savefig(os.path.join(args.out, 'digits_examples.png'), dpi=110)

    image = plot.heatmap_image(R[chosen].reshape(-1, 8, 8), cmap='coldnhot')
    image.resize((image.width * 8, image.height * 8), resample=0).save(os.path.join(args.out, 'digits_heatmaps.png'))
    print(f'figures written to {args.out}')


if __name__ == '__main__':
    main()

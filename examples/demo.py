"""The zennit-clusters demo: why does each wine sit in its cluster?

Fits k-means on scikit-learn's bundled wine data (178 wines, 13 chemical measurements), rewrites it as a
neural network, explains every assignment with NEON, prints the features that put a few wines and each
cluster where they are (with zennit_clusters.summarize: high or low, typical values, runner-up clusters),
saves a figure of that summary, and exports the model with its explanation to ONNX, checked under onnxruntime.

    python examples/demo.py [--out DIR]
"""
import argparse
import os
import time

import numpy as np
import torch
from sklearn.cluster import KMeans
from sklearn.datasets import load_wine
from sklearn.preprocessing import StandardScaler

from zennit_clusters import ClusterComposite, Explanation, explain, neuralize, summarize


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--out', default=os.path.join(os.path.dirname(os.path.abspath(__file__)), 'output'))
    parser.add_argument('--quick', action='store_true', help='accepted as by the showcases; the demo is quick already')
    args = parser.parse_args(argv)
    os.makedirs(args.out, exist_ok=True)

    wine = load_wine()
    names = wine.feature_names
    X = StandardScaler().fit_transform(wine.data)  # k-means on standardized measurements
    kmeans = KMeans(n_clusters=3, n_init=10, random_state=0).fit(X)

    # 1. neuralize: the same model as a torch network whose outputs are cluster evidence
    model = neuralize(kmeans, X=X)
    logits = model(torch.as_tensor(X))
    agree = (logits.argmax(1).numpy() == kmeans.predict(X)).mean()
    print(f'neuralized {model.source}: {model.n_clusters} clusters, {model.n_features_in_} features, '
          f'beta = {model.beta:.4f} (1 / mean evidence on the training data)')
    print(f'argmax of the network == KMeans.predict on {agree:.0%} of the wines\n')

    # 2. explain: one forward pass for all points; relevance sums to each point's evidence
    start = time.perf_counter()
    relevance, labels, logits = explain(model, X, return_logits=True)
    seconds = time.perf_counter() - start
    evidence = logits[np.arange(len(X)), labels]
    print(f'explained {len(X)} wines in {seconds * 1e3:.1f} ms; '
          f'max |sum(R) - f_c| = {np.abs(relevance.sum(1) - evidence).max():.1e}\n')

    # 3. read it: single wines with their values, and whether each value is high or low against the rivals
    explanation = Explanation.of(model, X, feature_names=names)
    print('Why these wines sit in their cluster (top 3 features; value standardized; high/low against the '
          'other clusters):')
    for row in (0, 70, 150):
        print(explanation.describe(row, top=3))

    # 4. and each cluster: its defining features, their direction, typical values, and its rivals
    summary = summarize(model, X, feature_names=names, top=4)
    print(f'\nWhat makes each cluster:\n{summary}')

    # the same relevance through Zennit's attributor, as a cross-check of the two paths
    from zennit.attribution import Gradient
    with Gradient(model, ClusterComposite()) as attributor:
        onehot = torch.nn.functional.one_hot(torch.as_tensor(labels), model.n_clusters).double()
        _, zennit_relevance = attributor(torch.as_tensor(X), attr_output=lambda y: y * onehot)
    print(f'\nZennit path (Gradient + ClusterComposite) vs closed form: max difference '
          f'{np.abs(zennit_relevance.numpy() - relevance).max():.1e}')

    save_figure(summary, os.path.join(args.out, 'demo_wine_summary.png'))
    export_onnx(model, kmeans, X, relevance, os.path.join(args.out, "demo_wine_kmeans.onnx"))
    print(f'figures written to {args.out}')


def save_figure(summary, path):
    from zennit_clusters import plot

    plot.summary_plot(summary, suptitle='wine, k-means (K = 3): defining features per cluster').savefig(path, dpi=100)
    print(f'saved {path}')


def export_onnx(model, kmeans, X, relevance, path):
    import onnxruntime
    from exporters.onnx import export

    # the neuralized model, not the estimator: the graph keeps the beta set from the training data
    export(model, path, explain=True, X=X)  # raises, and leaves no file, if onnxruntime disagrees
    session = onnxruntime.InferenceSession(path, providers=['CPUExecutionProvider'])
    label, _, onnx_relevance = session.run(['label', 'logits', 'relevance'], {'X': X.astype(np.float32)})
    print(f'exported {path} (float32, with relevance); onnxruntime labels == KMeans.predict: '
          f'{bool((label == kmeans.predict(X)).all())}, max relevance difference to float64 explain(): '
          f'{np.abs(onnx_relevance - relevance).max():.1e}')


if __name__ == '__main__':
    main()

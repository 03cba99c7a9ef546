"""Deep clustering showcase: which pixels put a digit into its cluster, through an autoencoder's encoder?

An autoencoder is trained on the 8 x 8 digits bundled with scikit-learn without their labels; k-means (K = 10)
clusters its codes. ``neuralize_deep`` stacks the encoder and the neuralized k-means head, and one Zennit
composite explains both: NEON on the head (ClusterComposite's rules via ``cluster_layer_map``), ZBox with the
pixel bounds [0, 1] on the encoder's first layer and the epsilon rule on the others (``EpsilonGammaBox``).
The relevance of each pixel is seeded with the evidence f_c of the point's cluster; the encoder has no
biases, so the pixel relevance sums to f_c (docs/method.md, section 5).

    python examples/autoencoder_digits.py [--quick] [--out DIR]

Writes autoencoder_clusters.png (per cluster: mean image and mean pixel heatmap), autoencoder_examples.png
(single digits and their heatmaps) and autoencoder_heatmaps.png (Zennit's own colouring) to DIR (default
examples/output/). Full mode trains longer and restarts k-means more often (under 2 minutes on 2 cores);
--quick runs in well under 30 seconds.
"""
import argparse
import os
import sys
import time

import numpy as np
import torch
from sklearn.cluster import KMeans
from sklearn.datasets import load_digits
from sklearn.metrics import adjusted_rand_score
from zennit.composites import EpsilonGammaBox, EpsilonPlusFlat, MixedComposite

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..'))
from zennit_clusters import ClusterComposite, cluster_layer_map, explain_deep, neuralize_deep  # noqa: E402
from zennit_clusters import plot  # noqa: E402

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'output')


def autoencoder(n_code):
    """Encoder without biases (so that relevance is conserved through it); the decoder may have them."""
    encoder = torch.nn.Sequential(
        torch.nn.Linear(64, 128, bias=False), torch.nn.ReLU(),
        torch.nn.Linear(128, 64, bias=False), torch.nn.ReLU(),
        torch.nn.Linear(64, n_code, bias=False),
    )
    decoder = torch.nn.Sequential(
        torch.nn.Linear(n_code, 64), torch.nn.ReLU(),
        torch.nn.Linear(64, 128), torch.nn.ReLU(),
        torch.nn.Linear(128, 64), torch.nn.Sigmoid(),
    )
    return encoder, decoder


def train(encoder, decoder, X, epochs, seed=0):
    """Plain reconstruction loss, no labels."""
    generator = torch.Generator().manual_seed(seed)
    optimizer = torch.optim.Adam(list(encoder.parameters()) + list(decoder.parameters()), lr=2e-3)
    for epoch in range(epochs):
        order = torch.randperm(len(X), generator=generator)
        total = 0.0
        for batch in torch.split(order, 64):
            optimizer.zero_grad()
            loss = torch.nn.functional.mse_loss(decoder(encoder(X[batch])), X[batch])
            loss.backward()
            optimizer.step()
            total += loss.item() * len(batch)
    return total / len(X)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--quick', action='store_true', help='shorter training, fewer k-means restarts')
    parser.add_argument('--out', default=OUT, help='folder for the figures')
    args = parser.parse_args(argv)
    os.makedirs(args.out, exist_ok=True)
    torch.manual_seed(0)
    start = time.perf_counter()

    digits = load_digits()
    X = torch.as_tensor(digits.data / 16.0, dtype=torch.float32)  # pixels in [0, 1]
    encoder, decoder = autoencoder(n_code=10)
    loss = train(encoder, decoder, X, epochs=15 if args.quick else 60)
    # explanations in float64: relevance is then conserved to ~1e-12 instead of ~1e-4 in float32
    encoder = encoder.double().eval()
    X = X.double()
    with torch.no_grad():
        codes = encoder(X).numpy()
    print(f'autoencoder trained without labels: reconstruction MSE {loss:.4f}')

    n_init = 3 if args.quick else 10
    kmeans = KMeans(10, n_init=n_init, random_state=0).fit(codes)
    raw = KMeans(10, n_init=n_init, random_state=0).fit(digits.data)
    ari_codes = adjusted_rand_score(digits.target, kmeans.labels_)
    ari_raw = adjusted_rand_score(digits.target, raw.labels_)
    print(f'agreement with the true digits (ARI): k-means on codes {ari_codes:.2f}, on raw pixels {ari_raw:.2f}')

    # the encoder and the neuralized k-means head in one module; beta from the training codes
    model = neuralize_deep(encoder, kmeans, X=X)
    composite = EpsilonGammaBox(low=0.0, high=1.0, epsilon=1e-12, layer_map=cluster_layer_map())
    logits, R = explain_deep(model, X, composite=composite)
    labels = logits.argmax(1).numpy()
    evidence = logits.gather(1, logits.argmax(1, keepdim=True)).squeeze(1).numpy()
    R = R.detach().numpy()
    assert (labels == kmeans.labels_).all()
    error = np.abs(R.sum(1) - evidence) / np.abs(evidence)
    print(f'pixel relevance sums to f_c: median relative error {np.median(error):.1e}, max {error.max():.1e}')
    # the same with the other way of combining composites
    mixed = MixedComposite([ClusterComposite(), EpsilonPlusFlat(epsilon=1e-12)])
    _, R_flat = explain_deep(model, X[:200], composite=mixed)
    error = np.abs(R_flat.sum(1).numpy() - evidence[:200]) / np.abs(evidence[:200])
    print(f'with MixedComposite([ClusterComposite(), EpsilonPlusFlat()]): max relative error {error.max():.1e}')

    majority = [np.bincount(digits.target[labels == c], minlength=10).argmax() for c in range(10)]
    images = np.stack([digits.data[labels == c].mean(0) for c in range(10)])
    profiles = np.stack([R[labels == c].mean(0) for c in range(10)])
    fig = plot.heatmap_grid(profiles, (8, 8), images=images, ncols=10,
                            titles=[f'cluster {c}\n(mostly {majority[c]}, n={np.sum(labels == c)})'
                                    for c in range(10)],
                            suptitle='k-means on autoencoder codes: mean image (top) and mean pixel heatmap (bottom)')
    fig.savefig(os.path.join(args.out, 'autoencoder_clusters.png'), dpi=110)

    per_cluster = 1 if args.quick else 2
    chosen, titles = [], []
    for c in range(10):
        members = np.flatnonzero(labels == c)
        picks = [members[np.argmax(evidence[members])], members[np.argmin(evidence[members])]][:per_cluster]
        for point, kind in zip(picks, ('typical', 'borderline')):
            chosen.append(point)
            titles.append(f'#{point} → {c}\n{kind}, f_c={evidence[point]:.2g}')
    fig = plot.heatmap_grid(R[chosen], (8, 8), images=digits.data[chosen], titles=titles, ncols=10,
                            suptitle='single digits (top) and their pixel heatmaps through the encoder (bottom)')
    fig.savefig(os.path.join(args.out, 'autoencoder_examples.png'), dpi=110)

    image = plot.heatmap_image(R[chosen].reshape(-1, 8, 8), cmap='coldnhot')
    image.resize((image.width * 8, image.height * 8), resample=0).save(
        os.path.join(args.out, 'autoencoder_heatmaps.png'))
    print(f'{time.perf_counter() - start:.1f} s; figures written to {args.out}')


if __name__ == '__main__':
    main()

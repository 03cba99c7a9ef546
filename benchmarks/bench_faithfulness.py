"""Speed and faithfulness of NEON against the usual attribution methods, on three real data sets.

    python benchmarks/bench_faithfulness.py            # full run (< 20 min on 2 cores), writes benchmarks/results/
    python benchmarks/bench_faithfulness.py --quick    # a smoke run in about a minute, writes to a temp folder

Every method explains the same scalar function: f_c(x), the neuralized k-means model's evidence for the
cluster c that x is assigned to (docs/method.md, section 1). Captum runs on the torch model (with ``target`` = c),
SHAP and LIME on a numpy wrapper of it, one point at a time. Faithfulness is judged by feature removal
(:mod:`zennit_clusters.evaluate`) under three removal values: the data mean, zero, and a kNN in-fill.
On wine (D = 13), exact Shapley values (all 2^13 coalitions, baseline the data mean) are computed too, and
every method is compared against them.

Data sets: digits (1797 x 64, raw 0..16, K = 10), wine (178 x 13, MinMax-scaled, K = 3), breast cancer
(569 x 30, MinMax-scaled, K = 2); ``KMeans(K, n_init=10, random_state=0)``; the explained points are a
fixed random sample (seed 0) of 200 points (all 178 on wine). The peers are benchmark-only extras:
``pip install -c constraints.txt captum shap lime``.
"""
import argparse
import datetime
import math
import os
import platform
import sys
import tempfile
import time
import warnings

import numpy as np
import torch
from sklearn.cluster import KMeans
from sklearn.datasets import load_breast_cancer, load_digits, load_wine
from sklearn.preprocessing import MinMaxScaler

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..'))
from zennit_clusters import explain, make_explainer, neuralize  # noqa: E402
from zennit_clusters.evaluate import evidence_function, fraction_leaving, removal_curves  # noqa: E402

RESULTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'results')
COMMAND = 'python benchmarks/bench_faithfulness.py'
REMOVALS = ('mean', 'zero', 'knn')
NEON = 'NEON (β = 1/mean f_c)'

#: docs/method.md, section 6 (digits, 200 points): ABPC under mean and zero removal, per-point normalization
REFERENCE_DIGITS = {
    NEON: (2.68, 2.70),
    'NEON, hard min (β = ∞)': (2.37, 2.21),
    'gradient × input': (0.82, 3.78),
    'integrated gradients, mean baseline': (2.88, 2.45),
    'occlusion (mean baseline)': (2.63, 2.33),
    'Shapley value sampling (25 perm.)': (2.92, 2.53),
    'SHAP KernelExplainer': (1.67, 1.29),
    'random': (0.01, 0.09),
}


def load(name):
    """(X, n_clusters, description) of a data set."""
    if name == 'digits':
        return load_digits().data.astype(np.float64), 10, 'digits (1797 × 64, raw pixels 0..16), K = 10'
    if name == 'wine':
        return MinMaxScaler().fit_transform(load_wine().data), 3, 'wine (178 × 13, MinMax-scaled), K = 3'
    if name == 'breast_cancer':
        return (MinMaxScaler().fit_transform(load_breast_cancer().data), 2,
                'breast cancer (569 × 30, MinMax-scaled), K = 2')
    raise ValueError(name)


class Timer:
    def __init__(self):
        self.seconds = None

    def __enter__(self):
        self.start = time.perf_counter()
        return self

    def __exit__(self, *exc):
        self.seconds = time.perf_counter() - self.start


# ----------------------------------------------------------------------------------------------- methods
# each: (model, fn, X, Xs, clusters, config) -> (N, D) attributions; fn maps numpy (N, D) -> (N, K)

def neon(beta):
    def run(model, fn, X, Xs, clusters, config):
        return explain(model, Xs, beta=beta)
    return run


def neon_reference(reference, beta=None):
    """NEON with each pairwise root point taken toward a reference (docs/method.md, "Reference points"): the data
    mean, zero, or each point's kNN in-fill (the mean of its nearest data rows, as the kNN removal fills)."""
    def run(model, fn, X, Xs, clusters, config):
        if reference == 'mean':
            point = X.mean(0)
        elif reference == 'zero':
            point = 'zero'
        else:  # the per-point in-fill, computed here (its time counts): kNN removal of every feature at once
            point = knn_infill(X, Xs, config['n_neighbors'])
        return explain(model, Xs, beta=beta, reference=point)
    return run


def knn_infill(X, Xs, n_neighbors):
    """Mean of the ``n_neighbors`` nearest rows of X to each row of Xs (standardized distances, exact copies of
    the row left out): what the kNN removal of :mod:`zennit_clusters.evaluate` fills in, with nothing kept."""
    mean, scale = X.mean(0), np.where(X.std(0) > 0, X.std(0), 1.0)
    Z, Zs = (X - mean) / scale, (Xs - mean) / scale
    distance = (Zs * Zs).sum(1)[:, None] - 2.0 * Zs @ Z.T + (Z * Z).sum(1)[None]
    distance[np.isclose(distance, 0.0, atol=1e-12)] = np.inf  # the point itself
    nearest = np.argpartition(distance, n_neighbors - 1, axis=1)[:, :n_neighbors]
    return X[nearest].mean(1)


def captum_method(kind):
    def run(model, fn, X, Xs, clusters, config):
        from captum.attr import InputXGradient, IntegratedGradients, Occlusion, ShapleyValueSampling
        x = torch.tensor(Xs)
        target = torch.as_tensor(clusters)
        mean = torch.tensor(X.mean(0, keepdims=True))
        if kind == 'gxi':
            out = InputXGradient(model).attribute(x.clone().requires_grad_(True), target=target)
        elif kind == 'ig_zero':
            out = IntegratedGradients(model).attribute(x, baselines=torch.zeros_like(mean), target=target,
                                                       n_steps=50)
        elif kind == 'ig_mean':
            out = IntegratedGradients(model).attribute(x, baselines=mean, target=target, n_steps=50)
        elif kind == 'occlusion':
            out = Occlusion(model).attribute(x, sliding_window_shapes=(1,), baselines=mean, target=target,
                                             perturbations_per_eval=8)
        elif kind == 'svs':
            out = ShapleyValueSampling(model).attribute(x, baselines=mean, target=target, n_samples=25,
                                                        perturbations_per_eval=8)
        return out.detach().numpy()
    return run


def per_point(make_explainer, explain_one):
    """Run a one-point-at-a-time explainer on the scalar function f_c for each point's own cluster c."""
    def run(model, fn, X, Xs, clusters, config):
        explainers = {}
        out = np.empty_like(Xs)
        for i, (x, c) in enumerate(zip(Xs, clusters)):
            if c not in explainers:
                explainers[c] = make_explainer(lambda Z, c=c: fn(np.asarray(Z, dtype=np.float64))[:, c], X, config)
            out[i] = explain_one(explainers[c], x, config)
        return out
    return run


def _kernel_explainer(f, X, config):
    import shap
    return shap.KernelExplainer(f, X.mean(0, keepdims=True))


def _kernel_explain(explainer, x, config):
    return np.asarray(explainer.shap_values(x[None], nsamples=config['kernel_nsamples'], l1_reg=False,
                                            silent=True)).reshape(-1)


def _permutation_explainer(f, X, config):
    import shap
    return shap.PermutationExplainer(f, shap.maskers.Independent(X.mean(0, keepdims=True)), seed=0)


def _permutation_explain(explainer, x, config):
    max_evals = max(config['permutation_evals'], 2 * x.size + 1)
    return explainer(x[None], max_evals=max_evals, silent=True).values.reshape(-1)


def _lime_explainer(f, X, config):
    from lime.lime_tabular import LimeTabularExplainer
    explainer = LimeTabularExplainer(X, mode='regression', feature_selection='none', discretize_continuous=True,
                                     random_state=0)
    return explainer, f


def _lime_explain(explainer, x, config):
    explainer, f = explainer
    explanation = explainer.explain_instance(x, f, num_features=x.size, num_samples=config['lime_samples'])
    weights = np.zeros(x.size)
    # regression mode: local_exp[1] explains the prediction (local_exp[0] is its negative)
    for feature, weight in explanation.local_exp[1]:
        weights[feature] = weight
    return weights


def random_method(model, fn, X, Xs, clusters, config):
    return np.random.default_rng(0).normal(size=Xs.shape)


def exact_shapley_values(fn, Xs, clusters, baseline, batch_size=1 << 16):
    """Exact Shapley values of f_c with absent features at ``baseline``: all 2^D coalitions, vectorized.

    ``phi_j = sum_S |S|! (D - |S| - 1)! / D! (v(S + j) - v(S))``, written as one (D, 2^D) weight matrix
    applied to the (N, 2^D) coalition values.
    """
    n_features = Xs.shape[1]
    codes = np.arange(2 ** n_features)
    masks = ((codes[:, None] >> np.arange(n_features)) & 1).astype(bool)       # (2^D, D): feature present
    sizes = masks.sum(1)
    weight = np.array([math.factorial(s) * math.factorial(n_features - s - 1) / math.factorial(n_features)
                       for s in range(n_features)] + [0.0])
    # d phi_j / d v(S) = w(|S| - 1) if j in S else -w(|S|)
    W = np.where(masks, weight[np.maximum(sizes - 1, 0)][:, None], -weight[sizes][:, None]).T   # (D, 2^D)
    phi = np.empty_like(Xs)
    per_batch = max(1, batch_size // len(codes))
    for start in range(0, len(Xs), per_batch):
        rows = slice(start, start + per_batch)
        x = Xs[rows]
        Z = np.where(masks[None], x[:, None, :], baseline[None, None, :]).reshape(-1, n_features)
        values = fn(Z)[np.arange(len(Z)), np.repeat(clusters[rows], len(codes))].reshape(len(x), len(codes))
        phi[rows] = values @ W.T
    return phi


def exact_shapley(model, fn, X, Xs, clusters, config):
    return exact_shapley_values(fn, Xs, clusters, X.mean(0))


METHODS = [
    (NEON, neon(None)),
    ('NEON, hard min (β = ∞)', neon(math.inf)),
    ('NEON, reference = data mean', neon_reference('mean')),
    ('NEON, reference = zero', neon_reference('zero')),
    ('NEON, reference = kNN in-fill', neon_reference('knn')),
    ('gradient × input', captum_method('gxi')),
    ('integrated gradients, zero baseline', captum_method('ig_zero')),
    ('integrated gradients, mean baseline', captum_method('ig_mean')),
    ('occlusion (mean baseline)', captum_method('occlusion')),
    ('Shapley value sampling (25 perm.)', captum_method('svs')),
    ('SHAP KernelExplainer', per_point(_kernel_explainer, _kernel_explain)),
    ('SHAP PermutationExplainer', per_point(_permutation_explainer, _permutation_explain)),
    ('LIME', per_point(_lime_explainer, _lime_explain)),
    ('random', random_method),
]


def time_method(method, args, repeats, budget=1.0):
    """Attributions and the best wall-clock time of up to ``repeats`` runs, stopping once ``budget`` seconds
    are spent (so a slow method runs once; on a shared machine the minimum is the least disturbed run)."""
    best, out, spent = math.inf, None, 0.0
    for _ in range(repeats):
        with Timer() as timer:
            out = method(*args)
        best = min(best, timer.seconds)
        spent += timer.seconds
        if spent > budget:
            break
    return out, best


def neon_latency(model, Xs, calls=300):
    """Median seconds to explain one row: through ``explain`` (validation, set-up and the forward pass per
    call), and through a prebuilt ``make_explainer`` module (the forward pass only)."""
    module = make_explainer(model)
    rows = torch.tensor(Xs)
    times = {'explain': [], 'module': []}
    with torch.no_grad():
        for i in range(calls):
            x = Xs[i % len(Xs)][None]
            start = time.perf_counter()
            explain(model, x)
            times['explain'].append(time.perf_counter() - start)
            x = rows[i % len(Xs)][None]
            start = time.perf_counter()
            module(x)
            times['module'].append(time.perf_counter() - start)
    return {name: float(np.median(values)) for name, values in times.items()}


# ------------------------------------------------------------------------------------------- evaluation

def run_dataset(name, config, log):
    X, n_clusters, description = load(name)
    kmeans = KMeans(n_clusters, n_init=10, random_state=0).fit(X)
    model = neuralize(kmeans, X=X)
    fn = evidence_function(model)
    rng = np.random.default_rng(0)
    n_points = min(config['points'], len(X))
    index = np.sort(rng.choice(len(X), n_points, replace=False))
    Xs = X[index]
    evidence = fn(Xs)
    clusters = evidence.argmax(1)
    f_c = evidence[np.arange(n_points), clusters]
    n_features = X.shape[1]
    k_leave = max(1, round(n_features / 10))
    methods = list(METHODS)
    if n_features <= config['exact_shapley_max_features']:
        methods.insert(-1, ('exact Shapley (mean baseline, 2^D coalitions)', exact_shapley))
    rows = {}
    for method_name, method in methods:
        log(f'  {name}: {method_name} ...')
        with warnings.catch_warnings():
            warnings.simplefilter('ignore')
            method(model, fn, X, Xs[:2], clusters[:2], config)  # warm-up: imports, first-call overheads
            A, seconds = time_method(method, (model, fn, X, Xs, clusters, config), config['repeats'])
        row = {'attributions': A, 'seconds': seconds / n_points, 'points': n_points}
        for removal in REMOVALS:
            curves = removal_curves(fn, Xs, A, clusters=clusters, removal=removal, X_reference=X)
            row[removal] = curves
        row['leaving'] = fraction_leaving(fn, Xs, A, k_leave, clusters=clusters, removal='mean', X_reference=X)
        row['sum_error'] = float(np.median(np.abs(A.sum(1) - f_c) / np.abs(f_c)))
        rows[method_name] = row
        log(f'    {row["seconds"]:.2g} s/expl, ABPC ' +
            ', '.join(f'{r} {row[r].abpc:.3f}' for r in REMOVALS))
    latency = neon_latency(model, Xs)
    return {'name': name, 'description': description, 'rows': rows, 'k_leave': k_leave, 'beta': model.beta,
            'n_points': n_points, 'latency': latency, 'Xs': Xs, 'clusters': clusters, 'model': model, 'fn': fn,
            'X': X}


def shapley_agreement(result):
    """Median Pearson r and mean top-3 overlap of each method with the exact Shapley values."""
    exact_name = next(n for n in result['rows'] if n.startswith('exact Shapley'))
    exact = result['rows'][exact_name]['attributions']
    table = {}
    for name, row in result['rows'].items():
        if name == exact_name:
            continue
        A = row['attributions']
        r = [np.corrcoef(a, e)[0, 1] for a, e in zip(A, exact) if a.std() > 0 and e.std() > 0]
        top = [len(set(np.argsort(-a)[:3]) & set(np.argsort(-e)[:3])) / 3 for a, e in zip(A, exact)]
        top_abs = [len(set(np.argsort(-np.abs(a))[:3]) & set(np.argsort(-np.abs(e))[:3])) / 3
                   for a, e in zip(A, exact)]
        table[name] = (float(np.median(r)), float(np.mean(top)), float(np.mean(top_abs)))
    return table


def fmt_seconds(s):
    return f'{s:.2g}' if s >= 1e-3 else f'{s:.1e}'


def dataset_table(result):
    rows = result['rows']
    best = {r: max(row[r].abpc for name, row in rows.items() if name != 'random') for r in REMOVALS}

    def abpc(row, removal):
        value = row[removal].abpc
        text = f'{value:.3f}'
        return f'**{text}**' if math.isclose(value, best[removal], rel_tol=1e-12) else text

    lines = [
        f'### {result["description"]}',
        '',
        f'{result["n_points"]} points, each explained for its assigned cluster; β = 1/mean f_c = '
        f'{result["beta"]:.3g}. ABPC = AUC(LeRF) − AUC(MoRF) over the fraction of features removed, curves '
        'normalized by the mean f_c(x) (higher is better; best per column in bold). Leaving = fraction of '
        f'points that leave their cluster once their top {result["k_leave"]} feature(s) are set to the mean. '
        'ΣR error = median |ΣR − f_c(x)| / f_c(x).',
        '',
        '| method | s / expl. | ABPC mean | ABPC zero | ABPC kNN | leaving (top '
        f'{result["k_leave"]}) | ΣR error |',
        '|---|---:|---:|---:|---:|---:|---:|',
    ]
    for name, row in rows.items():
        seconds = '–' if name == 'random' else fmt_seconds(row['seconds'])
        error = '–' if name == 'random' else f'{row["sum_error"]:.2f}'
        lines.append(f'| {name} | {seconds} | {abpc(row, "mean")} | {abpc(row, "zero")} | {abpc(row, "knn")} | '
                     f'{row["leaving"]:.2f} | {error} |')
    return '\n'.join(lines) + '\n'


def reference_table(result):
    lines = [
        '### digits: per-point normalization, next to docs/method.md, section 6',
        '',
        'The same curves as above, each point\'s curve divided by its own f_c(x) before averaging (the '
        'convention that reproduces the scale of the reference table; noisier, because points near a boundary '
        'have a small f_c(x)).',
        '',
        '| method | ABPC mean (here) | ABPC zero (here) | ABPC mean (docs/method.md) | ABPC zero (docs/method.md) |',
        '|---|---:|---:|---:|---:|',
    ]
    for name, row in result['rows'].items():
        ref = REFERENCE_DIGITS.get(name)
        here = [row[r].renormalized('point').abpc for r in ('mean', 'zero')]
        refs = [f'{v:.2f}' for v in ref] if ref else ['–', '–']
        lines.append(f'| {name} | {here[0]:.2f} | {here[1]:.2f} | {refs[0]} | {refs[1]} |')
    return '\n'.join(lines) + '\n'


def machine():
    cpu = platform.processor() or platform.machine()
    try:
        with open('/proc/cpuinfo') as f:
            cpu = next(line.split(':', 1)[1].strip() for line in f if line.startswith('model name'))
    except (OSError, StopIteration):
        pass
    return f'{cpu}, {os.cpu_count()} cores, torch threads {torch.get_num_threads()}, {platform.system()} ' \
           f'{platform.release()}, Python {platform.python_version()}'


def versions():
    import sklearn
    out = [f'torch {torch.__version__}', f'scikit-learn {sklearn.__version__}']
    from importlib.metadata import PackageNotFoundError, version
    for package in ('captum', 'shap', 'lime'):
        try:
            out.append(f'{package} {version(package)}')
        except PackageNotFoundError:
            out.append(f'{package} missing')
    return ', '.join(out)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--quick', action='store_true', help='20 points per data set, small sample budgets')
    parser.add_argument('--out', default=None, help='output folder (default benchmarks/results, or a temp '
                                                    'folder with --quick)')
    parser.add_argument('--datasets', nargs='+', default=['digits', 'wine', 'breast_cancer'],
                        choices=['digits', 'wine', 'breast_cancer'])
    args = parser.parse_args(argv)
    for package in ('captum', 'shap', 'lime'):
        try:
            __import__(package)
        except ImportError:
            parser.error(f'{package} is missing: pip install -c constraints.txt captum shap lime')
    out = args.out or (os.path.join(tempfile.gettempdir(), 'zennit_clusters_bench_quick') if args.quick
                       else RESULTS)
    os.makedirs(out, exist_ok=True)
    torch.set_num_threads(min(2, os.cpu_count() or 1))
    config = {
        'points': 20 if args.quick else 200,
        'kernel_nsamples': 200 if args.quick else 'auto',     # 'auto' = 2 D + 2048 model evaluations
        'permutation_evals': 200 if args.quick else 500,      # shap's default
        'lime_samples': 500 if args.quick else 5000,          # lime's default
        'repeats': 1 if args.quick else 200,
        'exact_shapley_max_features': 13,
        'n_neighbors': 10,  # the kNN removal's default (zennit_clusters.evaluate.removal_curves)
    }
    start = time.perf_counter()
    load_start = os.getloadavg()
    log = lambda message: print(message, flush=True)  # noqa: E731
    results = [run_dataset(name, config, log) for name in args.datasets]
    wall = time.perf_counter() - start
    load_end = os.getloadavg()
    stamp = datetime.datetime.now().strftime('%Y-%m-%d %H:%M')
    command = COMMAND + (' --quick' if args.quick else '') + \
        ('' if args.datasets == ['digits', 'wine', 'breast_cancer'] else ' --datasets ' + ' '.join(args.datasets))
    setup = (f'Produced by `{command}` on {stamp} ({wall / 60:.1f} min wall clock) on: {machine()}; '
             f'{versions()}. Load average {load_start[0]:.1f} at the start, {load_end[0]:.1f} at the end '
             '(the machine was shared, so timings are noisy). Peer settings: integrated gradients 50 steps; '
             'occlusion one feature at a time; Shapley value sampling 25 permutations; SHAP Kernel '
             f'nsamples={config["kernel_nsamples"]} (2D + 2048 for "auto") with l1_reg=False (shap\'s default keeps '
             f'10 features only) and the data mean as background; SHAP Permutation max_evals='
             f'{config["permutation_evals"]} (at least 2D + 1), data mean as background; LIME tabular, regression '
             f'mode, quartile discretization, {config["lime_samples"]} samples, all features. '
             'Baselines "mean" are the data mean.\n')

    written = []
    for result in results:
        path = os.path.join(out, f'faithfulness_{result["name"]}.md')
        text = dataset_table(result)
        if result['name'] == 'digits':
            text += '\n' + reference_table(result)
        with open(path, 'w') as f:
            f.write(text + '\n' + setup)
        written.append(path)

    # timing across data sets
    names = list(results[0]['rows'])
    for result in results:
        names += [n for n in result['rows'] if n not in names]
    lines = ['### Seconds per explanation', '',
             'Wall clock of explaining all points with each method, divided by the number of points (NEON, '
             'Captum: one batched call; SHAP, LIME: one call per point). Fast methods: the best of up to 200 runs '
             'within 1 s (the least disturbed run on a shared machine).',
             '', '| method | ' + ' | '.join(r['name'].replace('_', ' ') for r in results) + ' |',
             '|---|' + '---:|' * len(results)]
    for name in names:
        if name == 'random':
            continue
        cells = [fmt_seconds(r['rows'][name]['seconds']) if name in r['rows'] else '–' for r in results]
        lines.append(f'| {name} | ' + ' | '.join(cells) + ' |')
    lines.append('| NEON, one row per `explain` call (median latency) | ' +
                 ' | '.join(fmt_seconds(r['latency']['explain']) for r in results) + ' |')
    lines.append('| NEON, one row per call of a prebuilt `make_explainer` module (median latency) | ' +
                 ' | '.join(fmt_seconds(r['latency']['module']) for r in results) + ' |')
    kernel = {r['name']: r['rows']['SHAP KernelExplainer']['seconds'] for r in results}
    speed = {r['name']: kernel[r['name']] / r['rows'][NEON]['seconds'] for r in results}
    lines += ['', 'SHAP KernelExplainer time / NEON time: ' +
              '; '.join(f'{r["name"].replace("_", " ")} {speed[r["name"]]:,.0f}× batched, '
                        f'{kernel[r["name"]] / r["latency"]["explain"]:,.0f}× one row per `explain` call, '
                        f'{kernel[r["name"]] / r["latency"]["module"]:,.0f}× one row per module call'
                        for r in results) + '.', '']
    path = os.path.join(out, 'faithfulness_timing.md')
    with open(path, 'w') as f:
        f.write('\n'.join(lines) + '\n' + setup)
    written.append(path)

    # exact Shapley agreement
    shapley = [r for r in results if any(n.startswith('exact Shapley') for n in r['rows'])]
    for result in shapley:
        agreement = shapley_agreement(result)
        lines = [f'### Agreement with exact Shapley values: {result["description"]}', '',
                 f'{result["n_points"]} points; exact Shapley values of f_c with absent features at the data mean '
                 '(2^13 = 8192 coalitions per point). Pearson r per point, median over points; top-3 overlap = '
                 'shared features among the three largest attributions (signed, and by magnitude), mean over points.',
                 '', '| method | median Pearson r | top-3 overlap | top-3 overlap (by abs.) |', '|---|---:|---:|---:|']
        for name, (r, top, top_abs) in agreement.items():
            lines.append(f'| {name} | {r:.3f} | {top:.2f} | {top_abs:.2f} |')
        lines += ['', 'Reference (docs/method.md, MinMax-scaled wine, K = 3): NEON median r 0.97, top-3 overlap 0.88.', '']
        path = os.path.join(out, 'faithfulness_shapley.md')
        with open(path, 'w') as f:
            f.write('\n'.join(lines) + '\n' + setup)
        written.append(path)

    # the bounds of the issue
    lines = ['### Bounds', '',
             '| data set | Kernel SHAP / NEON time | ≥ 1000× | ' +
             ' | '.join(f'NEON / best ABPC ({r})' for r in REMOVALS) + ' | within 10 % |',
             '|---|---:|:---:|' + '---:|' * len(REMOVALS) + ':---:|']
    all_met = True
    for result in results:
        rows = result['rows']
        ratios, bests = [], []
        for removal in REMOVALS:
            best_name = max((n for n in rows if n != 'random'), key=lambda n: rows[n][removal].abpc)
            ratios.append(rows[NEON][removal].abpc / rows[best_name][removal].abpc)
            bests.append(best_name)
        fast = speed[result['name']] >= 1000
        close = all(r >= 0.9 for r in ratios)
        all_met &= fast and close
        cells = [f'{r:.2f} {"✓" if r >= 0.9 else "✗"} (best: {b})' for r, b in zip(ratios, bests)]
        lines.append(f'| {result["name"].replace("_", " ")} | {speed[result["name"]]:,.0f}× | '
                     f'{"yes" if fast else "**no**"} | ' + ' | '.join(cells) +
                     f' | {"yes" if close else "**no**"} |')
    lines += ['', 'All bounds met.' if all_met else 'Not every bound is met (see the rows marked **no**).', '']
    # issue 12, item 5: NEON with the root points toward the removal value, against the best peer under that removal
    matched = {'mean': 'NEON, reference = data mean', 'zero': 'NEON, reference = zero',
               'knn': 'NEON, reference = kNN in-fill'}
    lines += ['### NEON with the matching reference point against the best peer', '',
              'Under each removal value: NEON with its root points taken toward that value (`explain(..., '
              'reference=...)`: the data mean, zero, each point\'s kNN in-fill), the best NEON variant of this run '
              '(midpoint rule or a reference), and the best method that is not NEON. Aim (issue 12): the best NEON '
              'variant at or above the best peer\'s ABPC, at under 1/100 of that peer\'s time per explanation.', '',
              '| data set | removal | NEON, matching reference | best NEON variant | best peer | NEON / peer ABPC | '
              'time NEON / peer | aim |',
              '|---|---|---:|---|---|---:|---:|:---:|']
    matched_met = True
    for result in results:
        rows = result['rows']
        peers = [n for n in rows if n != 'random' and not n.startswith('NEON')]
        variants = [n for n in rows if n.startswith('NEON')]
        for removal in REMOVALS:
            peer = max(peers, key=lambda n: rows[n][removal].abpc)
            best = max(variants, key=lambda n: rows[n][removal].abpc)
            ratio = rows[best][removal].abpc / rows[peer][removal].abpc
            time_ratio = rows[best]['seconds'] / rows[peer]['seconds']
            met = ratio >= 1.0 and time_ratio < 0.01
            matched_met &= met
            lines.append(f'| {result["name"].replace("_", " ")} | {removal} | '
                         f'{rows[matched[removal]][removal].abpc:.3f} '
                         f'| {best}: {rows[best][removal].abpc:.3f} | {peer}: {rows[peer][removal].abpc:.3f} | '
                         f'{ratio:.2f} | {time_ratio:.2g} | {"yes" if met else "**no**"} |')
    lines += ['', 'Aim met everywhere.' if matched_met else 'The aim is not met everywhere (rows marked **no**).',
              '',
              'Speed per single-row call (a request explaining one point), SHAP KernelExplainer time / NEON time: ' +
              '; '.join(f'{r["name"].replace("_", " ")} {kernel[r["name"]] / r["latency"]["explain"]:,.0f}× through '
                        f'`explain`, {kernel[r["name"]] / r["latency"]["module"]:,.0f}× through a prebuilt module'
                        for r in results) + '.', '']
    path = os.path.join(out, 'faithfulness_summary.md')
    with open(path, 'w') as f:
        f.write('\n'.join(lines) + '\n' + setup)
    written.append(path)
    log(f'done in {wall / 60:.1f} min; wrote ' + ', '.join(written))
    return results


if __name__ == '__main__':
    main()

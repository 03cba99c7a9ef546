"""The command line: ``python -m exporters.onnx MODEL [-o OUT] [--explain] ...`` and ``... inspect FILE.onnx``.

Only the standard library is imported until a command needs more, so ``--help``, usage errors and a missing
file answer at once (torch, onnx and zennit_clusters take seconds to import).
"""
import argparse
import math
import os
import pickle
import sys
import warnings

from .contract import DTYPES, MIN_OPSET, ExportError

__all__ = ['main']

PROG = 'python -m exporters.onnx'

DESCRIPTION = """\
Export a fitted clustering model to ONNX, with its cluster evidence and, on request, its NEON explanation.

The graph has one input, "X" (batch, D), and the outputs
  label      int64 (batch,)  the cluster of each row, as the model's predict (-1 for rows with NaN/inf)
  logits     (batch, K)      the evidence for each cluster (NEON); argmax is label
  relevance  (batch, D)      with --explain: how much each feature contributes to the evidence of the
                             row's cluster (sums over features to logits[row, label])
  parts      (batch, K, D)   with --per-competitor: each competing cluster's part of relevance
  contrasts  (batch, K, D)   with --contrasts: [row, k] the relevance of the margin h_ck between the
                             row's cluster c and cluster k ("why c rather than k"), zero at k = c; for
                             mixtures also contrast_constants (batch, K): contrasts.sum(-1) + it == h_ck
Before the file is written, the graph is run in onnxruntime and compared with the model on generated
probe data (or --probe-data): identical labels, logits and relevance within the float rounding of the
model's own arithmetic and never more than 0.1 % (float32) or 1e-6 (float64) of a row's scale. A graph
that misses this is not written (unless --keep-unverified).

To see what an exported file holds: python -m exporters.onnx inspect FILE.onnx [--json]"""

EPILOG = """\
model files:
  .pkl .pickle .joblib  a pickled scikit-learn estimator (pickle.dump or joblib.dump); loaded through an
                        allow-list, so a file that would run code when loaded is refused
  .skops                saved with skops.io.dump
  .pt .pth              a (K, D) tensor of centroids, or a state dict holding one (torch.save)
  Supported models: what zennit_clusters.neuralize accepts (KMeans, MiniBatchKMeans, BisectingKMeans,
  GaussianMixture, ...: see zennit_clusters.supported_types()).

examples:
  python -m exporters.onnx kmeans.pkl                     # writes kmeans.onnx next to it
  python -m exporters.onnx kmeans.joblib -o served.onnx --explain --beta 0.01
  python -m exporters.onnx centroids.pt --dtype float64 --probe-data sample.npy
  python -m exporters.onnx dbscan.pkl --train-data X_train.npy    # float64: see --dtype
  python -m exporters.onnx inspect served.onnx --json

exit status: 0 written and checked; 1 the model could not be loaded, exported or checked (no file is
written); 2 bad command-line usage; 3 written with --keep-unverified although it failed the check."""

INSPECT_DESCRIPTION = """\
Print what an exported ONNX graph promises: its input and outputs (names, dtypes, shapes with the dynamic
batch axis, meanings), its metadata (source model, K, D, beta, dtype, the export check's outcome), the
producer and its version, and the opset. The graph is not run."""


def _beta_arg(text):
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f'expected a number >= 0 or "inf", got {text!r}') from None
    if math.isnan(value) or value < 0:
        raise argparse.ArgumentTypeError(f'must be >= 0 (or "inf" for the nearest competitor only), got {text}')
    return value


def _opset_arg(text):
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f'expected an integer >= {MIN_OPSET}, got {text!r}') from None
    if value < MIN_OPSET:
        raise argparse.ArgumentTypeError(f'must be >= {MIN_OPSET} (the graph needs opset-18 reductions), got {value}')
    return value


def _parser():
    parser = argparse.ArgumentParser(prog=PROG, description=DESCRIPTION, epilog=EPILOG,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('model', metavar='MODEL', help='the fitted model file (.pkl, .joblib, .skops, .pt; see below)')
    parser.add_argument('-o', '--output', metavar='OUT', help='where to write the graph (default: MODEL with the '
                        'suffix .onnx, in the same folder)')
    parser.add_argument('--explain', action='store_true', help='add the "relevance" output (the explanation)')
    parser.add_argument('--per-competitor', action='store_true', help='also add the "parts" output (batch, K, D): '
                        'the part of the explanation that comes from each competing cluster (implies --explain)')
    parser.add_argument('--contrasts', action='store_true', help='also add the "contrasts" output (batch, K, D): '
                        '[row, k] the relevance of the margin between the row\'s cluster and cluster k ("why c '
                        'rather than k"), and for mixtures "contrast_constants" (batch, K)')
    parser.add_argument('--beta', type=_beta_arg, metavar='B', help='stiffness of the explanation\'s split between '
                        'competing clusters: 0 = evenly, larger = towards the nearest, "inf" = nearest only '
                        '(default: the model\'s own value)')
    parser.add_argument('--dtype', choices=DTYPES, default=None, help='float type of X, logits and relevance '
                        '(default float32, which keeps labels exact on data far from the origin; float64 for '
                        'models whose float32 arithmetic misses the check, such as DBSCAN, HDBSCAN and '
                        'agglomerative member networks, and the output says so)')
    parser.add_argument('--opset', type=_opset_arg, default=MIN_OPSET, metavar='N',
                        help=f'ONNX opset version, >= {MIN_OPSET} (default {MIN_OPSET})')
    parser.add_argument('--probe-data', metavar='FILE.npy', help='check the graph on these rows (an (n, D) array '
                        'saved with numpy.save) instead of generated probe data')
    parser.add_argument('--train-data', metavar='FILE.npy', help='the model\'s training data (an (n, D) .npy '
                        'array): sets the default beta from the data, and models without a predict rule '
                        '(DBSCAN, agglomerative, ...) need it')
    parser.add_argument('--provider', choices=('cpu', 'cuda'), default='cpu', help='onnxruntime execution '
                        'provider for the check (default cpu; cuda needs the onnxruntime-gpu package)')
    parser.add_argument('--keep-unverified', action='store_true', help='write the graph even if it fails the '
                        'check; its metadata then records that it failed and by how much (exit status 3)')
    parser.add_argument('--trust-pickle', action='store_true',
                        help='load the model file with no checks at all (joblib.load, torch.load(weights_only=False), '
                        'skops trusting every type): ONLY for files you made yourself, since such a file can run '
                        'any code, corrupt or modify the process, or exhaust its memory when loaded '
                        '(see docs/loading.md)')
    parser.add_argument('--debug', action='store_true', help='on errors, show the full Python traceback')
    return parser


def _inspect_parser():
    parser = argparse.ArgumentParser(prog=f'{PROG} inspect', description=INSPECT_DESCRIPTION,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('path', metavar='FILE.onnx', help='an exported graph')
    parser.add_argument('--json', action='store_true', help='print JSON (for machines) instead of text')
    parser.add_argument('--debug', action='store_true', help='on errors, show the full Python traceback')
    return parser


def _show_warning(message, category, filename, lineno, file=None, line=None):
    print(f'warning: {message}', file=sys.stderr if file is None else file)


def _load_array(path, what):
    if not os.path.exists(path):
        raise FileNotFoundError(f'{what} file not found: {path}')
    import numpy as np

    try:
        array = np.load(path, allow_pickle=False)
    except Exception as error:  # noqa: BLE001 -- np.load fails with many types on a bad file
        raise ValueError(f'cannot read {what} {path} as a .npy array ({type(error).__name__}: {error}).') from None
    if not isinstance(array, np.ndarray):
        raise ValueError(f'{what} {path} holds several arrays (.npz); save one (n, D) array with numpy.save.')
    return array


def _export(args):
    output = args.output or os.path.splitext(args.model)[0] + '.onnx'
    if os.path.abspath(output) == os.path.abspath(args.model):
        raise ValueError(f'the output {output} would overwrite the model file; pass another -o.')
    if not os.path.exists(args.model):
        raise FileNotFoundError(f'model file not found: {args.model}')
    probe = _load_array(args.probe_data, 'probe data') if args.probe_data else None
    training = _load_array(args.train_data, 'training data') if args.train_data else None
    from exporters.loading import load_model

    from . import export

    estimator = load_model(args.model, trust_pickle=args.trust_pickle)
    try:
        result = export(estimator, output, explain=args.explain, beta=args.beta, dtype=args.dtype, opset=args.opset,
                        X=probe, training_data=training, execution_provider=args.provider,
                        keep_unverified=args.keep_unverified, per_competitor=args.per_competitor,
                        contrasts=args.contrasts)
    except ValueError as error:
        from sklearn.exceptions import NotFittedError
        if isinstance(error, NotFittedError):
            raise ValueError(f'{args.model} holds a model that was never fitted: {error}') from error
        raise
    print(result)
    return 0 if result.check.passed else 3


def _inspect(args):
    from .inspect import format_inspection, inspect_graph

    print(format_inspection(inspect_graph(args.path), as_json=args.json))
    return 0


def _guarded(run, args):
    if args.debug:
        return run(args)
    show_warning, warnings.showwarning = warnings.showwarning, _show_warning
    try:
        return run(args)
    except KeyboardInterrupt:
        print('interrupted', file=sys.stderr)
        return 130
    except ModuleNotFoundError as error:
        print(f'error: {error}; the exporter needs onnx, onnxruntime and onnxscript: '
              'pip install "zennit-clusters[onnx]"', file=sys.stderr)
        return 1
    except (OSError, ValueError, TypeError, pickle.UnpicklingError, ExportError) as error:
        # expected failures: a missing, refused, corrupt or unsupported model file, an unfitted model, a
        # graph that does not check out; UnsafePickleError is an UnpicklingError
        print(f'error: {error}', file=sys.stderr)
        return 1
    except Exception as error:  # noqa: BLE001 -- a command line reports, it does not dump a traceback
        print(f'error: unexpected {type(error).__name__}: {error} (rerun with --debug for the traceback)',
              file=sys.stderr)
        return 1
    finally:
        warnings.showwarning = show_warning


def main(argv=None):
    """The command line; returns the exit status (0 success, 1 failure, 2 usage, 3 kept unverified).

    ``inspect FILE.onnx`` prints a graph's contract; a ``.onnx`` file given as MODEL is inspected the same way,
    with a note saying so, as it is already an export.
    """
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ['inspect']:
        return _guarded(_inspect, _inspect_parser().parse_args(argv[1:]))
    parser = _parser()
    args, unknown = parser.parse_known_args(argv)  # exits with status 2 and a usage message on bad usage
    if args.model.lower().endswith('.onnx'):
        defaults = parser.parse_args([args.model])
        changed = sorted(key for key, value in vars(args).items() if key != 'debug' and value != vars(defaults)[key])
        if changed or set(unknown) - {'--json'}:
            parser.error(f'{args.model} is an exported ONNX graph, not a model file; to see what it holds run: '
                         f'{PROG} inspect {args.model}')
        print(f'note: {args.model} is an exported ONNX graph, not a model file: showing what it holds, as '
              f'"{PROG} inspect {args.model}" does.', file=sys.stderr)
        return _guarded(_inspect, argparse.Namespace(path=args.model, json='--json' in unknown, debug=args.debug))
    if unknown:
        parser.error(f'unrecognized arguments: {" ".join(unknown)}')
    return _guarded(_export, args)


if __name__ == '__main__':
    sys.exit(main())

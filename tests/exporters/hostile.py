"""The hostile corpus: files crafted against the loader, written by :func:`write_corpus`.

Each kind reproduces one attack of issue 14 (or a classic payload). Payloads that would run code touch a
marker file, so a test can prove they never ran. Bombs are real: the zlib joblib file decompresses to
2 GiB and the .skops member to 1.1 GiB; the shared-reference files expand to billions of objects.
"""
import io
import os
import pickle
import struct
import zipfile
import zlib

import numpy as np

GiB = 1 << 30


class Reduce:
    """An object that pickles as ``function(*args)`` with an optional BUILD ``state``."""
    def __init__(self, function, args, state=None):
        self.function, self.args, self.state = function, args, state

    def __reduce__(self):
        return (self.function, self.args) if self.state is None else (self.function, self.args, self.state)


def _touch(marker):
    return f"open({str(marker)!r}, 'w').close()"


def _global(module, name):
    return b'c' + module.encode() + b'\n' + name.encode() + b'\n'


def _uninitialised_array():
    """numpy's ``_reconstruct(ndarray, (0,), b'b')`` without the state that would give it data."""
    return _global('numpy._core.multiarray', '_reconstruct') + _global('numpy', 'ndarray') + \
        b'K\x00\x85C\x01b\x87R'


def lloyd_heap_corruption():
    """~300 bytes: sklearn's private ``_kmeans_single_lloyd`` called on mismatched, uninitialised arrays."""
    array = _uninitialised_array()
    return (b'\x80\x02' + _global('sklearn.cluster._kmeans', '_kmeans_single_lloyd') + b'(' + array * 3 +
            b'K\x05K\x00G\x00\x00\x00\x00\x00\x00\x00\x00K\x01t' + b'R.')


def _kmeans():
    from sklearn.cluster import KMeans
    return KMeans(2, n_init=1, random_state=0).fit(np.eye(4) + np.arange(4)[:, None])


def dtype_pointer_forgery(record):
    """A KMeans whose centroids have a crafted dtype: a record with an object field (``record``), or
    object dtype over raw bytes; the data is 0x41 bytes, dereferenced as pointers by the stock loader."""
    from numpy._core.multiarray import _reconstruct
    if record:
        dtype = Reduce(np.dtype, ('V8', False, True), (3, '|', None, ('a',), {'a': (np.dtype('O'), 0)}, 8, 1, 0))
    else:
        dtype = Reduce(np.dtype, ('O8', False, True), (3, '|', None, None, None, -1, -1, 0))
    kmeans = _kmeans()
    kmeans.cluster_centers_ = Reduce(_reconstruct, (np.ndarray, (0,), b'b'), (1, (2, 4), dtype, False, b'A' * 64))
    return pickle.dumps(kmeans, protocol=2)


def build_on_class(target):
    """~60 bytes: BUILD slot state applied to an admitted class or function (the stock unpickler then sets
    the attributes on it for the rest of the process), followed by a refused name."""
    module, name = target.rsplit('.', 1)
    attribute = {'joblib.numpy_pickle.NumpyArrayWrapper': 'read_array',
                 'sklearn.cluster._bisect_k_means._BisectingTree': 'iter_leaves',
                 'copyreg._reconstructor': '__defaults__'}[target]
    value = b'K\x01\x85' if attribute == '__defaults__' else b'N'
    state = b'N}\x8c' + bytes([len(attribute)]) + attribute.encode() + value + b's\x86'
    return b'\x80\x02' + _global(module, name) + state + b'b' + _global('os', 'system') + b'.'


def item_on_array():
    """An array filled, after its state, by ``SETITEM``: the file calling ``ndarray.__setitem__`` itself."""
    return pickle.dumps(np.zeros(3), protocol=2)[:-1] + b'K\x00K\x05s.'


def bisecting_dag(levels=41):
    """A BisectingKMeans whose tree shares every node's children: 2^levels paths from a 9 KB file."""
    from sklearn.cluster import BisectingKMeans
    from sklearn.cluster._bisect_k_means import _BisectingTree
    estimator = BisectingKMeans(3, random_state=0).fit(np.random.default_rng(0).normal(size=(60, 3)))
    node = _BisectingTree.__new__(_BisectingTree)
    node.__dict__.update(center=np.zeros(3), indices=None, score=0.0, left=None, right=None, label=0)
    for _ in range(levels):
        parent = _BisectingTree.__new__(_BisectingTree)
        parent.__dict__.update(center=np.zeros(3), indices=None, score=0.0, left=node, right=node)
        node = parent
    estimator._bisecting_tree = node
    return pickle.dumps(estimator, protocol=4)


def shared_rows(where='cluster_centers_'):
    """~30 KB: one row of 1000 floats, a block of 1000 references to it, 500 references to the block."""
    row = [0.5] * 1000
    block = [row] * 1000
    kmeans = _kmeans()
    setattr(kmeans, where, [block] * 500)
    return pickle.dumps(kmeans, protocol=4)


def shared_lists(depth=32):
    """~2 KB: a list holding the same list twice, ``depth`` levels deep (2^depth leaves)."""
    tree = []
    for _ in range(depth):
        tree = [tree, tree]
    kmeans = _kmeans()
    kmeans.extra_ = tree
    return pickle.dumps(kmeans, protocol=4)


def zlib_joblib_bomb(nbytes=2 * GiB):
    """~2 MB of zlib: a joblib array header of ``nbytes`` zeros, and those zeros, compressed."""
    from joblib.numpy_pickle import NumpyArrayWrapper
    wrapper = NumpyArrayWrapper(np.ndarray, (nbytes // 8,), 'C', np.dtype('f8'), allow_mmap=False,
                                numpy_array_alignment_bytes=16)
    header = pickle.dumps(wrapper, protocol=2)[:-1] + b'\x00'  # STOP replaced by joblib's padding length
    compressor = zlib.compressobj(9)
    head = compressor.compress(header) + compressor.flush(zlib.Z_FULL_FLUSH)
    chunk_size = 1 << 24
    chunk = compressor.compress(bytes(chunk_size)) + compressor.flush(zlib.Z_FULL_FLUSH)
    count = nbytes // chunk_size
    tail = compressor.compress(b'.') + compressor.flush()
    checksum = zlib.adler32(header)
    zeros = bytes(chunk_size)
    for _ in range(count):  # the repeated chunk decodes to the same zeros every time (full flush)
        checksum = zlib.adler32(zeros, checksum)
    checksum = zlib.adler32(b'.', checksum)
    return head + chunk * count + tail[:-4] + struct.pack('>I', checksum)


def skops_bomb(path, nbytes=GiB + (1 << 27)):
    """A KMeans .skops file whose centroid member is replaced by a deflated .npy of ``nbytes`` zeros."""
    import skops.io
    original = zipfile.ZipFile(io.BytesIO(skops.io.dumps(_kmeans())))
    with zipfile.ZipFile(path, 'w', zipfile.ZIP_DEFLATED, compresslevel=9) as bomb:
        for info in original.infolist():
            data = original.read(info)
            if info.filename.endswith('.npy') and b'(2, 4)' in data[:128]:
                header = np.lib.format.header_data_from_array_1_0(np.zeros((nbytes // 32, 4)))
                buffer = io.BytesIO()
                np.lib.format.write_array_header_1_0(buffer, header)
                with bomb.open(info.filename, 'w', force_zip64=True) as member:
                    member.write(buffer.getvalue())
                    zeros = bytes(1 << 24)
                    for _ in range(nbytes // len(zeros)):
                        member.write(zeros)
            else:
                bomb.writestr(info.filename, data)


def torch_files(folder, marker):
    """The hostile torch files: zero strides asking for 1 TiB, os.system, sparse, meta."""
    import torch

    class System:
        def __reduce__(self):
            return os.system, (f'touch {marker}',)

    torch.save(torch.zeros(1).expand(1 << 38), folder / 'zero-stride.pt')  # 1 TiB of float32 from 4 bytes
    torch.save(System(), folder / 'system.pt')
    torch.save(torch.eye(3).to_sparse(), folder / 'sparse.pt')
    torch.save({'centroids': torch.empty(3, 4, device='meta')}, folder / 'meta.pt')
    torch.save(Reduce(eval, (f'__import__("os").system("touch {marker}")',)), folder / 'eval.pth')


def classic(marker):
    """exec, eval, os.system, a getattr chain; each at protocols 0, 2 and 5."""
    payloads = {
        'exec': Reduce(exec, (_touch(marker),)),
        'eval': Reduce(eval, (_touch(marker),)),
        'system': Reduce(os.system, (f'touch {marker}',)),
        'getattr': Reduce(getattr, (Reduce(__import__, ('os',)), 'system')),
    }
    return {f'{name}-p{protocol}.pkl': pickle.dumps(payload, protocol=protocol)
            for name, payload in payloads.items() for protocol in (0, 2, 5)}


def tokenize(text):
    """A module-level function standing for any function of the attacker's (a lambda pickles by such a name)."""
    return text.split()


_DOCUMENTS = ['the cat sat on the mat', 'the dog ran in the park', 'a cat and a dog met', 'stocks fell on monday',
              'markets rose as stocks rallied', 'the park was full of dogs'] * 2


def _text_pipeline():
    from sklearn.cluster import KMeans
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.pipeline import make_pipeline
    return make_pipeline(TfidfVectorizer(), KMeans(2, n_init=1, random_state=0)).fit(_DOCUMENTS)


def _table_pipeline():
    import pandas as pd
    from sklearn.cluster import KMeans
    from sklearn.compose import ColumnTransformer
    from sklearn.datasets import load_wine
    from sklearn.decomposition import PCA
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler
    frame = load_wine(as_frame=True).data.iloc[:, :4]
    frame['colour'] = pd.Series(np.random.default_rng(0).choice(['red', 'white', 'rose'], len(frame)))
    columns = ColumnTransformer([('num', StandardScaler(), [0, 1, 2]), ('cat', OneHotEncoder(), ['colour'])],
                                remainder='passthrough')
    return make_pipeline(columns, PCA(3), KMeans(2, n_init=1, random_state=0)).fit(frame)


def pipeline_files():
    """Pipelines whose transformers hold behaviour, inconsistent state or bombs (issue 10): ``{name: bytes}``."""
    import sys

    from sklearn.cluster._kmeans import _kmeans_single_lloyd
    from sklearn.compose import make_column_selector
    files = {}

    def text(name, change):
        pipeline = _text_pipeline()
        change(pipeline[0])
        files[name] = pickle.dumps(pipeline, protocol=4)

    def table(name, change, protocol=4):
        pipeline = _table_pipeline()
        change(pipeline)
        files[name] = pickle.dumps(pipeline, protocol=protocol)

    text('text-tokenizer-system.pkl', lambda v: setattr(v, 'tokenizer', os.system))
    text('text-tokenizer-function.pkl', lambda v: setattr(v, 'tokenizer', tokenize))
    text('text-tokenizer-admitted.pkl', lambda v: setattr(v, 'tokenizer', _kmeans_single_lloyd))
    text('text-analyzer-callable.pkl', lambda v: setattr(v, 'analyzer', make_column_selector()))
    text('text-vocabulary-duplicate.pkl', lambda v: v.vocabulary_.update(cat=v.vocabulary_['dog']))
    text('text-vocabulary-huge.pkl', lambda v: v.vocabulary_.update(cat=10 ** 9))
    text('text-idf-length.pkl', lambda v: setattr(v._tfidf, 'idf_', v._tfidf.idf_[:-1]))
    text('text-idf-negative.pkl', lambda v: v._tfidf.idf_.__setitem__(0, -1.0))
    text('text-pattern-giant.pkl', lambda v: setattr(v, 'token_pattern', 'a' * 1_000_000))
    text('text-pattern-backtracking.pkl', lambda v: setattr(v, 'token_pattern', r'(?:a+)+b'))
    text('text-reads-files.pkl', lambda v: setattr(v, 'input', 'filename'))
    text('text-unknown-attribute.pkl', lambda v: setattr(v, 'hook', 'x'))

    from sklearn.cluster import KMeans
    table('table-object-class.pkl', lambda p: setattr(p[0].transformers_[1][1], 'categories_',
                                                     [np.array(['red', KMeans], dtype=object)]))
    table('table-categories-unsorted.pkl', lambda p: setattr(p[0].transformers_[1][1], 'categories_',
                                                            [p[0].transformers_[1][1].categories_[0][::-1]]))
    table('table-column-far.pkl', lambda p: p[0].transformers_.__setitem__(1, ('cat', p[0].transformers_[1][1],
                                                                                 [10 ** 6])))
    table('table-function.pkl', lambda p: setattr(p[0].transformers_[2][1], 'func', _kmeans_single_lloyd))
    table('table-components.pkl', lambda p: setattr(p[1], 'components_', p[1].components_[:, :-1]))
    table('table-steps-misfit.pkl', lambda p: setattr(p[1], 'n_features_in_', p[1].n_features_in_ + 1) or
          setattr(p[1], 'components_', np.zeros((3, p[1].n_features_in_))) or
          setattr(p[1], 'mean_', np.zeros(p[1].n_features_in_)))
    deep = []
    for _ in range(5000):
        deep = [deep]
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(50_000)
    try:
        table('table-depth-bomb.pkl', lambda p: setattr(p[0], '_remainder', ('remainder', 'drop', deep)))
    finally:
        sys.setrecursionlimit(limit)
    return files


def write_corpus(folder):
    """Write every hostile file into ``folder``; returns ``{file name: what it is}`` and the marker path.

    Files ending in ``.pkl``/``.joblib``/``.skops``/``.pt``/``.pth`` are each refused by the loader.
    """
    marker = folder / 'executed'
    files = {
        'lloyd.pkl': lloyd_heap_corruption(),
        'dtype-record.pkl': dtype_pointer_forgery(record=True),
        'dtype-object.pkl': dtype_pointer_forgery(record=False),
        'build-wrapper.pkl': build_on_class('joblib.numpy_pickle.NumpyArrayWrapper'),
        'build-tree.pkl': build_on_class('sklearn.cluster._bisect_k_means._BisectingTree'),
        'build-reconstructor.pkl': build_on_class('copyreg._reconstructor'),
        'item-on-array.pkl': item_on_array(),
        'bisecting-dag.pkl': bisecting_dag(),
        'shared-rows.pkl': shared_rows(),
        'shared-rows-extra.pkl': shared_rows('extra_'),
        'shared-lists.pkl': shared_lists(),
        'zlib-bomb.joblib': zlib_joblib_bomb(),
        **classic(marker),
        **pipeline_files(),
    }
    for name, data in files.items():
        (folder / name).write_bytes(data)
    skops_bomb(folder / 'bomb.skops')
    torch_files(folder, marker)
    return sorted(name for name in os.listdir(folder) if name != 'executed'), marker

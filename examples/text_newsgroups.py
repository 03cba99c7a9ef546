"""Text showcase: which words put a newsgroup post into its cluster?

Data: 200 real Usenet posts from the 20 Newsgroups collection (alt.atheism and sci.space, 1993), as
shipped in gensim's test data (``gensim/test/test_data/mini_newsgroup``). scikit-learn's
``fetch_20newsgroups`` needs a network; gensim's copy is on disk once gensim is installed
(``pip install gensim``; only its data file is read, gensim itself is not imported). Headers except the
subject line, quoted replies and signatures are removed, as ``fetch_20newsgroups(remove=...)`` would.

The posts are clustered, without seeing the newsgroup, by the pipeline ``TfidfVectorizer -> TruncatedSVD(20)
-> KMeans(2)`` (LSA; k-means on the raw 1359-word vectors is unstable on 200 posts), and ``neuralize`` takes
that pipeline whole and ``explain`` the posts themselves. Because the LSA projection P has orthonormal rows,
``|Px - mu|^2`` and ``|x - P^T mu|^2`` differ by a term that is the same for every cluster: the model is
*exactly* a nearest-centroid model in TF-IDF space with centroids ``P^T mu_k`` (the library does this lifting;
the labels are checked against the pipeline's predict below), so NEON explains every assignment over the words.

The relevance of a word present in a post is spread over its occurrences and highlighted in the text.
Words *absent* from a post carry relevance too: with the midpoint rule, not using the words typical of
the other cluster counts in favour. Their share is reported separately, and the cluster profiles show
present and absent words apart.

    python examples/text_newsgroups.py [--quick] [--out DIR] [--data PATH]

Writes text_top_words.png, text_absent_words.png, text_post_<n>.png and text_posts.html to DIR
(default examples/output/).
"""
import argparse
import importlib.util
import io
import os
import pickle
import re
import sys
import zlib

import numpy as np
from sklearn.cluster import KMeans
from sklearn.decomposition import TruncatedSVD
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.metrics import adjusted_rand_score
from sklearn.pipeline import make_pipeline

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..'))
from zennit_clusters import explain, explain_with_constant, neuralize, top_terms  # noqa: E402
from zennit_clusters import plot  # noqa: E402

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'output')
TOKEN = re.compile(r"[A-Za-z][A-Za-z']+")


def find_data():
    """Path of gensim's mini_newsgroup file, or None (gensim is located, not imported)."""
    spec = importlib.util.find_spec('gensim')
    if spec is None or spec.origin is None:
        return None
    path = os.path.join(os.path.dirname(spec.origin), 'test', 'test_data', 'mini_newsgroup')
    return path if os.path.exists(path) else None


class _BunchUnpickler(pickle.Unpickler):
    """The file is a zlib-compressed pickle of an old scikit-learn Bunch: map it to today's Bunch, allow
    nothing but that and numpy arrays (a pickle can run code)."""

    ALLOWED = {('copy_reg', '_reconstructor'), ('copyreg', '_reconstructor'), ('__builtin__', 'dict'),
               ('builtins', 'dict'), ('numpy', 'ndarray'), ('numpy', 'dtype'),
               ('numpy.core.multiarray', '_reconstruct'), ('numpy._core.multiarray', '_reconstruct')}

    def find_class(self, module, name):
        from sklearn.utils import Bunch
        if name == 'Bunch' and module.startswith('sklearn'):
            return Bunch
        if (module, name) in self.ALLOWED:
            # the pickle is from Python 2 and numpy 1: map the old module names to today's
            module = {'copy_reg': 'copyreg', '__builtin__': 'builtins',
                      'numpy.core.multiarray': 'numpy._core.multiarray'}.get(module, module)
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f'refusing to load {module}.{name} from the newsgroup file')


def load_posts(path):
    with open(path, 'rb') as f:
        bunch = _BunchUnpickler(io.BytesIO(zlib.decompress(f.read()))).load()
    return list(bunch.data), np.asarray(bunch.target), list(bunch.target_names)


def clean(post):
    """Subject line and body, without the other headers, quoted replies and signature."""
    header, _, body = post.partition('\n\n')
    subject = next((line[len('Subject:'):].strip() for line in header.splitlines() if line.startswith('Subject:')), '')
    subject = re.sub(r'^(re:\s*)+', '', subject, flags=re.IGNORECASE)
    lines = [line for line in body.splitlines()
             if not re.match(r'^\s*(>|\|)', line) and not re.search(r'(writes|wrote|says|said):\s*$', line)
             and not re.match(r'^in article', line, flags=re.IGNORECASE)]
    body = '\n'.join(lines)
    # drop a trailing signature: everything after the last line starting with '--'
    parts = body.strip().split('\n--')
    if len(parts) > 1 and len(parts[-1].splitlines()) < 12:
        body = '\n--'.join(parts[:-1])
    return (subject + '\n' + body.strip()).strip()


def highlighted_tokens(text, relevance, vocabulary, max_chars=900):
    """Tokens of ``text`` (line breaks kept as '\\n') and the relevance of each, a word's relevance split
    evenly over its occurrences; words outside the vocabulary get 0."""
    text = text[:max_chars]
    tokens, words = [], []
    previous = None
    for line in text.splitlines():
        if not line.strip() and previous is not None and not previous.strip():
            continue                                     # one blank line at most
        previous = line
        for token in line.split():
            tokens.append(token)
            match = TOKEN.search(token)
            words.append(match.group(0).lower() if match else None)
        tokens.append('\n')
        words.append(None)
    counts = {}
    for word in words:
        if word in vocabulary:
            counts[word] = counts.get(word, 0) + 1
    values = [relevance[vocabulary[w]] / counts[w] if w in vocabulary else 0.0 for w in words]
    while tokens and tokens[-1] == '\n':
        tokens.pop()
        values.pop()
    return tokens, np.asarray(values)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--quick', action='store_true', help='two posts shown instead of four')
    parser.add_argument('--out', default=OUT, help='folder for the figures')
    parser.add_argument('--data', default=None, help="path of gensim's mini_newsgroup file")
    args = parser.parse_args(argv)
    path = args.data or find_data()
    if path is None:
        sys.exit('No offline newsgroup posts found: pip install gensim (its test data holds 200 real posts), '
                 'or pass --data PATH_TO/mini_newsgroup.')
    os.makedirs(args.out, exist_ok=True)

    raw, groups, group_names = load_posts(path)
    texts = [clean(post) for post in raw]
    # the pipeline as one would write it; neuralize() takes it whole: the vectorizer runs on the host, and because
    # the LSA projection P has orthonormal rows, k-means on P x is exactly k-means over the words with the
    # centroids mu_k P (zennit_clusters/families/pipeline/text.py)
    pipeline = make_pipeline(TfidfVectorizer(stop_words='english', min_df=3, max_df=0.5, sublinear_tf=True,
                                             token_pattern=r"(?u)\b[a-zA-Z][a-zA-Z']+\b"),
                             TruncatedSVD(20, random_state=0), KMeans(2, n_init=10, random_state=0)).fit(texts)
    model = neuralize(pipeline, X=texts)
    # the documents themselves in: sparse relevance on the words each post contains, and the absent words' total
    R_present, absent, labels, logits = explain_with_constant(model, texts, return_logits=True)
    assert (labels == pipeline.predict(texts)).all(), 'the word-space model must assign like the pipeline'
    words = model.get_feature_names_out()
    vocabulary = pipeline[0].vocabulary_
    evidence = logits[np.arange(len(texts)), labels]
    print(f'{len(texts)} posts ({", ".join(group_names)}), {len(words)} words; TF-IDF, LSA-20, k-means K=2; adjusted '
          f'Rand index against the newsgroups {adjusted_rand_score(groups, labels):.2f}')
    absent_share = absent / evidence
    print(f'share of the evidence carried by words absent from a post: median {np.median(absent_share):.0%}')
    # which absent words carry it: the dense explanation of the same rows (200 posts: small enough to densify)
    X = model.encode(texts).toarray()
    present = X > 0
    R = explain(model, X)
    assert np.allclose(R[present], R_present.toarray()[present]) and np.allclose((R * ~present).sum(1), absent)

    names = []
    top_present = top_terms(model, R_present, n=12, labels=labels, as_frame=False)
    top_absent = top_terms(model, R * ~present, n=6, labels=labels, as_frame=False)
    for c in range(2):
        members = labels == c
        share = np.bincount(groups[members], minlength=2) / members.sum()
        names.append(f'cluster {c}: {share.max():.0%} {group_names[share.argmax()]} (n={members.sum()})')
        print(f'{names[-1]}\n  words present that put posts here: {", ".join(t for t, _ in top_present[c])}'
              f'\n  words whose absence puts posts here: {", ".join(t for t, _ in top_absent[c])}')
    fig = plot.cluster_profiles(R * present, labels, feature_names=words, top=15, cluster_names=names,
                                suptitle='words present in the posts: mean NEON relevance per cluster (top 15)')
    fig.savefig(os.path.join(args.out, 'text_top_words.png'), dpi=110)
    fig = plot.cluster_profiles(R * ~present, labels, feature_names=words, top=10, cluster_names=names,
                                suptitle='words absent from the posts: mean NEON relevance per cluster (top 10)')
    fig.savefig(os.path.join(args.out, 'text_absent_words.png'), dpi=110)

    # the most typical post of each cluster, and (full mode) a borderline one
    chosen = []
    for c in range(2):
        members = np.flatnonzero(labels == c)
        chosen.append(members[np.argmax(evidence[members])])
        if not args.quick:
            chosen.append(members[np.argmin(evidence[members])])
    html = ['<html><head><meta charset="utf-8"><title>NEON on newsgroup posts</title></head><body>',
            '<p>Red: words that put the post into its cluster; blue: words that speak against it. '
            'Words absent from a post also carry relevance, reported as a total.</p>']
    for n in chosen:
        tokens, values = highlighted_tokens(texts[n], R[n], vocabulary)
        title = (f'post {n} ({group_names[groups[n]]}) → cluster {labels[n]}, evidence {evidence[n]:.3f}; '
                 f'absent words carry {absent_share[n]:.0%} of it')
        fig = plot.text_figure(tokens, values, width=90, title=title, fontsize=8)
        fig.savefig(os.path.join(args.out, f'text_post_{n}.png'), dpi=110)
        html.append(plot.text_html(tokens, values, title=title))
    html.append('</body></html>')
    with open(os.path.join(args.out, 'text_posts.html'), 'w', encoding='utf-8') as f:
        f.write('\n'.join(html))
    print(f'figures written to {args.out}')


if __name__ == '__main__':
    main()

"""Text pipelines on the bundled newsgroup posts: vectorizer [+ row-wise steps] [+ TruncatedSVD [+ Normalizer]] +
k-means, explained per vocabulary term from the documents themselves."""
import math

import numpy as np
import pytest
import scipy.sparse as sp
import torch
from sklearn.cluster import BisectingKMeans, KMeans, MiniBatchKMeans
from sklearn.decomposition import PCA, TruncatedSVD
from sklearn.exceptions import NotFittedError
from sklearn.feature_extraction.text import CountVectorizer, HashingVectorizer, TfidfTransformer, TfidfVectorizer
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import MaxAbsScaler, Normalizer

from newsgroups import newsgroup_posts
from references.centroids import bisecting_pairs, kmeans_pairs, lifted_pairs, neon_reference, split_present_absent
from zennit_clusters import NeuralizedText, explain, explain_with_constant, neuralize, top_terms

PIPELINES = {
    'tfidf-kmeans': lambda: make_pipeline(TfidfVectorizer(min_df=2, stop_words='english'),
                                          KMeans(3, n_init=3, random_state=0)),
    'tfidf-svd-kmeans': lambda: make_pipeline(TfidfVectorizer(min_df=2), TruncatedSVD(20, random_state=0),
                                              KMeans(3, n_init=3, random_state=0)),
    'tfidf-svd-normalizer-kmeans': lambda: make_pipeline(TfidfVectorizer(min_df=2, sublinear_tf=True),
                                                         TruncatedSVD(20, random_state=0), Normalizer(),
                                                         KMeans(2, n_init=3, random_state=0)),
    'count-tfidf-normalizer-svd-l1-bisecting': lambda: make_pipeline(
        CountVectorizer(min_df=2), TfidfTransformer(), Normalizer('l1'), TruncatedSVD(10, random_state=0),
        Normalizer('l1'), BisectingKMeans(4, random_state=0)),
    'count-minibatch': lambda: make_pipeline(CountVectorizer(min_df=3, binary=True),
                                             MiniBatchKMeans(3, n_init=3, random_state=0)),
}


@pytest.fixture(scope='module')
def posts():
    return newsgroup_posts()[0]


@pytest.fixture(scope='module')
def fitted(posts):
    return {name: build().fit(posts) for name, build in PIPELINES.items()}


def reference_pairs(pipeline, label):
    """The margin pairs of a cluster in term space, straight from the fitted steps (tests/references)."""
    estimator = pipeline[-1]
    pairs = (bisecting_pairs(estimator, label) if isinstance(estimator, BisectingKMeans)
             else kmeans_pairs(estimator.cluster_centers_, label))
    svd = next((step for step in pipeline if isinstance(step, TruncatedSVD)), None)
    return pairs if svd is None else lifted_pairs(pairs, svd.components_)


def reference_rows(pipeline, posts):
    """The term matrix the network takes, written straight from the pipeline's steps: the vectorizer and its row-wise
    steps, then, for a Normalizer after the SVD, each row divided by the norm of its projection."""
    steps = [step for _, step in pipeline.steps]
    svd_at = next((i for i, step in enumerate(steps) if isinstance(step, TruncatedSVD)), None)
    terms = (pipeline[:svd_at] if svd_at is not None else pipeline[:-1]).transform(posts)
    terms = sp.csr_matrix(terms)
    if svd_at is not None and isinstance(steps[svd_at + 1], Normalizer):
        projected = steps[svd_at].transform(terms)
        norm = steps[svd_at + 1].norm
        norms = {'l2': np.linalg.norm(projected, axis=1), 'l1': np.abs(projected).sum(1)}[norm]
        terms = sp.csr_matrix(terms.multiply(1.0 / np.where(norms == 0, 1.0, norms)[:, None]))
    return terms


@pytest.mark.parametrize('name', sorted(PIPELINES))
def test_documents_are_explained_per_term(fitted, posts, name):
    pipeline = fitted[name]
    model = neuralize(pipeline, X=posts)
    assert isinstance(model, NeuralizedText)
    vocabulary = pipeline[0].get_feature_names_out()
    np.testing.assert_array_equal(model.get_feature_names_out(), vocabulary)
    relevance, absent, labels, logits = explain_with_constant(model, posts, return_logits=True)
    assert sp.issparse(relevance) and relevance.shape == (len(posts), len(vocabulary))
    np.testing.assert_array_equal(labels, pipeline.predict(posts))
    evidence = logits[np.arange(len(posts)), labels]
    np.testing.assert_allclose(np.asarray(relevance.sum(1)).ravel() + absent, evidence, rtol=1e-12, atol=1e-13)
    # the terms present in a post, and only those, carry stored relevance
    rows = reference_rows(pipeline, posts)
    np.testing.assert_array_equal(relevance.indptr, rows.indptr)
    np.testing.assert_array_equal(relevance.indices, rows.indices)
    # the dense explanation of the same rows (the network's input, densified) agrees at the terms and in total
    dense = explain(model, rows.toarray())
    mask = rows.toarray() != 0
    np.testing.assert_allclose(relevance.toarray()[mask], dense[mask], rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(absent, (dense * ~mask).sum(1), rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize('name', ['tfidf-kmeans', 'tfidf-svd-normalizer-kmeans',
                                  'count-tfidf-normalizer-svd-l1-bisecting'])
def test_against_the_reference_from_the_equations(fitted, posts, name):
    pipeline = fitted[name]
    model = neuralize(pipeline, X=posts)
    chosen = posts[:6]
    relevance, absent = explain_with_constant(model, chosen)
    rows = reference_rows(pipeline, chosen).toarray()
    for row, label in enumerate(pipeline.predict(chosen)):
        evidence, reference = neon_reference(rows[row], reference_pairs(pipeline, label), model.beta)
        present, absent_reference = split_present_absent(rows[row] != 0, reference)
        np.testing.assert_allclose(relevance[row].toarray()[0][rows[row] != 0], present, rtol=1e-8, atol=1e-12)
        assert math.isclose(absent[row], absent_reference, rel_tol=1e-8, abs_tol=1e-12)
        assert math.isclose(relevance[row].sum() + absent[row], evidence, rel_tol=1e-11, abs_tol=1e-13)


def test_lifted_evidence_is_the_projected_kmeans_evidence(fitted, posts):
    """k-means on the SVD output and the lifted network in term space give the same evidence (orthonormal P)."""
    pipeline = fitted['tfidf-svd-kmeans']
    model = neuralize(pipeline)
    z = pipeline[:-1].transform(posts)
    distances = ((z[:, None, :] - pipeline[-1].cluster_centers_[None]) ** 2).sum(-1)
    own = distances.min(1)
    second = np.sort(distances, 1)[:, 1]
    _, labels, logits = explain(model, posts, return_logits=True)
    np.testing.assert_allclose(logits[np.arange(len(posts)), labels], second - own, rtol=1e-9, atol=1e-12)


def test_default_beta_from_training_documents_and_batch_independence(fitted, posts):
    pipeline = fitted['tfidf-kmeans']
    model = neuralize(pipeline, X=posts)
    _, labels, logits = explain(model, posts, return_logits=True)
    assert math.isclose(model.beta, 1.0 / logits[np.arange(len(posts)), labels].mean(), rel_tol=1e-12)
    assert neuralize(pipeline, beta=0.25).beta == 0.25
    whole = explain(model, posts).toarray()
    np.testing.assert_allclose(explain(model, posts[7:9]).toarray(), whole[7:9], rtol=1e-13, atol=1e-16)


def test_encoded_input_and_tensor_forward(fitted, posts):
    pipeline = fitted['tfidf-svd-kmeans']
    model = neuralize(pipeline)
    encoded = model.encode(posts)
    assert sp.issparse(encoded) and model.encode(encoded) is encoded
    np.testing.assert_array_equal(explain(model, encoded).toarray(), explain(model, posts).toarray())
    logits = model(torch.as_tensor(encoded.toarray()))
    np.testing.assert_array_equal(logits.argmax(1).numpy(), pipeline.predict(posts))


def test_top_terms_of_documents_and_clusters(fitted, posts):
    pd = pytest.importorskip('pandas')
    pipeline = fitted['tfidf-kmeans']
    model = neuralize(pipeline)
    relevance, labels, _ = explain(model, posts, return_logits=True)
    per_post = top_terms(model, relevance, n=4, rows=[0, 5])
    assert isinstance(per_post, pd.DataFrame) and list(per_post.columns) == ['document', 'rank', 'term', 'relevance']
    for row in (0, 5):
        dense = relevance[row].toarray()[0]
        expected = np.argsort(-dense, kind='stable')[:4]
        expected = expected[dense[expected] > 0]
        got = per_post[per_post.document == row]
        assert list(got.term) == list(model.get_feature_names_out()[expected])
        np.testing.assert_allclose(got.relevance, dense[expected])
    per_cluster = top_terms(model, relevance, n=5, labels=labels, as_frame=False)
    dense = relevance.toarray()
    for cluster, terms in per_cluster.items():
        mean = dense[labels == cluster].mean(0)
        expected = np.argsort(-mean, kind='stable')[:5]
        assert [term for term, _ in terms] == list(model.get_feature_names_out()[expected])
        np.testing.assert_allclose([value for _, value in terms], mean[expected])
    # the dense result and a plain list of names give the same table
    assert top_terms(list(model.get_feature_names_out()), dense, n=5, labels=labels, as_frame=False) == per_cluster


def test_refusals(fitted, posts):
    with pytest.raises(NotFittedError):
        neuralize(make_pipeline(TfidfVectorizer(), KMeans(2)).fit(posts).set_params(tfidfvectorizer=TfidfVectorizer()))
    with pytest.raises(TypeError, match='TfidfVectorizer or CountVectorizer'):
        neuralize(make_pipeline(HashingVectorizer(n_features=64), KMeans(2, n_init=1)).fit(posts))
    with pytest.raises(TypeError, match="step 'maxabsscaler' is a MaxAbsScaler"):
        neuralize(make_pipeline(TfidfVectorizer(), MaxAbsScaler(), KMeans(2, n_init=1)).fit(posts))
    dense_pca = make_pipeline(TfidfVectorizer(min_df=3), PCA(5), KMeans(2, n_init=1, random_state=0))
    with pytest.raises(TypeError, match="step 'pca' is a PCA"):
        neuralize(dense_pca.fit(posts))
    with pytest.raises(TypeError, match='ends in KMeans, MiniBatchKMeans or BisectingKMeans'):
        from sklearn.mixture import GaussianMixture
        neuralize(make_pipeline(CountVectorizer(min_df=5), TruncatedSVD(3, random_state=0),
                                GaussianMixture(2, random_state=0)).fit(posts))
    model = neuralize(fitted['tfidf-kmeans'])
    with pytest.raises(TypeError, match='got one string'):
        explain(model, posts[0])
    with pytest.raises(TypeError, match='an element of type int'):
        explain(model, [posts[0], 3])


@pytest.mark.parametrize('name', ['tfidf-kmeans', 'count-tfidf-normalizer-svd-l1-bisecting'])
def test_zennit_path_on_the_term_matrix(fitted, posts, name):
    """zennit's attributor with ClusterComposite on the encoded rows gives the closed form's relevance, present
    and absent terms alike (the network's input is the dense term matrix)."""
    from zennit.attribution import Gradient

    from zennit_clusters import ClusterComposite
    model = neuralize(fitted[name], X=posts)
    chosen = posts[:40]
    relevance, absent, labels, _ = explain_with_constant(model, chosen, return_logits=True)
    rows = torch.as_tensor(model.encode(chosen).toarray())
    with Gradient(model, ClusterComposite(beta=model.beta)) as attributor:
        onehot = torch.nn.functional.one_hot(torch.as_tensor(labels), model.n_clusters).double()
        _, zennit_relevance = attributor(rows, attr_output=lambda y: y * onehot)
    zennit_relevance = zennit_relevance.numpy()
    mask = rows.numpy() != 0
    scale = np.abs(zennit_relevance).max()
    np.testing.assert_allclose(relevance.toarray()[mask], zennit_relevance[mask], rtol=1e-6, atol=1e-9 * scale)
    np.testing.assert_allclose(absent, (zennit_relevance * ~mask).sum(1), rtol=1e-6, atol=1e-9 * scale)

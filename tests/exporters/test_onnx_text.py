"""The ONNX graph of a text pipeline: its input is the term matrix (``model.encode(documents)``, dense float), its
labels are the pipeline's predict on the documents, under real onnxruntime."""
import numpy as np
import pytest
from sklearn.cluster import KMeans
from sklearn.decomposition import TruncatedSVD
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import Normalizer

from newsgroups import newsgroup_posts
from zennit_clusters import explain_with_constant, neuralize

ort = pytest.importorskip('onnxruntime')


@pytest.mark.parametrize('dtype', ['float32'])  # float64 adds 8 s and tells nothing new here
def test_text_graph_labels_equal_predict_on_the_posts(tmp_path, dtype):
    from exporters.onnx import export
    posts = newsgroup_posts()[0]
    pipeline = make_pipeline(TfidfVectorizer(min_df=2, sublinear_tf=True), TruncatedSVD(20, random_state=0),
                             Normalizer(), KMeans(3, n_init=3, random_state=0)).fit(posts)
    model = neuralize(pipeline, X=posts)
    path = tmp_path / 'text.onnx'
    rows = model.encode(posts).toarray().astype(dtype)  # the documented input contract
    # the export's own check runs on the posts' rows (the generated probes are many for 2,700 terms)
    result = export(model, path, explain=True, dtype=dtype, X=rows)
    assert result.check.passed and result.n_features == len(pipeline[0].vocabulary_)
    session = ort.InferenceSession(str(path), providers=['CPUExecutionProvider'])
    (graph_input,) = session.get_inputs()
    assert graph_input.name == 'X' and graph_input.shape[1] == len(pipeline[0].vocabulary_)
    label, logits, relevance = session.run(['label', 'logits', 'relevance'], {'X': rows})
    np.testing.assert_array_equal(label, pipeline.predict(posts))
    sparse, absent, _, closed_logits = explain_with_constant(model, posts, return_logits=True)
    tolerance = 1e-5 if dtype == 'float32' else 1e-12
    np.testing.assert_allclose(logits, closed_logits, rtol=tolerance, atol=tolerance)
    mask = rows != 0
    np.testing.assert_allclose(relevance[mask], sparse.toarray()[mask], rtol=tolerance, atol=tolerance)
    np.testing.assert_allclose((relevance * ~mask).sum(1), absent, rtol=tolerance, atol=tolerance)

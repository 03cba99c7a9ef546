"""Pipelines of the converters' stage table through the safe loader (issue 10): saved in every format users save
them in, loaded without ``--trust-pickle``, neuralized and exported as the live pipeline is; the ONNX graph's labels
under onnxruntime equal the live pipeline's ``predict``. The hostile pipeline files are in ``hostile.py`` and run
with the rest of the corpus, under a memory cap (``test_loading_hostile.py``)."""
import numpy as np
import pytest
import torch
from sklearn.cluster import BisectingKMeans, KMeans
from sklearn.compose import ColumnTransformer, make_column_selector
from sklearn.datasets import load_wine
from sklearn.decomposition import PCA, TruncatedSVD
from sklearn.feature_extraction.text import CountVectorizer, TfidfTransformer, TfidfVectorizer
from sklearn.impute import SimpleImputer
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import MinMaxScaler, Normalizer, OneHotEncoder, OrdinalEncoder, StandardScaler

from exporters.loading import UnsafePickleError, load_model
from exporters.loading.families import _FAMILIES
from exporters.loading.pickle_files import pickle_names
from exporters.loading.transformers import CHECKS
from exporters.onnx import export, make_session
from newsgroups import newsgroup_posts
from test_loading_models import save
from zennit_clusters import neuralize

pytestmark = pytest.mark.filterwarnings('error:X does not have valid feature names')
FORMATS = ['pickle2', 'pickle5', 'joblib-zlib', 'skops']


@pytest.fixture(scope='module')
def frame():
    """Wine as a DataFrame with a category column and missing values."""
    data = load_wine(as_frame=True).data
    data['colour'] = np.random.default_rng(0).choice(['red', 'white', 'rose'], len(data))
    data.loc[::7, 'hue'] = np.nan
    return data


@pytest.fixture(scope='module')
def tabular(frame):
    return make_pipeline(
        ColumnTransformer([('num', make_pipeline(SimpleImputer(), StandardScaler()),
                            make_column_selector(dtype_include='number')), ('cat', OneHotEncoder(), ['colour'])]),
        PCA(4), KMeans(3, n_init=3, random_state=0)).fit(frame)


@pytest.fixture(scope='module')
def posts():
    return newsgroup_posts()[0]


@pytest.fixture(scope='module')
def text(posts):
    return make_pipeline(TfidfVectorizer(min_df=2, sublinear_tf=True), TruncatedSVD(20, random_state=0),
                         KMeans(3, n_init=3, random_state=0)).fit(posts)


def _onnx_labels(path, rows):
    session = make_session(str(path), 'cpu')
    return session.run(['label'], {'X': np.ascontiguousarray(rows, dtype=np.float32)})[0]


def test_every_admitted_class_has_a_check():
    """Hostile by default: what the pipeline family admits is checked (a class without a check is refused)."""
    for name, standin in pickle_names().items():
        cls = getattr(standin, 'cls', None)
        if cls is not None and name.startswith('sklearn.') and hasattr(cls, '_get_param_names'):
            assert name in CHECKS or cls.__name__ in _FAMILIES or name == 'sklearn.pipeline.Pipeline', name


def test_tabular_pipeline_loads_and_exports_as_the_live_one(frame, tabular, tmp_path):
    """ColumnTransformer (imputer + scaler on a column selector, one-hot on a category) + PCA + KMeans."""
    live = tabular.predict(frame)
    for fmt in FORMATS:
        loaded = load_model(save(tabular, tmp_path, fmt))
        np.testing.assert_array_equal(loaded.predict(frame), live, err_msg=fmt)
    model = neuralize(loaded, X=frame)
    np.testing.assert_array_equal(model(torch.as_tensor(model.encode(frame))).argmax(1).numpy(), live)
    result = export(loaded, tmp_path / 'table.onnx', X=frame, training_data=frame)
    assert result.check.passed
    np.testing.assert_array_equal(_onnx_labels(tmp_path / 'table.onnx', model.encode(frame)), live)


def test_text_pipeline_loads_and_exports_as_the_live_one(posts, text, tmp_path):
    """TF-IDF + TruncatedSVD + KMeans on the newsgroup posts; the graph takes the term matrix."""
    live = text.predict(posts)
    for fmt in FORMATS:
        loaded = load_model(save(text, tmp_path, fmt))
        np.testing.assert_array_equal(loaded.predict(posts), live, err_msg=fmt)
    model = neuralize(loaded, X=posts)
    rows = model.encode(posts).toarray().astype(np.float32)
    result = export(model, tmp_path / 'text.onnx', X=rows)
    assert result.check.passed and result.n_features == len(text[0].vocabulary_)
    np.testing.assert_array_equal(_onnx_labels(tmp_path / 'text.onnx', rows), live)


def test_the_other_stages_load(frame, posts, tmp_path):
    """Ordinal and sparse one-hot encoders with drop, indicator columns, index and mask selections, a passthrough
    remainder (an identity FunctionTransformer), Normalizer; counts + TfidfTransformer; each as the live one."""
    numbers = frame.columns[:-1]
    mask = np.isin(frame.columns, numbers[4:8])
    table = make_pipeline(
        ColumnTransformer([('imp', SimpleImputer(add_indicator=True, strategy='median'), ['hue', 'alcohol']),
                           ('one', OneHotEncoder(drop='first', sparse_output=True, handle_unknown='ignore'),
                            ['colour']),
                           ('ord', OrdinalEncoder(), [13]), ('mask', MinMaxScaler(), mask)],
                          remainder='passthrough'),
        StandardScaler(), Normalizer(), BisectingKMeans(3, random_state=0)).fit(frame.fillna(0.0).assign(
            hue=frame.hue))
    counts = make_pipeline(CountVectorizer(min_df=2, stop_words='english', ngram_range=(1, 2)), TfidfTransformer(),
                           Normalizer(), KMeans(3, n_init=2, random_state=0)).fit(posts)
    data = frame.fillna(0.0).assign(hue=frame.hue)
    for pipeline, X in ((table, data), (counts, posts)):
        for fmt in ('pickle4', 'skops'):
            loaded = load_model(save(pipeline, tmp_path, fmt))
            np.testing.assert_array_equal(loaded.predict(X), pipeline.predict(X), err_msg=fmt)
        assert neuralize(loaded, X=X) is not None


def test_a_class_outside_the_stage_table_is_refused(frame, tmp_path):
    from sklearn.preprocessing import PolynomialFeatures
    pipeline = make_pipeline(PolynomialFeatures(), KMeans(2, n_init=1, random_state=0)).fit(frame.iloc[:, :3])
    with pytest.raises(UnsafePickleError, match='PolynomialFeatures, which is not a supported estimator'):
        load_model(save(pipeline, tmp_path, 'pickle4'))


def test_skops_pipelines_get_the_same_refusals(tmp_path):
    """skops trusts only the admitted types (a tokenizer function is refused by name before skops builds anything),
    and what it builds goes through the same checks (a vocabulary that is no bijection)."""
    import os

    import skops.io

    import hostile
    with_tokenizer = hostile._text_pipeline()
    with_tokenizer[0].tokenizer = os.system
    skops.io.dump(with_tokenizer, tmp_path / 'tokenizer.skops')
    with pytest.raises(UnsafePickleError, match=r'an object of type (posix|nt)\.system'):
        load_model(tmp_path / 'tokenizer.skops')
    duplicate = hostile._text_pipeline()
    duplicate[0].vocabulary_['cat'] = duplicate[0].vocabulary_['dog']
    skops.io.dump(duplicate, tmp_path / 'vocabulary.skops')
    with pytest.raises(UnsafePickleError, match='a bijection of'):
        load_model(tmp_path / 'vocabulary.skops')

"""The loader's checks of text vectorizers: CountVectorizer, TfidfVectorizer and TfidfTransformer hold plain options
only (no tokenizer, preprocessor or analyzer function, no input read from files), a vocabulary that is a bijection
onto ``range(V)``, ``idf_`` finite, positive and of length V, a bounded token pattern, n-gram range and stop words."""
import codecs

import numpy as np

from .attributes import (MAX_NGRAM, MAX_STOP_WORDS, _attributes, _fitted, _flag, _number, _scalar_type, _value,
                         _width, check_pattern)
from .families import _describe, _fail, array

def _vocabulary(estimator):
    vocabulary = getattr(estimator, 'vocabulary_', None)
    if not isinstance(vocabulary, dict) or not vocabulary:
        _fail(estimator, 'vocabulary_', _describe(vocabulary), 'a dict of term -> column')
    size = len(vocabulary)
    seen = np.zeros(size, dtype=bool)
    for term, index in vocabulary.items():
        if type(term) is not str or not isinstance(index, (int, np.integer)) or isinstance(index, (bool, np.bool_)) \
                or not 0 <= index < size or seen[index]:
            _fail(estimator, 'vocabulary_', f'the entry {term!r:.40}: {index!r:.20}' if type(term) is str else
                  f'a key of type {type(term).__name__}', f'a bijection of {size} terms onto the columns 0..{size - 1}')
        seen[index] = True
    return size


def check_tfidf_transformer(estimator, n_terms=None):
    _attributes(estimator, ('idf_',))
    _value(estimator, 'norm', ('l1', 'l2', None), "'l1', 'l2' or None")
    for attribute in ('use_idf', 'smooth_idf', 'sublinear_tf'):
        _flag(estimator, attribute)
    if not _fitted(estimator):
        return
    width = _width(estimator)
    if n_terms is not None and width != n_terms:
        _fail(estimator, 'n_features_in_', width, f'the vocabulary size {n_terms}')
    idf = array(estimator, 'idf_', (width,), optional=not estimator.use_idf)
    if idf is not None and not (idf > 0).all():
        _fail(estimator, 'idf_', 'an array with zero or negative weights', 'positive inverse document frequencies')


def check_vectorizer(estimator):
    """CountVectorizer and TfidfVectorizer: plain options only, a vocabulary onto range(V), idf_ of length V."""
    tfidf = type(estimator).__name__ == 'TfidfVectorizer'
    _attributes(estimator, ('vocabulary_', 'fixed_vocabulary_', '_stop_words_id', 'stop_words_',
                            *(('_tfidf',) if tfidf else ())))
    _value(estimator, 'input', ('content',), "'content' (a vectorizer that opens the files its input names is not "
           'admitted)')
    for attribute in ('preprocessor', 'tokenizer'):
        if getattr(estimator, attribute, None) is not None:
            _fail(estimator, attribute, _describe(getattr(estimator, attribute)), 'None (a function is not admitted)')
    _value(estimator, 'analyzer', ('word', 'char', 'char_wb'), "'word', 'char' or 'char_wb' (a function is not "
           'admitted)')
    _value(estimator, 'strip_accents', (None, 'ascii', 'unicode'), "None, 'ascii' or 'unicode' (a function is not "
           'admitted)')
    _value(estimator, 'decode_error', ('strict', 'ignore', 'replace'), "'strict', 'ignore' or 'replace'")
    encoding = getattr(estimator, 'encoding', None)
    try:
        known = type(encoding) is str and len(encoding) <= 40 and codecs.lookup(encoding)._is_text_encoding
    except LookupError:
        known = False
    if not known:
        _fail(estimator, 'encoding', repr(encoding)[:60], 'the name of a text encoding')
    for attribute in ('lowercase', 'binary'):
        _flag(estimator, attribute)
    check_pattern(estimator, 'token_pattern', max_groups=1)
    stop_words = getattr(estimator, 'stop_words', None)
    if isinstance(stop_words, (list, tuple, set, frozenset)):
        ok = len(stop_words) <= MAX_STOP_WORDS and all(type(word) is str and len(word) <= 1000 for word in stop_words)
    else:
        ok = stop_words is None or stop_words == 'english'
    if not ok:
        _fail(estimator, 'stop_words', _describe(stop_words), f"None, 'english' or at most {MAX_STOP_WORDS} words")
    ngrams = getattr(estimator, 'ngram_range', None)
    low, high = ngrams if isinstance(ngrams, tuple) and len(ngrams) == 2 else (None, None)
    if not (type(low) is int and type(high) is int and 1 <= low <= high <= MAX_NGRAM):
        _fail(estimator, 'ngram_range', repr(getattr(estimator, 'ngram_range', None))[:40],
              f'(min_n, max_n) with 1 <= min_n <= max_n <= {MAX_NGRAM}')
    for attribute in ('max_df', 'min_df'):
        _number(estimator, attribute, 0)
    _number(estimator, 'max_features', 1, integral=True)
    vocabulary = getattr(estimator, 'vocabulary', None)
    if vocabulary is not None and not (isinstance(vocabulary, (list, tuple, dict)) and all(
            type(term) is str for term in vocabulary) and (not isinstance(vocabulary, dict) or all(
                type(index) is int for index in vocabulary.values()))):
        _fail(estimator, 'vocabulary', _describe(vocabulary), 'None, a list of terms or a dict of term -> column')
    _scalar_type(estimator, 'dtype')
    if tfidf:
        _value(estimator, 'norm', ('l1', 'l2', None), "'l1', 'l2' or None")
        for attribute in ('use_idf', 'smooth_idf', 'sublinear_tf'):
            _flag(estimator, attribute)
    if not _fitted(estimator):
        return
    n_terms = _vocabulary(estimator)
    _flag(estimator, 'fixed_vocabulary_')
    _number(estimator, '_stop_words_id', integral=True)
    stop_words_ = getattr(estimator, 'stop_words_', None)
    if stop_words_ is not None and not (isinstance(stop_words_, (set, frozenset)) and all(
            type(word) is str for word in stop_words_)):
        _fail(estimator, 'stop_words_', _describe(stop_words_), 'a set of words')
    if tfidf:
        inner = getattr(estimator, '_tfidf', None)
        if type(inner).__name__ != 'TfidfTransformer':
            _fail(estimator, '_tfidf', _describe(inner), 'a fitted TfidfTransformer')
        for attribute in ('norm', 'use_idf', 'smooth_idf', 'sublinear_tf'):
            if getattr(inner, attribute, None) != getattr(estimator, attribute):
                _fail(estimator, f'_tfidf.{attribute}', repr(getattr(inner, attribute, None))[:20],
                      f'the vectorizer\'s own {attribute} ({getattr(estimator, attribute)!r})')
        check_tfidf_transformer(inner, n_terms)
        if estimator.use_idf and getattr(inner, 'idf_', None) is None:
            _fail(estimator, 'idf_', 'missing', f'{n_terms} inverse document frequencies')

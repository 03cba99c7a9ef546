"""The 200 real 20-Newsgroups posts bundled with gensim's test data, cleaned as examples/text_newsgroups.py
cleans them (the example's own loader, imported from its file). Tests skip where gensim's data is absent."""
import functools
import importlib.util
import os

import pytest

EXAMPLE = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), 'examples', 'text_newsgroups.py')


@functools.lru_cache(maxsize=1)
def _example():
    spec = importlib.util.spec_from_file_location('text_newsgroups_example', EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def newsgroup_posts():
    """(texts, newsgroup of each post); skips the calling test where the posts are not installed."""
    example = _example()
    path = example.find_data()
    if path is None:
        pytest.skip("gensim's newsgroup test data is not installed (pip install gensim)")
    raw, groups, _ = example.load_posts(path)
    return [example.clean(post) for post in raw], groups

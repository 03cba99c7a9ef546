"""Mixed table showcase: a DataFrame with numbers, a category and gaps, clustered through a ColumnTransformer.

The wine data (178 wines, bundled with scikit-learn) as a pandas DataFrame; its hue is recorded as a category
(pale / medium / deep, as a taster would note it), and 5 % of the alcohol and magnesium readings are missing. The
pipeline imputes and standardises the numbers, one-hot encodes the category, and clusters with k-means (K = 3):

    ColumnTransformer([('num', make_pipeline(SimpleImputer(), StandardScaler()), numeric columns),
                       ('cat', OneHotEncoder(), ['hue'])])  ->  KMeans(3)

``neuralize(pipeline)`` folds it exactly: the encoders run on the DataFrame as the pipeline runs them, the network
takes the encoded matrix, and ``explain`` reports relevance on the user's own columns (the one-hot columns of
``hue`` summed back onto ``hue``; ``grouped=False`` keeps one column per category), as a DataFrame on the
table's index. A missing reading is explained as the pipeline assigns it: by the imputed value.

    python examples/tabular_mixed.py [--quick] [--out DIR]

Writes mixed_profiles.png to DIR (default examples/output/).
"""
import argparse
import os
import sys

import numpy as np
import pandas as pd
from sklearn.cluster import KMeans
from sklearn.compose import ColumnTransformer, make_column_selector
from sklearn.datasets import load_wine
from sklearn.impute import SimpleImputer
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..'))
from zennit_clusters import explain, neuralize  # noqa: E402
from zennit_clusters import plot  # noqa: E402

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'output')


def wine_table(seed=0):
    """The wine data as a mixed table: hue as a category, some readings missing."""
    table = load_wine(as_frame=True).data
    table['hue'] = pd.cut(table['hue'], [0, 0.8, 1.1, np.inf], labels=['pale', 'medium', 'deep']).astype(str)
    rng = np.random.default_rng(seed)
    for column in ('alcohol', 'magnesium'):
        table.loc[rng.random(len(table)) < 0.05, column] = np.nan
    return table


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--quick', action='store_true', help='(runs in seconds either way)')
    parser.add_argument('--out', default=OUT, help='folder for the figures')
    args = parser.parse_args(argv)
    os.makedirs(args.out, exist_ok=True)

    table = wine_table()
    pipeline = make_pipeline(
        ColumnTransformer([('num', make_pipeline(SimpleImputer(), StandardScaler()),
                            make_column_selector(dtype_include='number')),
                           ('cat', OneHotEncoder(), ['hue'])]),
        KMeans(3, n_init=10, random_state=0)).fit(table)
    model = neuralize(pipeline, X=table)
    R, labels, logits = explain(model, table, return_logits=True)   # DataFrames on the table's index
    evidence = logits.to_numpy()[np.arange(len(table)), labels.to_numpy()]
    assert (labels.to_numpy() == pipeline.predict(table)).all()     # the pipeline's own assignments
    assert np.allclose(R.to_numpy().sum(1), evidence)               # conserved on the user's columns
    print(f'{len(table)} wines, columns {list(table.columns[:3])} ... {list(table.columns[-2:])}; the network takes '
          f'{model.n_features_in_} encoded columns, explained on the {R.shape[1]} columns of the table')

    for cluster in range(3):
        members = (labels == cluster).to_numpy()
        profile = R[members].mean(axis=0).sort_values(ascending=False)
        print(f'cluster {cluster}: {members.sum()} wines; most relevant: ' +
              ', '.join(f'{name} ({value / evidence[members].mean():.0%})' for name, value in profile[:3].items()))

    gaps = table['alcohol'].isna().to_numpy()
    row = int(np.flatnonzero(gaps)[0])
    print(f'wine {table.index[row]} has no alcohol reading; it is explained as imputed: alcohol carries '
          f'{R.iloc[row]["alcohol"]:.3f} of its evidence {evidence[row]:.3f}')
    per_category = explain(model, table.iloc[[row]], grouped=False)
    print('the same wine per encoded column (hue by category): ' + ', '.join(
        f'{name} {value:.3f}' for name, value in per_category.iloc[0].items() if name.startswith('cat__')))

    fig = plot.cluster_profiles(R.to_numpy(), labels.to_numpy(), feature_names=list(R.columns), top=8,
                                suptitle='Mixed wine table: mean NEON relevance per original column')
    fig.savefig(os.path.join(args.out, 'mixed_profiles.png'), dpi=110)
    print(f'figures written to {args.out}')


if __name__ == '__main__':
    main()

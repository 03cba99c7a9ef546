"""Apache Spark: converters of ``pyspark.ml.clustering`` models, and explanation of Spark DataFrames.

- Converters (:mod:`.converters`): ``KMeansModel`` (Euclidean and cosine), ``BisectingKMeansModel`` (its tree)
  and ``GaussianMixtureModel``, onto the centroid and mixture families' networks; cosine k-means is that network
  behind a row normalisation (:mod:`.cosine`).
- The data adapter (:mod:`.frames`): ``explain(model, spark_df, features_col=...)`` adds label, evidence and
  relevance columns to a DataFrame, lazily, running the compiled explainer (or an exported ONNX graph) in
  every partition with the model broadcast once.

Everything is registered by full type name: importing this family imports nothing of pyspark (the extra
``zennit-clusters[spark]`` is needed only to use it).
"""
from ...core import Family, register_family
from .converters import convert_bisecting_kmeans_model, convert_gaussian_mixture_model, convert_kmeans_model
from .cosine import CosineExplainer, NeuralizedCosine, RowNormalization
from .frames import explain_dataframe

__all__ = ['CosineExplainer', 'NeuralizedCosine', 'RowNormalization', 'explain_dataframe', 'FAMILY',
           'DATAFRAME_TYPES']

#: the DataFrame classes of pyspark 4: classic and Spark Connect both derive from the first
DATAFRAME_TYPES = ('pyspark.sql.dataframe.DataFrame', 'pyspark.sql.classic.dataframe.DataFrame',
                   'pyspark.sql.connect.dataframe.DataFrame')


def _layer_rules(beta, epsilon):
    from zennit.rules import Pass  # zennit is imported only when rules are asked for
    return [(RowNormalization, Pass())]


FAMILY = register_family(Family(
    name='spark',
    converters={'pyspark.ml.clustering.KMeansModel': convert_kmeans_model,
                'pyspark.ml.clustering.BisectingKMeansModel': convert_bisecting_kmeans_model,
                'pyspark.ml.clustering.GaussianMixtureModel': convert_gaussian_mixture_model},
    explainers={NeuralizedCosine: CosineExplainer},
    layer_rules=_layer_rules,
    data_adapters={name: explain_dataframe for name in DATAFRAME_TYPES},
))

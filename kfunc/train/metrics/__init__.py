"""Metrics: Keras 3's ``Metric`` base class, the built-in metrics, and look-up by name."""

from kfunc.train.metrics.accuracy_metrics import (  # noqa: F401
    Accuracy, BinaryAccuracy, CategoricalAccuracy, SparseCategoricalAccuracy, SparseTopKCategoricalAccuracy,
    TopKCategoricalAccuracy, accuracy, binary_accuracy, categorical_accuracy, sparse_categorical_accuracy,
    sparse_top_k_categorical_accuracy, top_k_categorical_accuracy,
)
from kfunc.train.metrics.confusion import (  # noqa: F401
    AUC, FalseNegatives, FalsePositives, Precision, Recall, TrueNegatives, TruePositives,
)
from kfunc.train.metrics.correlation import (  # noqa: F401
    ConcordanceCorrelation, PearsonCorrelation, concordance_correlation, pearson_correlation,
)
from kfunc.train.metrics.f_score import F1Score, FBetaScore  # noqa: F401
from kfunc.train.metrics.iou import IoU, BinaryIoU, MeanIoU, OneHotIoU, OneHotMeanIoU  # noqa: F401
from kfunc.train.metrics.lookup import METRIC_CLASSES, METRICS, check, get, resolve  # noqa: F401
from kfunc.train.metrics.metric import Metric  # noqa: F401
from kfunc.train.metrics.operating_point import (  # noqa: F401
    PrecisionAtRecall, RecallAtPrecision, SensitivityAtSpecificity, SpecificityAtSensitivity,
)
from kfunc.train.metrics.probabilistic import (  # noqa: F401
    BinaryCrossentropy, CategoricalCrossentropy, CategoricalHinge, Hinge, KLDivergence, Poisson,
    SparseCategoricalCrossentropy, SquaredHinge,
)
from kfunc.train.metrics.reduction import Mean, MeanMetricWrapper, Sum  # noqa: F401
from kfunc.train.metrics.regression import (  # noqa: F401
    CosineSimilarity, LogCoshError, MeanAbsoluteError, MeanAbsolutePercentageError, MeanSquaredError,
    MeanSquaredLogarithmicError, R2Score, RootMeanSquaredError, cosine_similarity,
)
from kfunc.train.losses.functions import (  # noqa: F401  (Keras 3 exports these as metrics too)
    binary_crossentropy, categorical_crossentropy, categorical_hinge, hinge, kl_divergence, log_cosh,
    mean_absolute_error, mean_absolute_percentage_error, mean_squared_error, mean_squared_logarithmic_error,
    poisson, sparse_categorical_crossentropy, squared_hinge,
)

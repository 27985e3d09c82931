"""Segmentation metrics: Keras 3 port of ``segmentation_models_pytorch.metrics``.

* Functional API, as in SMP: :func:`get_stats` (per-image, per-class
  tp / fp / fn / tn counts) and metric functions such as :func:`iou_score`
  or :func:`f1_score` with SMP's reductions, ``class_weights`` and
  ``zero_division``.
* Stateful ``keras.metrics.Metric`` classes (:class:`IoUScore`,
  :class:`F1Score`, :class:`FScore`, ...) for ``model.compile(metrics=...)``
  that accumulate the statistics over batches.
"""

from keras_seg.metrics.functional import accuracy
from keras_seg.metrics.functional import balanced_accuracy
from keras_seg.metrics.functional import f1_score
from keras_seg.metrics.functional import false_discovery_rate
from keras_seg.metrics.functional import false_negative_rate
from keras_seg.metrics.functional import false_omission_rate
from keras_seg.metrics.functional import false_positive_rate
from keras_seg.metrics.functional import fbeta_score
from keras_seg.metrics.functional import get_stats
from keras_seg.metrics.functional import iou_score
from keras_seg.metrics.functional import negative_likelihood_ratio
from keras_seg.metrics.functional import negative_predictive_value
from keras_seg.metrics.functional import positive_likelihood_ratio
from keras_seg.metrics.functional import positive_predictive_value
from keras_seg.metrics.functional import precision
from keras_seg.metrics.functional import recall
from keras_seg.metrics.functional import sensitivity
from keras_seg.metrics.functional import specificity
from keras_seg.metrics.metric import Accuracy
from keras_seg.metrics.metric import BalancedAccuracy
from keras_seg.metrics.metric import ConfusionMatrixMetric
from keras_seg.metrics.metric import F1Score
from keras_seg.metrics.metric import FalseDiscoveryRate
from keras_seg.metrics.metric import FalseNegativeRate
from keras_seg.metrics.metric import FalseOmissionRate
from keras_seg.metrics.metric import FalsePositiveRate
from keras_seg.metrics.metric import FScore
from keras_seg.metrics.metric import IoUScore
from keras_seg.metrics.metric import NegativeLikelihoodRatio
from keras_seg.metrics.metric import NegativePredictiveValue
from keras_seg.metrics.metric import PositiveLikelihoodRatio
from keras_seg.metrics.metric import PositivePredictiveValue
from keras_seg.metrics.metric import Precision
from keras_seg.metrics.metric import Recall
from keras_seg.metrics.metric import Sensitivity
from keras_seg.metrics.metric import Specificity

__all__ = [
    "get_stats",
    "fbeta_score",
    "f1_score",
    "iou_score",
    "accuracy",
    "precision",
    "recall",
    "sensitivity",
    "specificity",
    "balanced_accuracy",
    "positive_predictive_value",
    "negative_predictive_value",
    "false_negative_rate",
    "false_positive_rate",
    "false_discovery_rate",
    "false_omission_rate",
    "positive_likelihood_ratio",
    "negative_likelihood_ratio",
    "ConfusionMatrixMetric",
    "IoUScore",
    "FScore",
    "F1Score",
    "Accuracy",
    "Precision",
    "Recall",
    "Sensitivity",
    "Specificity",
    "BalancedAccuracy",
    "PositivePredictiveValue",
    "NegativePredictiveValue",
    "FalseNegativeRate",
    "FalsePositiveRate",
    "FalseDiscoveryRate",
    "FalseOmissionRate",
    "PositiveLikelihoodRatio",
    "NegativeLikelihoodRatio",
]

"""Measured profiles: the model scores each choice on a vocabulary of qualities; the profile states where a
user's choices depart from other people's on the population's axes of taste, with their evidence.

    writer = MeasuredWriter(backend)                       # same interface as infer.Inferrer
    profile = writer.run([InferJob(history)])[0]
    update = writer.run([InferJob(new_items, past=profile)])[0]   # reads only the new pairs
"""

from ._axes import Axis, fit_axes, position
from ._calibration import DEFAULT_THRESHOLD, Calibration, QualityStats, base_model, population, read, shipped
from ._scoring import Comparison, Scored, score
from ._vocabulary import Kept, KeptTag, Quality, Vocabulary
from ._writer import MIN_PEOPLE, MIN_TAG_COMPARISONS, TAG_THRESHOLD, MeasureConfig, MeasuredWriter, NoReferenceError

__all__ = ["DEFAULT_THRESHOLD", "MIN_PEOPLE", "MIN_TAG_COMPARISONS", "TAG_THRESHOLD", "Axis", "Calibration",
           "Comparison", "Kept", "KeptTag", "MeasureConfig", "MeasuredWriter", "NoReferenceError", "Quality",
           "QualityStats", "Scored", "Vocabulary", "base_model", "fit_axes", "population", "position", "read", "score",
           "shipped"]

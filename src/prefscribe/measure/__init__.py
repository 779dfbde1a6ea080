"""Measured profiles: the model scores each choice on a vocabulary of qualities; the profile states the
qualities on which a user's choices depart from other people's, with their evidence.

    writer = MeasuredWriter(backend)                       # same interface as infer.Inferrer
    profile = writer.run([InferJob(history)])[0]
    update = writer.run([InferJob(new_items, past=profile)])[0]   # reads only the new pairs
"""

from ._calibration import Calibration, QualityStats, base_model, population, read, shipped
from ._scoring import Comparison, Scored, score
from ._vocabulary import Kept, Quality, Vocabulary
from ._writer import MIN_PEOPLE, MeasureConfig, MeasuredWriter

__all__ = ["MIN_PEOPLE", "Calibration", "Comparison", "Kept", "MeasureConfig", "MeasuredWriter", "Quality",
           "QualityStats", "Scored", "Vocabulary", "base_model", "population", "read", "score", "shipped"]

"""Curriculum pruning for RL (METHOD.md section 5): score every point (H[0:m], h_m) with a weak and a
strong direct-prediction model, keep the informative and tractable ones, and give each user the two
hardest as the streaming RL instance (H[0:k], h_k, H[k:K], h_K).

    result = prune(users, load_backend(weak), load_backend(strong), PRESETS["amazon"], cache=ResultCache())
    result.write("rl.jsonl")    # + rl.scores.jsonl, rl.report.json, rl.hist.png
"""

from ._plots import plot_histograms
from ._points import point_indices, score_points
from ._presets import PRESETS, PruneSettings, resolve_settings
from ._run import PruneResult, prune, prune_table
from ._select import NO_POINTS, TOO_FEW_POINTS, ScoredPoint, Selection, alpha_threshold, rl_record, select

__all__ = ["NO_POINTS", "PRESETS", "TOO_FEW_POINTS", "PruneResult", "PruneSettings", "ScoredPoint", "Selection", "alpha_threshold",
           "plot_histograms", "point_indices", "prune", "prune_table", "resolve_settings", "rl_record",
           "score_points", "select"]

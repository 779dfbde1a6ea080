"""SFT data synthesis: generate - validate - merge (METHOD.md section 4).

    models = SynthModels(teacher=load_backend(spec), judge=load_backend(spec), scorer=load_backend(spec))
    result = synthesize(users, models, SynthConfig(streaming=True), cache=ResultCache(),
                        journal_path="sft.journal.jsonl")
    result.write("sft.jsonl")            # SFT records + sft.funnel.json
    print(funnel_text(result.report))

Modules, one job each: `_segments` (early/middle/late), `_scoring` (direct-prediction p(true), both
orders), `_targets` (tractable targets, item order), `_generate` (target-aware candidates, leak check),
`_merge`, `_records` (SFT records in the inference prompt), `_funnel` (what was kept, dropped and why),
`_journal` (resuming), `_calls` (judge calls over worker threads), `_pipeline` (the stages in order).
The funnel's reasons (NO_TARGET, JUDGE_WRONG, ...) are public: they are the words of sft.funnel.json.
"""

from ._config import SynthConfig
from ._funnel import funnel_report, funnel_table, funnel_text
from ._generate import MENTIONS_TARGET, Candidate, generation_messages, item_keys, leaks, parse_candidate
from ._journal import Journal
from ._merge import REFERS_TO_CANDIDATES, Merged, merge_messages, parse_merge
from ._pipeline import (
                        BELOW_LAMBDA,
                        JUDGE_FAILED,
                        JUDGE_WRONG,
                        NO_TARGET,
                        TOO_FEW_TARGETS,
                        TOO_FEW_VALID,
                        TOO_LONG,
                        Synthesizer,
                        SynthModels,
                        SynthResult,
                        default_funnel_path,
                        default_journal_path,
                        synthesize,
)
from ._records import completion_text, sft_record
from ._scoring import DirectScorer, Point, Score
from ._segments import Segmented, segment_user, working_history
from ._targets import BELOW_THRESHOLD, NO_REJECTED, NOT_DRAWN, REPEATS, SCORE_FAILED, Target, select_targets

__all__ = [
                        "BELOW_LAMBDA",
                        "BELOW_THRESHOLD",
                        "JUDGE_FAILED",
                        "JUDGE_WRONG",
                        "MENTIONS_TARGET",
                        "NOT_DRAWN",
                        "NO_REJECTED",
                        "NO_TARGET",
                        "REFERS_TO_CANDIDATES",
                        "REPEATS",
                        "SCORE_FAILED",
                        "TOO_FEW_TARGETS",
                        "TOO_FEW_VALID",
                        "TOO_LONG",
                        "Candidate",
                        "DirectScorer",
                        "Journal",
                        "Merged",
                        "Point",
                        "Score",
                        "Segmented",
                        "SynthConfig",
                        "SynthModels",
                        "SynthResult",
                        "Synthesizer",
                        "Target",
                        "completion_text",
                        "default_funnel_path",
                        "default_journal_path",
                        "funnel_report",
                        "funnel_table",
                        "funnel_text",
                        "generation_messages",
                        "item_keys",
                        "leaks",
                        "merge_messages",
                        "parse_candidate",
                        "parse_merge",
                        "segment_user",
                        "select_targets",
                        "sft_record",
                        "synthesize",
                        "working_history",
]

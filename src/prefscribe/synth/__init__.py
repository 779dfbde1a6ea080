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
"""

from ._config import SynthConfig
from ._funnel import funnel_report, funnel_table, funnel_text
from ._generate import Candidate, item_keys, leaks
from ._journal import Journal
from ._pipeline import (
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
from ._targets import Target, select_targets

__all__ = ["Candidate", "DirectScorer", "Journal", "Point", "Score", "Segmented", "SynthConfig", "SynthModels",
           "SynthResult", "Synthesizer", "Target", "completion_text", "default_funnel_path",
           "default_journal_path", "funnel_report", "funnel_table", "funnel_text", "item_keys", "leaks",
           "segment_user", "select_targets", "sft_record", "synthesize", "working_history"]

"""The evaluation harness: benchmarks x settings x models, metrics, paired comparisons, reports and plots.

It owns the settings (what the judge is told about a user, as registered objects, with the placebo controls),
the dataset variants of the transfer tests, the runner that writes resumable items and summaries, and the
reports built from them. It reads data and calls the inferrer and the judge; nothing below imports it."""

from .agreement import Agreement, compare_runs, qualifies
from .metrics import ItemOutcome, PairedDifference, auc, paired_difference, summarize, wilson_interval
from .report import paper_table, write_report
from .runner import (
    EvalConfig,
    Evaluation,
    compare,
    comparisons_table,
    gain_recovered,
    markdown_table,
    write_summary,
)
from .settings import (
    COMPARISONS,
    SETTINGS,
    Preference,
    Setting,
    SettingContext,
    check_no_target_in_history,
    donors,
    parse_settings,
    plan_history,
    register,
)
from .variants import Dataset, cross_domain_variants, noise_variants, positive_only_variant

__all__ = ["COMPARISONS", "SETTINGS", "Agreement", "Dataset", "EvalConfig", "Evaluation", "ItemOutcome",
           "PairedDifference", "Preference", "Setting", "SettingContext", "auc", "check_no_target_in_history",
           "compare", "compare_runs", "comparisons_table", "cross_domain_variants", "donors", "gain_recovered",
           "markdown_table", "noise_variants", "paired_difference", "paper_table", "parse_settings",
           "plan_history", "positive_only_variant", "qualifies", "register", "summarize", "wilson_interval",
           "write_report", "write_summary"]

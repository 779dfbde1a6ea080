"""The evaluation harness: benchmarks x settings x models, metrics, paired comparisons, reports and plots."""

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

__all__ = ["COMPARISONS", "SETTINGS", "EvalConfig", "Evaluation", "ItemOutcome", "PairedDifference", "Preference",
           "Setting", "SettingContext", "auc", "check_no_target_in_history", "compare", "comparisons_table",
           "donors", "gain_recovered", "markdown_table", "paired_difference", "paper_table", "parse_settings",
           "plan_history", "register", "summarize", "wilson_interval", "write_report", "write_summary"]

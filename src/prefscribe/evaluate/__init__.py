"""The evaluation harness: benchmarks x settings x models, metrics, paired comparisons, reports and plots.

It owns the settings (what the judge is told about a user, as registered objects, with the placebo controls),
the dataset variants of the transfer tests, the runner that writes resumable items and summaries, and the
reports built from them. It reads data and calls the inferrer and the judge; nothing below imports it."""

from .agreement import Agreement, agreement_table, compare_runs, qualifies, ruled_out
from .assembly import METHODS, EvalPlan, EvalSpec, assemble, parse_methods
from .metrics import ItemOutcome, PairedDifference, auc, paired_difference, summarize, wilson_interval
from .report import compare_folders, comparison_report, paper_table, write_report
from .runner import (
    EvalConfig,
    Evaluation,
    compare,
    comparisons_table,
    gain_recovered,
    judge_methods,
    judge_methods_table,
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
from .writers import DEFAULT_WRITER, WRITERS, ProfileWriter, WriterFactory, WriterParts, free_writer

__all__ = ["COMPARISONS", "DEFAULT_WRITER", "METHODS", "SETTINGS", "WRITERS", "Agreement", "Dataset", "EvalConfig",
           "EvalPlan", "EvalSpec", "Evaluation", "ItemOutcome", "PairedDifference", "Preference", "ProfileWriter",
           "Setting", "SettingContext", "WriterFactory", "WriterParts", "agreement_table", "assemble", "auc",
           "check_no_target_in_history", "compare", "compare_folders", "compare_runs", "comparison_report",
           "comparisons_table", "cross_domain_variants", "donors", "free_writer", "gain_recovered",
           "judge_methods", "judge_methods_table", "markdown_table", "noise_variants", "paired_difference",
           "paper_table", "parse_methods", "parse_settings", "plan_history", "positive_only_variant",
           "qualifies", "register", "ruled_out", "summarize", "wilson_interval", "write_report",
           "write_summary"]

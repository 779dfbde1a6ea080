"""The evaluation harness: benchmarks x settings x models, metrics, reports and plots."""

from .metrics import ItemOutcome, auc, summarize, wilson_interval
from .report import paper_table, write_report
from .runner import EvalConfig, Evaluation, markdown_table, write_summary
from .settings import SETTINGS, check_no_target_in_history, parse_settings, plan_history

__all__ = ["SETTINGS", "EvalConfig", "Evaluation", "ItemOutcome", "auc", "check_no_target_in_history",
           "markdown_table", "paper_table", "parse_settings", "plan_history", "summarize", "wilson_interval",
           "write_report", "write_summary"]

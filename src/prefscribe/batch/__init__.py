"""Profiles for millions of users on Ray Data: one job over interaction logs brings every user's profile up
to date from the new interactions only (see docs/batch.md).

    from prefscribe.batch import BatchConfig, run_batch
    summary = run_batch(BatchConfig(interactions=["logs/*.parquet"], out="profiles/", model="embedded"))

The model stage reuses the library's `Inferrer` (templates, parser, result cache), so a profile written here
is the one `prefscribe infer` writes for the same history. Needs the `batch` extra: pip install 'prefscribe[batch]'.
"""

from ._config import BatchConfig
from ._job import Plan, dry_run, run_batch
from ._output import Summary
from ._rows import ItemRow, Reject, read_source, validate
from ._users import Stepping, UserJob, plan_user
from ._write import ModelSettings, write_profiles

__all__ = ["BatchConfig", "ItemRow", "ModelSettings", "Plan", "Reject", "Stepping", "Summary", "UserJob",
           "dry_run", "plan_user", "read_source", "run_batch", "validate", "write_profiles"]

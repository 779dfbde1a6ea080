"""`--db`: the service's store is the input and the output. New interaction rows are ingested per user
(idempotently), then Ray actors run the update `Worker` of `prefscribe.updates` until no user is due: the
same claim, lease, snapshot, fit, infer and `Store.commit_update` as `prefscribe worker`, so a profile version
written by the batch job and one written by the service cannot differ in kind (author = model, the
coverage watermark moved in the same transaction)."""

from __future__ import annotations

import hashlib
import time
from typing import Any

from ..schema import Interaction
from ..updates import UpdateConfig
from ._config import BatchConfig
from ._output import Summary, write_rejects
from ._rows import epoch
from ._users import ITEM


def _settings(config: BatchConfig) -> UpdateConfig:
    # update_every=1: a batch job brings every user with anything pending up to date.
    return UpdateConfig(model=config.model, update_every=1,
                        max_interactions_per_update=config.chunk, users_per_update=config.batch_size,
                        style=config.style, max_new_tokens=config.max_new_tokens, cache=config.cache != "")


def _ingest_group(group, db: str, tenant_id: int):
    """Append a user's rows newer than the newest interaction the store holds for it. The idempotency key
    is the hash of what is appended, so rerunning the job on the same files adds nothing."""
    import pyarrow as pa

    from ..store import NotFoundError, Store

    rows = sorted(group.to_pylist(), key=lambda r: (r["ts"], r["source"], r["line"]))
    user_id = rows[0]["user_id"]
    store = Store(db, create=False)
    try:
        try:
            newest = store.interactions(tenant_id, user_id, limit=1)
        except NotFoundError:
            newest = []
        stamp = newest[0].interaction.timestamp if newest else None
        if stamp is not None:
            watermark = epoch(stamp)
            rows = [r for r in rows if r["ts"] > watermark]
        items = [Interaction.model_validate_json(r["payload"]) for r in rows]
        accepted = 0
        if items:
            key = "batch:" + hashlib.sha256("\n".join(r["payload"] for r in rows).encode()).hexdigest()[:32]
            result = store.ingest(tenant_id, user_id, items, idempotency_key=key)
            accepted = 0 if result.duplicate else result.accepted
    finally:
        store.close()
    return pa.Table.from_pylist([{"user_id": user_id, "ingested": accepted}])


class DbUpdater:
    """One actor: the update Worker (model loaded once), stepping until no user is due."""

    def __init__(self, config: BatchConfig) -> None:
        from ..store import Store
        from ..updates import ModelRuntime, Worker

        settings = _settings(config)
        self.store = Store(config.db, create=False)
        self.worker = Worker(self.store, settings, ModelRuntime(settings.model))

    def __call__(self, batch: dict[str, Any]) -> dict[str, Any]:
        while self.worker.step() > 0:
            pass
        stats = self.worker.stats
        return {"committed": [stats["committed"]], "failed": [stats["failed"]], "stale": [stats["stale"]]}


def run_db(config: BatchConfig) -> Summary:
    from ..store import Store
    from ._job import col, partitions, ray_module, rejects
    from ._rows import expand, source_rows

    ray = ray_module()

    start = time.time()
    summary = Summary(model=config.model)
    store = Store(config.db)  # creates the tables of a new store
    if config.interactions:
        files = expand(config.interactions)
        rows = (ray.data.from_items([{"source": f} for f in files], override_num_blocks=len(files))
                .flat_map(source_rows).materialize())
        summary.rows_read = rows.count()
        summary.rows_rejected = (write_rejects(config.out, rejects(rows)) if config.out
                                 else sum(1 for _ in rejects(rows)))
        tenant = store.tenant(config.tenant or "")
        items = rows.filter(expr=col("kind") == ITEM)
        ingested = (items.groupby("user_id", num_partitions=partitions(summary.rows_read))
                    .map_groups(_ingest_group, batch_format="pyarrow",
                                fn_kwargs={"db": config.db, "tenant_id": tenant.id}))
        summary.interactions = int(ingested.sum("ingested") or 0)
    store.close()
    results = ray.data.range(config.workers, override_num_blocks=config.workers).map_batches(
        DbUpdater, batch_size=1, compute=ray.data.ActorPoolStrategy(size=config.workers),
        fn_constructor_kwargs={"config": config})
    for row in results.iter_rows():
        summary.users_done += row["committed"]
        summary.users_failed += row["failed"]
        summary.users_skipped += row["stale"]
    summary.users = summary.users_done + summary.users_failed + summary.users_skipped
    summary.wall_seconds = round(time.time() - start, 3)
    summary.users_per_second = round(summary.users_done / summary.wall_seconds, 4) if summary.wall_seconds else 0.0
    if config.out:
        summary.write(config.out)
    return summary

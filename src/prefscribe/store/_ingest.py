"""The statements of an ingest, built once: SQLite's four and PostgreSQL's one.

Both do the same inside the caller's transaction: a batch whose idempotency key this user already used is
returned and nothing is written (the caller compares body hashes: duplicate or conflict); otherwise the
user row is created or its `interaction_count` raised by the batch size, which locks it until commit (seqs
without gaps), then the batch row and its interactions, numbered from the batch's first seq.

The statements are module constants with bound parameters: building SQLAlchemy expressions per request
(values(), where(), on_conflict_do_update()) and computing their cache keys cost more than running them,
and on SQLite that cost sits in the one writer's turn, which every other ingest waits for.

SQLite (no data-modifying CTEs): the retry check, the upsert, the batch, the interactions (executemany).
No race is possible there: the check runs under the database's write lock (BEGIN IMMEDIATE).

PostgreSQL: one statement of data-modifying CTEs, so the user row is locked from that statement to COMMIT
only, not across three more round trips (each ending with the server thread waiting for the GIL before it
can send the next), and psycopg prepares the statement on each connection after a few uses:

- `seen`: a batch of this user with this idempotency key; when there is one, nothing is written and the
  statement returns it (the caller compares body hashes and answers duplicate or conflict);
- `upserted`: the user row created or its `interaction_count` raised by the batch size, which locks it
  until commit, so sequence numbers have no gaps;
- `batch`, `stored`: the batch row and the interactions numbered from first_seq, all batch sizes through
  one statement text (a JSON array's elements WITH ORDINALITY).

A retry racing its original with the same key (in another process, or beside the writer thread) fails
the batch's unique constraint (IntegrityError); Store.ingest, or the writer running the batch again alone,
then finds the original in `seen`.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import NamedTuple

from sqlalchemy import bindparam, insert, select
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Connection

from ._models import Batch, InteractionRow, User

# Columns set by the statement itself; every other users column with a scalar default (0, False) gets it
# from the model, as an ORM or Core insert would, so a column added to the model later cannot be missed.
_SET = {"tenant_id", "external_id", "interaction_count", "created_at", "updated_at"}
_DEFAULTS = {c.name: c.default.arg for c in User.__table__.columns
             if c.name not in _SET and c.default is not None and c.default.is_scalar}

# In the driver's parameter style (psycopg and psycopg2: pyformat), run with exec_driver_sql: the statement
# is fixed, so SQLAlchemy has nothing to compile. The interactions travel as one JSON array: psycopg dumps
# seven text arrays in Python, about three times the CPU of the whole statement otherwise, and a JSON text
# is dumped in C. `->>` unescapes the text fields. timestamp and meta (JSON columns) travel as JSON texts
# inside it, the texts the JSON type would write (JSON null included): PostgreSQL refuses to take apart a
# JSON value with \u0000 in it, which meta may hold.
_POSTGRESQL = f"""
WITH seen AS (
    SELECT b.first_seq, b.last_seq, b.body_hash, u.interaction_count, u.covered_through
    FROM ingest_batches b JOIN users u ON u.id = b.user_id
    WHERE u.tenant_id = %(tenant_id)s AND u.external_id = %(user_id)s AND b.idempotency_key = %(key)s
), upserted AS (
    INSERT INTO users (tenant_id, external_id, interaction_count, created_at, updated_at{
        "".join(f", {name}" for name in _DEFAULTS)})
    SELECT %(tenant_id)s, %(user_id)s, CAST(%(n)s AS integer), %(now)s, %(now)s{
        "".join(f", %(d_{name})s" for name in _DEFAULTS)}
    WHERE NOT EXISTS (SELECT FROM seen)
    ON CONFLICT (tenant_id, external_id) DO UPDATE
        SET interaction_count = users.interaction_count + EXCLUDED.interaction_count,
            updated_at = EXCLUDED.updated_at
    RETURNING id, interaction_count, covered_through
), batch AS (
    INSERT INTO ingest_batches (user_id, idempotency_key, body_hash, first_seq, last_seq, created_at)
    SELECT id, CAST(%(key)s AS varchar), %(body_hash)s, interaction_count - CAST(%(n)s AS integer) + 1,
           interaction_count, %(now)s
    FROM upserted
    RETURNING id, user_id, first_seq
), stored AS (
    INSERT INTO interactions (user_id, batch_id, seq, context, chosen, rejected, item_id, timestamp, domain,
                              meta, created_at)
    SELECT batch.user_id, batch.id, batch.first_seq + item.ord - 1, item.value->>'context',
           item.value->>'chosen', item.value->>'rejected', item.value->>'item_id',
           CAST(item.value->>'timestamp' AS json), item.value->>'domain', CAST(item.value->>'meta' AS json),
           %(now)s
    FROM batch CROSS JOIN json_array_elements(CAST(%(items)s AS json)) WITH ORDINALITY AS item(value, ord)
)
SELECT false AS duplicate, id AS user_pk, interaction_count, covered_through,
       NULL::integer AS first_seq, NULL::integer AS last_seq, NULL::varchar AS body_hash
FROM upserted
UNION ALL
SELECT true, NULL, interaction_count, covered_through, first_seq, last_seq, body_hash FROM seen
"""


class Outcome(NamedTuple):
    """What the ingest did: duplicate=False, the user's new counter (the batch's last seq) and watermark;
    duplicate=True, the earlier batch of this key (seqs, body hash) and the user's counts."""
    duplicate: bool
    user_pk: int | None
    interaction_count: int
    covered_through: int
    first_seq: int | None
    last_seq: int | None
    body_hash: str | None


def on_postgresql(conn: Connection, tenant_id: int, user_id: str, rows: list[dict], digest: str,
                  key: str | None, now: datetime) -> Outcome:
    """The one statement for `rows` (the dicts Store.ingest builds: one per interaction)."""
    items = [{"context": row["context"], "chosen": row["chosen"], "rejected": row["rejected"],
              "item_id": row["item_id"], "domain": row["domain"], "timestamp": json.dumps(row["timestamp"]),
              "meta": json.dumps(row["meta"])} for row in rows]
    params = {"tenant_id": tenant_id, "user_id": user_id, "key": key, "n": len(rows), "body_hash": digest,
              "now": now, "items": json.dumps(items), **{f"d_{name}": value for name, value in _DEFAULTS.items()}}
    return Outcome(*conn.exec_driver_sql(_POSTGRESQL, params).one())


_SEEN = (select(Batch.first_seq, Batch.last_seq, Batch.body_hash, User.interaction_count, User.covered_through)
         .join(User, User.id == Batch.user_id)
         .where(User.tenant_id == bindparam("p_tenant"), User.external_id == bindparam("p_user"),
                Batch.idempotency_key == bindparam("p_key")))
_UPSERT = sqlite_insert(User).values(tenant_id=bindparam("p_tenant"), external_id=bindparam("p_user"),
                                     interaction_count=bindparam("p_n"), created_at=bindparam("p_now"),
                                     updated_at=bindparam("p_now"))
_UPSERT = (_UPSERT.on_conflict_do_update(index_elements=["tenant_id", "external_id"],
                                         set_={"interaction_count": User.interaction_count
                                               + _UPSERT.excluded.interaction_count,
                                               "updated_at": _UPSERT.excluded.updated_at})
           .returning(User.id, User.interaction_count, User.covered_through))
_BATCH = (insert(Batch).values(user_id=bindparam("p_user_pk"), idempotency_key=bindparam("p_key"),
                               body_hash=bindparam("p_hash"), first_seq=bindparam("p_first"),
                               last_seq=bindparam("p_last"), created_at=bindparam("p_now"))
          .returning(Batch.id))
_INTERACTIONS = insert(InteractionRow)


def on_sqlite(conn: Connection, tenant_id: int, user_id: str, rows: list[dict], digest: str, key: str | None,
              now: datetime) -> Outcome:
    """The four statements for `rows` (the retry check only with a key)."""
    if key is not None:
        seen = conn.execute(_SEEN, {"p_tenant": tenant_id, "p_user": user_id, "p_key": key}).first()
        if seen is not None:
            first, last, body_hash, count, covered = seen
            return Outcome(True, None, count, covered, first, last, body_hash)
    n = len(rows)
    user_pk, last, covered = conn.execute(_UPSERT, {"p_tenant": tenant_id, "p_user": user_id, "p_n": n,
                                                    "p_now": now}).one()
    first = last - n + 1
    batch_id = conn.execute(_BATCH, {"p_user_pk": user_pk, "p_key": key, "p_hash": digest, "p_first": first,
                                     "p_last": last, "p_now": now}).scalar_one()
    conn.execute(_INTERACTIONS, [{**row, "user_id": user_pk, "batch_id": batch_id, "seq": first + i}
                                 for i, row in enumerate(rows)])
    return Outcome(False, user_pk, last, covered, None, None, None)

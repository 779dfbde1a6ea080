"""What one batch job is asked to do (validated once, at the boundary)."""

from __future__ import annotations

from pydantic import BaseModel, Field

from ..errors import InputError


class BatchConfig(BaseModel):
    """interactions: Parquet/JSONL files or globs (local or fsspec URLs such as s3://...).
    out: the output folder (a shared path or an object-store URL on a cluster).
    past: an earlier run's output folder (or its profiles.parquet): each user's profile is updated from the
      interactions newer than its coverage only, in steps of at most `chunk` interactions.
    segments: without `past`, stream each full history over this many segments (1: one profile).
    model, style, max_new_tokens, seed, prompts: as `prefscribe infer`.
    cache: the result cache file; None: the default cache of each machine; "": no cache.
    workers: model actors (each loads the model once); batch_size: users per actor call.
    engine: "actors" (every model) or "http" (servers through ray.data.llm's HTTP processor); None picks
      http for openai: specs when ray.data.llm imports, else actors.
    qps, max_retries: the HTTP processor's request-rate cap and retries.
    db, tenant: update the service's store instead of writing profiles.parquet (see docs/batch.md).
    address, num_cpus: the Ray cluster (None: a local one).
    """

    interactions: list[str] = Field(default_factory=list)
    out: str | None = None
    past: str | None = None
    segments: int = Field(1, ge=1)
    chunk: int = Field(64, ge=1)
    model: str = "embedded"
    style: str | None = None
    max_new_tokens: int | None = Field(None, ge=1)
    seed: int = 0
    prompts: str | None = None
    cache: str | None = None
    workers: int = Field(1, ge=1)
    batch_size: int = Field(16, ge=1)
    engine: str | None = None
    qps: int | None = Field(None, ge=1)
    max_retries: int = Field(3, ge=0)
    db: str | None = None
    tenant: str | None = None
    address: str | None = None
    num_cpus: int | None = Field(None, ge=1)

    def check(self) -> BatchConfig:
        """The options that only make sense together; an InputError naming the one that does not fit.
        (Not a pydantic validator: pydantic would wrap the InputError in its own ValidationError.)"""
        if self.style not in (None, "reasoning", "direct"):
            raise InputError("style must be reasoning or direct", field="style")
        if self.engine not in (None, "actors", "http"):
            raise InputError("engine must be actors or http", field="engine")
        if self.db is None:
            if not self.interactions:
                raise InputError("give --interactions (or --db to update the service's store)")
            if not self.out:
                raise InputError("give --out, the output folder")
        else:
            if self.past:
                raise InputError("--past reads profile files; with --db the store holds each user's past profile")
            if self.interactions and not self.tenant:
                raise InputError("--tenant is needed to ingest interactions into the store (--db)")
        return self

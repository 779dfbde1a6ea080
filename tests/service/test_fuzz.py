"""Property-based fuzzing of the HTTP API from its own OpenAPI schema (schemathesis, every check), over real
HTTP: a uvicorn server on loopback, so the server's own path decoding is part of what is fuzzed, on SQLite
and PostgreSQL.

Every operation in the schema gets generated requests, valid ones (which must be accepted) and invalid
ones (which must be refused with a documented 4xx); no answer is a 500, and every answer matches its
documented status, content type and body. The test then asserts, from what it saw itself, that every
operation was reached and answered some request with success, not only refusals.

The seed changes per run, so CI keeps looking where earlier runs did not; it is printed at the start (and
in any failure): FUZZ_SEED=<seed> replays a run, FUZZ_EXAMPLES=<n> makes a longer hunt (default 25 per
operation and mode).
"""

from __future__ import annotations

import os
import random

import pytest

schemathesis = pytest.importorskip("schemathesis")

import httpx
import hypothesis
from hypothesis import HealthCheck, Phase
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import positive_data_acceptance
from schemathesis.config import SchemathesisConfig

from prefscribe.schema import Interaction
from prefscribe.service import create_app
from prefscribe.store import Store

from .conftest import make_settings
from .scripted import ScriptedBackend

pytestmark = pytest.mark.timeout(1500)  # a hang guard only
EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "25"))
SEED = int(os.environ.get("FUZZ_SEED") or random.SystemRandom().randrange(2**32))
# Import's body has rules across records that JSON Schema cannot state (versions numbered 1..n, each parent
# before its child, no version covering interactions the file lacks), so schema-valid bodies are refused by
# design: it is fuzzed for crashes and leaks like every route, but not held to accept them (test_export.py sends
# it good and bad files and checks what is stored).
CROSS_RECORD_RULES = {"POST /v1/users/{user_id}/import"}
SEEDED_USER = "0"  # the user id the generators try first: it exists, with a profile, so requests reach the code
SEEDED_COMPLETION = "0"  # likewise a completion id /v1/feedback finds (the proxy's own ids are random)


def config(key: str) -> SchemathesisConfig:
    return SchemathesisConfig.from_dict({
        "seed": SEED,
        "auth": {"openapi": {"HTTPBearer": {"bearer": key}}},
        "generation": {"database": "none"},
        # A body or batch over the limits is refused with 413 (too_large, too_many_items), as documented.
        "checks": {"negative_data_rejection": {"expected-statuses": [
            "400", "401", "403", "404", "405", "406", "409", "413", "415", "422", "428", "429"]}},
    })


def operations_in(document: dict) -> set[str]:
    methods = {"get", "put", "post", "delete", "patch", "head", "options"}
    return {f"{method.upper()} {path}" for path, item in document["paths"].items() for method in item
            if method in methods}


def test_the_api_holds_to_its_schema_over_http(db_url, live_server, capsys):
    with capsys.disabled():
        print(f"\nfuzz seed {SEED}: FUZZ_SEED={SEED} replays this run ({EXAMPLES} examples per operation and mode)")
    # A chat names its user in a header or in the body, a rule across parameters a schema cannot state: a
    # deployment that passes anonymous chats through accepts every schema-valid chat, so that one is fuzzed
    # (test_chat_proxy.py checks the 400 user_required of one that does not).
    settings = make_settings(db_url, max_body_bytes=1_000_000, max_field_chars=20_000, max_profile_chars=20_000,
                             max_batch_items=1000, chat_anonymous=True)
    store = Store(db_url)
    app = create_app(settings, store=store, backend=ScriptedBackend())
    key, _ = store.create_key("fuzz")
    tenant = store.authenticate(key)
    try:
        base = live_server(app)

        def seed_user(user: str) -> None:
            store.ingest(tenant.id, user, [Interaction(chosen=f"item {i}") for i in range(3)])
            app.state.runtime.worker.step()

        seed_user(SEEDED_USER)
        app.state.runtime.chat.memory.remember(tenant.id, SEEDED_COMPLETION, SEEDED_USER, "Hi", "A reply for: Hi")
        schema = schemathesis.openapi.from_url(f"{base}/v1/openapi.json", config=config(key))
        seen: dict[str, set[int]] = {}
        failures: dict[str, str] = {}
        for result in schema.get_all_operations():
            operation = result.ok()
            for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
                @hypothesis.seed(SEED)
                @hypothesis.settings(max_examples=EXAMPLES, database=None, deadline=None,
                                     suppress_health_check=list(HealthCheck), phases=[Phase.generate],
                                     verbosity=hypothesis.Verbosity.quiet)
                @hypothesis.given(case=operation.as_strategy(generation_mode=mode))
                def fuzz(case) -> None:
                    # The negative pass sends what its generator made invalid; whether valid data is accepted is
                    # the positive pass's check (a case with one mutated part can carry positive metadata).
                    refusable = mode is GenerationMode.NEGATIVE or case.operation.label in CROSS_RECORD_RULES
                    skip = [positive_data_acceptance] if refusable else []
                    response = case.call_and_validate(timeout=30, excluded_checks=skip)
                    seen.setdefault(case.operation.label, set()).add(response.status_code)
                    if case.method == "DELETE" and response.status_code == 200:
                        seed_user(case.path_parameters["user_id"])  # back for the next cases

                try:
                    fuzz()
                except Unsatisfiable:  # nothing in this operation can be made invalid (or valid)
                    pass
                except (Exception, BaseExceptionGroup) as exc:  # one operation's failure must not hide another's
                    failures[f"{operation.label} ({mode.value})"] = f"{type(exc).__name__}: {exc}"
        assert not failures, f"fuzz seed {SEED} (FUZZ_SEED={SEED} replays):\n" + "\n\n".join(
            f"{label}: {text}" for label, text in failures.items())
        documented = operations_in(httpx.get(f"{base}/v1/openapi.json").json())
        assert set(seen) == documented, f"not reached: {sorted(documented - set(seen))} (seed {SEED})"
        without_success = {label: sorted(codes) for label, codes in seen.items()
                           if not any(200 <= code < 300 for code in codes) and label not in CROSS_RECORD_RULES}
        assert not without_success, f"only refusals (seed {SEED}): {without_success}"
    finally:
        store.close()

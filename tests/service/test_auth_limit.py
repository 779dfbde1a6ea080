"""Failed authentication is limited per client: after the limit, 429 with Retry-After, for any key, on the
API and on the inspector's sign-in, until the window has passed (a fake clock: no waiting)."""

from __future__ import annotations

import pytest

from prefscribe.service.ratelimit import FailureLimiter

from .conftest import items, ui_login

pytestmark = pytest.mark.timeout(300)  # a hang guard only


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def limited(make_service):
    service = make_service(auth_failures_per_minute=3)
    clock = Clock()
    service.runtime.limiter = FailureLimiter(3, window=60.0, clock=clock)
    return service, clock


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_failed_keys_are_limited_per_client(limited):
    service, clock = limited
    c = service.client
    assert service.ingest("u1", items(1)).status_code == 201
    for _ in range(3):
        assert c.get("/v1/users", headers=service.auth("psk_guess")).status_code == 401
    clock.now += 10
    r = c.get("/v1/users", headers=service.auth("psk_guess"))
    assert r.status_code == 429 and r.json()["error"] == "too_many_requests"
    assert r.headers["retry-after"] == "50" and r.json()["retry_after"] == 50
    # while refused, even the right key is refused: a right guess must look like a wrong one
    assert c.get("/v1/users", headers=service.auth()).status_code == 429
    # a missing key is not a guess and does not count, but is refused the same while blocked
    assert c.get("/v1/users").status_code == 429
    # the sign-in page counts and refuses the same way
    r = ui_login(c, service.key_a)
    assert r.status_code == 429 and r.headers["retry-after"] == "50"
    clock.now += 50
    assert c.get("/v1/users", headers=service.auth()).status_code == 200
    assert ui_login(c, service.key_a).status_code == 303


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_the_inspector_sign_in_counts_failures(limited):
    service, clock = limited
    c = service.client
    for _ in range(3):
        assert ui_login(c, "psk_guess").status_code == 401
    assert c.get("/v1/users", headers=service.auth()).status_code == 429
    clock.now += 61
    assert c.get("/v1/users", headers=service.auth()).status_code == 200


def test_the_limiter_forgets_and_bounds_its_memory():
    clock = Clock()
    limiter = FailureLimiter(2, window=60.0, clock=clock, max_clients=10)
    limiter.fail("a")
    clock.now += 30
    limiter.fail("a")
    assert limiter.retry_after("a") == 30 and limiter.retry_after("b") is None
    clock.now += 31  # the first failure is past the window
    assert limiter.retry_after("a") is None
    for n in range(50):
        limiter.fail(f"flood-{n}")
    assert len(limiter._failures) <= 10

"""The error table: every domain error has a problem, and a Redis outage is a 503 that says to retry."""

from __future__ import annotations

from pathlib import Path

import redis.exceptions

import townhall.domain_errors as domain_errors
from townhall.domain_errors import REDIS_OUTAGE_ERRORS, DomainError, RedisUnavailable
from townhall.http.errors import DOMAIN_PROBLEMS, EXCEPTION_HANDLERS
from townhall.testing.inprocess import app_client
from townhall.testing.towns import write_town

#: Nothing listens here: every Redis call fails to connect.
DEAD_REDIS = "redis://127.0.0.1:1"


def test_every_domain_error_has_a_problem() -> None:
    declared = {value for value in vars(domain_errors).values()
                if isinstance(value, type) and issubclass(value, DomainError) and value is not DomainError}
    # Litestar answers with the rule of the nearest class in the error's MRO (NotFound serves its four
    # subclasses); DomainError itself has no rule, so each error is mapped on purpose.
    unmapped = {error for error in declared
                if not any(k in DOMAIN_PROBLEMS for k in error.__mro__[: error.__mro__.index(DomainError)])}
    assert unmapped == set() and DomainError not in DOMAIN_PROBLEMS
    assert set(DOMAIN_PROBLEMS) <= set(EXCEPTION_HANDLERS)


def test_redis_outage_errors_are_connection_timeout_and_loading() -> None:
    assert set(REDIS_OUTAGE_ERRORS) == {redis.exceptions.ConnectionError, redis.exceptions.TimeoutError,
                                        redis.exceptions.BusyLoadingError}
    assert str(RedisUnavailable(redis.exceptions.TimeoutError("Timeout reading"))) == \
        "Redis unavailable: Timeout reading"


async def test_unreachable_redis_is_a_503_to_retry(tmp_path: Path) -> None:
    write_town(tmp_path, "outage", redis_url=DEAD_REDIS)
    async with app_client(tmp_path) as client:
        for method, path, body in (("GET", "/v1/agents", None), ("GET", "/api/scaling", None),
                                   ("POST", "/v1/tasks/assign", {"agent": "w", "task": "t"})):
            response = await client.request(method, path, json=body)
            assert response.status_code == 503, (path, response.text)
            assert response.headers["content-type"].startswith("application/problem+json")
            assert response.headers["retry-after"] == "1"
            problem = response.json()
            assert (problem["type"], problem["title"], problem["instance"]) == (
                "/errors#503-service-unavailable", "Service Unavailable", path)
            assert problem["detail"].startswith("Failed to " if path == "/api/scaling" else "Redis unavailable: ")

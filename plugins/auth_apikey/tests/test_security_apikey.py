"""Issue 14 item 3 against a real townhall process: a flood of wrong keys from many addresses does not
deny a valid key that is not cached yet."""

from __future__ import annotations

import asyncio
from typing import Callable

from townhall.auth import Scope
from townhall.testing.process import TownhallProcess
from townhall_auth_apikey import REFERENCE_PARAMETERS
from townhall_auth_apikey.testing import api_keys_toml, flood_while_presenting, make_key

Serve = Callable[..., TownhallProcess]


def test_a_wrong_key_flood_does_not_deny_a_new_valid_key(serve: Serve) -> None:
    # Real Argon2 cost: the attack is about CPU and the verification queue.
    keys = [make_key(f"svc-{n}", Scope.TOWN_READ, parameters=REFERENCE_PARAMETERS) for n in range(8)]
    proc = serve(api_keys_toml(keys))  # rate limits on, as by default in api_key mode
    result = asyncio.run(flood_while_presenting(proc.url, [k.id for k in keys], [k.key for k in keys]))
    assert result.flood_statuses.get(401, 0) > 0 and result.flood_statuses.get(200, 0) == 0
    assert [status for status, _ in result.valid] == [200] * len(keys), result

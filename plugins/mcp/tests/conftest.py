"""The core's test fixtures (a private Redis per session, towns), shared with this plugin's tests."""

from tests.conftest import (  # noqa: F401  (fixtures are found by name)
    _no_machine_redis_env,
    redis_server,
    redis_url,
    sync_redis,
    town_dir,
    town_name,
)

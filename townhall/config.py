"""``tinytown.toml``: typed configuration, loading, and the one-line error a user sees for a bad file.

Keys and defaults follow the original tinytown 0.10 (reference §2); the sections the contract adds
(rate limits, CORS, audit, metrics, body limit, launcher) are documented in ``docs/configuration.md``.
Unknown keys are reported as warnings, never errors: ``[plugins.<name>]`` tables belong to plugins, which
validate them themselves. A :class:`PluginTable` such as ``[townhall.auth]`` is shared: the core reads its
own keys and every other key belongs to the config type a plugin declares (:func:`table_config`).
"""

from __future__ import annotations

import json
import os
import re
import tomllib
from pathlib import Path
from typing import Annotated, Any, Iterable, Literal, TypeVar, get_args, get_origin

import msgspec

from townhall.config_redis import RedisConfig, redis_config_problem
from townhall.config_hints import did_you_mean, name_entries

CONFIG_FILE = "tinytown.toml"

Port = Annotated[int, msgspec.Meta(ge=0, le=65535)]
NonNegative = Annotated[int, msgspec.Meta(ge=0)]
Positive = Annotated[int, msgspec.Meta(ge=1)]

T = TypeVar("T")


class ConfigError(Exception):
    """A configuration problem; ``str()`` is the whole line shown to the user."""


class PluginTable(msgspec.Struct, kw_only=True):
    """A table the core shares with plugins: its fields are the core's keys; the other keys are checked
    against the config types of the installed plugins (:func:`table_config`, :func:`unknown_table_keys`)."""


class AuthConfig(PluginTable):
    """``[townhall.auth]``: the core picks the mode; the mode's plugin declares the rest."""

    mode: str = "none"


class TlsConfig(msgspec.Struct, kw_only=True):
    enabled: bool = False
    cert_file: str | None = None
    key_file: str | None = None


class MtlsConfig(msgspec.Struct, kw_only=True):
    enabled: bool = False
    required: bool = False
    ca_file: str | None = None


class RateLimitConfig(msgspec.Struct, kw_only=True):
    #: ``None``: on whenever the auth mode is not ``none``.
    enabled: bool | None = None
    requests_per_minute: Positive = 120
    burst_size: Positive = 20
    mutating_requests_per_minute: Positive = 60
    trusted_proxies: list[str] = []
    public_requests_per_minute: Positive = 600  # probes, /metrics, /api/scaling: a bucket per address
    public_burst_size: Positive = 100


class CorsConfig(msgspec.Struct, kw_only=True):
    allow_origins: list[str] = []
    allow_methods: list[str] = msgspec.field(default_factory=lambda: ["GET", "POST", "DELETE", "OPTIONS"])
    allow_headers: list[str] = msgspec.field(
        default_factory=lambda: ["Authorization", "Content-Type", "X-API-Key", "X-Request-ID", "Last-Event-ID"]
    )
    allow_credentials: bool = False
    max_age: NonNegative = 600


class AuditConfig(msgspec.Struct, kw_only=True):
    enabled: bool = True
    file: str | None = None
    max_bytes: NonNegative = 10 * 1024 * 1024  # rotate at this size (0: never), unless rotate_when is set
    backup_count: NonNegative = 5
    rotate_when: Literal["s", "m", "h", "d", "midnight", "w0", "w1", "w2", "w3", "w4", "w5", "w6"] | None = None


class MetricsConfig(msgspec.Struct, kw_only=True):
    #: Names of the exporters to enable; ``None`` enables every installed one.
    exporters: list[str] | None = None
    #: The status of ``/metrics`` while the town cannot be read: 200 (the body, with ``tinytown_ready 0``,
    #: is stored by Prometheus) or 503 (Prometheus drops the body; only ``up == 0`` remains).
    outage_status: Literal[200, 503] = 200
    require_scope: Literal["town.read", "town.write", "agent.manage", "admin"] | None = None


class EventsConfig(msgspec.Struct, kw_only=True):
    """``[townhall.events]``: the town event stream and ``GET /v1/events`` (docs/events.md)."""

    #: Entries the town stream ``tt:{town}:events`` keeps (``XADD … MAXLEN ~``): how far back a client
    #: can resume with ``Last-Event-ID``.
    retention: Annotated[int, msgspec.Meta(ge=100)] = 10_000
    #: Seconds between the comment lines that keep an idle event stream open through proxies.
    heartbeat_secs: Annotated[float, msgspec.Meta(gt=0, le=3600)] = 15.0
    #: Events held for one subscriber that is not reading; past that it is disconnected (it resumes
    #: with ``Last-Event-ID``), so a stalled client never grows townhall's memory.
    subscriber_buffer: Annotated[int, msgspec.Meta(ge=10, le=100_000)] = 1000


class TownhallConfig(msgspec.Struct, kw_only=True):
    bind: str = "127.0.0.1"
    rest_port: Port = 8080
    #: Server processes on the one port (``townhall rest --workers``); see docs/scaling-out.md.
    workers: Positive = 1
    request_timeout_ms: Positive = 30000
    max_body_bytes: Positive = 1024 * 1024
    #: Bounds for clients that never finish a request (docs/security.md, "Connection limits").
    max_connections: Positive = 512
    max_header_bytes: Annotated[int, msgspec.Meta(ge=1024)] = 64 * 1024
    header_timeout_secs: Positive = 10
    body_timeout_secs: Positive = 30
    queue_backend: str | None = None
    #: How often agents and missions written by other tools are added to the listings (0 = only at start).
    index_refresh_secs: NonNegative = 60
    auth: AuthConfig = msgspec.field(default_factory=AuthConfig)
    tls: TlsConfig = msgspec.field(default_factory=TlsConfig)
    mtls: MtlsConfig = msgspec.field(default_factory=MtlsConfig)
    rate_limit: RateLimitConfig = msgspec.field(default_factory=RateLimitConfig)
    cors: CorsConfig = msgspec.field(default_factory=CorsConfig)
    audit: AuditConfig = msgspec.field(default_factory=AuditConfig)
    metrics: MetricsConfig = msgspec.field(default_factory=MetricsConfig)
    events: EventsConfig = msgspec.field(default_factory=EventsConfig)


class FailureBreakerConfig(msgspec.Struct, kw_only=True):
    """``[agent] failure_breaker``: this many failed runs in a row that end alike (same exit status and
    output) within ``within_secs`` put the agent in ``Error`` (its CLI is presumably broken);
    ``failures = 0`` disables the breaker."""

    failures: NonNegative = 3
    within_secs: Positive = 60


class AgentConfig(msgspec.Struct, kw_only=True):
    idle_timeout_secs: NonNegative = 300
    launcher: str = "local"
    heartbeat_secs: Positive = 15
    #: A worker silent for this long is dead: its taken work is redelivered.
    visibility_timeout_secs: Positive = 120
    #: An active agent whose heartbeat is this old (and whose liveness key lapsed) is a lost worker:
    #: townhall's sweep stops it and puts its work back. Three heartbeats, as the liveness key's TTL.
    stale_after_secs: Positive = 45
    #: Worker environment variables (names or ``fnmatch`` patterns) the agent CLI may see too.
    pass_env: list[str] = []
    #: A CLI run longer than this is killed and fails (a task's ``timeout_secs`` overrides it; 0 = none).
    task_timeout_secs: NonNegative = 3600
    #: Runs of a shared-queue task before it is ``failed`` for good.
    max_attempts: Positive = 3
    failure_breaker: FailureBreakerConfig = msgspec.field(default_factory=FailureBreakerConfig)


class AgentCliPreset(msgspec.Struct, kw_only=True):
    name: str
    command: str
    workdir: str | None = None
    env: dict[str, str] = {}
    allowed_scopes: list[Literal["town.read", "town.write", "agent.manage", "admin"]] = []  # [] = any writer


class TownConfig(msgspec.Struct, kw_only=True):
    name: Annotated[str, msgspec.Meta(min_length=1)]
    default_cli: str = "claude"
    conductor_cli: str | None = None
    max_agents: NonNegative = 10
    use_central_redis: bool = False
    use_streams: bool = False
    redis: RedisConfig = msgspec.field(default_factory=RedisConfig)
    townhall: TownhallConfig = msgspec.field(default_factory=TownhallConfig)
    agent: AgentConfig = msgspec.field(default_factory=AgentConfig)
    agent_clis: dict[str, AgentCliPreset] = {}
    plugins: dict[str, Any] = {}

    @property
    def queue_backend_name(self) -> str:
        return self.townhall.queue_backend or ("streams" if self.use_streams else "lists")


class Town(msgspec.Struct, kw_only=True):
    """A loaded town: where it lives and what it says."""

    root: Path
    #: The ``--town`` argument exactly as given; ``GET /v1/town`` reports it (reference §5.2).
    root_as_given: str
    config: TownConfig
    warnings: list[str] = []
    #: The file as parsed, plugins' keys included: their config types are converted from it.
    raw: dict[str, Any] = {}

    @property
    def name(self) -> str:
        return self.config.name

    @property
    def state_dir(self) -> Path:
        return self.root / ".tt"


BUILTIN_CLIS: dict[str, str] = {
    "claude": "claude --print --dangerously-skip-permissions",
    "auggie": "auggie --print",
    "codex": "codex exec --dangerously-bypass-approvals-and-sandbox",
    "codex-mini": 'codex exec --dangerously-bypass-approvals-and-sandbox -m gpt-5.4-mini '
    '-c model_reasoning_effort="medium"',
    "aider": "aider --yes --no-auto-commits --message",
    "gemini": "gemini",
    "copilot": "gh copilot",
    "cursor": "cursor",
}


def load_town(town_dir: str | os.PathLike[str] = ".", environ: dict[str, str] | None = None,
              plugin_tables: Iterable[str] = ()) -> Town:
    """Load ``<town_dir>/tinytown.toml`` and apply ``REDIS_URL`` / ``TINYTOWN_REDIS_PASSWORD``.
    ``plugin_tables``: dotted tables installed plugins own (their keys are theirs to check)."""
    env = os.environ if environ is None else environ
    root = Path(town_dir).absolute()
    path = root / CONFIG_FILE
    if not path.is_file():
        raise ConfigError(f"townhall: Town not initialized at {root}. Run 'tt init' first.")
    raw = read_toml(path.read_text(encoding="utf-8"), CONFIG_FILE)
    config, warnings = check_config(raw, CONFIG_FILE, plugin_tables)
    url = env.get("REDIS_URL", "").strip()
    if url:
        config.redis.url = url
    password = env.get("TINYTOWN_REDIS_PASSWORD", "")
    if password:
        config.redis.password = password
    problem = redis_config_problem(config.redis, config.townhall.request_timeout_ms)
    if problem:
        raise ConfigError(f"townhall: {CONFIG_FILE}: {problem}")
    return Town(root=root, root_as_given=str(town_dir), config=config, warnings=warnings, raw=raw)


def parse_config(text: str, filename: str = CONFIG_FILE) -> tuple[TownConfig, list[str]]:
    return check_config(read_toml(text, filename), filename)


def read_toml(text: str, filename: str = CONFIG_FILE) -> dict[str, Any]:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"townhall: {filename}: invalid TOML: {exc}") from None


def check_config(raw: dict[str, Any], filename: str = CONFIG_FILE,
                 plugin_tables: Iterable[str] = ()) -> tuple[TownConfig, list[str]]:
    """The core's config and the warnings for its unknown keys (plugins' keys are checked later)."""
    config = _convert(raw, TownConfig, "", filename)
    owned = set(plugin_tables)
    return config, _warnings([k for k in unknown_keys(raw, TownConfig) if k not in owned], filename, (TownConfig,))


def table_config(raw: dict[str, Any], path: str, config_type: type[T], filename: str = CONFIG_FILE) -> T:
    """The table at dotted ``path`` of the parsed file (empty when absent) as ``config_type``: how a
    plugin's settings are read. A bad value raises :class:`ConfigError` naming the file and the key."""
    return _convert(_table(raw, path), config_type, path, filename)


def unknown_table_keys(raw: dict[str, Any], path: str, config_types: Iterable[type],
                       filename: str = CONFIG_FILE) -> list[str]:
    """Warnings for the keys of the table at ``path`` (a :class:`PluginTable`, or a table a plugin owns
    alone) that neither the core nor any of ``config_types`` knows."""
    core = _table_type(path)
    table = {k: v for k, v in _table(raw, path).items() if core is None or k not in _field_names(core)}
    return _warnings(unknown_keys(table, *config_types, prefix=f"{path}."), filename,
                     (*([core] if core else []), *config_types), base=path)


def _warnings(keys: list[str], filename: str, types: Iterable[type] = (), base: str = "") -> list[str]:
    """One line per unknown key, with the known key it most resembles ("did you mean")."""
    found = []
    for key in keys:
        parent, _, name = key.rpartition(".")
        sub = parent.removeprefix(base).lstrip(".")
        known = [n for t in types if (table := _table_type(sub, t)) is not None for n in _field_names(table)]
        close = did_you_mean(name, known)
        hint = f"; did you mean '{_dotted(parent, close)}'?" if close else ""
        found.append(f"townhall: {filename}: unknown key '{key}' (ignored){hint}")
    return found


def _convert(raw: dict[str, Any], config_type: type[T], path: str, filename: str) -> T:
    try:
        return msgspec.convert(raw, type=config_type, strict=True)
    except msgspec.ValidationError as exc:
        raise ConfigError(f"townhall: {filename}: {_explain(exc, raw, path)}") from None


def _table(raw: dict[str, Any], path: str) -> dict[str, Any]:
    found, table = _lookup(raw, path)
    return table if found and isinstance(table, dict) else {}


def _table_type(path: str, struct_type: type = TownConfig) -> type | None:
    """The struct of the table at ``path`` (from the core's config, or ``struct_type``'s); ``None`` for a
    table it does not declare."""
    for part in filter(None, path.split(".")):
        fields = {f.encode_name: f.type for f in msgspec.structs.fields(struct_type)}
        if part not in fields or _struct_of(fields[part]) is None:
            return None
        struct_type = fields[part]
    return struct_type


_AT = re.compile(r"^(?P<what>.*) - at `\$(?P<path>[^`]*)`$")


def _explain(exc: msgspec.ValidationError, raw: dict[str, Any], prefix: str = "") -> str:
    """msgspec's message as ``key: what was wrong``, the key given from the top of the file."""
    message = str(exc)
    match = _AT.match(message)
    if not match:
        if message.startswith("Object missing required field"):
            field = message.split("`")[1]
            return f"{_dotted(prefix, field)}: required key is missing"
        return message
    what, path = match["what"].replace("`", ""), match["path"].lstrip(".")
    what = what[:1].lower() + what[1:]
    if what.startswith("object missing required field"):
        field = match["what"].split("`")[1]
        return f"{name_entries(_dotted(prefix, path, field), raw, field)}: required key is missing"
    found, value = _lookup(raw, path)
    if found and ", got " in what:
        what = what.split(", got ")[0] + f", got {json.dumps(value, default=str)}"
    return f"{_dotted(prefix, path)}: {what}"


def _dotted(*parts: str) -> str:
    return ".".join(part for part in parts if part).replace(".[", "[")


def _lookup(raw: Any, path: str) -> tuple[bool, Any]:
    node = raw
    for part in re.findall(r"[^.\[\]]+|\[\d+\]", path):
        if part.startswith("["):
            index = int(part[1:-1])
            if not isinstance(node, list) or index >= len(node):
                return False, None
            node = node[index]
        elif isinstance(node, dict) and part in node:
            node = node[part]
        else:
            return False, None
    return True, node


def unknown_keys(raw: Any, *struct_types: type, prefix: str = "") -> list[str]:
    """Keys present in the TOML that none of ``struct_types`` knows (a nested table is checked against the
    first type declaring it). Plugin tables are not looked into: ``[plugins.<name>]`` belongs to its
    plugin, and the plugins' keys of a :class:`PluginTable` are checked by :func:`unknown_table_keys`."""
    if not isinstance(raw, dict):
        return []
    unknown: list[str] = []
    for key, value in raw.items():
        dotted = f"{prefix}{key}"
        owner = next((t for t in struct_types if key in _field_names(t)), None)
        if owner is None:
            if not any(issubclass(t, PluginTable) for t in struct_types):
                unknown.append(dotted)
            continue
        if key == "plugins" and owner is TownConfig:
            continue
        field_type = {f.encode_name: f.type for f in msgspec.structs.fields(owner)}[key]
        nested, items = _struct_of(field_type), _items_struct_of(field_type)
        if nested is not None:
            unknown += unknown_keys(value, nested, prefix=dotted + ".")
        elif items is not None and isinstance(value, list):
            for index, body in enumerate(value):
                unknown += unknown_keys(body, items, prefix=f"{dotted}[{index}].")
        elif items is not None and isinstance(value, dict):
            for name, body in value.items():
                unknown += unknown_keys(body, items, prefix=f"{dotted}.{name}.")
    return unknown


def _field_names(struct_type: type) -> set[str]:
    return {f.encode_name for f in msgspec.structs.fields(struct_type)}


def _struct_of(tp: Any) -> type | None:
    return tp if isinstance(tp, type) and issubclass(tp, msgspec.Struct) else None


def _items_struct_of(tp: Any) -> type | None:
    """``Entry`` for ``list[Entry]`` and ``dict[str, Entry]`` fields (``[[a.b]]`` arrays, named tables)."""
    if get_origin(tp) not in (list, dict):
        return None
    return _struct_of(get_args(tp)[-1])


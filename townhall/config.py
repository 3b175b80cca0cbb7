"""``tinytown.toml``: typed configuration, loading, and the one-line error a user sees for a bad file.

Keys and defaults follow the original tinytown 0.10 (reference §2); the sections the contract adds
(rate limits, CORS, audit, metrics, body limit, launcher, api_keys) are documented in
``docs/configuration.md``. Unknown keys are reported as warnings, never errors: ``[plugins.<name>]``
tables belong to plugins, which validate them themselves.
"""

from __future__ import annotations

import json
import os
import re
import tomllib
from pathlib import Path
from typing import Annotated, Any

import msgspec

CONFIG_FILE = "tinytown.toml"

Port = Annotated[int, msgspec.Meta(ge=0, le=65535)]
NonNegative = Annotated[int, msgspec.Meta(ge=0)]
Positive = Annotated[int, msgspec.Meta(ge=1)]


class ConfigError(Exception):
    """A configuration problem; ``str()`` is the whole line shown to the user."""


class RedisConfig(msgspec.Struct, kw_only=True):
    url: str | None = None
    use_socket: bool = True
    socket_path: str = ".tt/redis.sock"
    host: str = "127.0.0.1"
    port: Port = 6379
    persist: bool = False
    aof_path: str = ".tt/redis.aof"
    password: str | None = None
    tls_enabled: bool = False
    tls_cert: str | None = None
    tls_key: str | None = None
    tls_ca_cert: str | None = None
    bind: str = "127.0.0.1"


class ApiKeyEntry(msgspec.Struct, kw_only=True):
    id: Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
    hash: str
    scopes: list[str] = []


class AuthConfig(msgspec.Struct, kw_only=True):
    mode: str = "none"
    api_key_hash: str | None = None
    api_key_scopes: list[str] = []
    api_keys: list[ApiKeyEntry] = []
    issuer: str | None = None
    audience: str | None = None
    jwks_url: str | None = None
    required_scopes: list[str] = []
    clock_skew_seconds: NonNegative = 60
    algorithms: list[str] = msgspec.field(
        default_factory=lambda: ["RS256", "RS384", "RS512", "PS256", "ES256", "ES384", "EdDSA"]
    )


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


class CorsConfig(msgspec.Struct, kw_only=True):
    allow_origins: list[str] = []
    allow_methods: list[str] = msgspec.field(default_factory=lambda: ["GET", "POST", "DELETE", "OPTIONS"])
    allow_headers: list[str] = msgspec.field(
        default_factory=lambda: ["Authorization", "Content-Type", "X-API-Key", "X-Request-ID"]
    )
    allow_credentials: bool = False
    max_age: NonNegative = 600


class AuditConfig(msgspec.Struct, kw_only=True):
    enabled: bool = True
    file: str | None = None


class MetricsConfig(msgspec.Struct, kw_only=True):
    #: Names of the exporters to enable; ``None`` enables every installed one.
    exporters: list[str] | None = None


class TownhallConfig(msgspec.Struct, kw_only=True):
    bind: str = "127.0.0.1"
    rest_port: Port = 8080
    request_timeout_ms: Positive = 30000
    max_body_bytes: Positive = 1024 * 1024
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


class AgentConfig(msgspec.Struct, kw_only=True):
    idle_timeout_secs: NonNegative = 300
    launcher: str = "local"
    heartbeat_secs: Positive = 15
    #: A worker silent for this long is dead: its taken work is redelivered.
    visibility_timeout_secs: Positive = 120
    stale_after_secs: Positive = 120


class AgentCliPreset(msgspec.Struct, kw_only=True):
    name: str
    command: str
    workdir: str | None = None
    env: dict[str, str] = {}


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


def load_town(town_dir: str | os.PathLike[str] = ".", environ: dict[str, str] | None = None) -> Town:
    """Load ``<town_dir>/tinytown.toml`` and apply ``REDIS_URL`` / ``TINYTOWN_REDIS_PASSWORD``."""
    env = os.environ if environ is None else environ
    root = Path(town_dir).absolute()
    path = root / CONFIG_FILE
    if not path.is_file():
        raise ConfigError(f"townhall: Town not initialized at {root}. Run 'tt init' first.")
    config, warnings = parse_config(path.read_text(encoding="utf-8"), CONFIG_FILE)
    url = env.get("REDIS_URL", "").strip()
    if url:
        config.redis.url = url
    password = env.get("TINYTOWN_REDIS_PASSWORD", "")
    if password:
        config.redis.password = password
    return Town(root=root, root_as_given=str(town_dir), config=config, warnings=warnings)


def parse_config(text: str, filename: str = CONFIG_FILE) -> tuple[TownConfig, list[str]]:
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"townhall: {filename}: invalid TOML: {exc}") from None
    try:
        config = msgspec.convert(raw, type=TownConfig, strict=True)
    except msgspec.ValidationError as exc:
        raise ConfigError(f"townhall: {filename}: {_explain(exc, raw)}") from None
    warnings = [f"townhall: {filename}: unknown key '{key}' (ignored)" for key in unknown_keys(raw, TownConfig)]
    return config, warnings


_AT = re.compile(r"^(?P<what>.*) - at `\$(?P<path>[^`]*)`$")


def _explain(exc: msgspec.ValidationError, raw: dict[str, Any]) -> str:
    message = str(exc)
    match = _AT.match(message)
    if not match:
        if message.startswith("Object missing required field"):
            field = message.split("`")[1]
            return f"{field}: required key is missing"
        return message
    what, path = match["what"].replace("`", ""), match["path"].lstrip(".")
    what = what[:1].lower() + what[1:]
    if what.startswith("object missing required field"):
        field = match["what"].split("`")[1]
        return f"{path + '.' if path else ''}{field}: required key is missing"
    found, value = _lookup(raw, path)
    if found and ", got " in what:
        what = what.split(", got ")[0] + f", got {json.dumps(value, default=str)}"
    return f"{path}: {what}"


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


def unknown_keys(raw: Any, struct_type: type, prefix: str = "") -> list[str]:
    """Keys present in the TOML that the config structs do not know (plugin tables excluded)."""
    if not isinstance(raw, dict):
        return []
    fields = {f.encode_name: f for f in msgspec.structs.fields(struct_type)}
    unknown: list[str] = []
    for key, value in raw.items():
        dotted = f"{prefix}{key}"
        field = fields.get(key)
        if field is None:
            unknown.append(dotted)
            continue
        if key == "plugins" and struct_type is TownConfig:
            continue
        nested = _struct_of(field.type)
        if nested is not None:
            unknown += unknown_keys(value, nested, dotted + ".")
        elif key == "agent_clis" and isinstance(value, dict):
            for preset, body in value.items():
                unknown += unknown_keys(body, AgentCliPreset, f"{dotted}.{preset}.")
        elif key == "api_keys" and isinstance(value, list):
            for index, body in enumerate(value):
                unknown += unknown_keys(body, ApiKeyEntry, f"{dotted}[{index}].")
    return unknown


def _struct_of(tp: Any) -> type | None:
    return tp if isinstance(tp, type) and issubclass(tp, msgspec.Struct) else None


def starter_config(name: str) -> str:
    """The ``tinytown.toml`` that ``tt init`` writes."""
    lines = [
        f"name = {json.dumps(name)}",
        'default_cli = "claude"',
        "max_agents = 10",
        "use_streams = false",
        "",
        "[redis]",
        "# Leave url unset to let townhall run a private server on .tt/redis.sock.",
        "# url = \"redis://127.0.0.1:6379\"",
        "use_socket = true",
        'socket_path = ".tt/redis.sock"',
        "",
        "[townhall]",
        'bind = "127.0.0.1"',
        "rest_port = 8080",
        "request_timeout_ms = 30000",
        "",
        "[townhall.auth]",
        'mode = "none"',
        "",
        "[agent]",
        "idle_timeout_secs = 300",
        'launcher = "local"',
    ]
    for key, command in BUILTIN_CLIS.items():
        lines += ["", f"[agent_clis.{json.dumps(key) if '-' in key else key}]",
                  f"name = {json.dumps(key)}", f"command = {json.dumps(command)}"]
    return "\n".join(lines) + "\n"

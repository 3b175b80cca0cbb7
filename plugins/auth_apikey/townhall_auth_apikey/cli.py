"""``tt auth gen-key``: print a new API key once, with the hash and config lines that accept it."""

from __future__ import annotations

import ipaddress
from pathlib import Path

import click

from townhall.auth import Scope
from townhall.cli.output import Answer
from townhall.config import CONFIG_FILE, ConfigError, TownhallConfig, load_town

from townhall_auth_apikey.generate import config_snippet, generate_api_key
from townhall_auth_apikey.keyset import DEFAULT_KEY_ID


@click.command("gen-key")
@click.option("--id", "key_id", metavar="NAME",
              help="Print a [[townhall.auth.api_keys]] entry with this key id (for several keys / rotation).")
@click.option("--scope", "scopes", multiple=True, type=click.Choice([s.value for s in Scope]),
              help="Scope granted to the key (repeatable; none = all scopes).")
@click.option("--legacy", is_flag=True,
              help="Issue a key without its id prefix (the original's form; checked on the slower path).")
@click.option("--json", "as_json", is_flag=True, help="Print {key, hash, toml} as JSON.")
@click.pass_context
def gen_key(ctx: click.Context, key_id: str | None, scopes: tuple[str, ...], legacy: bool, as_json: bool) -> None:
    """Generate an API key `<key id>.<secret>` and its Argon2id hash (needs no Redis; the usage hint
    uses the town's bind and port when a tinytown.toml is there)."""
    if key_id is not None and not 1 <= len(key_id) <= 64:
        raise click.BadParameter("must be 1 to 64 characters", param_hint="--id")
    generated = generate_api_key(key_id=None if legacy else key_id or DEFAULT_KEY_ID)
    snippet = config_snippet(generated.hash, key_id, list(scopes))
    # The layout is a de-facto interface: the original's Docker entrypoint reads the line after each
    # of the two headings, so headings and "value on the next line" must stay exactly like this.
    lines = [
        "🔐 Generated new API key",
        "",
        "API Key (store securely, shown only once):",
        generated.key,
        "",
        "API Key Hash (add to tinytown.toml):",
        generated.hash,
        "",
        "Add to your tinytown.toml:",
        "",
        *(f"  {line}" if line else "" for line in snippet.splitlines()),
        "",
        "Then use the API key with townhall:",
        f"  export TOWNHALL_KEY='{generated.key}'",
        f"  curl -H \"Authorization: Bearer $TOWNHALL_KEY\" {_base_url(ctx)}/v1/status",
    ]
    Answer({"key": generated.key, "hash": generated.hash, "toml": snippet}, "\n".join(lines)).show(as_json, indent=None)


def _base_url(ctx: click.Context) -> str:
    """Where this town's townhall answers: its ``[townhall]`` bind, port and TLS (the defaults when the
    directory has no readable ``tinytown.toml``). A wildcard bind is reached on loopback."""
    town_dir = (ctx.find_root().obj or {}).get("town_dir", ".")
    config = TownhallConfig()
    if (Path(town_dir) / CONFIG_FILE).exists():
        try:
            config = load_town(town_dir).config.townhall
        except ConfigError:
            pass  # the key is still good; the hint falls back to the defaults
    host = config.bind
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        address = None
    if address is not None and address.is_unspecified:
        host = "127.0.0.1" if address.version == 4 else "::1"
        address = ipaddress.ip_address(host)
    if address is not None and address.version == 6:
        host = f"[{host}]"
    scheme = "https" if config.tls.enabled else "http"
    return f"{scheme}://{host}:{config.rest_port}"


def add_auth_commands(tt: click.Group) -> None:
    """Attach ``gen-key`` to the ``auth`` group of ``tt``, creating the group if no plugin did yet."""
    auth = tt.commands.get("auth")
    if auth is None:
        auth = click.Group("auth", help="API key and authentication helpers.")
        tt.add_command(auth)
    if not isinstance(auth, click.Group):
        raise RuntimeError("the 'tt auth' command exists and is not a group; cannot add 'gen-key'")
    auth.add_command(gen_key)

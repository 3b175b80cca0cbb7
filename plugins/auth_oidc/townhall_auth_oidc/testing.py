"""Test helpers for towns in auth mode ``oidc``: a local issuer (discovery, JWKS, tokens) and its config.

For this plugin's tests, the core's and any other plugin's (``from townhall_auth_oidc.testing import
LocalIssuer, oidc_toml``); they need nothing beyond the plugin's own dependencies.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable

from joserfc import jwt
from joserfc.jwk import ECKey, RSAKey

AUDIENCE = "townhall-api"


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


DISCOVERY_PATH = "/.well-known/openid-configuration"


def json_server(host: str, answer: Callable[[str], dict[str, Any] | None]) -> ThreadingHTTPServer:
    """A stdlib HTTP server on ``host`` (a free port) answering each GET with ``answer(path)`` as JSON, a
    404 where that is ``None``. The caller runs ``serve_forever`` in a thread and shuts it down."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
            body = answer(self.path)
            if body is None:
                self.send_error(404)
                return
            payload = json.dumps(body).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args: Any) -> None:
            pass

    return ThreadingHTTPServer((host, 0), Handler)


class LocalIssuer:
    """Discovery document and JWKS on 127.0.0.1 (stdlib server in a thread), and a token factory."""

    def __init__(self) -> None:
        self.keys = {
            "rsa1": RSAKey.generate_key(2048, private=True, parameters={"kid": "rsa1", "alg": "RS256"}),
            "ec1": ECKey.generate_key("P-256", private=True, parameters={"kid": "ec1", "alg": "ES256"}),
            # Never published: tokens under this kid are signed by someone the issuer does not know.
            "rogue": RSAKey.generate_key(2048, private=True, parameters={"kid": "rogue", "alg": "RS256"}),
        }
        self.published = ["rsa1", "ec1"]
        self.jwks_fetches = 0
        self._server = json_server("127.0.0.1", self._answer)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def _answer(self, path: str) -> dict[str, Any] | None:
        if path == DISCOVERY_PATH:
            return {"issuer": self.url, "jwks_uri": self.url + "/jwks"}
        if path == "/jwks":
            self.jwks_fetches += 1
            return self.jwks()
        return None

    def jwks(self) -> dict[str, Any]:
        """The published keys, as the issuer's JWKS document."""
        return {"keys": [self.keys[k].as_dict(private=False) for k in self.published]}

    def __enter__(self) -> LocalIssuer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def claims(self, **overrides: Any) -> dict[str, Any]:
        """Valid claims for now; an override of ``None`` drops the claim."""
        now = int(time.time())
        claims: dict[str, Any] = {"iss": self.url, "aud": AUDIENCE, "sub": "user-42", "iat": now,
                                  "exp": now + 300, "scope": "openid town.read"}
        claims.update(overrides)
        return {k: v for k, v in claims.items() if v is not None}

    def token(self, kid: str = "rsa1", **claims: Any) -> str:
        key = self.keys[kid]
        return jwt.encode({"alg": key.alg, "kid": kid, "typ": "JWT"}, self.claims(**claims), key,
                          algorithms=[key.alg])

    def unsigned_token(self, **claims: Any) -> str:
        """``alg: none``: no signature at all."""
        header = b64url(json.dumps({"alg": "none", "kid": "rsa1", "typ": "JWT"}).encode())
        return f"{header}.{b64url(json.dumps(self.claims(**claims)).encode())}."

    def hs256_with_public_key(self, **claims: Any) -> str:
        """Key confusion: HMAC-SHA256 keyed with the issuer's *published* RSA key."""
        secret = self.keys["rsa1"].as_pem(private=False)
        header = b64url(json.dumps({"alg": "HS256", "kid": "rsa1", "typ": "JWT"}).encode())
        payload = b64url(json.dumps(self.claims(**claims)).encode())
        signature = hmac.new(secret, f"{header}.{payload}".encode(), hashlib.sha256).digest()
        return f"{header}.{payload}.{b64url(signature)}"


def oidc_toml(issuer: LocalIssuer, required_scopes: list[str] | None = None) -> str:
    lines = ["[townhall.auth]", 'mode = "oidc"', f"issuer = {json.dumps(issuer.url)}",
             f"audience = {json.dumps(AUDIENCE)}", "clock_skew_seconds = 30"]
    if required_scopes is not None:
        lines.append(f"required_scopes = {json.dumps(required_scopes)}")
    return "\n".join(lines) + "\n"

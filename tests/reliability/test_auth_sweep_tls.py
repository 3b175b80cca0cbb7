"""The full auth sweep (see tests/test_auth_sweep.py) over HTTPS: TLS changes the transport, never the
verdicts, the challenges or the audit trail. Also with mTLS enabled but optional, where a client
certificate is not a credential: the key still decides."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from tests.support.auth import (
    SWEEP_AUDIT_FILE,
    SWEEP_TOML,
    check_sweep,
    check_sweep_audit,
    make_pki,
    protected_routes,
    sweep,
)
from townhall.testing.process import TownhallProcess
from townhall.testing.towns import append_config, read_audit
from townhall_auth_apikey.testing import api_keys_toml, scope_keys


@pytest.mark.parametrize("client_certificate", [False, True], ids=["tls", "mtls-optional-with-cert"])
def test_sweep_over_tls(town_dir: Path, tmp_path: Path, client_certificate: bool) -> None:
    keys = scope_keys()
    pki = make_pki(tmp_path)
    config = api_keys_toml(list(keys.values())) + SWEEP_TOML + pki.tls_toml()
    context = pki.client_context()
    if client_certificate:
        config += f'[townhall.mtls]\nenabled = true\nrequired = false\nca_file = "{pki.ca}"\n'
        context.load_cert_chain(str(pki.client))
    append_config(town_dir, config)
    proc = TownhallProcess(town_dir, scheme="https")
    proc.start(wait=False)
    try:
        proc.wait_healthy(verify=context)
        routes = protected_routes(town_dir)
        with httpx.Client(base_url=proc.url, verify=context, timeout=10) as client:
            result = sweep(client, routes, keys)
        check_sweep(result)
        check_sweep_audit(result, read_audit(town_dir / SWEEP_AUDIT_FILE), keys)
        # Plain HTTP to the TLS port never reaches the guard.
        with pytest.raises(httpx.HTTPError):
            httpx.get(f"http://127.0.0.1:{proc.port}/v1/status", headers=next(iter(keys.values())).bearer(), timeout=5)
    finally:
        proc.stop()

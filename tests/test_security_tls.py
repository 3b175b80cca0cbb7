"""Issue 14 item 9: optional mTLS without a CA is refused at startup (it would check nothing)."""

from __future__ import annotations

from pathlib import Path

import trustme

from townhall.testing.process import free_port, run_cli


def test_optional_mtls_without_ca_file_is_refused(town_dir: Path) -> None:
    server = trustme.CA().issue_cert("127.0.0.1")
    pem = town_dir / "server.pem"
    server.private_key_and_cert_chain_pem.write_to_path(pem)
    with (town_dir / "tinytown.toml").open("a") as f:
        f.write(f'[townhall.tls]\nenabled = true\ncert_file = "{pem}"\nkey_file = "{pem}"\n'
                "[townhall.mtls]\nenabled = true\nrequired = false\n")
    result = run_cli("--town", str(town_dir), "rest", "--port", str(free_port()), timeout=30)
    assert result.returncode == 1, result.stderr
    lines = result.stderr.strip().splitlines()
    assert lines[-1] == ("❌ FATAL: mTLS configuration error: mTLS enabled but ca_file is not configured "
                         "(nothing could verify client certificates)")
    assert "mTLS enabled (required" not in result.stderr
    assert sum("FATAL" in line for line in lines) == 1

"""Townhall plugin townhall-auth-oidc."""

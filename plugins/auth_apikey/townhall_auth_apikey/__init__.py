"""Townhall plugin townhall-auth-apikey."""

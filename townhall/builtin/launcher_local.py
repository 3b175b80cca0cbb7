"""Built-in plugin launcher_local (filled in by its issue)."""

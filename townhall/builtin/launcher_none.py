"""Built-in plugin launcher_none (filled in by its issue)."""

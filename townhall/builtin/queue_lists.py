"""Built-in plugin queue_lists (filled in by its issue)."""

"""Built-in plugin queue_streams (filled in by its issue)."""

"""Built-in plugins, registered through the core's own ``townhall`` entry points."""

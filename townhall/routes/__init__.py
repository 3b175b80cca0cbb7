"""Route handlers: thin, typed, one module per resource. Rules live in :mod:`townhall.services`."""

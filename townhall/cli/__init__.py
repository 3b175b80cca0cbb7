"""Console scripts ``townhall`` and ``tt``."""

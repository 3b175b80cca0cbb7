"""Routes without authentication: probes and the autoscaler signal."""

from townhall.routes import probes, scaling

PUBLIC_ROUTES = [probes.health, probes.ready, scaling.scaling]

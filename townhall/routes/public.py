"""Routes without authentication: probes and the autoscaler signal."""

from townhall.routes.errors_page import ErrorsPageController
from townhall.routes.probes import ProbeController
from townhall.routes.scaling import ScalingController

PUBLIC_ROUTES = [ProbeController, ScalingController, ErrorsPageController]

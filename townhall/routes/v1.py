"""Every ``/v1`` route handler (each declares its scope; the app mounts them under ``/v1``)."""

V1_ROUTES: list = []

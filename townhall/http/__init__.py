"""HTTP plumbing shared by every route: auth guard, timeouts, content types."""

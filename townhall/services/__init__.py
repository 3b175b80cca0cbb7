"""Services: the rules of the town, shared by REST, the CLI and the worker. No HTTP types here."""

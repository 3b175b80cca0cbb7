"""The JSON bodies townhall shows: REST responses, and what ``tt … --json`` prints, built from the
services' results in one place so that both say the same thing the same way (issue 17 item 4).

No HTTP or click types here: the routes and the CLI both import these.
"""

"""The problem types townhall answers with: one per status, each documented at an anchor of
``docs/errors.md``, which townhall itself serves at ``GET /errors`` (so a problem's ``type`` is a page
that exists wherever townhall runs, not a link to a domain nobody maintains).

``docs/errors.md`` is generated from :data:`PROBLEM_TYPES` (``python -m townhall.problem_types >
docs/errors.md``); ``tests/test_docs.py`` fails when the committed page is stale.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass

#: Where ``GET /errors`` is served; a problem's ``type`` is ``ERRORS_PATH#<anchor>``.
ERRORS_PATH = "/errors"

#: RFC 9110 §15 reason phrases where Python's ``http.HTTPStatus`` still has the older RFC 7231 ones.
RFC9110_TITLES = {413: "Content Too Large", 422: "Unprocessable Content", 416: "Range Not Satisfiable"}


@dataclass(frozen=True)
class ProblemType:
    status: int
    title: str
    #: When townhall answers with it.
    when: str
    #: What the client should do.
    remedy: str

    @property
    def anchor(self) -> str:
        """The id GitHub gives the page's heading ``## 422 Unprocessable Content``, and ``/errors`` too."""
        return re.sub(r"[^a-z0-9 -]", "", f"{self.status} {self.title}".lower()).replace(" ", "-")

    @property
    def uri(self) -> str:
        return f"{ERRORS_PATH}#{self.anchor}"


PROBLEM_TYPES: tuple[ProblemType, ...] = (
    ProblemType(400, "Bad Request", "The body is not well-formed JSON.",
                "Send a JSON document (`Content-Type: application/json`)."),
    ProblemType(401, "Unauthorized", "Credentials are missing or not valid (`WWW-Authenticate` says which).",
                "Send `Authorization: Bearer <key or token>` or `X-API-Key: <key>`."),
    ProblemType(403, "Forbidden", "The credentials lack the route's scope (`town.read`, `town.write`, "
                "`agent.manage`), or a preset needs a scope the caller lacks.",
                "Use a key or token that holds the scope named in `detail`."),
    ProblemType(404, "Not Found", "Unknown agent, task or mission, a backlog task no longer in the backlog, "
                "a log that is not on this townhall's machine (`GET /v1/tasks/{task_id}/log`, "
                "`GET /v1/agents/{agent}/log`), or no such route.",
                "Check the id or name; `GET /v1/status` lists agents, `GET /v1/tasks` lists tasks."),
    ProblemType(405, "Method Not Allowed", "The route exists but not with this method (`Allow` lists them).",
                "Use one of the methods in `Allow`."),
    ProblemType(409, "Conflict", "An ambiguous reference or id prefix (`candidates` lists the matches), a "
                "name already in use, `max_agents` reached, or a state that forbids the action (for example "
                "work for a Stopped agent, cancelling a finished task, retrying one that has not failed or "
                "been cancelled).", "Use one of the `candidates`, or change the state first as `detail` says."),
    ProblemType(413, "Content Too Large", "The body is larger than `[townhall].max_body_bytes` (1 MiB).",
                "Send less: descriptions and messages have their own limits (docs/api.md)."),
    ProblemType(415, "Unsupported Media Type", "The body is not JSON.", "Send `Content-Type: application/json`."),
    ProblemType(422, "Unprocessable Content", "Well-formed input that breaks a rule: a missing or mistyped "
                "field, a value out of range, an unknown `kind` or `cli` preset, an id that is not an id (nor "
                "4 or more of its leading hex digits), an unknown task state or event type in a filter, a "
                "`cursor` that is not a `next_cursor`. "
                "`errors[]` names each field and where it is (`body`, `path`, `query`).",
                "Fix the fields named in `errors[]`."),
    ProblemType(429, "Too Many Requests", "Rate limited (`[townhall.rate_limit]`).",
                "Wait `Retry-After` seconds and retry."),
    ProblemType(500, "Internal Server Error", "A bug in townhall (it is logged with the request id).",
                "Report it with the `request_id`."),
    ProblemType(503, "Service Unavailable", "Redis cannot be reached (or the queue cannot be measured).",
                "Retry after `Retry-After` seconds; townhall recovers by itself when Redis is back."),
    ProblemType(504, "Gateway Timeout", "The request did not complete within `[townhall].request_timeout_ms`; "
                "nothing was half written.", "Retry; if it keeps happening, check Redis latency."),
)

_BY_STATUS = {p.status: p for p in PROBLEM_TYPES}


def problem_type(status: int) -> ProblemType | None:
    return _BY_STATUS.get(status)


def type_uri(status: int) -> str:
    """A problem's ``type``: the page of its status, or ``about:blank`` (RFC 9457) for one not listed."""
    known = _BY_STATUS.get(status)
    return known.uri if known else "about:blank"


_INTRO = """Every error townhall answers is RFC 9457 problem details (`application/problem+json`):
`type`, `title`, `status`, `detail`, `instance` (the path) and `request_id`; validation errors add
`errors` (`field`, `message`, `source`: `body`, `path` or `query`), ambiguous references add `candidates`.
The `type` is a reference to a section of this page, which townhall also serves at `GET /errors` (no
credentials needed); resolve it against townhall's address, e.g. `http://127.0.0.1:8080/errors#422-unprocessable-content`."""


def render_markdown() -> str:
    lines = ["# Errors", "", "<!-- generated by `python -m townhall.problem_types`; do not edit -->", "",
             _INTRO, ""]
    for p in PROBLEM_TYPES:
        lines += [f"## {p.status} {p.title}", "", f"`type`: `{p.uri}`", "", f"**When:** {p.when}", "",
                  f"**What to do:** {p.remedy}", ""]
    return "\n".join(lines)


def _inline(text: str) -> str:
    return re.sub(r"`([^`]+)`", r"<code>\1</code>", html.escape(text, quote=False))


def render_html() -> str:
    parts = ["<!doctype html>", '<html lang="en"><head><meta charset="utf-8"><title>townhall errors</title>',
             "</head><body>", "<h1>Errors</h1>", f"<p>{_inline(_INTRO)}</p>"]
    for p in PROBLEM_TYPES:
        parts += [f'<h2 id="{p.anchor}">{p.status} {html.escape(p.title)}</h2>',
                  f"<p><code>type</code>: <code>{html.escape(p.uri)}</code></p>",
                  f"<p><strong>When:</strong> {_inline(p.when)}</p>",
                  f"<p><strong>What to do:</strong> {_inline(p.remedy)}</p>"]
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


if __name__ == "__main__":
    print(render_markdown(), end="")

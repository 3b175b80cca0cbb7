"""``GET /errors``: the page every problem's ``type`` points at (public: an error must be explainable to
a caller that holds no credentials)."""

from __future__ import annotations

from litestar import Response, get
from litestar.enums import MediaType

from townhall.problem_types import ERRORS_PATH, render_html
from townhall.routes.common import Resource

_PAGE = render_html()


class ErrorsPageController(Resource, path="/", tag="probes"):
    @get(ERRORS_PATH, summary="What each problem type means (the target of every error's `type`)",
         description="An HTML page with one section per status townhall answers with; a problem's `type` "
                     "(`/errors#422-unprocessable-content`) names its section.",
         media_type=MediaType.HTML, sync_to_thread=False)
    def errors_page(self) -> Response[str]:
        return Response(_PAGE, media_type=MediaType.HTML)

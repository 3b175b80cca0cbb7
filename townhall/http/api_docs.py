"""The API documentation under ``/schema``: the OpenAPI document and Swagger UI, served offline.

Litestar's Swagger page loads Swagger UI (and a favicon) from a CDN, so on a machine without internet it is
blank. Here the page loads Swagger UI from the installed ``swagger-ui-bundle-v2`` package (5.x: it renders
OpenAPI 3.1, which Litestar emits; the older ``swagger-ui-bundle`` ships 4.15, which cannot), served by
townhall itself at ``/schema/static/swagger-ui/``, and the page carries no inline script: it names the
document's URL in a data attribute that townhall's own ``swagger-init.js`` reads, so the page can be
served with a strict Content-Security-Policy.

Litestar answers an unknown ``/schema/...`` path with an HTML page of its own; the router's
``after_request`` turns that into the problem+json every other unknown path gets.
"""

from __future__ import annotations

from html import escape
from pathlib import Path
from typing import Any

from litestar import Request, Response, Router
from litestar.datastructures import ResponseHeader
from litestar.exceptions import NotFoundException
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import SwaggerRenderPlugin, YamlRenderPlugin
from litestar.openapi.spec import Components, SecurityScheme
from litestar.static_files import create_static_files_router
from swagger_ui_bundle import swagger_ui_path

from townhall import __version__

SCHEMA_PATH = "/schema"
SWAGGER_ASSETS = f"{SCHEMA_PATH}/static/swagger-ui"
OWN_ASSETS = f"{SCHEMA_PATH}/static/townhall"
_OWN_FILES = Path(__file__).parent / "api_docs_static"

#: Swagger UI builds its page with script from 'self' only; it sets inline styles from script (which a
#: CSP allows) and shows its icons as data: images.
DOCS_CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
            "connect-src 'self'; font-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")


class OfflineSwagger(SwaggerRenderPlugin):
    """Swagger UI from townhall's own static route, started by a script file instead of an inline one."""

    def __init__(self) -> None:
        super().__init__(
            js_url=f"{SWAGGER_ASSETS}/swagger-ui-bundle.js",
            css_url=f"{SWAGGER_ASSETS}/swagger-ui.css",
            standalone_preset_js_url=f"{SWAGGER_ASSETS}/swagger-ui-standalone-preset.js",
            favicon=f'<link rel="icon" type="image/png" href="{SWAGGER_ASSETS}/favicon-32x32.png">',
            style="",
        )

    def render(self, request: Request[Any, Any, Any], openapi_schema: dict[str, Any]) -> bytes:
        title = escape(str(openapi_schema.get("info", {}).get("title", "API")))
        spec_url = escape(self.get_openapi_json_route(request))
        return (
            "<!DOCTYPE html><html lang=\"en\"><head>"
            f"<meta charset=\"utf-8\"><title>{title}</title>{self.favicon}"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
            f"<link rel=\"stylesheet\" href=\"{self.css_url}\">"
            f"<link rel=\"stylesheet\" href=\"{OWN_ASSETS}/swagger.css\">"
            f"<script src=\"{self.js_url}\"></script>"
            f"<script src=\"{self.standalone_preset_js_url}\"></script>"
            f"<script src=\"{OWN_ASSETS}/swagger-init.js\" defer></script>"
            f"</head><body><div id=\"swagger-ui\" data-spec-url=\"{spec_url}\"></div></body></html>"
        ).encode()


async def _problem_for_unknown_page(response: Response[Any]) -> Response[Any]:
    # Litestar's catch-all for /schema/{path} *returns* an HTML 404; raising instead lets the app's
    # exception handler answer with the same problem+json as any other unknown path.
    if response.status_code == 404:
        raise NotFoundException(detail="No such API documentation page")
    return response


def docs_router() -> Router:
    """The router Litestar fills with the document and UI routes, plus the static assets they load."""
    return Router(
        SCHEMA_PATH,
        route_handlers=[
            create_static_files_router(path="/static/swagger-ui", directories=[swagger_ui_path],
                                       include_in_schema=False, name="swagger-ui-assets"),
            create_static_files_router(path="/static/townhall", directories=[_OWN_FILES],
                                       include_in_schema=False, name="townhall-docs-assets"),
        ],
        include_in_schema=False,
        after_request=_problem_for_unknown_page,
        response_headers=[ResponseHeader(name="Content-Security-Policy", value=DOCS_CSP),
                          ResponseHeader(name="X-Content-Type-Options", value="nosniff")],
    )


def openapi_config() -> OpenAPIConfig:
    return OpenAPIConfig(
        title="Townhall",
        version=__version__,
        description="REST control plane of a Tinytown town.",
        path=SCHEMA_PATH,
        use_handler_docstrings=True,  # a handler's docstring is its operation's description
        openapi_router=docs_router(),
        render_plugins=[OfflineSwagger(), YamlRenderPlugin()],
        components=Components(
            security_schemes={
                "bearer": SecurityScheme(type="http", scheme="bearer", description="API key or OIDC access token"),
                "apiKey": SecurityScheme(type="apiKey", name="X-API-Key", security_scheme_in="header"),
            }
        ),
    )

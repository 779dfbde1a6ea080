"""/docs: the API's interactive documentation (Swagger UI) from the installed packages, never a CDN, so it
works offline and under a CSP that allows this server's own scripts only (SecurityHeadersMiddleware)."""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse, HTMLResponse

from ..errors import ApiError

router = APIRouter(prefix="/docs", include_in_schema=False)
_HERE = Path(__file__).resolve().parent.parent
_SWAGGER = files("fastapi_swagger") / "resources"  # Swagger UI's build, shipped by the fastapi-swagger package
ASSETS = {
    "swagger-ui-bundle.js": (_SWAGGER / "swagger-ui-bundle.js", "text/javascript"),
    "swagger-ui.css": (_SWAGGER / "swagger-ui.css", "text/css"),
    "favicon-32x32.png": (_SWAGGER / "favicon-32x32.png", "image/png"),
    "docs.js": (_HERE / "static" / "docs.js", "text/javascript"),
}
_PAGE = (_HERE / "templates" / "docs.html").read_text(encoding="utf-8")


@router.get("", response_class=HTMLResponse)
def docs() -> HTMLResponse:
    return HTMLResponse(_PAGE)


@router.get("/{name}")
def asset(name: str) -> FileResponse:
    if name not in ASSETS:
        raise ApiError(404, "not_found", f"no /docs/{name}")
    path, media_type = ASSETS[name]
    return FileResponse(str(path), media_type=media_type, headers={"Cache-Control": "public, max-age=3600"})

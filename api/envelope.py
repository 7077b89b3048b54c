"""The spec's envelopes: `{"data": …, "error": null}` and `{"error": {code, message}, "data": null}`."""

from typing import Any

from fastapi.responses import JSONResponse


def ok(data: Any) -> dict[str, Any]:
    return {"data": data, "error": None}


def error_response(
    status: int, code: str, message: str, headers: dict[str, str] | None = None
) -> JSONResponse:
    return JSONResponse(
        status_code=status,
        content={"error": {"code": code, "message": message}, "data": None},
        headers=headers,
    )


class ApiError(Exception):
    """Raised by routes; rendered in the error envelope."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message

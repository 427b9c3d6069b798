import json

import pytest

from quotio_core.errors import BadRequest, GatewayError, ModelUnavailable, NoCredential, render_error


def render(fmt: str, status: int, code: str = "some_code", message: str = "went wrong") -> dict:
    return json.loads(render_error(fmt, status, code, message))


@pytest.mark.parametrize(
    ("status", "kind"),
    [
        (400, "invalid_request_error"),
        (401, "authentication_error"),
        (403, "permission_error"),
        (404, "not_found_error"),
        (413, "request_too_large"),
        (429, "rate_limit_error"),
        (500, "api_error"),
        (502, "api_error"),
        (503, "overloaded_error"),  # the same reading as the translators
        (529, "overloaded_error"),
        (409, "invalid_request_error"),
    ],
)
def test_anthropic_shape(status: int, kind: str) -> None:
    body = render("anthropic", status, "model_not_found", "no such model")
    assert body == {
        "type": "error",
        "error": {"type": kind, "message": "no such model", "code": "model_not_found"},
    }


@pytest.mark.parametrize("fmt", ["openai", "responses"])
@pytest.mark.parametrize(
    ("status", "kind"),
    [
        (400, "invalid_request_error"),
        (401, "authentication_error"),
        (403, "permission_error"),
        (404, "invalid_request_error"),
        (429, "rate_limit_error"),
        (500, "server_error"),
        (503, "server_error"),
        (422, "invalid_request_error"),
    ],
)
def test_openai_shape(fmt: str, status: int, kind: str) -> None:
    body = render(fmt, status, "missing_model", "say which model")
    assert body == {
        "error": {"message": "say which model", "type": kind, "param": None, "code": "missing_model"}
    }


@pytest.mark.parametrize("fmt", ["management", "unknown-format", "kiro"])
def test_a_format_without_an_error_shape_is_refused_not_guessed(fmt: str) -> None:
    with pytest.raises(ValueError, match="has no errors"):
        render(fmt, 400, "x", "y")


@pytest.mark.parametrize(
    ("status", "google"),
    [
        (400, "INVALID_ARGUMENT"),
        (401, "UNAUTHENTICATED"),
        (403, "PERMISSION_DENIED"),
        (404, "NOT_FOUND"),
        (409, "ABORTED"),
        (429, "RESOURCE_EXHAUSTED"),
        (500, "INTERNAL"),
        (501, "UNIMPLEMENTED"),
        (502, "INTERNAL"),
        (503, "UNAVAILABLE"),
        (504, "DEADLINE_EXCEEDED"),
        (422, "FAILED_PRECONDITION"),
    ],
)
def test_gemini_shape(status: int, google: str) -> None:
    body = render("gemini", status, "model_not_found", "no such model")
    assert body == {
        "error": {"code": status, "message": "no such model", "status": google,
                  "reason": "model_not_found"}
    }


@pytest.mark.parametrize("fmt", ["anthropic", "openai", "gemini"])
def test_message_is_escaped_json(fmt: str) -> None:
    message = 'quote " backslash \\ newline \n unicode é'
    raw = render_error(fmt, 400, "c", message)
    assert isinstance(raw, bytes)
    body = json.loads(raw)
    assert body["error"]["message"] == message


def test_exception_classes() -> None:
    e = BadRequest("body is not JSON")
    assert (e.status, e.code, str(e)) == (400, "invalid_request_error", "body is not JSON")
    assert BadRequest("x", "missing_model").code == "missing_model"
    m = ModelUnavailable("nope")
    assert (m.status, m.code, m.message) == (404, "model_not_found", "nope")
    err = NoCredential(429, "model_cooldown", "all cooling", extra={"reset_seconds": 3})
    assert isinstance(err, GatewayError)
    assert (err.status, err.code, str(err), err.extra) == (429, "model_cooldown", "all cooling", {"reset_seconds": 3})
    with pytest.raises(GatewayError):
        raise ModelUnavailable("x")

"""An unexpected failure is a JSON 500 and a log line without its message."""

from __future__ import annotations

import logging

import pytest
from fastapi.testclient import TestClient

from factories import api_error
from privault.runtime import Runtime
from privault.web.app import create_app


def test_an_unexpected_failure_is_a_json_500_that_logs_no_message(
    runtime: Runtime, caplog: pytest.LogCaptureFixture
) -> None:
    app = create_app(runtime)
    marker = "mk-unexpected-7f3a"

    @app.get("/boom")
    def boom() -> None:
        raise RuntimeError(f"a message quoting input: {marker}")

    caplog.set_level(logging.DEBUG)
    with TestClient(app) as client:
        response = client.get("/boom")
    assert api_error(response, 500, "internal_error") == "something went wrong on our side"
    assert "RuntimeError" in caplog.text
    assert marker not in caplog.text
    assert marker not in response.text

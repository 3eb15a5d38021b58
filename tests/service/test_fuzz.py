"""Property-based fuzzing of every ``/v1`` operation from the service's own OpenAPI schema (schemathesis).

Valid and invalid requests are generated from the schema and sent to the app in process (auth off,
so that generated requests reach the handlers); no response may be a 5xx, and every response must
match the schema the service publishes for its status code.

The schema is read from an app built at import time (building one needs no model); the requests go
to a second app whose lifespan runs on a fresh copy of a trained version. (Schemathesis' lazy
``from_fixture`` loader does not work with pytest 9, hence the two apps.)
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from fastapi.testclient import TestClient
from helpers import copy_version
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.python.asgi import ASGIClient
from schemathesis.specs.openapi.checks import response_schema_conformance

from shoprec.service.app import create_app
from shoprec.service.settings import ServiceSettings

schema = schemathesis.openapi.from_dict(create_app(ServiceSettings(auth=False)).openapi()).include(path_regex="^/v1/")


@pytest.fixture(scope="module")
def session(trained: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ASGIClient]:
    """A requests session that calls the running app in process (its lifespan run by TestClient)."""
    models = tmp_path_factory.mktemp("fuzz-models")
    copy_version(trained, models)
    app = create_app(ServiceSettings(models_dir=str(models), auth=False, poll_seconds=3600))
    with TestClient(app):
        wait_for_warm_cache(app)
        yield ASGIClient(app)


def wait_for_warm_cache(app, seconds: float = 120.0) -> None:
    """Fuzz only once the feed cache's warm-up thread is done (it now encodes the shoppers' past
    queries). Without this wait, 2 of 5 runs failed inside hypothesis with CPython 3.11.7's
    spurious "SystemError: AST constructor recursion depth mismatch" (cpython gh-106905, seen in
    threaded programs) while it parsed a strategy's source, both on the first operations, when the
    warm-up may still run."""
    warming = app.state.engine.cache.warming
    deadline = time.monotonic() + seconds
    while not (warming and all(state["finished"] for state in warming.values())):
        assert time.monotonic() < deadline, f"the feed cache did not finish warming: {warming}"
        time.sleep(0.05)


@schema.parametrize()
@settings(max_examples=15, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_operation_answers_5xx_or_off_schema(case: schemathesis.Case, session: ASGIClient) -> None:
    case.call_and_validate(
        base_url="http://testserver", session=session, checks=[not_a_server_error, response_schema_conformance]
    )

"""The inference API through Flask's test client: every error path, readiness, metrics, OpenAPI."""

from __future__ import annotations

import io
import json
import logging
from typing import TYPE_CHECKING, Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from openapi_spec_validator import validate
from prometheus_client.parser import text_string_to_metric_families

from crashed.core.features import CATEGORY_FEATURES, RAW_FEATURES
from crashed.serving.app import create_app
from crashed.serving.limits import MAX_BATCH, MAX_BODY_BYTES, MAX_QUERY_BYTES
from crashed.serving.model_state import ModelState
from crashed.serving.requests import (
    BatchResponse,
    ErrorResponse,
    NotReadyResponse,
    PredictionResponse,
)

if TYPE_CHECKING:
    from tests.serving_fixtures import Served


@pytest.fixture
def app(served: Served) -> Flask:
    return create_app(served.settings, served.lake)


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


def error_of(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == "application/json"
    body = response.get_json()
    assert isinstance(body["error"], str) and body["error"]
    model = NotReadyResponse if status == 503 else ErrorResponse
    model.model_validate(body)  # the documented shape (it is what /openapi.json publishes)
    return body


def not_ready_client(served: Served) -> FlaskClient:
    return create_app(served.settings, served.lake).test_client()


def assert_not_ready(client: FlaskClient, *reason_parts: str) -> str:
    ready = client.get("/readyz")
    body = error_of(ready, 503)
    assert body["ready"] is False
    for part in reason_parts:
        assert part in body["reason"], body["reason"]
    predict = error_of(client.get("/predict"), 503)
    assert "prediction" not in predict and predict["reason"] == body["reason"]
    assert client.get("/predict").headers["Retry-After"]
    error_of(client.post("/predict", json={"instances": [{}]}), 503)
    error_of(client.get("/model"), 503)
    assert client.get("/healthz").status_code == 200  # alive, just not ready
    assert client.get("/openapi.json").status_code == 200
    assert client.get("/metrics").status_code == 200
    return body["reason"]


# ---- readiness -------------------------------------------------------------------------------


def test_good_model_is_ready(client: FlaskClient, served: Served) -> None:
    response = client.get("/readyz")
    assert response.status_code == 200
    body = response.get_json()
    assert body["ready"] is True
    assert body["model"] == {
        "name": "crashed",
        "run_id": "run-a",
        "sha256": served.reference.artifacts.model.sha256,
    }
    assert client.get("/healthz").get_json()["status"] == "alive"


def test_no_model_promoted_yet(served: Served) -> None:
    served.set_reference(None)
    assert_not_ready(not_ready_client(served), "no model promoted yet")


def test_missing_reference_file(served: Served) -> None:
    served.reference_path.unlink()
    assert_not_ready(not_ready_client(served), "no such model reference file")


def test_invalid_reference(served: Served) -> None:
    data = json.loads(served.reference_path.read_text())
    data["artifacts"]["model"]["sha256"] = "not-a-sha"
    served.reference_path.write_text(json.dumps(data))
    assert_not_ready(not_ready_client(served), "invalid reference", "artifacts.model.sha256")


def test_checksum_mismatch_never_serves(served: Served, caplog: pytest.LogCaptureFixture) -> None:
    path = served.lake.path_for(served.reference.artifacts.model.uri)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01  # flip one bit: same size, different sha256
    path.write_bytes(bytes(data))
    with caplog.at_level(logging.ERROR, logger="crashed.serving.model_state"):
        client = not_ready_client(served)
    reason = assert_not_ready(client, "artifact model", "failed verification", "sha256")
    assert any(reason in r.getMessage() for r in caplog.records), "reason not logged"
    assert not (served.home / "cache" / served.reference.artifacts.model.sha256).exists()


def test_size_mismatch(served: Served) -> None:
    path = served.lake.path_for(served.reference.artifacts.metrics.uri)
    path.write_bytes(path.read_bytes() + b" ")
    assert_not_ready(not_ready_client(served), "artifact metrics", "size")


def test_missing_artifact(served: Served) -> None:
    served.lake.path_for(served.reference.artifacts.distributions.uri).unlink()
    assert_not_ready(not_ready_client(served), "no object at", "distributions.json")


def test_verified_bytes_that_are_not_a_model(served: Served) -> None:
    info = served.lake.put_bytes(served.reference.artifacts.model.uri, b'{"not": "a model"}')
    artifacts = served.reference.artifacts.model_copy(
        update={"model": served.reference.artifacts.model.model_copy(update=info.as_dict())}
    )
    served.set_reference(served.reference.model_copy(update={"artifacts": artifacts}))
    assert_not_ready(not_ready_client(served), "artifact model")


def test_not_ready_retries_and_recovers(served: Served) -> None:
    good = served.reference_path.read_text()
    served.set_reference(None)
    state = ModelState.from_settings(served.settings, served.lake)
    state.retry_seconds = 0.0
    state.load()
    client = create_app(state=state).test_client()
    assert client.get("/readyz").status_code == 503
    served.reference_path.write_text(good)  # the reference gets fixed (e.g. a volume update)
    assert client.get("/readyz").status_code == 200
    assert client.get("/predict").status_code == 200
    assert state.attempts == 3  # boot, a failed retry, the successful one


def test_a_ready_model_is_not_reloaded_behind_its_back(client: FlaskClient, served: Served) -> None:
    served.set_reference(None)
    assert client.get("/readyz").status_code == 200
    assert client.get("/predict").get_json()["model"]["run_id"] == "run-a"


# ---- GET /predict ----------------------------------------------------------------------------


def test_predict_with_defaults(client: FlaskClient, app: Flask, served: Served) -> None:
    body = client.get("/predict").get_json()
    state: ModelState = app.extensions["crashed"]["state"]
    encoder = state.model.predictor.encoder
    assert set(body) == {"prediction", "probability", "threshold", "features", "model"}
    assert 0 <= body["probability"] <= 1
    assert body["prediction"] == int(body["probability"] >= body["threshold"])
    assert body["features"] == encoder.resolve({})
    assert body["model"]["sha256"] == served.reference.artifacts.model.sha256


def test_predict_uses_given_values(client: FlaskClient) -> None:
    body = client.get(
        "/predict?day_of_week=saturday&accident_time=02:10&males=2&light_condition="
    ).get_json()
    assert body["features"]["day_of_week"] == "saturday"
    assert body["features"]["accident_time"] == "02:10"
    assert body["features"]["males"] == "2"
    assert body["features"]["light_condition"] is None  # explicitly empty = unknown
    night = body["probability"]
    day = client.get("/predict?day_of_week=Tuesday&accident_time=14:00").get_json()
    assert night > day["probability"]


@pytest.mark.parametrize(
    ("query", "field", "fragment"),
    [
        ("colour=red", "colour", "unknown parameter"),
        ("males=two", "males", "whole number"),
        ("males=-1", "males", "whole number"),
        ("males=1.5", "males", "whole number"),
        ("males=nan", "males", "whole number"),
        ("males=1e9", "males", "whole number"),
        ("accident_time=25:00", "accident_time", "time"),
        ("day_of_week=Caturday", "day_of_week", "never seen in training"),
        ("day_of_week=%FF%FE", "day_of_week", "never seen in training"),
        ("speed_zone=61%20km/hr", "speed_zone", "allowed"),
        ("males=1&males=2", "males", "2 times"),
        ("=1", "", "unknown parameter"),
    ],
)
def test_predict_bad_query_is_400_naming_the_field(
    client: FlaskClient, query: str, field: str, fragment: str
) -> None:
    body = error_of(client.get(f"/predict?{query}"), 400)
    assert body["field"] == field
    assert fragment in body["error"]


def test_unseen_category_lists_allowed_values(client: FlaskClient) -> None:
    body = error_of(client.get("/predict?day_of_week=Funday"), 400)
    assert "Saturday" in body["allowed"]
    assert "Saturday" in body["error"]
    for feature in CATEGORY_FEATURES:
        assert error_of(client.get(f"/predict?{feature}=zzz"), 400)["field"] == feature


def test_oversized_query_is_413(client: FlaskClient) -> None:
    body = error_of(client.get("/predict?males=1&pad=" + "x" * MAX_QUERY_BYTES), 413)
    assert body["field"] == "query"


# ---- POST /predict ---------------------------------------------------------------------------


def test_batch_matches_single_requests(client: FlaskClient) -> None:
    instances = [
        {"day_of_week": "Saturday", "accident_time": "02:00"},
        {},
        {"males": 2, "females": 0.0, "light_condition": None, "speed_zone": "80 km/hr"},
    ]
    body = client.post("/predict", json={"instances": instances}).get_json()
    assert set(body) == {"predictions", "threshold", "model"}
    assert len(body["predictions"]) == 3
    singles = [
        "/predict?day_of_week=Saturday&accident_time=02:00",
        "/predict",
        "/predict?males=2&females=0&light_condition=&speed_zone=80+km/hr",
    ]
    for predicted, url in zip(body["predictions"], singles, strict=True):
        single = client.get(url).get_json()
        assert predicted == {
            "prediction": single["prediction"],
            "probability": single["probability"],
        }


def test_batch_of_the_maximum_size(client: FlaskClient) -> None:
    body = client.post("/predict", json={"instances": [{}] * MAX_BATCH}).get_json()
    assert len(body["predictions"]) == MAX_BATCH


@pytest.mark.parametrize(
    ("payload", "field", "fragment"),
    [
        ("{bad json", "body", "malformed JSON"),
        ("", "body", "malformed JSON"),
        ('{"instances": [{"males": NaN}]}', "body", "malformed JSON"),
        ("[" * 50_000 + "]" * 50_000, "body", "malformed JSON"),
        ("[]", "body", "JSON object"),
        ('"instances"', "body", "JSON object"),
        ("{}", "instances", "non-empty list"),
        ('{"instances": []}', "instances", "non-empty list"),
        ('{"instances": {"males": 1}}', "instances", "non-empty list"),
        ('{"instances": [{}], "extra": 1}', "extra", "unknown key"),
        ('{"instances": [{}, 3]}', "instances", "must be an object"),
        ('{"instances": [{}, null]}', "instances", "must be an object"),
        ('{"instances": [{"colour": "red"}]}', "colour", "unknown feature"),
        ('{"instances": [{"males": true}]}', "males", "a boolean"),
        ('{"instances": [{"males": [1]}]}', "males", "a list"),
        ('{"instances": [{"males": {"n": 1}}]}', "males", "an object"),
        ('{"instances": [{"males": 1, "males": 2}]}', "males", "twice"),
        ('{"instances": [{"males": -3}]}', "males", "whole number"),
        ('{"instances": [{"males": 1e400}]}', "males", "whole number"),
        ('{"instances": [{}, {}, {"day_of_week": "Caturday"}]}', "day_of_week", "never seen"),
    ],
)
def test_batch_bad_body_is_400_naming_the_field(
    client: FlaskClient, payload: str, field: str, fragment: str
) -> None:
    response = client.post("/predict", data=payload, content_type="application/json")
    body = error_of(response, 400)
    assert body["field"] == field
    assert fragment in body["error"]


def test_batch_error_gives_the_instance_index(client: FlaskClient) -> None:
    body = error_of(
        client.post("/predict", json={"instances": [{}, {}, {"day_of_week": "Caturday"}]}), 400
    )
    assert body["index"] == 2
    assert "Saturday" in body["allowed"]


def test_batch_too_many_instances_is_413(client: FlaskClient) -> None:
    body = error_of(client.post("/predict", json={"instances": [{}] * (MAX_BATCH + 1)}), 413)
    assert body["field"] == "instances"


def test_oversized_body_is_413(client: FlaskClient) -> None:
    payload = b'{"instances": [{"dca_code": "' + b"x" * MAX_BODY_BYTES + b'"}]}'
    body = error_of(client.post("/predict", data=payload, content_type="application/json"), 413)
    assert body["field"] == "body"


def test_streamed_oversized_body_is_413(client: FlaskClient) -> None:
    """A chunked body (no Content-Length, as gunicorn passes it) is cut off at the limit."""
    payload = b'{"instances": [{"dca_code": "' + b"x" * MAX_BODY_BYTES + b'"}]}'
    response = client.post(
        "/predict",
        input_stream=io.BytesIO(payload),
        content_type="application/json",
        headers={"Transfer-Encoding": "chunked"},
        environ_overrides={"wsgi.input_terminated": True},
    )
    assert error_of(response, 413)["field"] == "body"


def test_streamed_body_within_the_limit_is_read_whole(client: FlaskClient) -> None:
    payload = json.dumps({"instances": [{"males": 1}] * MAX_BATCH}).encode()
    response = client.post(
        "/predict",
        input_stream=io.BytesIO(payload),
        content_type="application/json",
        headers={"Transfer-Encoding": "chunked"},
        environ_overrides={"wsgi.input_terminated": True},
    )
    assert len(response.get_json()["predictions"]) == MAX_BATCH


# ---- other methods and paths ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("PUT", "/predict"),
        ("DELETE", "/predict"),
        ("PATCH", "/predict"),
        ("POST", "/healthz"),
        ("POST", "/readyz"),
        ("DELETE", "/model"),
        ("POST", "/metrics"),
        ("PUT", "/openapi.json"),
    ],
)
def test_wrong_method_is_405_json(client: FlaskClient, method: str, path: str) -> None:
    response = client.open(path, method=method)
    body = error_of(response, 405)
    assert method in body["error"]
    assert "GET" in response.headers["Allow"]


def test_unknown_path_is_404_json(client: FlaskClient) -> None:
    assert "/openapi.json" in error_of(client.get("/predictions"), 404)["error"]


def test_a_bug_is_a_logged_json_500(
    client: FlaskClient,
    app: Flask,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    predictor = app.extensions["crashed"]["state"].model.predictor

    def broken(params: object) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr(predictor, "predict_one", broken)
    with caplog.at_level(logging.ERROR, logger="crashed.serving.app"):
        body = error_of(client.get("/predict"), 500)
    assert "boom" not in body["error"]  # no internals to the client …
    assert any(
        "internal error" in r.getMessage() and r.exc_info for r in caplog.records
    )  # … logged


# ---- /model, /metrics, /openapi.json --------------------------------------------------------


def test_model_endpoint(client: FlaskClient, served: Served, small_model: Any) -> None:
    body = client.get("/model").get_json()
    assert body["reference"]["model"]["run_id"] == "run-a"
    assert (
        body["reference"]["artifacts"]["model"]["sha256"] == served.reference.artifacts.model.sha256
    )
    assert body["metrics"] == small_model.metrics
    assert "Saturday" in body["features"]["day_of_week"]["allowed"]
    assert set(body["features"]) == set(RAW_FEATURES)


def _counts(client: FlaskClient) -> dict[tuple[str, str, str], float]:
    text = client.get("/metrics").get_data(as_text=True)
    out = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "crashed_http_requests_total":
                labels = sample.labels
                out[(labels["route"], labels["method"], labels["status"])] = sample.value
    return out


def test_metrics_count_requests_by_route_and_status(client: FlaskClient) -> None:
    for _ in range(3):
        client.get("/predict")
    client.get("/predict?males=x")
    client.post("/predict", json={"instances": [{}, {}]})
    client.put("/predict")
    client.get("/nowhere")
    counts = _counts(client)
    assert counts[("/predict", "GET", "200")] == 3
    assert counts[("/predict", "GET", "400")] == 1
    assert counts[("/predict", "POST", "200")] == 1
    assert counts[("/predict", "PUT", "405")] == 1
    assert counts[("unmatched", "GET", "404")] == 1
    text = client.get("/metrics").get_data(as_text=True)
    assert "crashed_prediction_probability_count 5.0" in text  # 3 single + 2 in the batch
    assert "crashed_http_request_duration_seconds_bucket" in text
    assert "crashed_model_ready 1.0" in text


def test_metrics_label_methods_are_bounded(client: FlaskClient) -> None:
    client.open("/predict", method="BREW")
    assert ("/predict", "other", "405") in _counts(client)


def test_openapi_describes_everything(client: FlaskClient) -> None:
    document = client.get("/openapi.json").get_json()
    assert document["openapi"].startswith("3.")
    assert set(document["paths"]) == {
        "/predict",
        "/healthz",
        "/readyz",
        "/model",
        "/metrics",
        "/openapi.json",
    }
    get = document["paths"]["/predict"]["get"]
    parameters = {p["name"]: p["schema"] for p in get["parameters"]}
    assert set(parameters) == {*RAW_FEATURES, "id"}  # id: the client's, never a feature
    assert parameters["id"] == {
        "type": "string",
        "maxLength": 128,
        "examples": ["T20180012345"],
        "description": parameters["id"]["description"],
    }
    assert "Saturday" in parameters["day_of_week"]["enum"]
    assert parameters["males"]["type"] == "integer"
    assert "default" in parameters["speed_zone"]
    for status in ("200", "400", "413", "503"):
        assert status in get["responses"]
    assert "post" in document["paths"]["/predict"]
    assert "run-a" in document["info"]["description"]


def test_openapi_is_valid_and_generated_from_the_models(
    client: FlaskClient, served: Served
) -> None:
    document = client.get("/openapi.json").get_json()
    validate(document)  # raises on an invalid OpenAPI 3.1 document
    schemas = document["components"]["schemas"]
    assert schemas["BatchRequest"]["properties"]["instances"]["maxItems"] == MAX_BATCH
    assert schemas["BatchRequest"]["additionalProperties"] is False
    assert set(schemas["Instance"]["properties"]) == {*RAW_FEATURES, "id"}
    assert set(schemas["PredictionResponse"]["required"]) == {
        "prediction",
        "probability",
        "threshold",
        "features",
        "model",
    }
    post = document["paths"]["/predict"]["post"]
    assert post["requestBody"]["content"]["application/json"]["schema"]["$ref"].endswith(
        "/BatchRequest"
    )
    served.set_reference(None)
    empty = not_ready_client(served).get("/openapi.json").get_json()
    validate(empty)
    assert "enum" not in empty["components"]["schemas"]["Instance"]["properties"]["day_of_week"]


# ---- one /predict path, answers matching the response models ------------------------------


def test_answers_validate_against_the_response_models(client: FlaskClient) -> None:
    one = client.get("/predict?day_of_week=Saturday&males=2")
    assert one.headers["Content-Length"] == str(len(one.get_data()))
    parsed = PredictionResponse.model_validate_json(one.get_data())
    assert parsed.features["males"] == "2"
    batch = client.post("/predict", json={"instances": [{}, {"males": 3}]})
    assert len(BatchResponse.model_validate_json(batch.get_data()).predictions) == 2


def test_head_and_options_on_predict(client: FlaskClient) -> None:
    head = client.head("/predict?males=2")
    assert head.status_code == 200 and head.get_data() == b""
    options = client.options("/predict")
    assert options.status_code == 200
    assert set(options.headers["Allow"].split(", ")) >= {"GET", "POST"}


def test_a_missing_lake_is_a_reason_not_a_crash(served: Served) -> None:
    app = create_app(served.settings, None, lake_problem="no Google credentials for GCS")
    reason = assert_not_ready(app.test_client(), "cannot open the lake", "no Google credentials")
    assert "Traceback" not in reason


def test_create_app_needs_settings_or_state() -> None:
    with pytest.raises(TypeError):
        create_app()

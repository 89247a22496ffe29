"""A small, stateful fake of the Kubeflow Pipelines v2beta1 REST API that ``kfp.Client`` uses.

Run it as ``python -m tests.servers.fake_kfp --port P [--token T] [--multi-user]``.

JSON bodies follow the ``kfp_server_api`` models' attribute maps (snake_case, except the list of
recurring runs, which the client reads from ``recurringRuns``). What it serves, under
``/apis/v2beta1``:

* ``healthz``
* ``pipelines`` GET (``filter`` on ``display_name``/``name``, paging) / POST (create, no version),
  ``pipelines/upload`` and ``pipelines/upload_version`` (multipart ``uploadfile``; a version
  name is unique within its pipeline: 409), ``pipelines/:id`` GET/DELETE,
  ``pipelines/:id/versions`` GET, ``pipelines/:id/versions/:vid`` GET/DELETE
* ``experiments`` GET/POST, ``experiments/:id`` GET
* ``recurringruns`` GET (``experiment_id``, ``namespace``, paging) / POST (checks the
  experiment, the version reference, and that the cron has 5 or 6 fields),
  ``recurringruns/:id`` GET/DELETE, ``…:enable``, ``…:disable``
* ``runs`` GET (``experiment_id``, ``namespace``, paging) / POST (a run of a pipeline version:
  checks the experiment and the version reference; starts ``PENDING``), ``runs/:id`` GET

Like the real server in single-user mode, a non-empty ``namespace`` on experiment calls is a
400; with ``--multi-user`` experiments need one. With ``--token T`` every API call needs
``Authorization: Bearer T`` (401 otherwise).

Test control (no token needed): ``GET /__control__/state`` (everything, plus a log of the
mutating requests served), ``POST /__control__/runs`` (add a run: ``{"recurring_run_id",
"experiment_id", "state"}``; with an existing ``run_id`` it updates that run),
``POST /__control__/reset``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import re
import threading
import uuid
from typing import Any, ClassVar

import yaml
from werkzeug.exceptions import HTTPException
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

API = "/apis/v2beta1"


class ApiError(Exception):
    """An error answered as the real server does: ``{"error", "code", "message"}``."""

    GRPC: ClassVar[dict[int, int]] = {400: 3, 401: 16, 403: 7, 404: 5, 409: 6}

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def _now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _json(payload: Any, status: int = 200) -> Response:
    return Response(json.dumps(payload), status=status, mimetype="application/json")


class FakeKfp:
    """The WSGI app. State lives in memory, guarded by one lock."""

    def __init__(self, token: str | None = None, multi_user: bool = False) -> None:
        self.token = token
        self.multi_user = multi_user
        self.lock = threading.Lock()
        self.reset()
        self.routes: list[tuple[str, re.Pattern[str], Any]] = [
            ("GET", re.compile(r"/healthz"), self.healthz),
            ("GET", re.compile(r"/pipelines"), self.list_pipelines),
            ("POST", re.compile(r"/pipelines"), self.create_pipeline),
            ("POST", re.compile(r"/pipelines/upload"), self.upload_pipeline),
            ("POST", re.compile(r"/pipelines/upload_version"), self.upload_version),
            ("GET", re.compile(r"/pipelines/(?P<pid>[^/]+)"), self.get_pipeline),
            ("DELETE", re.compile(r"/pipelines/(?P<pid>[^/]+)"), self.delete_pipeline),
            ("GET", re.compile(r"/pipelines/(?P<pid>[^/]+)/versions"), self.list_versions),
            (
                "GET",
                re.compile(r"/pipelines/(?P<pid>[^/]+)/versions/(?P<vid>[^/]+)"),
                self.get_version,
            ),
            (
                "DELETE",
                re.compile(r"/pipelines/(?P<pid>[^/]+)/versions/(?P<vid>[^/]+)"),
                self.delete_version,
            ),
            ("GET", re.compile(r"/experiments"), self.list_experiments),
            ("POST", re.compile(r"/experiments"), self.create_experiment),
            ("GET", re.compile(r"/experiments/(?P<eid>[^/:]+)"), self.get_experiment),
            ("GET", re.compile(r"/recurringruns"), self.list_recurring_runs),
            ("POST", re.compile(r"/recurringruns"), self.create_recurring_run),
            ("GET", re.compile(r"/recurringruns/(?P<rid>[^/:]+)"), self.get_recurring_run),
            ("DELETE", re.compile(r"/recurringruns/(?P<rid>[^/:]+)"), self.delete_recurring_run),
            ("POST", re.compile(r"/recurringruns/(?P<rid>[^/:]+):enable"), self.enable),
            ("POST", re.compile(r"/recurringruns/(?P<rid>[^/:]+):disable"), self.disable),
            ("GET", re.compile(r"/runs"), self.list_runs),
            ("POST", re.compile(r"/runs"), self.create_run),
            ("GET", re.compile(r"/runs/(?P<run_id>[^/:]+)"), self.get_run),
        ]

    def reset(self) -> None:
        self.pipelines: dict[str, dict[str, Any]] = {}
        self.versions: dict[str, dict[str, Any]] = {}
        self.experiments: dict[str, dict[str, Any]] = {}
        self.recurring_runs: dict[str, dict[str, Any]] = {}
        self.runs: dict[str, dict[str, Any]] = {}
        self.log: list[dict[str, Any]] = []

    # -- WSGI -----------------------------------------------------------------------------

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        request = Request(environ)
        try:
            response = self.dispatch(request)
        except ApiError as error:
            code = ApiError.GRPC.get(error.status, 2)
            response = _json(
                {"error": error.message, "code": code, "message": error.message}, error.status
            )
        except HTTPException as error:
            response = _json({"error": error.description, "code": 3}, error.code or 400)
        if request.method != "GET" and not request.path.startswith("/__control__"):
            with self.lock:
                self.log.append(
                    {
                        "method": request.method,
                        "path": request.path,
                        "query": dict(request.args),
                        "status": response.status_code,
                    }
                )
        return response(environ, start_response)

    def dispatch(self, request: Request) -> Response:
        path = request.path
        if path.startswith("/__control__/"):
            return self.control(request, path.removeprefix("/__control__/"))
        if not path.startswith(API):
            raise ApiError(404, f"no route {path}")
        authorization = request.headers.get("Authorization", "")
        if self.token is not None and authorization != f"Bearer {self.token}":
            raise ApiError(401, "Unauthenticated: missing or invalid bearer token")
        sub = path.removeprefix(API)
        matched_path = False
        for method, pattern, handler in self.routes:
            found = pattern.fullmatch(sub)
            if found:
                matched_path = True
                if method == request.method:
                    with self.lock:
                        return _json(handler(request, **found.groupdict()))
        if matched_path:
            raise ApiError(405, f"method {request.method} not allowed on {path}")
        raise ApiError(404, f"no route {path}")

    def control(self, request: Request, action: str) -> Response:
        with self.lock:
            if action == "state" and request.method == "GET":
                return _json(
                    {
                        "pipelines": list(self.pipelines.values()),
                        "versions": [
                            {k: v for k, v in version.items() if k != "pipeline_spec"}
                            for version in self.versions.values()
                        ],
                        "experiments": list(self.experiments.values()),
                        "recurring_runs": list(self.recurring_runs.values()),
                        "runs": list(self.runs.values()),
                        "log": list(self.log),
                    }
                )
            if action == "runs" and request.method == "POST":
                body = request.get_json(force=True)
                if body.get("run_id") in self.runs:  # update (e.g. its state)
                    self.runs[body["run_id"]].update(body)
                    return _json(self.runs[body["run_id"]])
                run = {
                    "run_id": str(uuid.uuid4()),
                    "display_name": body.get("display_name", "run"),
                    "experiment_id": body.get("experiment_id", ""),
                    "recurring_run_id": body.get("recurring_run_id", ""),
                    "state": body.get("state", "RUNNING"),
                    "storage_state": "AVAILABLE",
                    "created_at": _now(),
                }
                self.runs[run["run_id"]] = run
                return _json(run)
            if action == "reset" and request.method == "POST":
                self.reset()
                return _json({})
        raise ApiError(404, f"no control action {action}")

    # -- helpers --------------------------------------------------------------------------

    def _check_namespace(self, namespace: str | None) -> None:
        if self.multi_user and not namespace:
            raise ApiError(400, "Invalid input error: namespace is required in multi-user mode")
        if not self.multi_user and namespace:
            raise ApiError(400, "Invalid input error: In single-user mode, namespace must be empty")

    @staticmethod
    def _filtered(items: list[dict[str, Any]], request: Request) -> list[dict[str, Any]]:
        raw = request.args.get("filter")
        if not raw:
            return items
        try:
            predicates = json.loads(raw).get("predicates", [])
        except (ValueError, AttributeError):
            raise ApiError(400, f"Invalid filter: {raw}") from None
        for predicate in predicates:
            key = predicate.get("key", "")
            key = "display_name" if key == "name" else key
            value = predicate.get("stringValue", predicate.get("string_value"))
            operation = predicate.get("operation")
            if operation in (1, "EQUALS"):
                items = [item for item in items if item.get(key) == value]
            elif operation in (2, "NOT_EQUALS"):
                items = [item for item in items if item.get(key) != value]
            elif operation in (9, "IS_SUBSTRING"):
                items = [item for item in items if str(value) in str(item.get(key, ""))]
            else:
                raise ApiError(400, f"Invalid filter operation {operation!r}")
        return items

    @staticmethod
    def _page(items: list[dict[str, Any]], request: Request, key: str) -> dict[str, Any]:
        size = int(request.args.get("page_size") or 20) or 20
        start = int(request.args.get("page_token") or 0)
        chunk = items[start : start + size]
        payload: dict[str, Any] = {"total_size": len(items)}
        if chunk:
            payload[key] = chunk
        if start + size < len(items):
            payload["next_page_token"] = str(start + size)
        return payload

    def _pipeline(self, pid: str) -> dict[str, Any]:
        if pid not in self.pipelines:
            raise ApiError(404, f"Pipeline {pid} not found")
        return self.pipelines[pid]

    def _new_pipeline(self, name: str, description: str, namespace: str) -> dict[str, Any]:
        if not name:
            raise ApiError(400, "Invalid input error: pipeline name is empty")
        if any(p["display_name"] == name for p in self.pipelines.values()):
            raise ApiError(409, f"Already exist error: pipeline {name!r} already exists")
        pipeline = {
            "pipeline_id": str(uuid.uuid4()),
            "name": name,
            "display_name": name,
            "description": description,
            "created_at": _now(),
        }
        if namespace:
            pipeline["namespace"] = namespace
        self.pipelines[pipeline["pipeline_id"]] = pipeline
        return pipeline

    def _new_version(
        self, pid: str, name: str, description: str, request: Request
    ) -> dict[str, Any]:
        self._pipeline(pid)
        upload = request.files.get("uploadfile")
        if upload is None:
            raise ApiError(400, "Invalid input error: uploadfile is missing")
        try:
            documents = [doc for doc in yaml.safe_load_all(upload.read()) if doc]
        except yaml.YAMLError as error:
            raise ApiError(400, f"Invalid input error: invalid pipeline spec: {error}") from None
        if not documents or "root" not in documents[0]:
            raise ApiError(400, "Invalid input error: not a pipeline spec")
        if any(v["pipeline_id"] == pid and v["name"] == name for v in self.versions.values()):
            raise ApiError(409, f"Already exist error: version {name!r} already exists")
        version = {
            "pipeline_id": pid,
            "pipeline_version_id": str(uuid.uuid4()),
            "name": name,
            "display_name": name,
            "description": description,
            "created_at": _now(),
            "pipeline_spec": documents[0]
            if len(documents) == 1
            else {"pipeline_spec": documents[0], "platform_spec": documents[1]},
        }
        self.versions[version["pipeline_version_id"]] = version
        return version

    # -- endpoints ------------------------------------------------------------------------

    def healthz(self, request: Request) -> dict[str, Any]:
        return {"multi_user": self.multi_user, "pipeline_store": "database"}

    def list_pipelines(self, request: Request) -> dict[str, Any]:
        namespace = request.args.get("namespace", "")  # none: the shared pipelines
        items = [p for p in self.pipelines.values() if p.get("namespace", "") == namespace]
        items = self._filtered(items, request)
        return self._page(items, request, "pipelines")

    def create_pipeline(self, request: Request) -> dict[str, Any]:
        body = request.get_json(force=True) or {}
        name = body.get("display_name") or body.get("name") or ""
        return self._new_pipeline(name, body.get("description", ""), body.get("namespace", ""))

    def upload_pipeline(self, request: Request) -> dict[str, Any]:
        name = request.args.get("display_name") or request.args.get("name") or ""
        description = request.args.get("description", "")
        pipeline = self._new_pipeline(name, description, request.args.get("namespace", ""))
        try:
            self._new_version(pipeline["pipeline_id"], name, description, request)
        except ApiError:
            del self.pipelines[pipeline["pipeline_id"]]
            raise
        return pipeline

    def upload_version(self, request: Request) -> dict[str, Any]:
        pid = request.args.get("pipelineid", "")
        name = request.args.get("display_name") or request.args.get("name") or ""
        if not name:
            raise ApiError(400, "Invalid input error: version name is empty")
        return self._new_version(pid, name, request.args.get("description", ""), request)

    def get_pipeline(self, request: Request, pid: str) -> dict[str, Any]:
        return self._pipeline(pid)

    def delete_pipeline(self, request: Request, pid: str) -> dict[str, Any]:
        self._pipeline(pid)
        if any(v["pipeline_id"] == pid for v in self.versions.values()):
            raise ApiError(400, "Invalid input error: pipeline has versions")
        del self.pipelines[pid]
        return {}

    def list_versions(self, request: Request, pid: str) -> dict[str, Any]:
        self._pipeline(pid)
        items = [v for v in self.versions.values() if v["pipeline_id"] == pid]
        return self._page(self._filtered(items, request), request, "pipeline_versions")

    def get_version(self, request: Request, pid: str, vid: str) -> dict[str, Any]:
        version = self.versions.get(vid)
        if version is None or version["pipeline_id"] != pid:
            raise ApiError(404, f"Pipeline version {vid} not found")
        return version

    def delete_version(self, request: Request, pid: str, vid: str) -> dict[str, Any]:
        self.get_version(request, pid, vid)
        del self.versions[vid]
        return {}

    def list_experiments(self, request: Request) -> dict[str, Any]:
        namespace = request.args.get("namespace", "")
        self._check_namespace(namespace)
        items = [e for e in self.experiments.values() if e.get("namespace", "") == namespace]
        return self._page(self._filtered(items, request), request, "experiments")

    def create_experiment(self, request: Request) -> dict[str, Any]:
        body = request.get_json(force=True) or {}
        namespace = body.get("namespace") or ""
        self._check_namespace(namespace)
        name = body.get("display_name") or ""
        if not name:
            raise ApiError(400, "Invalid input error: experiment name is empty")
        if any(
            e["display_name"] == name and e.get("namespace", "") == namespace
            for e in self.experiments.values()
        ):
            raise ApiError(409, f"Already exist error: experiment {name!r} already exists")
        experiment = {
            "experiment_id": str(uuid.uuid4()),
            "display_name": name,
            "description": body.get("description") or "",
            "created_at": _now(),
            "namespace": namespace,
            "storage_state": "AVAILABLE",
        }
        self.experiments[experiment["experiment_id"]] = experiment
        return experiment

    def get_experiment(self, request: Request, eid: str) -> dict[str, Any]:
        if eid not in self.experiments:
            raise ApiError(404, f"Experiment {eid} not found")
        return self.experiments[eid]

    def list_recurring_runs(self, request: Request) -> dict[str, Any]:
        items = list(self.recurring_runs.values())
        if experiment_id := request.args.get("experiment_id"):
            items = [r for r in items if r["experiment_id"] == experiment_id]
        if namespace := request.args.get("namespace"):
            items = [r for r in items if r.get("namespace", "") == namespace]
        return self._page(self._filtered(items, request), request, "recurringRuns")

    def create_recurring_run(self, request: Request) -> dict[str, Any]:
        body = request.get_json(force=True) or {}
        experiment = self.experiments.get(body.get("experiment_id") or "")
        if experiment is None:
            raise ApiError(400, "Invalid input error: experiment not found")
        reference = body.get("pipeline_version_reference") or {}
        version = self.versions.get(reference.get("pipeline_version_id") or "")
        if version is None or version["pipeline_id"] != reference.get("pipeline_id"):
            raise ApiError(400, "Invalid input error: pipeline version reference not found")
        cron = ((body.get("trigger") or {}).get("cron_schedule") or {}).get("cron")
        if cron is None or len(cron.split()) not in (5, 6):
            raise ApiError(400, f"Invalid input error: invalid cron {cron!r}")
        if not body.get("display_name"):
            raise ApiError(400, "Invalid input error: recurring run name is empty")
        mode = body.get("mode") or "ENABLE"
        now = _now()
        run = {
            **body,
            "recurring_run_id": str(uuid.uuid4()),
            "mode": mode,
            "status": "ENABLED" if mode == "ENABLE" else "DISABLED",
            "max_concurrency": str(body.get("max_concurrency") or 1),
            "namespace": experiment.get("namespace", ""),
            "created_at": now,
            "updated_at": now,
        }
        self.recurring_runs[run["recurring_run_id"]] = run
        return run

    def _recurring(self, rid: str) -> dict[str, Any]:
        if rid not in self.recurring_runs:
            raise ApiError(404, f"Recurring run {rid} not found")
        return self.recurring_runs[rid]

    def get_recurring_run(self, request: Request, rid: str) -> dict[str, Any]:
        return self._recurring(rid)

    def delete_recurring_run(self, request: Request, rid: str) -> dict[str, Any]:
        self._recurring(rid)
        del self.recurring_runs[rid]
        for run in self.runs.values():  # like the real cascade: in-flight runs are killed
            if run.get("recurring_run_id") == rid and run["state"] in ("PENDING", "RUNNING"):
                run["state"] = "FAILED"
                run["error"] = {"message": "killed: its recurring run was deleted"}
        return {}

    def enable(self, request: Request, rid: str) -> dict[str, Any]:
        self._recurring(rid).update(mode="ENABLE", status="ENABLED", updated_at=_now())
        return {}

    def disable(self, request: Request, rid: str) -> dict[str, Any]:
        self._recurring(rid).update(mode="DISABLE", status="DISABLED", updated_at=_now())
        return {}

    def list_runs(self, request: Request) -> dict[str, Any]:
        items = list(self.runs.values())
        if experiment_id := request.args.get("experiment_id"):
            items = [r for r in items if r["experiment_id"] == experiment_id]
        if namespace := request.args.get("namespace"):
            spaces = {e: x.get("namespace", "") for e, x in self.experiments.items()}
            items = [r for r in items if spaces.get(r["experiment_id"]) == namespace]
        return self._page(self._filtered(items, request), request, "runs")

    def create_run(self, request: Request) -> dict[str, Any]:
        body = request.get_json(force=True) or {}
        if body.get("experiment_id") not in self.experiments:
            raise ApiError(400, "Invalid input error: experiment not found")
        reference = body.get("pipeline_version_reference") or {}
        version = self.versions.get(reference.get("pipeline_version_id") or "")
        if version is None or version["pipeline_id"] != reference.get("pipeline_id"):
            raise ApiError(400, "Invalid input error: pipeline version reference not found")
        if not body.get("display_name"):
            raise ApiError(400, "Invalid input error: run name is empty")
        declared = _declared_parameters(version["pipeline_spec"])
        given = (body.get("runtime_config") or {}).get("parameters") or {}
        unknown = sorted(set(given) - set(declared))
        if unknown:
            raise ApiError(400, f"Invalid input error: unknown parameter(s) {unknown}")
        run = {
            **body,
            "run_id": str(uuid.uuid4()),
            "state": "PENDING",
            "storage_state": "AVAILABLE",
            "created_at": _now(),
        }
        self.runs[run["run_id"]] = run
        return run

    def get_run(self, request: Request, run_id: str) -> dict[str, Any]:
        if run_id not in self.runs:
            raise ApiError(404, f"Run {run_id} not found")
        return self.runs[run_id]


def _declared_parameters(stored: dict[str, Any]) -> dict[str, Any]:
    spec = stored.get("pipeline_spec", stored) if "root" not in stored else stored
    return spec.get("root", {}).get("inputDefinitions", {}).get("parameters", {}) or {}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--token", default=None, help="require Authorization: Bearer TOKEN")
    parser.add_argument("--multi-user", action="store_true", help="behave like multi-user KFP")
    args = parser.parse_args(argv)
    app = FakeKfp(token=args.token, multi_user=args.multi_user)
    server = make_server(args.host, args.port, app, threaded=True)
    print(f"fake KFP on http://{args.host}:{args.port} multi_user={args.multi_user}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()

"""A small, stateful fake of the GitLab REST v4 endpoints that python-gitlab uses.

Run it as ``python -m tests.servers.fake_gitlab --port P [--token T] [--project group/name]``.

What it serves (all under ``/api/v4``, ``PRIVATE-TOKEN`` header required):

* ``projects/:id`` (numeric id or URL-encoded ``group%2Fname``), ``user``, ``version``
* ``repository/files/:path`` GET/HEAD/POST/PUT/DELETE and ``…/raw``
* ``repository/branches`` list/create, ``repository/branches/:name`` get/delete
* ``repository/commits`` list (newest first; ``ref_name``, and ``path`` with git's default
  history simplification) and create (actions create/update/delete/move, ``start_branch``,
  ``start_sha``, ``force``), ``repository/commits/:sha``, ``…/:sha/merge_requests`` (the merge
  requests that contained the commit or merged as it), ``repository/compare``
* ``merge_requests`` list (state/source_branch/target_branch/labels filters) and create,
  ``merge_requests/:iid`` get/PUT (title, description, labels, target_branch,
  ``state_event=close|reopen``), ``…/merge`` (applies the source branch's changes onto the
  target), ``…/notes``, ``…/changes``, ``…/diffs``, ``…/commits``, ``…/approvals``,
  ``…/approve``, ``…/unapprove``

Test control (no token needed):

* ``POST /__control__/fail`` ``{"path_contains": "...", "status": 502, "times": 2,
  "method": "POST", "after": false, "delay": 0, "retry_after": null}`` — the next ``times``
  matching requests fail with ``status`` (``after: true`` applies the request first and then
  fails, like a proxy losing the answer; ``delay`` sleeps before answering; ``status: null``
  with a ``delay`` only slows the request down).
* ``GET /__control__/state`` — projects, branches with their files, merge requests, notes,
  pending faults and a log of the requests served (method, raw path, status).
* ``POST /__control__/reset`` — back to the seeded state.
* ``POST /__control__/merge_requests`` ``{"source_branch": …, "target_branch": …, "title": …,
  "project": …}`` — open a merge request bypassing the one-open-MR-per-source-branch rule
  (creating the source branch from the default branch if needed), to simulate leftovers.

werkzeug decodes ``%2F`` in ``PATH_INFO``, so routing uses the raw request target
(``REQUEST_URI``/``RAW_URI``) and decodes each path segment separately.
"""

from __future__ import annotations

import argparse
import base64
import copy
import difflib
import hashlib
import itertools
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote, urlencode

from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

DEFAULT_TOKEN = "fake-gitlab-token"
DEFAULT_PROJECT = "crashed/crashed"
DEFAULT_REFERENCE = (
    json.dumps({"schema_version": 1, "status": "no-model-promoted"}, indent=2) + "\n"
)
BOT = {"id": 1, "username": "crashed-bot", "name": "crashed bot", "state": "active"}


class ApiError(Exception):
    """An error answer: ``status`` and a JSON body (``{"message": …}`` unless ``body`` given)."""

    def __init__(self, status: int, message: Any, key: str = "message") -> None:
        super().__init__(str(message))
        self.status = status
        self.body = {key: message}


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass
class Commit:
    id: str
    parent_ids: list[str]
    message: str
    tree: dict[str, str]
    created_at: str
    author_name: str = "crashed bot"

    def as_json(self) -> dict[str, Any]:
        title = self.message.splitlines()[0] if self.message else ""
        return {
            "id": self.id,
            "short_id": self.id[:8],
            "title": title,
            "message": self.message,
            "parent_ids": list(self.parent_ids),
            "author_name": self.author_name,
            "author_email": "bot@example.invalid",
            "authored_date": self.created_at,
            "committer_name": self.author_name,
            "committer_email": "bot@example.invalid",
            "committed_date": self.created_at,
            "created_at": self.created_at,
        }


@dataclass
class MergeRequest:
    id: int
    iid: int
    title: str
    description: str
    source_branch: str
    target_branch: str
    labels: list[str]
    force_remove_source_branch: bool
    created_at: str
    updated_at: str
    state: str = "opened"
    merged_at: str | None = None
    closed_at: str | None = None
    merge_commit_sha: str | None = None
    commit_shas: list[str] = field(default_factory=list)  # the source's commits, kept at merge
    notes: list[dict[str, Any]] = field(default_factory=list)
    approved_by: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class Project:
    id: int
    path_with_namespace: str
    default_branch: str = "main"
    branches: dict[str, str] = field(default_factory=dict)
    commits: dict[str, Commit] = field(default_factory=dict)
    merge_requests: dict[int, MergeRequest] = field(default_factory=dict)


@dataclass
class Fault:
    path_contains: str
    status: int | None = 502  # None: only ``delay``, then answer normally
    times: int = 1
    method: str | None = None
    after: bool = False
    delay: float = 0.0
    retry_after: int | None = None
    body: Any = None

    def matches(self, method: str, raw_path: str) -> bool:
        if self.method and self.method.upper() != method:
            return False
        return self.path_contains in raw_path or self.path_contains in unquote(raw_path)


def _labels(value: Any) -> list[str]:
    if value is None:
        return []
    items = value.split(",") if isinstance(value, str) else [str(v) for v in value]
    return [item.strip() for item in items if item.strip()]


def _bool(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in ("1", "true", "yes", "on")
    return bool(value)


def _diff(old: dict[str, str], new: dict[str, str]) -> list[dict[str, Any]]:
    """GitLab-style diff entries from tree ``old`` to tree ``new``."""
    entries = []
    for path in sorted(set(old) | set(new)):
        before, after = old.get(path), new.get(path)
        if before == after:
            continue
        text = "".join(
            difflib.unified_diff(
                (before or "").splitlines(keepends=True),
                (after or "").splitlines(keepends=True),
                n=3,
            )
        )
        # GitLab's diff text starts at the first hunk header.
        text = text.split("\n", 2)[2] if text.startswith("---") else text
        entries.append(
            {
                "old_path": path,
                "new_path": path,
                "a_mode": "0" if before is None else "100644",
                "b_mode": "0" if after is None else "100644",
                "new_file": before is None,
                "renamed_file": False,
                "deleted_file": after is None,
                "generated_file": False,
                "diff": text,
            }
        )
    return entries


class FakeGitLab:
    """The WSGI application and its in-memory state (guarded by one lock)."""

    def __init__(
        self,
        token: str = DEFAULT_TOKEN,
        projects: list[str] | None = None,
        seed: str = DEFAULT_REFERENCE,
        default_branch: str = "main",
    ) -> None:
        self.token = token
        self.project_paths = projects or [DEFAULT_PROJECT]
        self.seed = seed
        self.default_branch = default_branch
        self.lock = threading.RLock()
        self.base_url = "http://127.0.0.1/"
        self.reset()

    # ----------------------------------------------------------------- state

    def reset(self) -> None:
        with self.lock:
            self.generation = getattr(self, "generation", 0) + 1
            self.projects: dict[int, Project] = {}
            self.faults: list[Fault] = []
            self.requests: list[dict[str, Any]] = []
            self._ids = itertools.count(1)
            self._mr_ids = itertools.count(1)
            self._note_ids = itertools.count(1)
            self._shas = itertools.count(1)
            for number, path in enumerate(self.project_paths, start=1):
                project = Project(id=number, path_with_namespace=path)
                project.default_branch = self.default_branch
                tree = {"README.md": f"# {path}\n", "model-reference.json": self.seed}
                root = self._new_commit(project, [], "Initial commit", tree)
                project.branches[self.default_branch] = root.id
                self.projects[number] = project

    def _new_commit(
        self, project: Project, parents: list[str], message: str, tree: dict[str, str]
    ) -> Commit:
        material = json.dumps([next(self._shas), parents, message, sorted(tree.items())])
        sha = hashlib.sha1(material.encode(), usedforsecurity=False).hexdigest()
        commit = Commit(sha, parents, message, dict(tree), _now())
        project.commits[sha] = commit
        return commit

    def state(self) -> dict[str, Any]:
        with self.lock:
            projects = {}
            for project in self.projects.values():
                projects[project.path_with_namespace] = {
                    "id": project.id,
                    "default_branch": project.default_branch,
                    "branches": {
                        name: {
                            "commit": sha,
                            "parent_ids": project.commits[sha].parent_ids,
                            "message": project.commits[sha].message,
                            "files": project.commits[sha].tree,
                        }
                        for name, sha in sorted(project.branches.items())
                    },
                    "merge_requests": [
                        {**self._mr_json(project, mr, self.base_url), "notes": mr.notes}
                        for mr in sorted(project.merge_requests.values(), key=lambda m: m.iid)
                    ],
                }
            return {
                "projects": projects,
                "faults": [vars(f).copy() for f in self.faults],
                "requests": copy.deepcopy(self.requests),
            }

    # ----------------------------------------------------------------- WSGI

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        request = Request(environ)
        self.base_url = request.host_url
        raw = environ.get("REQUEST_URI") or environ.get("RAW_URI") or quote(request.path)
        raw_path = raw.split("?", 1)[0]
        if raw_path.startswith(("http://", "https://")):  # absolute-form request target
            raw_path = "/" + raw_path.split("/", 3)[3] if raw_path.count("/") >= 3 else "/"
        generation = self.generation
        response = self._handle(request, raw_path)
        if not raw_path.startswith("/__control__"):
            with self.lock:
                if generation != self.generation:  # answered after a reset: not this test's
                    return response(environ, start_response)
                self.requests.append(
                    {"method": request.method, "path": raw, "status": response.status_code}
                )
                del self.requests[:-1000]
        return response(environ, start_response)

    def _handle(self, request: Request, raw_path: str) -> Response:
        if raw_path.startswith("/__control__/"):
            return self._control(request, raw_path.removeprefix("/__control__/"))
        fault = self._take_fault(request.method, raw_path)
        if fault is not None and fault.delay:
            time.sleep(fault.delay)
        if fault is not None and fault.status and not fault.after:
            return self._fault_response(fault)
        response = self._api(request, raw_path)
        if fault is not None and fault.status:
            return self._fault_response(fault)
        return response

    def _take_fault(self, method: str, raw_path: str) -> Fault | None:
        with self.lock:
            for fault in self.faults:
                if fault.matches(method, raw_path):
                    fault.times -= 1
                    if fault.times <= 0:
                        self.faults.remove(fault)
                    return fault
        return None

    @staticmethod
    def _fault_response(fault: Fault) -> Response:
        body = fault.body if fault.body is not None else {"message": f"{fault.status} Injected"}
        headers = {"Retry-After": str(fault.retry_after)} if fault.retry_after is not None else {}
        return _json(body, fault.status, headers)

    def _control(self, request: Request, action: str) -> Response:
        if action == "state" and request.method == "GET":
            return _json(self.state())
        if action == "reset" and request.method == "POST":
            self.reset()
            return _json({"ok": True})
        if action == "fail" and request.method == "POST":
            spec = request.get_json(force=True, silent=True) or {}
            try:
                fault = Fault(**spec)
            except TypeError as error:
                return _json({"message": str(error)}, 400)
            with self.lock:
                self.faults.append(fault)
            return _json({"ok": True, "fault": vars(fault)}, 201)
        if action == "merge_requests" and request.method == "POST":
            return self._inject_mr(request)
        return _json({"message": "404 Not Found"}, 404)

    def _inject_mr(self, request: Request) -> Response:
        """Open a merge request without GitLab's one-open-MR-per-branch check (leftovers)."""
        spec = request.get_json(force=True, silent=True) or {}
        with self.lock:
            try:
                project = self._project(str(spec.get("project", next(iter(self.projects)))))
                source = spec["source_branch"]
                target = spec.get("target_branch", project.default_branch)
                if source not in project.branches:
                    start = project.branches[project.default_branch]
                    project.branches[source] = start
            except (ApiError, KeyError) as error:
                return _json({"message": f"bad merge request spec: {error}"}, 400)
            now = _now()
            iid = max(project.merge_requests, default=0) + 1
            mr = MergeRequest(
                id=next(self._mr_ids),
                iid=iid,
                title=spec.get("title", f"leftover {iid}"),
                description=spec.get("description", ""),
                source_branch=source,
                target_branch=target,
                labels=_labels(spec.get("labels")),
                force_remove_source_branch=True,
                created_at=now,
                updated_at=now,
            )
            project.merge_requests[iid] = mr
            return _json(self._mr_json(project, mr, request), 201)

    def _authorised(self, request: Request) -> bool:
        supplied = request.headers.get("PRIVATE-TOKEN") or request.headers.get("JOB-TOKEN")
        bearer = request.headers.get("Authorization", "")
        if not supplied and bearer.lower().startswith("bearer "):
            supplied = bearer[7:]
        return supplied == self.token

    def _api(self, request: Request, raw_path: str) -> Response:
        if not raw_path.startswith("/api/v4/"):
            return _json({"message": "404 Not Found"}, 404)
        if not self._authorised(request):
            return _json({"message": "401 Unauthorized"}, 401)
        segments = [unquote(s) for s in raw_path.removeprefix("/api/v4/").strip("/").split("/")]
        for method, pattern, handler in self._routes():
            if method != request.method:
                continue
            params = _match(pattern, segments)
            if params is None:
                continue
            data = _request_data(request)
            try:
                with self.lock:
                    if "pid" in params:
                        params["project"] = self._project(params.pop("pid"))
                    return handler(request, data, **params)
            except ApiError as error:
                return _json(error.body, error.status)
        if any(_match(p, segments) is not None for _, p, _ in self._routes()):
            return _json({"message": "405 Method Not Allowed"}, 405)
        return _json({"error": "404 Not Found"}, 404)

    def _routes(self) -> list[tuple[str, str, Callable[..., Response]]]:
        p = "projects/:pid"
        mr = f"{p}/merge_requests/:iid"
        return [
            ("GET", "user", self.get_user),
            ("GET", "version", self.get_version),
            ("GET", p, self.get_project),
            ("GET", f"{p}/repository/files/:path", self.get_file),
            ("HEAD", f"{p}/repository/files/:path", self.get_file),
            ("GET", f"{p}/repository/files/:path/raw", self.get_raw),
            ("POST", f"{p}/repository/files/:path", self.create_file),
            ("PUT", f"{p}/repository/files/:path", self.update_file),
            ("DELETE", f"{p}/repository/files/:path", self.delete_file),
            ("GET", f"{p}/repository/branches", self.list_branches),
            ("POST", f"{p}/repository/branches", self.create_branch),
            ("GET", f"{p}/repository/branches/:name", self.get_branch),
            ("DELETE", f"{p}/repository/branches/:name", self.delete_branch),
            ("GET", f"{p}/repository/commits", self.list_commits),
            ("POST", f"{p}/repository/commits", self.create_commit),
            ("GET", f"{p}/repository/commits/:sha", self.get_commit),
            ("GET", f"{p}/repository/commits/:sha/merge_requests", self.commit_mrs),
            ("GET", f"{p}/repository/compare", self.compare),
            ("GET", f"{p}/merge_requests", self.list_mrs),
            ("POST", f"{p}/merge_requests", self.create_mr),
            ("GET", mr, self.get_mr),
            ("PUT", mr, self.update_mr),
            ("PUT", f"{mr}/merge", self.merge_mr),
            ("GET", f"{mr}/notes", self.list_notes),
            ("POST", f"{mr}/notes", self.create_note),
            ("GET", f"{mr}/changes", self.mr_changes),
            ("GET", f"{mr}/diffs", self.mr_diffs),
            ("GET", f"{mr}/commits", self.mr_commits),
            ("GET", f"{mr}/approvals", self.get_approvals),
            ("POST", f"{mr}/approve", self.approve),
            ("POST", f"{mr}/unapprove", self.unapprove),
        ]

    # ----------------------------------------------------------------- lookups

    def _project(self, key: str) -> Project:
        for project in self.projects.values():
            if key == str(project.id) or key == project.path_with_namespace:
                return project
        raise ApiError(404, "404 Project Not Found")

    @staticmethod
    def _resolve(project: Project, ref: str | None) -> Commit | None:
        if not ref:
            return None
        if ref in project.branches:
            return project.commits[project.branches[ref]]
        if ref in project.commits:
            return project.commits[ref]
        if len(ref) >= 7:
            hits = [c for sha, c in project.commits.items() if sha.startswith(ref)]
            if len(hits) == 1:
                return hits[0]
        return None

    def _commit_of(self, project: Project, ref: str | None) -> Commit:
        commit = self._resolve(project, ref)
        if commit is None:
            raise ApiError(404, "404 Commit Not Found")
        return commit

    @staticmethod
    def _mr(project: Project, iid: str) -> MergeRequest:
        if not iid.isdigit() or int(iid) not in project.merge_requests:
            raise ApiError(404, "404 Not found")
        return project.merge_requests[int(iid)]

    def _ancestors(self, project: Project, sha: str) -> list[str]:
        seen: list[str] = []
        queue = [sha]
        while queue:
            current = queue.pop(0)
            if current in seen or current not in project.commits:
                continue
            seen.append(current)
            queue.extend(project.commits[current].parent_ids)
        return seen

    def _merge_base(self, project: Project, a: str, b: str) -> str | None:
        of_a = set(self._ancestors(project, a))
        return next((sha for sha in self._ancestors(project, b) if sha in of_a), None)

    # ----------------------------------------------------------------- JSON views

    @staticmethod
    def _web(request_or_base: Request | str, project: Project) -> str:
        base = request_or_base if isinstance(request_or_base, str) else request_or_base.host_url
        return f"{base.rstrip('/')}/{project.path_with_namespace}"

    def _project_json(self, request: Request, project: Project) -> dict[str, Any]:
        namespace, _, name = project.path_with_namespace.rpartition("/")
        web = self._web(request, project)
        return {
            "id": project.id,
            "name": name,
            "path": name,
            "path_with_namespace": project.path_with_namespace,
            "name_with_namespace": project.path_with_namespace.replace("/", " / "),
            "namespace": {"id": 1, "name": namespace, "path": namespace, "full_path": namespace},
            "default_branch": project.default_branch,
            "visibility": "private",
            "archived": False,
            "web_url": web,
            "http_url_to_repo": f"{web}.git",
            "merge_requests_enabled": True,
        }

    def _branch_json(self, request: Request, project: Project, name: str) -> dict[str, Any]:
        commit = project.commits[project.branches[name]]
        default_head = project.branches.get(project.default_branch)
        merged = (
            name != project.default_branch
            and default_head is not None
            and commit.id in self._ancestors(project, default_head)
        )
        return {
            "name": name,
            "commit": commit.as_json(),
            "merged": merged,
            "protected": name == project.default_branch,
            "default": name == project.default_branch,
            "developers_can_push": False,
            "developers_can_merge": False,
            "can_push": True,
            "web_url": f"{self._web(request, project)}/-/tree/{quote(name, safe='')}",
        }

    def _mr_json(self, project: Project, mr: MergeRequest, base: Request | str) -> dict[str, Any]:
        source_sha = project.branches.get(mr.source_branch)
        conflicts = mr.state == "opened" and self._conflicts(project, mr)
        web = self._web(base, project)
        return {
            "id": mr.id,
            "iid": mr.iid,
            "project_id": project.id,
            "source_project_id": project.id,
            "target_project_id": project.id,
            "title": mr.title,
            "description": mr.description,
            "state": mr.state,
            "created_at": mr.created_at,
            "updated_at": mr.updated_at,
            "merged_at": mr.merged_at,
            "closed_at": mr.closed_at,
            "source_branch": mr.source_branch,
            "target_branch": mr.target_branch,
            "labels": list(mr.labels),
            "draft": False,
            "work_in_progress": False,
            "author": BOT,
            "merge_status": "cannot_be_merged" if conflicts else "can_be_merged",
            "detailed_merge_status": "conflict" if conflicts else "mergeable",
            "has_conflicts": bool(conflicts),
            "sha": source_sha,
            "merge_commit_sha": mr.merge_commit_sha,
            "squash": False,
            "force_remove_source_branch": mr.force_remove_source_branch,
            "should_remove_source_branch": None,
            "user_notes_count": len(mr.notes),
            "references": {
                "short": f"!{mr.iid}",
                "relative": f"!{mr.iid}",
                "full": f"{project.path_with_namespace}!{mr.iid}",
            },
            "web_url": f"{web}/-/merge_requests/{mr.iid}",
        }

    def _mr_diff(self, project: Project, mr: MergeRequest) -> list[dict[str, Any]]:
        source = project.branches.get(mr.source_branch)
        target = project.branches.get(mr.target_branch)
        if source is None or target is None:
            return []
        base = self._merge_base(project, target, source)
        old = project.commits[base].tree if base else {}
        return _diff(old, project.commits[source].tree)

    def _conflicts(self, project: Project, mr: MergeRequest) -> list[str]:
        source = project.branches.get(mr.source_branch)
        target = project.branches.get(mr.target_branch)
        if source is None or target is None:
            return []
        base_sha = self._merge_base(project, target, source)
        base = project.commits[base_sha].tree if base_sha else {}
        ours, theirs = project.commits[target].tree, project.commits[source].tree
        return [
            path
            for path in set(base) | set(theirs)
            if theirs.get(path) != base.get(path)
            and ours.get(path) != base.get(path)
            and ours.get(path) != theirs.get(path)
        ]

    # ----------------------------------------------------------------- misc endpoints

    def get_user(self, request: Request, data: dict[str, Any]) -> Response:
        return _json(BOT)

    def get_version(self, request: Request, data: dict[str, Any]) -> Response:
        return _json({"version": "17.0.0-fake", "revision": "fake"})

    def get_project(self, request: Request, data: dict[str, Any], project: Project) -> Response:
        return _json(self._project_json(request, project))

    # ----------------------------------------------------------------- files

    def get_file(
        self, request: Request, data: dict[str, Any], project: Project, path: str
    ) -> Response:
        if not data.get("ref"):
            raise ApiError(400, "ref is missing, ref is empty", key="error")
        commit = self._commit_of(project, data["ref"])
        if path not in commit.tree:
            raise ApiError(404, "404 File Not Found")
        content = commit.tree[path].encode()
        blob = hashlib.sha1(content, usedforsecurity=False).hexdigest()
        body = {
            "file_name": path.rsplit("/", 1)[-1],
            "file_path": path,
            "size": len(content),
            "encoding": "base64",
            "content": base64.b64encode(content).decode(),
            "content_sha256": hashlib.sha256(content).hexdigest(),
            "ref": data["ref"],
            "blob_id": blob,
            "commit_id": commit.id,
            "last_commit_id": commit.id,
            "execute_filemode": False,
        }
        headers = {
            f"X-Gitlab-{key.replace('_', '-').title()}": str(value)
            for key, value in body.items()
            if key not in ("content", "encoding")
        }
        if request.method == "HEAD":
            return Response(status=200, headers=headers)
        return _json(body, 200, headers)

    def get_raw(
        self, request: Request, data: dict[str, Any], project: Project, path: str
    ) -> Response:
        commit = self._commit_of(project, data.get("ref") or project.default_branch)
        if path not in commit.tree:
            raise ApiError(404, "404 File Not Found")
        return Response(commit.tree[path].encode(), 200, mimetype="text/plain")

    def _file_action(self, data: dict[str, Any], action: str, path: str) -> dict[str, Any]:
        for required in ("branch", "commit_message") + (("content",) if action != "delete" else ()):
            if data.get(required) is None:
                raise ApiError(400, f"{required} is missing", key="error")
        return {
            "action": action,
            "file_path": path,
            "content": data.get("content"),
            "encoding": data.get("encoding", "text"),
        }

    def _file_commit(
        self, request: Request, data: dict[str, Any], project: Project, path: str, action: str
    ) -> Response:
        commit = self._apply_commit(
            project,
            branch=data.get("branch"),
            message=data.get("commit_message"),
            actions=[self._file_action(data, action, path)],
            start_branch=data.get("start_branch"),
        )
        if action == "delete":
            return Response(status=204)
        status = 201 if action == "create" else 200
        return _json({"file_path": path, "branch": data["branch"], "commit_id": commit.id}, status)

    def create_file(
        self, request: Request, data: dict[str, Any], project: Project, path: str
    ) -> Response:
        return self._file_commit(request, data, project, path, "create")

    def update_file(
        self, request: Request, data: dict[str, Any], project: Project, path: str
    ) -> Response:
        return self._file_commit(request, data, project, path, "update")

    def delete_file(
        self, request: Request, data: dict[str, Any], project: Project, path: str
    ) -> Response:
        return self._file_commit(request, data, project, path, "delete")

    # ----------------------------------------------------------------- branches

    def list_branches(self, request: Request, data: dict[str, Any], project: Project) -> Response:
        search = data.get("search") or ""
        names = sorted(n for n in project.branches if search in n)
        return _paginate(request, data, [self._branch_json(request, project, n) for n in names])

    def get_branch(
        self, request: Request, data: dict[str, Any], project: Project, name: str
    ) -> Response:
        if name not in project.branches:
            raise ApiError(404, "404 Branch Not Found")
        return _json(self._branch_json(request, project, name))

    def create_branch(self, request: Request, data: dict[str, Any], project: Project) -> Response:
        name, ref = data.get("branch"), data.get("ref")
        if not name:
            raise ApiError(400, "branch is missing", key="error")
        if not ref:
            raise ApiError(400, "ref is missing", key="error")
        if name in project.branches:
            raise ApiError(400, "Branch already exists")
        commit = self._resolve(project, ref)
        if commit is None:
            raise ApiError(400, "Invalid reference name: " + ref)
        project.branches[name] = commit.id
        return _json(self._branch_json(request, project, name), 201)

    def delete_branch(
        self, request: Request, data: dict[str, Any], project: Project, name: str
    ) -> Response:
        if name not in project.branches:
            raise ApiError(404, "404 Branch Not Found")
        if name == project.default_branch:
            raise ApiError(405, "Cannot remove HEAD branch")
        del project.branches[name]
        return Response(status=204)

    # ----------------------------------------------------------------- commits

    def _apply_commit(
        self,
        project: Project,
        *,
        branch: str | None,
        message: str | None,
        actions: list[dict[str, Any]],
        start_branch: str | None = None,
        start_sha: str | None = None,
        force: bool = False,
    ) -> Commit:
        if not branch:
            raise ApiError(400, "branch is missing", key="error")
        if not message:
            raise ApiError(400, "commit_message is missing", key="error")
        if not actions:
            raise ApiError(400, "actions is empty", key="error")
        start_ref = start_sha or start_branch
        exists = branch in project.branches
        if exists and start_ref and start_ref != branch and not force:
            raise ApiError(
                400,
                f"A branch called '{branch}' already exists. "
                "Switch to that branch in order to make changes",
            )
        if start_ref and (force or not exists):
            base = self._resolve(project, start_ref)
            if base is None:
                raise ApiError(400, f"Invalid reference name: {start_ref}")
        elif exists:
            base = project.commits[project.branches[branch]]
        else:
            raise ApiError(400, "You can only create or edit files when you are on a branch")
        tree = dict(base.tree)
        for action in actions:
            _apply_action(tree, action)
        commit = self._new_commit(project, [base.id], message, tree)
        project.branches[branch] = commit.id
        return commit

    def create_commit(self, request: Request, data: dict[str, Any], project: Project) -> Response:
        actions = data.get("actions")
        if isinstance(actions, str):
            actions = json.loads(actions)
        commit = self._apply_commit(
            project,
            branch=data.get("branch"),
            message=data.get("commit_message"),
            actions=list(actions or []),
            start_branch=data.get("start_branch"),
            start_sha=data.get("start_sha"),
            force=_bool(data.get("force", False)),
        )
        body = commit.as_json()
        parent = project.commits[commit.parent_ids[0]].tree if commit.parent_ids else {}
        changes = _diff(parent, commit.tree)
        additions = sum(d["diff"].count("\n+") for d in changes)
        deletions = sum(d["diff"].count("\n-") for d in changes)
        body["stats"] = {
            "additions": additions,
            "deletions": deletions,
            "total": additions + deletions,
        }
        body["web_url"] = f"{self._web(request, project)}/-/commit/{commit.id}"
        return _json(body, 201)

    def list_commits(self, request: Request, data: dict[str, Any], project: Project) -> Response:
        head = self._commit_of(project, data.get("ref_name") or project.default_branch)
        path = data.get("path")
        shas = (
            self._path_history(project, head.id, path)
            if path
            else self._ancestors(project, head.id)
        )
        order = {sha: n for n, sha in enumerate(project.commits)}  # creation order
        shas.sort(key=order.__getitem__, reverse=True)
        return _paginate(request, data, [project.commits[sha].as_json() for sha in shas])

    @staticmethod
    def _path_history(project: Project, head: str, path: str) -> list[str]:
        """Commits that changed ``path``, with git log's default simplification: a commit
        whose ``path`` equals a parent's is not listed and only that parent is followed."""
        listed: list[str] = []
        seen: set[str] = set()
        queue = [head]
        while queue:
            sha = queue.pop()
            if sha in seen:
                continue
            seen.add(sha)
            commit = project.commits[sha]
            value = commit.tree.get(path)
            same = [p for p in commit.parent_ids if project.commits[p].tree.get(path) == value]
            if same:
                queue.append(same[0])
                continue
            if commit.parent_ids or value is not None:
                listed.append(sha)
            queue.extend(commit.parent_ids)
        return listed

    def commit_mrs(
        self, request: Request, data: dict[str, Any], project: Project, sha: str
    ) -> Response:
        commit = self._commit_of(project, sha)
        items = [
            self._mr_json(project, mr, request)
            for mr in sorted(project.merge_requests.values(), key=lambda m: m.iid)
            if commit.id in self._mr_commit_shas(project, mr) or mr.merge_commit_sha == commit.id
        ]
        return _paginate(request, data, items)

    def get_commit(
        self, request: Request, data: dict[str, Any], project: Project, sha: str
    ) -> Response:
        return _json(self._commit_of(project, sha).as_json())

    def compare(self, request: Request, data: dict[str, Any], project: Project) -> Response:
        start = self._commit_of(project, data.get("from"))
        end = self._commit_of(project, data.get("to"))
        if _bool(data.get("straight", False)):
            base_tree = start.tree
            commits = []
        else:
            base_sha = self._merge_base(project, start.id, end.id)
            base_tree = project.commits[base_sha].tree if base_sha else {}
            reachable = set(self._ancestors(project, start.id))
            commits = [
                project.commits[sha].as_json()
                for sha in reversed(self._ancestors(project, end.id))
                if sha not in reachable
            ]
        return _json(
            {
                "commit": end.as_json(),
                "commits": commits,
                "diffs": _diff(base_tree, end.tree),
                "compare_timeout": False,
                "compare_same_ref": start.id == end.id,
                "web_url": f"{self._web(request, project)}/-/compare/{start.id}...{end.id}",
            }
        )

    # ----------------------------------------------------------------- merge requests

    def list_mrs(self, request: Request, data: dict[str, Any], project: Project) -> Response:
        items = list(project.merge_requests.values())
        state = data.get("state") or "all"
        if state != "all":
            items = [mr for mr in items if mr.state == state]
        for key in ("source_branch", "target_branch"):
            if data.get(key):
                items = [mr for mr in items if getattr(mr, key) == data[key]]
        wanted = _labels(data.get("labels"))
        if wanted:
            items = [mr for mr in items if set(wanted) <= set(mr.labels)]
        iids = request.args.getlist("iids[]")
        if iids:
            items = [mr for mr in items if str(mr.iid) in iids]
        order = data.get("order_by") or "created_at"
        key = "updated_at" if order == "updated_at" else "created_at"
        items.sort(key=lambda mr: (getattr(mr, key), mr.iid), reverse=data.get("sort") != "asc")
        return _paginate(request, data, [self._mr_json(project, mr, request) for mr in items])

    def create_mr(self, request: Request, data: dict[str, Any], project: Project) -> Response:
        for required in ("source_branch", "target_branch", "title"):
            if not data.get(required):
                raise ApiError(400, f"{required} is missing", key="error")
        source, target = data["source_branch"], data["target_branch"]
        if source not in project.branches:
            raise ApiError(422, [f'Source branch "{source}" does not exist'])
        if target not in project.branches:
            raise ApiError(422, [f'Target branch "{target}" does not exist'])
        if source == target:
            raise ApiError(422, ["You can't use same project/branch for source and target"])
        for other in project.merge_requests.values():
            if other.state == "opened" and (other.source_branch, other.target_branch) == (
                source,
                target,
            ):
                raise ApiError(
                    409,
                    [
                        f"Another open merge request already exists for this source branch: "
                        f"!{other.iid}"
                    ],
                )
        iid = max(project.merge_requests, default=0) + 1
        now = _now()
        mr = MergeRequest(
            id=next(self._mr_ids),
            iid=iid,
            title=data["title"],
            description=data.get("description") or "",
            source_branch=source,
            target_branch=target,
            labels=_labels(data.get("labels")),
            force_remove_source_branch=_bool(data.get("remove_source_branch", False)),
            created_at=now,
            updated_at=now,
        )
        project.merge_requests[iid] = mr
        return _json(self._mr_json(project, mr, request), 201)

    def get_mr(
        self, request: Request, data: dict[str, Any], project: Project, iid: str
    ) -> Response:
        return _json(self._mr_json(project, self._mr(project, iid), request))

    def update_mr(
        self, request: Request, data: dict[str, Any], project: Project, iid: str
    ) -> Response:
        mr = self._mr(project, iid)
        for key in ("title", "description", "target_branch"):
            if data.get(key) is not None:
                setattr(mr, key, data[key])
        if "labels" in data:
            mr.labels = _labels(data["labels"])
        for label in _labels(data.get("add_labels")):
            if label not in mr.labels:
                mr.labels.append(label)
        remove = set(_labels(data.get("remove_labels")))
        mr.labels = [label for label in mr.labels if label not in remove]
        if "remove_source_branch" in data:
            mr.force_remove_source_branch = _bool(data["remove_source_branch"])
        event = data.get("state_event")
        if event == "close" and mr.state == "opened":
            mr.state, mr.closed_at = "closed", _now()
        elif event == "reopen" and mr.state == "closed":
            mr.state, mr.closed_at = "opened", None
        mr.updated_at = _now()
        return _json(self._mr_json(project, mr, request))

    def merge_mr(
        self, request: Request, data: dict[str, Any], project: Project, iid: str
    ) -> Response:
        mr = self._mr(project, iid)
        if mr.state != "opened":
            raise ApiError(405, "405 Method Not Allowed")
        source = project.branches.get(mr.source_branch)
        target = project.branches.get(mr.target_branch)
        if source is None or target is None:
            raise ApiError(422, "Branch cannot be merged")
        if data.get("sha") and data["sha"] != source:
            raise ApiError(409, "SHA does not match HEAD of source branch: " + source)
        if self._conflicts(project, mr):
            raise ApiError(422, "Branch cannot be merged")
        base_sha = self._merge_base(project, target, source)
        base = project.commits[base_sha].tree if base_sha else {}
        tree = dict(project.commits[target].tree)
        for path in set(base) | set(project.commits[source].tree):
            new = project.commits[source].tree.get(path)
            if new == base.get(path):
                continue
            if new is None:
                tree.pop(path, None)
            else:
                tree[path] = new
        message = data.get("merge_commit_message") or (
            f"Merge branch '{mr.source_branch}' into '{mr.target_branch}'\n\n{mr.title}\n\n"
            f"See merge request {project.path_with_namespace}!{mr.iid}"
        )
        mr.commit_shas = self._mr_commit_shas(project, mr)
        merge = self._new_commit(project, [target, source], message, tree)
        project.branches[mr.target_branch] = merge.id
        mr.state, mr.merged_at, mr.merge_commit_sha = "merged", _now(), merge.id
        mr.updated_at = mr.merged_at
        remove = data.get("should_remove_source_branch")
        if _bool(remove) or (remove is None and mr.force_remove_source_branch):
            project.branches.pop(mr.source_branch, None)
        return _json(self._mr_json(project, mr, request))

    def list_notes(
        self, request: Request, data: dict[str, Any], project: Project, iid: str
    ) -> Response:
        return _paginate(request, data, list(self._mr(project, iid).notes))

    def create_note(
        self, request: Request, data: dict[str, Any], project: Project, iid: str
    ) -> Response:
        mr = self._mr(project, iid)
        if not data.get("body"):
            raise ApiError(400, "body is missing", key="error")
        note = {
            "id": next(self._note_ids),
            "body": data["body"],
            "author": BOT,
            "created_at": _now(),
            "system": False,
            "noteable_id": mr.id,
            "noteable_iid": mr.iid,
            "noteable_type": "MergeRequest",
        }
        mr.notes.append(note)
        return _json(note, 201)

    def mr_changes(
        self, request: Request, data: dict[str, Any], project: Project, iid: str
    ) -> Response:
        mr = self._mr(project, iid)
        return _json({**self._mr_json(project, mr, request), "changes": self._mr_diff(project, mr)})

    def mr_diffs(
        self, request: Request, data: dict[str, Any], project: Project, iid: str
    ) -> Response:
        return _paginate(request, data, self._mr_diff(project, self._mr(project, iid)))

    def mr_commits(
        self, request: Request, data: dict[str, Any], project: Project, iid: str
    ) -> Response:
        mr = self._mr(project, iid)
        items = [project.commits[sha].as_json() for sha in self._mr_commit_shas(project, mr)]
        return _paginate(request, data, items)

    def _mr_commit_shas(self, project: Project, mr: MergeRequest) -> list[str]:
        """The source branch's commits not on the target (kept as they were once merged)."""
        if mr.state == "merged":
            return list(mr.commit_shas)
        source = project.branches.get(mr.source_branch)
        target = project.branches.get(mr.target_branch)
        if source is None or target is None:
            return []
        reachable = set(self._ancestors(project, target))
        return [sha for sha in self._ancestors(project, source) if sha not in reachable]

    def get_approvals(
        self, request: Request, data: dict[str, Any], project: Project, iid: str
    ) -> Response:
        mr = self._mr(project, iid)
        return _json(
            {
                "id": mr.id,
                "iid": mr.iid,
                "project_id": project.id,
                "title": mr.title,
                "state": mr.state,
                "approved": bool(mr.approved_by),
                "approvals_required": 0,
                "approvals_left": 0,
                "approved_by": list(mr.approved_by),
            }
        )

    def approve(
        self, request: Request, data: dict[str, Any], project: Project, iid: str
    ) -> Response:
        mr = self._mr(project, iid)
        if mr.approved_by:
            raise ApiError(401, "401 Unauthorized")  # GitLab's answer to approving twice
        mr.approved_by.append({"user": BOT})
        return self.get_approvals(request, data, project, iid)

    def unapprove(
        self, request: Request, data: dict[str, Any], project: Project, iid: str
    ) -> Response:
        mr = self._mr(project, iid)
        if not mr.approved_by:
            raise ApiError(404, "404 Not Found")
        mr.approved_by.clear()
        return self.get_approvals(request, data, project, iid)


def _apply_action(tree: dict[str, str], action: dict[str, Any]) -> None:
    kind, path = action.get("action"), action.get("file_path")
    if not path:
        raise ApiError(400, "actions[file_path] is missing", key="error")
    content = action.get("content")
    if content is not None and action.get("encoding") == "base64":
        content = base64.b64decode(content).decode()
    if kind == "create":
        if path in tree:
            raise ApiError(400, "A file with this name already exists")
        tree[path] = content or ""
    elif kind == "update":
        if path not in tree:
            raise ApiError(400, "A file with this name doesn't exist")
        tree[path] = content or ""
    elif kind == "delete":
        if path not in tree:
            raise ApiError(400, "A file with this name doesn't exist")
        del tree[path]
    elif kind == "move":
        previous = action.get("previous_path")
        if not previous or previous not in tree:
            raise ApiError(400, "A file with this name doesn't exist")
        old = tree.pop(previous)
        tree[path] = old if content is None else content
    elif kind == "chmod":
        if path not in tree:
            raise ApiError(400, "A file with this name doesn't exist")
    else:
        raise ApiError(400, "actions[action] does not have a valid value", key="error")


def _match(pattern: str, segments: list[str]) -> dict[str, str] | None:
    parts = pattern.split("/")
    if len(parts) != len(segments):
        return None
    params: dict[str, str] = {}
    for part, segment in zip(parts, segments, strict=True):
        if part.startswith(":"):
            if not segment:
                return None
            params[part[1:]] = segment
        elif part != segment:
            return None
    return params


def _request_data(request: Request) -> dict[str, Any]:
    """Query parameters merged with a JSON or form body (GitLab accepts either)."""
    data: dict[str, Any] = {key: request.args.get(key) for key in request.args}
    if request.method in ("POST", "PUT", "PATCH", "DELETE"):
        body = request.get_json(silent=True) if request.is_json else None
        if isinstance(body, dict):
            data.update(body)
        else:
            data.update({key: request.form.get(key) for key in request.form})
    return data


def _json(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(
        json.dumps(body), status=status, headers=headers or {}, mimetype="application/json"
    )


def _paginate(request: Request, data: dict[str, Any], items: list[Any]) -> Response:
    """One page of ``items`` with GitLab's pagination headers (``Link`` and ``X-*``)."""
    try:
        per_page = max(1, min(100, int(data.get("per_page") or 20)))
        page = max(1, int(data.get("page") or 1))
    except ValueError as error:
        raise ApiError(400, "page/per_page must be integers", key="error") from error
    total = len(items)
    pages = max(1, -(-total // per_page))
    chunk = items[(page - 1) * per_page : page * per_page]
    base = request.base_url
    args = {k: v for k, v in request.args.items() if k not in ("page", "per_page")}

    def link(number: int) -> str:
        return f"{base}?{urlencode({**args, 'page': number, 'per_page': per_page})}"

    links = [f'<{link(1)}>; rel="first"', f'<{link(pages)}>; rel="last"']
    headers = {
        "X-Page": str(page),
        "X-Per-Page": str(per_page),
        "X-Total": str(total),
        "X-Total-Pages": str(pages),
        "X-Next-Page": str(page + 1) if page < pages else "",
        "X-Prev-Page": str(page - 1) if page > 1 else "",
    }
    if page < pages:
        links.insert(0, f'<{link(page + 1)}>; rel="next"')
    if page > 1:
        links.insert(0, f'<{link(page - 1)}>; rel="prev"')
    headers["Link"] = ", ".join(links)
    return _json(chunk, 200, headers)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--token", default=DEFAULT_TOKEN)
    parser.add_argument(
        "--project", action="append", help="group/name (repeatable; default crashed/crashed)"
    )
    parser.add_argument("--default-branch", default="main")
    parser.add_argument("--seed-file", type=Path, help="initial model-reference.json content")
    args = parser.parse_args(argv)
    seed = args.seed_file.read_text(encoding="utf-8") if args.seed_file else DEFAULT_REFERENCE
    app = FakeGitLab(args.token, args.project, seed, args.default_branch)
    server = make_server(args.host, args.port, app, threaded=True)
    print(f"fake GitLab on http://{args.host}:{args.port} projects={app.project_paths}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()

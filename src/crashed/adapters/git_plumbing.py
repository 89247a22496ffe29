"""Git plumbing for the local Git host: object and ref operations that never touch a checkout.

Every call runs ``git`` with the variables that would redirect it elsewhere (``GIT_DIR``,
``GIT_INDEX_FILE``, …) removed, so the repository we were given is the one we change. Trees are
built in a temporary index, so the user's index and working tree are never touched.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from crashed.errors import ConfigError, InputError, ServiceError

BOT_NAME = "crashed-bot"
BOT_EMAIL = "crashed-bot@localhost"
ZERO_OID = "0" * 40
# Variables that would redirect our git calls away from the repository we were given.
_GIT_LOCATION_VARS = (
    "GIT_DIR",
    "GIT_WORK_TREE",
    "GIT_INDEX_FILE",
    "GIT_OBJECT_DIRECTORY",
    "GIT_ALTERNATE_OBJECT_DIRECTORIES",
    "GIT_COMMON_DIR",
    "GIT_NAMESPACE",
    "GIT_PREFIX",
)
_BOT_ENV = {
    "GIT_AUTHOR_NAME": BOT_NAME,
    "GIT_AUTHOR_EMAIL": BOT_EMAIL,
    "GIT_COMMITTER_NAME": BOT_NAME,
    "GIT_COMMITTER_EMAIL": BOT_EMAIL,
}


@dataclass(frozen=True)
class Entry:
    """A file in a git tree: its mode and blob id."""

    mode: str
    oid: str


@dataclass(frozen=True)
class LogEntry:
    """One commit from :meth:`Git.log`."""

    commit: str
    committed_at: str
    message: str


def run_git(
    cwd: Path,
    args: Sequence[str],
    *,
    stdin: bytes | None = None,
    env: Mapping[str, str] | None = None,
    check: bool = True,
) -> bytes | None:
    """git's stdout; :class:`ServiceError` on failure (``None`` when ``check`` is false)."""
    full_env = {k: v for k, v in os.environ.items() if k not in _GIT_LOCATION_VARS}
    full_env.update({"GIT_TERMINAL_PROMPT": "0", "LC_ALL": "C"})
    full_env.update(env or {})
    try:
        done = subprocess.run(
            ["git", *args], cwd=cwd, input=stdin, env=full_env, capture_output=True, check=False
        )
    except FileNotFoundError:
        raise ConfigError("git is not installed (the local Git host needs it)") from None
    if done.returncode != 0:
        if not check:
            return None
        detail = done.stderr.decode("utf-8", errors="replace").strip() or f"exit {done.returncode}"
        raise ServiceError(f"git {' '.join(args[:2])} failed in {cwd}: {detail}")
    return done.stdout


def find_repository(start: Path, configured: Path | None) -> Path:
    """The working tree top-level (or the git dir when bare) of the repository at ``start``."""
    name = f"CRASHED_REPO={configured}" if configured else f"the current directory ({start})"
    start = start.expanduser().resolve()
    if not start.is_dir():
        raise ConfigError(f"{name} is not a git repository (no such directory)")
    out = run_git(start, ("rev-parse", "--is-bare-repository", "--absolute-git-dir"), check=False)
    if out is None:
        raise ConfigError(
            f"{name} is not a git repository: set CRASHED_REPO to one, or run `git init`"
        )
    bare, git_dir = out.decode().split("\n")[:2]
    if bare == "true":
        return Path(git_dir)
    top = run_git(start, ("rev-parse", "--show-toplevel"), check=False)
    if top is None or not top.strip():
        raise ConfigError(f"{name} is inside a .git folder, not a working tree")
    return Path(top.decode().strip())


class Git:
    """Plumbing on one repository (``root``: a working tree, or a bare repository's git dir)."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def __call__(
        self,
        *args: str,
        stdin: bytes | None = None,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
    ) -> bytes:
        """Run git in the repository (or ``cwd``) and return its stdout."""
        return run_git(cwd or self.root, args, stdin=stdin, env=env)  # type: ignore[return-value]

    def try_(self, *args: str) -> bytes | None:
        """Run git; ``None`` instead of an error when it fails."""
        return run_git(self.root, args, check=False)

    def valid_branch_name(self, name: str) -> bool:
        return self.try_("check-ref-format", "--branch", name) is not None

    def resolve(self, ref: str) -> str | None:
        """The commit ``ref`` names (or the object, for ``…^{tree}``-style specs), or None."""
        spec = ref if ref.endswith("}") else f"{ref}^{{commit}}"
        out = self.try_("rev-parse", "--verify", "--quiet", spec)
        return (out.decode().strip() or None) if out else None

    def entry(self, commit: str, path: str) -> Entry | None:
        """The blob at ``path`` in ``commit``, or None; :class:`InputError` if it is a folder."""
        for item in self("ls-tree", "-z", commit, "--", path).decode().split("\0"):
            meta, _, name = item.partition("\t")
            if name == path:
                mode, kind, oid = meta.split()
                if kind != "blob":
                    raise InputError(f"{path} is a {kind} in {commit[:12]}, not a file")
                return Entry(mode, oid)
        return None

    def blob(self, oid: str) -> bytes:
        return self("cat-file", "blob", oid)

    def read(self, commit: str, path: str) -> str | None:
        """The text of ``path`` in ``commit``, or None if absent."""
        entry = self.entry(commit, path)
        return None if entry is None else self.blob(entry.oid).decode("utf-8")

    def hash(self, content: str) -> str:
        """Store ``content`` as a blob (exact bytes, no filters) and return its id."""
        data = content.encode("utf-8")
        return self("hash-object", "-w", "--no-filters", "--stdin", stdin=data).decode().strip()

    def tree_with(self, commit: str, entries: Mapping[str, Entry]) -> str:
        """The tree of ``commit`` with ``entries`` replaced, built in a temporary index."""
        with tempfile.TemporaryDirectory(prefix="crashed-index-") as folder:
            env = {"GIT_INDEX_FILE": str(Path(folder) / "index")}
            self("read-tree", commit, env=env)
            for path, entry in entries.items():
                info = f"{entry.mode},{entry.oid},{path}"
                self("update-index", "--add", "--cacheinfo", info, env=env)
            return self("write-tree", env=env).decode().strip()

    def commit(self, tree: str, parents: Sequence[str], message: str) -> str:
        """A commit by the bot of ``tree`` on ``parents``."""
        args = ["commit-tree", "--no-gpg-sign", tree]
        for parent in parents:
            args += ["-p", parent]
        return self(*args, stdin=message.encode("utf-8"), env=_BOT_ENV).decode().strip()

    def update_ref(self, ref: str, new: str, old: str | None, reason: str) -> None:
        """Compare-and-swap ``ref`` from ``old`` (None: must not exist) to ``new``."""
        self("update-ref", "-m", reason, ref, new, old or ZERO_OID)

    def delete_ref(self, ref: str, old: str) -> bool:
        """Delete ``ref`` if it still points at ``old``."""
        return self.try_("update-ref", "-d", ref, old) is not None

    def parents(self, commit: str) -> list[str]:
        return self("rev-list", "--parents", "-n", "1", commit).decode().split()[1:]

    def message(self, commit: str) -> str:
        return self("log", "-1", "--format=%B", commit).decode().rstrip()

    def changed_files(self, base: str, commit: str) -> list[str]:
        out = self("diff-tree", "-r", "-z", "--name-only", "--no-renames", base, commit)
        return [name for name in out.decode().split("\0") if name]

    def diff(self, base: str, commit: str) -> str:
        """``git diff base commit`` as plain text."""
        out = self("-c", "color.ui=never", "diff", "--no-ext-diff", "--no-color", base, commit)
        return out.decode("utf-8", errors="replace")

    def log(self, ref: str, path: str) -> list[LogEntry]:
        """Commits reachable from ``ref`` that changed ``path`` (git's default history
        simplification, so a merge appears through the commit that brought the change), oldest
        first."""
        out = self("log", "--reverse", "-z", "--format=%H%x1f%cI%x1f%B", ref, "--", path)
        entries = []
        for record in out.decode("utf-8", errors="replace").split("\0"):
            if record.strip():
                commit, committed_at, message = record.lstrip("\n").split("\x1f", 2)
                entries.append(LogEntry(commit, committed_at, message.rstrip()))
        return entries

    def status(self, worktree: Path, files: Sequence[str]) -> str:
        """``git status --porcelain`` of ``files`` in ``worktree`` (staged and unstaged)."""
        out = self("status", "--porcelain=v1", "--untracked-files=all", "--", *files, cwd=worktree)
        return out.decode("utf-8", errors="replace")

    def checked_out(self, branch: str) -> Path | None:
        """The working tree that has ``branch`` checked out, if any."""
        out = self("worktree", "list", "--porcelain").decode("utf-8", errors="replace")
        for block in out.split("\n\n"):
            lines = dict(line.partition(" ")[::2] for line in block.splitlines())
            if lines.get("branch") == f"refs/heads/{branch}" and "worktree" in lines:
                path = Path(lines["worktree"])
                if path.is_dir() and "bare" not in lines:
                    return path
        return None

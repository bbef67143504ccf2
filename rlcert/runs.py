"""The run-folder layer: the only code that writes a long job's settings, rows and checkpoints (floor 1).

Every long command (``rlcert train``, ``train --seeds``, ``sweep``, ``certify``, ``certify-policy``, the demo)
keeps its outputs resumable and unmixed with four pieces:

* :func:`ensure_settings` -- the settings are written (atomically) **before the first result**; on resume they are
  compared with the ones on disk and a difference is refused in one line naming the differing keys
  (:class:`SettingsMismatch`, a ``ValueError``).
* :class:`Rows` -- an append-only CSV/TSV: the header is checked, a partial last line (a killed writer) is
  dropped on open, every row is flushed (and fsync'ed) as it is appended; :meth:`Rows.keep` rewrites the file
  atomically (e.g. rows after a checkpoint's step are dropped and re-done).
* :func:`atomic_path` / :func:`write_text_atomic` / :func:`write_json_atomic` -- checkpoints: write a temporary
  file, fsync, ``os.replace``: a crash leaves the old file or the new one, never half of one.
* :func:`run_command` -- one Ctrl-C / exit-code wrapper for every command's ``main``: ``ValueError`` -> one line
  ``"{prog}: error: ..."`` and exit 2; Ctrl-C -> one line ``"{prog}: interrupted; ..."`` and exit 130, no
  traceback. :class:`deferred_interrupt` turns a Ctrl-C into a flag that a training loop polls at a consistent
  point (so it can checkpoint the current step before stopping).

Imports nothing from rlcert (standard library only).
"""

from __future__ import annotations

import contextlib
import csv
import glob
import io
import json
import os
import signal
import sys
import tempfile
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

__all__ = ["Rows", "SettingsMismatch", "atomic_path", "compare_settings", "deferred_interrupt", "ensure_settings",
           "file_lock", "read_json",
           "run_command", "settings_diff", "write_json_atomic", "write_text_atomic"]


# ---- atomic writes ---------------------------------------------------------------------------------------------

def _fsync_dir(folder: Path) -> None:
    with contextlib.suppress(OSError):  # not every platform / file system lets a directory be fsync'ed
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; when the block ends without an exception the temporary file is
    fsync'ed and renamed onto ``path`` (``os.replace``), else removed. For writers that take a path
    (``torch.save``, SB3 ``model.save``): ``with atomic_path(ckpt) as tmp: torch.save(state, tmp)``.
    The temporary name keeps ``path``'s suffix (SB3 appends ``.zip`` to names without it); temporaries of
    ``path`` left by a killed writer are removed first (one writer per path)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    for stale in path.parent.glob(f".{glob.escape(path.stem)}.*.tmp{glob.escape(path.suffix)}"):
        stale.unlink(missing_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=f".tmp{path.suffix}", dir=path.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
        _fsync_dir(path.parent)
    finally:
        if tmp.exists():
            tmp.unlink()


def write_text_atomic(path: str | Path, text: str) -> None:
    """Replace ``path`` with ``text`` atomically (temporary file + fsync + ``os.replace``)."""
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def write_json_atomic(path: str | Path, obj: Any) -> None:
    """``obj`` as indented JSON (non-JSON values via ``str``), written atomically."""
    write_text_atomic(path, json.dumps(obj, indent=1, default=str) + "\n")


@contextlib.contextmanager
def file_lock(path: str | Path) -> Iterator[None]:
    """Hold an exclusive advisory lock on ``path`` (created if missing) for a read-modify-write that several
    processes share (POSIX ``flock``; no lock where ``fcntl`` is missing)."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        yield
        return
    with open(path, "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def read_json(path: str | Path) -> Any:
    """A JSON file's content; a corrupt file is a one-line ``ValueError`` naming it."""
    try:
        return json.loads(Path(path).read_text())
    except json.JSONDecodeError as e:
        raise ValueError(f"{path} is not valid JSON ({e.msg} at line {e.lineno}); delete it or use another "
                         "output") from None


# ---- settings --------------------------------------------------------------------------------------------------

class SettingsMismatch(ValueError):
    """A resume with settings other than the ones the existing outputs were made with."""


def _plain(obj: Any) -> Any:
    """JSON round trip (tuples -> lists, Paths -> str), so settings compare as they are stored."""
    return json.loads(json.dumps(obj, default=str))


def settings_diff(old: Mapping[str, Any], new: Mapping[str, Any], ignore: Iterable[str] = ()) -> list[str]:
    """Sorted keys whose values differ between two settings mappings (a key missing on one side differs),
    compared after a JSON round trip; keys in ``ignore`` are left out."""
    old, new, skip = _plain(dict(old)), _plain(dict(new)), set(ignore)
    return sorted(k for k in set(old) | set(new) if k not in skip and (k not in old or k not in new
                                                                       or old[k] != new[k]))


def _load_settings(path: Path, key: str | None, read: Callable[[Path], Any] | None) -> tuple[dict, Any]:
    stored = read(path) if read is not None else read_json(path)
    old = stored.get(key, {}) if key is not None and isinstance(stored, dict) else stored
    if old is None:
        old = {}
    if not isinstance(old, dict):
        raise SettingsMismatch(f"{path} does not hold a settings mapping; use another output or delete it")
    return old, stored


def compare_settings(path: str | Path, settings: Mapping[str, Any], *, what: str | None = None,
                     ignore: Iterable[str] = (), key: str | None = None,
                     diff: Callable[[Mapping[str, Any], Mapping[str, Any]], Sequence[str]] | None = None,
                     read: Callable[[Path], Any] | None = None, have_results: bool = False) -> bool:
    """Compare ``settings`` with those stored in ``path`` without writing anything; returns True when ``path``
    exists (and matches). Raises :class:`SettingsMismatch` (one line naming the differing keys) on a difference,
    or when ``have_results`` is true but ``path`` is missing (results whose settings are unknown cannot be
    resumed). See :func:`ensure_settings` for the arguments."""
    path = Path(path)
    what = what or str(path)
    if not path.exists():
        if have_results:
            raise SettingsMismatch(f"{what} holds results but no settings record {path.name}; use another output "
                                   "or delete it")
        return False
    old, _ = _load_settings(path, key, read)
    keys = list(diff(old, settings)) if diff is not None else settings_diff(old, settings, ignore)
    if keys:
        shown = "; ".join(f"{k}: {_short(_lookup(old, k))} -> {_short(_lookup(settings, k))}" for k in keys[:4])
        raise SettingsMismatch(f"{what} was written with other settings (keys {keys}: {shown}); use another "
                               "output or delete it")
    return True


def ensure_settings(path: str | Path, settings: Mapping[str, Any], *, what: str | None = None,
                    ignore: Iterable[str] = (), key: str | None = None,
                    diff: Callable[[Mapping[str, Any], Mapping[str, Any]], Sequence[str]] | None = None,
                    update: bool = False, have_results: bool = False, read: Callable[[Path], Any] | None = None,
                    dump: Callable[[Any], str] | None = None) -> bool:
    """Write ``settings`` to ``path`` before the first result, or compare them on resume (:func:`compare_settings`).

    Returns True when ``path`` already existed (a resume) and matched. A mismatch raises
    :class:`SettingsMismatch` (one line: ``"{what} was written with other settings (keys [...]: old -> new);
    use another output or delete it"``); nothing is written then. ``key``: the settings live under this key of the
    stored mapping (other keys, e.g. results written at the end, are kept). ``ignore``: keys allowed to change
    (e.g. a budget); with ``update`` the stored settings are then rewritten with the new values. ``diff``: a
    custom comparison returning the differing keys (default :func:`settings_diff`). ``have_results``: the
    outputs already hold results (a missing settings file is then refused). ``read`` / ``dump``: file format
    (default JSON; e.g. ``yaml.safe_load`` of the text / ``yaml.safe_dump``). Writes are atomic."""
    path = Path(path)
    exists = compare_settings(path, settings, what=what, ignore=ignore, key=key, diff=diff, read=read,
                              have_results=have_results)
    if exists:
        old, stored = _load_settings(path, key, read)
        if update and _plain(dict(old)) != _plain(dict(settings)):
            _write_settings(path, settings, key, stored, dump)
        return True
    _write_settings(path, settings, key, {}, dump)
    return False


def _write_settings(path: Path, settings: Mapping[str, Any], key: str | None, stored: Any,
                    dump: Callable[[Any], str] | None) -> None:
    obj = dict(settings) if key is None else {**(stored if isinstance(stored, dict) else {}), key: dict(settings)}
    if dump is None:
        write_json_atomic(path, obj)
    else:
        write_text_atomic(path, dump(obj))


def _lookup(settings: Mapping[str, Any], key: str) -> Any:
    """``settings[key]``, else the value of ``key`` in a nested mapping (settings grouped one level deep)."""
    if key in settings:
        return settings[key]
    return next((v[key] for v in settings.values() if isinstance(v, Mapping) and key in v), None)


def _short(v: Any, width: int = 60) -> str:
    s = json.dumps(_plain(v)) if v is not None else "(missing)"
    return s if len(s) <= width else s[: width - 3] + "..."


# ---- rows ------------------------------------------------------------------------------------------------------

class Rows:
    """An append-only table (``delimiter`` "," for CSV, "\\t" for TSV) whose first line is ``fields``.

    Opening (the constructor) drops a partial last line left by a killed writer and refuses a file whose header
    differs (one-line ``ValueError``); the file and its header are created on the first :meth:`append`, so an
    interrupted run never leaves a file without a header. Rows are dicts with string values when read.
    ``fsync``: also fsync every append (survives a machine crash; without it a flushed row survives a killed
    process, which is enough for cheap rows written often). ``readonly``: a view of a table another process may be
    writing: a partial last line is ignored, not removed,
    and :meth:`append` / :meth:`keep` / :meth:`create` are refused."""

    def __init__(self, path: str | Path, fields: Sequence[str], delimiter: str = ",", fsync: bool = True,
                 readonly: bool = False) -> None:
        self.path, self.fields, self.delimiter, self.fsync = Path(path), list(fields), delimiter, fsync
        self.readonly = readonly
        self._header = delimiter.join(self.fields)
        self._rows: list[dict[str, str]] = self._load()

    def _load(self) -> list[dict[str, str]]:
        if not self.path.exists():
            return []
        text = self.path.read_text()
        if text and not text.endswith("\n"):  # killed mid-write: drop the partial row (it is redone)
            text = text[: text.rfind("\n") + 1]
            if not self.readonly:
                write_text_atomic(self.path, text)
        if not text:
            return []
        lines = text.splitlines()
        if lines[0] != self._header:
            raise ValueError(f"{self.path} exists but is not a table with header {self._header!r}; use another "
                             "output or delete it")
        reader = csv.reader(lines[1:], delimiter=self.delimiter)
        return [dict(zip(self.fields, r, strict=False)) for r in reader if r]

    def _writable(self) -> None:
        if self.readonly:
            raise ValueError(f"{self.path} was opened read-only")

    def __len__(self) -> int:
        return len(self._rows)

    def __iter__(self) -> Iterator[dict[str, str]]:
        return iter(list(self._rows))

    @property
    def rows(self) -> list[dict[str, str]]:
        """The rows read or appended so far (a copy)."""
        return list(self._rows)

    def column(self, name: str) -> list[str]:
        return [r[name] for r in self._rows]

    def _line(self, row: Mapping[str, Any] | Sequence[Any]) -> str:
        values = [row[f] for f in self.fields] if isinstance(row, Mapping) else list(row)
        if len(values) != len(self.fields):
            raise ValueError(f"{self.path}: a row needs {len(self.fields)} values ({self.fields}), got {len(values)}")
        buf = io.StringIO()
        csv.writer(buf, delimiter=self.delimiter, lineterminator="\n").writerow(values)
        return buf.getvalue()

    def append(self, *rows: Mapping[str, Any] | Sequence[Any]) -> None:
        """Append rows (mappings with every field, or sequences in field order) and flush them (one write)."""
        self._writable()
        if not rows:
            return
        lines = [self._line(r) for r in rows]
        new = not self.path.exists() or self.path.stat().st_size == 0
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "a", newline="") as f:
            f.write(("" if not new else self._header + "\n") + "".join(lines))
            f.flush()
            if self.fsync:
                os.fsync(f.fileno())
        reader = csv.reader([line[:-1] for line in lines], delimiter=self.delimiter)
        self._rows.extend(dict(zip(self.fields, r, strict=False)) for r in reader)

    def append_lines(self, lines: Iterable[str]) -> None:
        """Append pre-formatted lines (fields joined by the delimiter, a trailing newline optional; each must have
        every field) in one flushed write."""
        rows = [next(csv.reader([line.rstrip("\n")], delimiter=self.delimiter)) for line in lines]
        self.append(*rows)

    def create(self) -> None:
        """Write the header now if the file is missing or empty (e.g. a run with nothing to do still leaves a
        readable table)."""
        self._writable()
        if not self.path.exists() or self.path.stat().st_size == 0:
            write_text_atomic(self.path, self._header + "\n")

    def keep(self, predicate: Callable[[dict[str, str]], bool]) -> int:
        """Keep only the rows for which ``predicate`` holds (atomic rewrite, only when some row goes); returns
        how many were dropped."""
        self._writable()
        kept = [r for r in self._rows if predicate(r)]
        dropped = len(self._rows) - len(kept)
        if dropped:
            write_text_atomic(self.path, self._header + "\n" + "".join(self._line(r) for r in kept))
            self._rows = kept
        return dropped


# ---- commands: Ctrl-C and exit codes ---------------------------------------------------------------------------

def run_command(prog: str, body: Callable[[], int | None],
                interrupted: str | Callable[[], str] = "rerun the same command to resume") -> int:
    """Run a command's ``body`` and turn its ending into an exit code: its return value (None -> 0);
    ``ValueError`` -> ``"{prog}: error: {e}"`` on stderr, 2; Ctrl-C -> ``"{prog}: interrupted; {interrupted}"``
    on stderr (one line, no traceback), 130. ``interrupted`` may be a callable (e.g. counting the rows kept)."""
    try:
        code = body()
    except ValueError as e:
        print(f"{prog}: error: {e}", file=sys.stderr, flush=True)
        return 2
    except KeyboardInterrupt:
        msg = interrupted() if callable(interrupted) else interrupted
        print(f"\n{prog}: interrupted; {msg}", file=sys.stderr, flush=True)
        return 130
    return 0 if code is None else int(code)


class deferred_interrupt:
    """Context manager: while active (and in the main thread), the first Ctrl-C (SIGINT) only sets
    :attr:`requested`; the loop polls it at a consistent point (e.g. between steps), saves its state and raises
    ``KeyboardInterrupt`` (see :meth:`check`). A second Ctrl-C interrupts at once. Elsewhere (worker threads)
    it does nothing and Ctrl-C behaves as usual."""

    def __init__(self) -> None:
        self.requested = False
        self._old: Any = None
        self._active = False

    def _handler(self, signum: int, frame: Any) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True

    def __enter__(self) -> deferred_interrupt:
        if threading.current_thread() is threading.main_thread():
            self._old = signal.signal(signal.SIGINT, self._handler)
            self._active = True
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._active:
            signal.signal(signal.SIGINT, self._old)
            self._active = False

    def check(self, save: Callable[[], None] | None = None) -> None:
        """If a Ctrl-C was requested: call ``save`` (once) and raise ``KeyboardInterrupt``."""
        if self.requested:
            self.requested = False
            if save is not None:
                save()
            raise KeyboardInterrupt

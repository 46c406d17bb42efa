"""How the command line speaks.

Results go to stdout, everything else (progress, notes, problems) to stderr,
so that a result can be piped. On a terminal results are tables and long work
shows progress bars; otherwise (a pipe, a file, or ``--quiet`` on a terminal)
results are plain tab-separated lines and progress is a plain line every tenth
of the way. ``--json`` prints one JSON document on stdout.

Names and messages come from the API and the user, so nothing is printed as
it came: everything goes through ``_text.escape_controls`` (or ``json_text``),
in tables, plain lines and on stderr alike. Files are written by
:func:`replace_file`: whole, or not at all, private until complete, and never
through a symlink another user planted in a shared directory.
"""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
import stat
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Literal

from rich.console import Console, RenderableType
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    ProgressColumn,
    SpinnerColumn,
    Task,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)
from rich.progress import Progress as Bars
from rich.table import Table
from rich.text import Text

from fathom_events import Event, Progress

from ._text import PROG, UsageError, escape_controls, json_text

__all__ = [
    "Counters",
    "Output",
    "duration",
    "escape_controls",
    "event_json",
    "json_text",
    "link_target",
    "replace_file",
    "retry_log",
    "tally",
]

Counters = Callable[[], tuple[int, int]]
Mode = Literal["terminal", "plain", "json"]


def replace_file(path: Path, chunks: Iterable[bytes]) -> None:
    """Write ``chunks`` to ``path`` whole or not at all.

    They go to a new file beside the target, readable by its owner only (mode
    600) from its first byte, which is renamed over the target only once every
    chunk is written and flushed to disk; on any error or Ctrl-C the new file
    is removed and the old one is left byte for byte. Only then does it get
    its mode: a replaced file's (and, where allowed, its owner), or for a new
    file the mode the umask gives (0666 less the umask). A symlink is followed,
    so the file it points to is replaced and the link stays, but not one that
    another user owns in a directory others can write to (see
    :func:`link_target`). A target that is not a regular file (``/dev/null``,
    ``/dev/stdout``, a FIFO) holds nothing to keep, and is written to directly.
    """
    target = link_target(path)
    try:
        _replace_file(path, target, chunks)
    except OSError as error:
        # Name the file the user gave, not the temporary one beside it.
        raise OSError(error.errno, error.strerror or str(error), str(path)) from error


def link_target(path: Path) -> Path:
    """The file that writing ``path`` replaces: ``path``, or where its chain of symlinks ends.

    A link in the chain that another user owns, in a directory that is sticky
    or writable by anyone (``/tmp``), is refused (a :class:`UsageError`): that
    user could have planted it to make us overwrite a file of ours, or, run by
    root, of anyone. (Linux's ``protected_symlinks`` refuses to follow such a
    link too, but resolving it by hand, as ``realpath()`` does, goes around
    that.) Directories on the way are left to the kernel to follow.
    """
    target = path
    for _ in range(_MAX_LINKS):
        if not target.is_symlink():
            return target
        _refuse_a_planted_link(path, target)
        target = target.parent / target.readlink()
    raise UsageError(f"cannot write {path}: too many levels of symbolic links")


_MAX_LINKS = 40  # as Linux's limit (ELOOP)


def _refuse_a_planted_link(path: Path, link: Path) -> None:
    if sys.platform == "win32":  # no sticky bit; links need privileges to make
        return
    owner = link.lstat().st_uid
    shared = stat.S_ISVTX | stat.S_IWOTH
    if owner != os.geteuid() and link.parent.stat().st_mode & shared:
        shown = "it" if link == path else str(link)
        raise UsageError(
            f"cannot write {path}: {shown} is a symlink another user (uid {owner}) owns in a"
            f" directory others can write to ({link.parent}); give the path of the file itself"
            " if you mean it"
        )


def _replace_file(path: Path, target: Path, chunks: Iterable[bytes]) -> None:
    try:
        # Through the path as given, as open() goes: /dev/stdout on a pipe resolves to no
        # real path ("/proc/PID/fd/pipe:[N]"), but stat() and open() reach the pipe.
        old: os.stat_result | None = path.stat()
    except FileNotFoundError:
        old = None
    if old is not None and not stat.S_ISREG(old.st_mode):
        with path.open("wb") as file:
            file.writelines(chunks)
        return
    temporary, descriptor = _new_file_beside(target)
    try:
        with os.fdopen(descriptor, "wb") as file:
            file.writelines(chunks)
            file.flush()
            # Complete: now it may have its mode (after its owner: chown clears set-id bits).
            mode = _umask_mode() if old is None else stat.S_IMODE(old.st_mode)
            if sys.platform == "win32":
                temporary.chmod(mode)  # only its read-only flag
            else:  # by descriptor: the name could be swapped for a link meanwhile
                if old is not None:
                    _give_back(file.fileno(), old)
                os.fchmod(file.fileno(), mode)
            os.fsync(file.fileno())
        temporary.replace(target)
    except BaseException:
        with contextlib.suppress(OSError):
            temporary.unlink()
        raise


def _umask_mode() -> int:
    """0666 less the umask: the mode open() gives a new file."""
    umask = os.umask(0o077)  # read by setting it; 077 meanwhile, should a thread make a file
    os.umask(umask)
    return 0o666 & ~umask


def _give_back(descriptor: int, old: os.stat_result) -> None:
    """Give the new file the old one's owner and group, or at least its group.

    Only root may give a file away; a member of the old file's group may still
    give it that group, so that the old mode (say 0660) means what it meant.
    """
    try:
        os.fchown(descriptor, old.st_uid, old.st_gid)
    except OSError:
        with contextlib.suppress(OSError):
            os.fchown(descriptor, -1, old.st_gid)


def _new_file_beside(target: Path) -> tuple[Path, int]:
    """A new, empty file in ``target``'s directory, readable and writable by its owner only."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    for _ in range(100):
        candidate = target.with_name(f".{target.name}.{secrets.token_hex(4)}.tmp")
        try:
            return candidate, os.open(candidate, flags, 0o600)
        except FileExistsError:
            continue
    raise FileExistsError(f"no free temporary name beside {target}")  # pragma: no cover


def event_json(event: Event) -> dict[str, str | None]:
    """An event as JSON: id, name, currency (None unless the API said), ISO created_at."""
    return {
        "id": event.id,
        "name": event.name,
        "currency": None if event.currency is None else str(event.currency),
        "created_at": event.created_at.isoformat(),
    }


def tally(count: int, one: str, many: str | None = None) -> str:
    """``1 retry``, ``2 retries``, ``1,200 requests``."""
    return f"{count:,} {one if count == 1 else many or one + 's'}"


def counts_text(counters: Counters) -> str:
    sent, retries = counters()
    return f"{tally(sent, 'request')}, {tally(retries, 'retry', 'retries')}"


def duration(seconds: float) -> str:
    """A span of time for people: 0.4 s, 42 s, 3 min 20 s, 2 h 5 min."""
    if seconds < 10:  # below ten seconds a tenth still matters
        return f"{seconds:.1f} s"
    whole = round(seconds)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    if minutes:
        return f"{minutes} min {secs} s" if secs else f"{minutes} min"
    return f"{secs} s"


class _EscapingFormatter(logging.Formatter):
    """Log lines hold URLs and the server's messages: shown escaped, like all output."""

    def format(self, record: logging.LogRecord) -> str:
        return escape_controls(super().format(record), keep="\n")


#: The library's room whose warnings are shown without --debug too: a rate budget shared
#: through Redis that cannot be used, and so is kept by this process alone (once an outage).
_ALWAYS_WARNS = "_redis_limiter"


class _SharedBudgetWarnings(logging.Handler):
    """The shared budget's warnings, as ``fathom-events: warning: ...`` lines; nothing else."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)

    def emit(self, record: logging.LogRecord) -> None:
        if record.module == _ALWAYS_WARNS:
            Output.problem(f"warning: {record.getMessage()}")


@contextlib.contextmanager
def retry_log(debug: bool) -> Iterator[None]:
    """With --debug, the library's retry warnings go to stderr; otherwise only the shared
    budget's warnings do (the retries' stay unsaid).

    Each request's own lines (``fathom_events.http``) are not --debug's:
    ``FATHOM_EVENTS_LOG=debug`` shows them.
    """
    logger = logging.getLogger("fathom_events")
    handler: logging.Handler = _SharedBudgetWarnings()
    if debug:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(_EscapingFormatter(f"{PROG}: %(message)s"))
        handler.addFilter(lambda record: not record.name.startswith("fathom_events.http"))
    level = logger.level
    logger.addHandler(handler)
    if debug:
        logger.setLevel(logging.DEBUG)
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


class _Counts(ProgressColumn):
    """Requests and retries so far, read from the client at each refresh."""

    def __init__(self, counters: Counters) -> None:
        super().__init__()
        self._counters = counters

    def render(self, task: Task) -> Text:  # noqa: ARG002 - the counts are the client's, not the task's
        return Text(counts_text(self._counters))


class _Phase:
    """How far a phase has come: the sites ended (told by ``seen``), or what ``count`` says."""

    def __init__(self, count: Callable[[], int] | None) -> None:
        self._count = count
        self._sites = 0

    def seen(self, progress: Progress) -> None:
        self._sites = progress.sites_done

    def done(self) -> int:
        return self._sites if self._count is None else self._count()


class _PolledBars(Bars):
    """Bars that call ``poll`` each time they are drawn (at every refresh of rich's thread)."""

    def __init__(
        self, *columns: ProgressColumn, poll: Callable[[], None], console: Console
    ) -> None:
        self._poll = poll  # first: rich may draw while it is being set up
        super().__init__(*columns, console=console)

    def get_renderables(self) -> Iterable[RenderableType]:
        self._poll()
        yield from super().get_renderables()


class Output:
    """Where and how results, notes, problems and progress are written."""

    def __init__(self, mode: Mode, *, bars: bool = False) -> None:
        self.mode = mode
        self.bars = bars and mode in ("terminal", "plain")
        # Consoles look up sys.stdout / sys.stderr when they write, so a
        # redirected stream (a test's capture) is honoured.
        self._out = Console(highlight=False, soft_wrap=True)
        self._err = Console(stderr=True, highlight=False)

    @classmethod
    def choose(cls, *, json: bool, quiet: bool, bars: bool = True) -> Output:
        """JSON, or by where the output goes: a terminal gets tables and bars.

        Results are tables when stdout is a terminal; progress is bars when
        stderr is one (and ``bars`` is not turned off). ``quiet`` gives plain
        lines, as when the output is not a terminal.
        """
        if json:
            return cls("json")
        if quiet:
            return cls("plain")
        mode: Mode = "terminal" if Console().is_terminal else "plain"
        return cls(mode, bars=bars and Console(stderr=True).is_terminal)

    @property
    def json_mode(self) -> bool:
        return self.mode == "json"

    @property
    def results_on_terminal(self) -> bool:
        """Whether results (stdout) are seen on a terminal: not JSON, not a file or a pipe."""
        return not self.json_mode and sys.stdout.isatty()

    def result(self, text: str) -> None:
        """A line of the answer, on stdout (not in JSON mode), escaped."""
        self._line(escape_controls(text))

    def _line(self, text: str) -> None:
        if self.mode == "terminal":
            self._out.print(Text(text))  # Text: square brackets are not markup
        elif self.mode != "json":
            print(text, flush=True)  # noqa: T201 - the command's answer

    def note(self, text: str) -> None:
        """Something worth knowing on the way, on stderr (not with --json), escaped."""
        if self.mode in ("terminal", "plain"):
            print(escape_controls(text), file=sys.stderr, flush=True)  # noqa: T201 - for people

    @staticmethod
    def problem(text: str) -> None:
        """A failure (or what must be seen before it happens), on stderr, always, escaped."""
        print(f"{PROG}: {escape_controls(text)}", file=sys.stderr, flush=True)  # noqa: T201

    @staticmethod
    def confirm(question: str) -> bool | None:
        """Ask ``question`` on stderr and read the answer from a terminal: True only for y/yes.

        None when stdin is not a terminal: no one is there to ask. The end of
        input (Ctrl-D) is a no.
        """
        if not sys.stdin.isatty():
            return None
        print(f"{escape_controls(question)} [y/N] ", end="", file=sys.stderr, flush=True)  # noqa: T201
        answer = sys.stdin.readline()
        if not answer.endswith("\n"):
            print(file=sys.stderr, flush=True)  # noqa: T201 - end the prompt's line after Ctrl-D
        return answer.strip().lower() in ("y", "yes")

    @staticmethod
    def document(text: str) -> None:
        """A whole result on stdout (pull's JSON or CSV, export's sync file), every byte of it.

        Written through the binary layer until every byte is out: with an
        unbuffered stdout (PYTHONUNBUFFERED) a text stream drops the rest of a
        short write to a pipe (CPython #85393), so a reader that leaves mid-way
        (``| head``) would cut the result short and the command end with 0;
        here the next write meets the closed pipe, and the command ends as
        ``run`` says (141).
        """
        stream = sys.stdout
        binary = getattr(stream, "buffer", None)
        if binary is None:  # a text-only stream of the embedding program's
            stream.write(text)
            stream.flush()
            return
        stream.flush()
        left = memoryview(text.encode(stream.encoding or "utf-8", stream.errors or "strict"))
        while left:
            left = left[binary.write(left) or 0 :]
        binary.flush()

    @staticmethod
    def json(document: object, *, compact: bool = False) -> None:
        """The JSON answer, on stdout (``compact``: on one line)."""
        print(json_text(document, compact=compact), flush=True)  # noqa: T201

    def table(
        self, headers: Sequence[str], rows: Sequence[Sequence[str]], *, header_line: bool = False
    ) -> None:
        """A table on a terminal; tab-separated lines otherwise; cells escaped.

        The lines have no header unless ``header_line`` (then the first line
        names the columns). A tab or a line break inside a cell is escaped too,
        so a row stays one line.
        """
        shown = [[escape_controls(cell) for cell in row] for row in rows]
        if self.mode == "terminal":
            table = Table(*headers)
            for row in shown:
                table.add_row(*(Text(cell) for cell in row))
            self._out.print(table)
        else:
            if header_line:
                self._line("\t".join(headers))
            for row in shown:
                self._line("\t".join(row))

    def events(self, events: Sequence[Event], *, currency: bool = False) -> None:
        """Events as a table (the currency column only when the API gave it)."""
        headers = (
            ["id", "name", "currency", "created_at"] if currency else ["id", "name", "created_at"]
        )
        rows = []
        for event in events:
            shown = event_json(event)
            rows.append([shown[column] or "" for column in headers])
        self.table(headers, rows)

    @contextlib.contextmanager
    def progress(
        self, label: str, total: int, counters: Counters, *, done: Callable[[], int] | None = None
    ) -> Iterator[Callable[[Progress], None]]:
        """Show the progress of one phase of ``total`` sites; yields an ``on_progress``.

        ``counters`` are the phase's own requests and retries. With ``done``,
        the phase counts ``total`` changes instead of sites: ``done()`` says how
        many are done so far, read at every refresh of a bar (so a bar moves as
        each change ends, not only as a site does), and at each site's end for
        plain lines. Leaving without an error marks the phase complete, so a
        phase that reports no progress of its own (planning) still ends at total.
        """
        phase = _Phase(done)
        unit = "sites" if done is None else "changes"
        if self.bars:
            with self._bars(label, total, counters, unit, phase) as on_progress:
                yield on_progress
        elif self.mode in ("terminal", "plain"):
            with self._lines(label, total, counters, unit, phase) as on_progress:
                yield on_progress
        else:
            yield lambda _: None

    @contextlib.contextmanager
    def _bars(
        self, label: str, total: int, counters: Counters, unit: str, phase: _Phase
    ) -> Iterator[Callable[[Progress], None]]:
        task: TaskID | None = None
        ended = False  # then the phase is complete, whatever done() says

        def poll() -> None:
            if task is not None:
                bars.update(task, completed=total if ended else phase.done())

        bars = _PolledBars(
            SpinnerColumn(),
            TextColumn("{task.description:<6}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn(unit),
            _Counts(counters),
            TimeElapsedColumn(),
            poll=poll,
            console=self._err,
        )
        task = bars.add_task(label, total=total)
        with bars:
            yield phase.seen
            ended = True
            bars.update(task, completed=total)

    @contextlib.contextmanager
    def _lines(
        self, label: str, total: int, counters: Counters, unit: str, phase: _Phase
    ) -> Iterator[Callable[[Progress], None]]:
        step = max(1, total // 10)
        shown = 0

        def line(count: int) -> None:
            nonlocal shown
            shown = count
            self.note(f"{label}: {count:,}/{total:,} {unit}, {counts_text(counters)}")

        def on_progress(progress: Progress) -> None:
            phase.seen(progress)
            count = phase.done()
            if count - shown >= step or (count >= total > shown):
                line(count)

        yield on_progress
        if shown < total:
            line(total)

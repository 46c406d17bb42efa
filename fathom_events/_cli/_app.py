"""Arguments, dispatch, errors and exit codes of ``fathom-events``.

Exit codes: 0 success; 1 partial failure (a site or a change failed, or the
API refused a single command; also a pull or sync that could read no site at
all); 2 usage or input error (bad arguments, no token or a bad one, a bad base
URL, input the API would reject, a malformed or hostile sync file), nothing
sent; 130 interrupted (Ctrl-C), after saying what was done.

Every line shown goes through ``_output.escape_controls``, errors included.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import sys
import traceback
from collections.abc import Callable, Coroutine, Iterator, Sequence
from typing import Any, NoReturn

from fathom_events._options import DEFAULT_BASE_URL, TOKEN_ENV
from fathom_events._retry import RateLimit
from fathom_events._version import __version__
from fathom_events.exceptions import FathomError, InvalidRequestError

from . import _commands, _demo, _fakeserver, _sync
from ._commands import PULL_FORMATS, UsageError
from ._output import PROG, Output, escape_controls
from ._syncfile import SyncFileError

__all__ = ["build_parser", "run"]

Handler = Callable[[argparse.Namespace, Output], int]
DEFAULT_RATE_LIMIT = RateLimit(2000, 3600)  # Fathom's documented limit
OUTPUT_OPTIONS = {"json": False, "quiet": False, "debug": False}
CONNECTION_OPTIONS: dict[str, object] = {
    "token": None,
    "base_url": DEFAULT_BASE_URL,
    "allow_insecure_http": False,
}
LIMIT_OPTIONS: dict[str, object] = {"rate_limit": DEFAULT_RATE_LIMIT, "max_in_flight": 8}
EXIT_INTERRUPTED = 130


class _Parser(argparse.ArgumentParser):
    """An argument parser whose errors are one line (raised, so ``run`` decides the exit)."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{self.prog}: {message} (see {self.prog} --help)")


def _rate_limit(text: str) -> RateLimit | None:
    if text.lower() in ("off", "none"):
        return None
    requests, _, seconds = text.partition("/")
    try:
        return RateLimit(int(requests), float(seconds or 3600))
    except (ValueError, InvalidRequestError):
        raise argparse.ArgumentTypeError(
            f"{text!r} is not N/SECONDS (e.g. 2000/3600) or 'off'"
        ) from None


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number >= 1")
    return value


def _count(text: str) -> int:
    if not text.isdigit():
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number >= 0")
    return int(text)


def _token(text: str) -> str:
    # An empty --token (say, "$TOKEN" with TOKEN unset) must not fall back
    # to a default token without a word.
    if not text:
        raise argparse.ArgumentTypeError("must not be empty (leave --token out for the default)")
    return text


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds >= 0")
    return value


def _option_groups() -> tuple[_Parser, _Parser, _Parser]:
    # Defaults are SUPPRESS so that an option given before the command is not
    # overwritten by the command's own default; run() fills them in.
    unset = argparse.SUPPRESS
    output = _Parser(add_help=False)
    output.add_argument("--json", action="store_true", default=unset, help="print JSON")
    output.add_argument(
        "-q",
        "--quiet",
        action="store_true",
        default=unset,
        help="no bars or tables: plain lines, as when output is not a terminal",
    )
    output.add_argument(
        "--debug", action="store_true", default=unset, help="log retries; tracebacks on errors"
    )
    connection = _Parser(add_help=False)
    connection.add_argument(
        "--token", type=_token, default=unset, help=f"API token (default: ${TOKEN_ENV})"
    )
    connection.add_argument(
        "--base-url", metavar="URL", default=unset, help=f"API URL (default: {DEFAULT_BASE_URL})"
    )
    connection.add_argument(
        "--allow-insecure-http",
        action="store_true",
        default=unset,
        help="allow an http:// URL to a host that is not loopback (the token travels in clear)",
    )
    limits = _Parser(add_help=False)
    limits.add_argument(
        "--rate-limit",
        metavar="N/SECONDS",
        type=_rate_limit,
        default=unset,
        help="at most N requests per SECONDS, or 'off' (default: 2000/3600, Fathom's limit)",
    )
    limits.add_argument(
        "--max-in-flight",
        metavar="N",
        type=_positive_int,
        default=unset,
        help="requests in flight at once (default: 8)",
    )
    return output, connection, limits


def _api(command: Callable[[argparse.Namespace, Output], Coroutine[Any, Any, int]]) -> Handler:
    return lambda args, out: asyncio.run(command(args, out))


def build_parser() -> argparse.ArgumentParser:
    """The parser of every command; each command's handler is its ``handler`` default."""
    output, connection, limits = _option_groups()
    api = [output, connection, limits]
    parser = _Parser(
        prog=PROG,
        description="Manage Fathom Analytics events from the command line.",
        parents=api,
    )
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    def command(
        name: str, handler: Handler, text: str, parents: list[_Parser], description: str = ""
    ) -> _Parser:
        sub: _Parser = commands.add_parser(
            name, parents=parents, help=text, description=description or text
        )
        accepted = {action.dest for p in parents for action in p._actions}  # noqa: SLF001
        sub.set_defaults(handler=handler, accepted=accepted)
        return sub

    sub = command("list", _api(_commands.list_), "list every event of a site", api)
    sub.add_argument("site", metavar="SITE")
    sub = command("get", _api(_commands.get), "show one event", api)
    sub.add_argument("site", metavar="SITE")
    sub.add_argument("event", metavar="EVENT")
    sub = command("create", _api(_commands.create), "create an event", api)
    sub.add_argument("site", metavar="SITE")
    sub.add_argument("name", metavar="NAME")
    sub.add_argument("--currency", metavar="C", help="dollar (default), euro, pound, ...")
    sub = command("update", _api(_commands.update), "rename an event or change its currency", api)
    sub.add_argument("site", metavar="SITE")
    sub.add_argument("event", metavar="EVENT")
    sub.add_argument("--name", metavar="N", help="the new name")
    sub.add_argument("--currency", metavar="C", help="the new currency")
    sub = command("delete", _api(_commands.delete), "delete an event", api)
    sub.add_argument("site", metavar="SITE")
    sub.add_argument("event", metavar="EVENT")
    sub = command(
        "pull",
        _api(_commands.pull),
        "every event of every site named",
        api,
        "Every event of every site named, as JSON or CSV. Exit 0 when every site was read;"
        " exit 1 when some failed (each is named on stderr; the others are still written, and"
        " the JSON lists the failures under 'failed'); exit 2 for bad input; 130 on Ctrl-C.",
    )
    sub.add_argument("sites", metavar="SITE", nargs="+")
    sub.add_argument(
        "--out",
        metavar="FILE",
        help=(
            "write to FILE instead of stdout. FILE is replaced in one step once the pull has"
            " run to its end and read at least one site; when every site failed, or on an"
            " error or Ctrl-C, FILE is left as it was"
        ),
    )
    sub.add_argument(
        "--format", choices=PULL_FORMATS, help="json (default) or csv (default for *.csv)"
    )
    sub = command(
        "sync",
        _api(_sync.sync),
        "give sites the events a sync file names",
        api,
        "Give sites the events a sync file names. Exit 0 when everything was done; exit 1 when"
        " a site could not be listed or a change failed (each is named on stderr); exit 2 for"
        " a bad sync file, nothing sent; 130 on Ctrl-C, after saying what was done.",
    )
    sub.add_argument("file", metavar="FILE", help="a TOML sync file (see the README)")
    sub.add_argument("--prune", action="store_true", help="delete events the file does not name")
    sub.add_argument("--dry-run", action="store_true", help="show the plan; change nothing")
    sub.add_argument(
        "--set-currency", action="store_true", help="rewrite the currency of existing events"
    )
    sub = command(
        "fake-server", _fakeserver.fake_server, "run a fake Fathom API until interrupted", [output]
    )
    sub.add_argument("--host", default="127.0.0.1", help="address to listen on (127.0.0.1)")
    sub.add_argument("--port", type=_count, default=0, help="port (default: a free one)")
    sub.add_argument("--sites", metavar="N", type=_count, default=3, help="sites to seed (3)")
    sub.add_argument(
        "--events-per-site", metavar="M", type=_count, default=20, help="events per site (20)"
    )
    sub.add_argument(
        "--token", metavar="T", type=_token, default=argparse.SUPPRESS, help="the token it accepts"
    )
    sub.add_argument("--latency", metavar="SECONDS", type=_seconds, default=0.0, help="delay (0)")
    sub.set_defaults(accepted={*OUTPUT_OPTIONS, "token"})
    command(
        "demo",
        _api(_demo.demo),
        "bulk pull and sync against an in-process fake Fathom",
        [output, limits],
    )
    return parser


def _parse(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = build_parser()
    args = parser.parse_args(argv)
    given = set(vars(args)) & {*OUTPUT_OPTIONS, *CONNECTION_OPTIONS, *LIMIT_OPTIONS}
    for dest in sorted(given - args.accepted):
        option = "--" + dest.replace("_", "-")
        raise UsageError(f"{PROG} {args.command}: {option} does not apply to {args.command}")
    for dest, default in {**OUTPUT_OPTIONS, **CONNECTION_OPTIONS, **LIMIT_OPTIONS}.items():
        if not hasattr(args, dest):
            setattr(args, dest, default)
    return args


class _EscapingFormatter(logging.Formatter):
    """Log lines hold URLs and the server's messages: shown escaped, like all output."""

    def format(self, record: logging.LogRecord) -> str:
        return escape_controls(super().format(record), keep="\n")


@contextlib.contextmanager
def _retry_log(debug: bool) -> Iterator[None]:
    """With --debug, the library's retry warnings go to stderr; otherwise nowhere."""
    logger = logging.getLogger("fathom_events")
    handler: logging.Handler = logging.NullHandler()
    if debug:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(_EscapingFormatter(f"{PROG}: %(message)s"))
    level = logger.level
    logger.addHandler(handler)
    if debug:
        logger.setLevel(logging.DEBUG)
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


def _fail(error: BaseException, code: int, *, debug: bool) -> int:
    if debug:
        shown = "".join(traceback.format_exception(type(error), error, error.__traceback__))
        print(escape_controls(shown, keep="\n"), end="", file=sys.stderr)  # noqa: T201
    if isinstance(error, (UsageError, SyncFileError)):
        text = str(error)
    elif isinstance(error, InvalidRequestError):
        text = f"invalid input: {error}"
    elif isinstance(error, FathomError):
        text = f"{type(error).__name__}: {error}"
    elif isinstance(error, OSError):
        text = f"{error.strerror or error}: {error.filename}" if error.filename else str(error)
    else:
        text = f"unexpected {type(error).__name__}: {error} (run with --debug for the traceback)"
    line = escape_controls(text if text.startswith(PROG) else f"{PROG}: {text}")
    print(line, file=sys.stderr, flush=True)  # noqa: T201
    return code


def run(argv: Sequence[str] | None = None) -> int:
    """Parse ``argv``, run the command, and return its exit code; never raises."""
    try:
        args = _parse(argv)
    except UsageError as error:
        return _fail(error, 2, debug=False)
    except SystemExit as done:  # --help and --version
        return done.code if isinstance(done.code, int) else 0
    out = Output.choose(json=args.json, quiet=args.quiet, bars=not args.debug)
    with _retry_log(args.debug):
        try:
            return args.handler(args, out)  # type: ignore[no-any-return]
        except KeyboardInterrupt:
            out.problem("interrupted")
            return EXIT_INTERRUPTED
        except (UsageError, SyncFileError, InvalidRequestError) as error:
            return _fail(error, 2, debug=args.debug)
        except Exception as error:  # noqa: BLE001 - every failure becomes one line and a code
            return _fail(error, 1, debug=args.debug)

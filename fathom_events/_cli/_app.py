"""Arguments, dispatch, errors and exit codes of ``fathom-events``.

Exit codes: 0 success; 1 partial failure (a site or a change failed, or the
API refused a single command; also a pull or sync that could read no site at
all, and an export that wrote nothing); 2 usage or input error (bad arguments,
no token or a bad one, a bad base URL, input the API would reject, a malformed
or hostile sync file), nothing sent (but the listing of the sites, when a
``sites = "all"`` file names a ``[site.ID]`` the account lacks); 3 only from
``sync --check``: the sites differ from the file; 130 interrupted (Ctrl-C),
after saying what was done; 141 (as SIGPIPE gives) when stdout or stderr is
a pipe whose reader has gone (``| head``), saying nothing.

Every line shown goes through ``_text.escape_controls``, errors included.

Parsing needs only argparse and ``_text``: each command's module (and with it
the client, aiohttp and rich, or the test fake) is imported once that command
runs, so ``--help``, ``--version`` and a usage error answer at once.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import os
import sys
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, NoReturn, TextIO, cast

from fathom_events import DEFAULT_BASE_URL, FathomError, InvalidRequestError, __version__

from ._text import PROG, REDIS_URL_ENV, TOKEN_ENV, UsageError, escape_controls

if TYPE_CHECKING:
    from fathom_events import RateLimit

    from ._output import Output

__all__ = ["EXIT_CODES", "build_parser", "run"]

Handler = Callable[[argparse.Namespace, "Output"], int]
OUTPUT_OPTIONS = ("json", "quiet", "debug")
CONNECTION_OPTIONS = (
    "token",
    "base_url",
    "allow_insecure_http",
    "proxy",
    "trust_env",
    "ca_bundle",
    "client_cert",
    "client_key",
)
LIMIT_OPTIONS = ("rate_limit", "max_in_flight")
SHARING_OPTIONS = ("redis_url",)
PULL_FORMATS = ("json", "csv")
#: What ``list`` and ``sites`` read at most by default: the library's caps
#: (``DEFAULT_MAX_EVENTS_PER_SITE``, ``DEFAULT_MAX_SITES``), written here so that parsing
#: imports nothing of the client (a test keeps them equal).
LISTING_CAP = 100_000
EXIT_INTERRUPTED = 130
EXIT_BROKEN_PIPE = 128 + 13  # 13: SIGPIPE; a shell reports 141 for `yes | head`
#: Every exit code of every command, and what it means: shown by ``fathom-events --help``
#: and by the documentation's command-line reference (docs/_ext/fathom_docs.py).
EXIT_CODES: tuple[tuple[int, str], ...] = (
    (0, "everything was done"),
    (
        1,
        (
            "partial failure: a site could not be read, a change failed or the token may not"
            " make it (the rest was done), or the API refused a single command"
        ),
    ),
    (
        2,
        (
            "usage or input error: bad arguments, no token, input the API would refuse, a"
            " malformed sync file, a sync whose deletes were not confirmed or number more than"
            " --max-deletes; nothing was sent (but the listings)"
        ),
    ),
    (3, "only from sync --check: the sites differ from the file"),
    (EXIT_INTERRUPTED, "interrupted (Ctrl-C), after saying what was done"),
    (EXIT_BROKEN_PIPE, "the output is a pipe whose reader has gone (| head): stopped quietly"),
)


class _Parser(argparse.ArgumentParser):
    """An argument parser whose errors are one line (raised, so ``run`` decides the exit)."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{self.prog}: {message} (see {self.prog} --help)")


def _option_defaults() -> dict[str, object]:
    """Every shared option's default, for the commands that take it or not."""
    from fathom_events import RateLimit  # noqa: PLC0415 - not needed to parse, nor for --help

    return {
        "json": False,
        "quiet": False,
        "debug": False,
        "token": None,  # the client reads $FATHOM_API_TOKEN
        "base_url": None,  # the client reads $FATHOM_API_BASE_URL, else Fathom's own
        "allow_insecure_http": False,
        "proxy": None,
        "trust_env": False,
        "ca_bundle": None,
        "client_cert": None,
        "client_key": None,
        "rate_limit": RateLimit(2000, 3600),  # Fathom's documented limit
        "max_in_flight": 8,
        "redis_url": None,  # read from $FATHOM_EVENTS_REDIS_URL by the commands that take it
    }


def _rate_limit(text: str) -> RateLimit | None:
    if text.lower() in ("off", "none"):
        return None
    from fathom_events import RateLimit  # noqa: PLC0415 - only when the option is given

    requests, slash, seconds = text.partition("/")
    problem = f"{text!r} is not N/SECONDS (e.g. 2000/3600) or 'off'"
    if not slash:
        if (count := requests.strip()).isdecimal():  # once read as N an hour, without a word
            problem += f": say the seconds too ({count}/3600 is {count} an hour)"
        raise argparse.ArgumentTypeError(problem)
    try:
        return RateLimit(int(requests), float(seconds))
    except (ValueError, InvalidRequestError):
        raise argparse.ArgumentTypeError(problem) from None


def _fake_rate_limit(text: str) -> tuple[int, float]:
    """``fake-server --rate-limit``: N/SECONDS, both given (no default window, no 'off')."""
    from fathom_events.testing._throttle import check_rate_limit  # noqa: PLC0415 - when given

    requests, slash, seconds = text.partition("/")
    try:
        return check_rate_limit((int(requests), float(seconds)) if slash else None)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not N/SECONDS (e.g. 2000/3600: 2000 requests an hour per token;"
            " at most ten years)"
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


def _redis_url(text: str) -> str:
    # As with --token: an empty URL (say, "$URL" with URL unset) must not quietly
    # leave this process with a budget of its own while the others share one.
    if not text:
        raise argparse.ArgumentTypeError(
            f"must not be empty (leave --redis-url out, and {REDIS_URL_ENV} unset, for a"
            " budget of this process's own)"
        )
    return text


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds >= 0")
    return value


def _option_groups() -> tuple[_Parser, _Parser, _Parser, _Parser]:
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
        "--base-url",
        metavar="URL",
        default=unset,
        help=f"API URL (default: $FATHOM_API_BASE_URL, else {DEFAULT_BASE_URL})",
    )
    connection.add_argument(
        "--allow-insecure-http",
        action="store_true",
        default=unset,
        help="allow an http:// URL to a host that is not loopback (the token travels in clear)",
    )
    connection.add_argument(
        "--proxy",
        metavar="URL",
        default=unset,
        help="send through this http:// or https:// proxy (user:password@ allowed, never shown)",
    )
    connection.add_argument(
        "--trust-env",
        action="store_true",
        default=unset,
        help="send through the proxy $HTTPS_PROXY (or $HTTP_PROXY) names, unless $NO_PROXY names"
        " the API's host",
    )
    connection.add_argument(
        "--ca-bundle",
        metavar="FILE",
        default=unset,
        help="trust the CA certificates in this PEM file, instead of the system's",
    )
    connection.add_argument(
        "--client-cert",
        metavar="FILE",
        default=unset,
        help="present this client certificate (PEM, with its key unless --client-key gives it)",
    )
    connection.add_argument(
        "--client-key", metavar="FILE", default=unset, help="the client certificate's key (PEM)"
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
    sharing = _Parser(add_help=False)
    sharing.add_argument(
        "--redis-url",
        metavar="URL",
        type=_redis_url,
        default=unset,
        help=(
            "keep the rate limit in the Redis at URL, shared by every process on every machine"
            f" that uses the token (default: ${REDIS_URL_ENV}; needs the 'redis' extra)"
        ),
    )
    return output, connection, limits, sharing


def _command(module: str, name: str, *, run_in_asyncio: bool = True) -> Handler:
    """The handler ``module.name``, imported only when its command runs.

    ``run_in_asyncio``: the handler is a coroutine function, run by ``asyncio.run``.
    """

    def handler(args: argparse.Namespace, out: Output) -> int:
        function = getattr(importlib.import_module(module, __package__), name)
        if not run_in_asyncio:
            return cast("int", function(args, out))
        import asyncio  # noqa: PLC0415 - not needed to parse, nor for --help

        return cast("int", asyncio.run(function(args, out)))

    return handler


def _site_arguments(sub: _Parser) -> None:
    """SITE... or ``--all-sites`` (one of them, not both: checked when the command runs)."""
    sub.add_argument("sites", metavar="SITE", nargs="*")
    sub.add_argument(
        "--all-sites",
        action="store_true",
        help="every site the token can list (needs '*' or 'all-sites-readonly'), not SITE...",
    )


def _cap_argument(sub: _Parser, flag: str, what: str) -> None:
    """``--max-events`` / ``--max-sites``: how far a listing goes before it stops (exit 1)."""
    sub.add_argument(
        flag,
        metavar="N",
        type=_positive_int,
        default=LISTING_CAP,
        help=f"stop (exit 1) past N {what} (default {LISTING_CAP:,})",
    )


def _fake_server_arguments(sub: _Parser) -> None:
    """The options of ``fake-server``: where it listens, what it holds, how it misbehaves."""
    sub.add_argument("--host", default="127.0.0.1", help="address to listen on (127.0.0.1)")
    sub.add_argument("--port", type=_count, default=0, help="port (default: a free one)")
    sub.add_argument("--sites", metavar="N", type=_count, default=3, help="sites to seed (3)")
    sub.add_argument(
        "--site",
        dest="named_sites",
        metavar="ID",
        action="append",
        default=[],
        help="also hold an empty site with this id, such as the README's CDBUGS (repeatable)",
    )
    sub.add_argument(
        "--events-per-site", metavar="M", type=_count, default=20, help="events per site (20)"
    )
    sub.add_argument(
        "--token", metavar="T", type=_token, default=argparse.SUPPRESS, help="the token it accepts"
    )
    sub.add_argument("--latency", metavar="SECONDS", type=_seconds, default=0.0, help="delay (0)")
    sub.add_argument(
        "--rate-limit",
        dest="fake_rate_limit",
        metavar="N/SECONDS",
        type=_fake_rate_limit,
        help="answer 429 past N requests per SECONDS per token, as Fathom does (default: no limit)",
    )
    sub.add_argument(
        "--fault",
        dest="faults",
        metavar="SPEC",
        action="append",
        default=[],
        help=(
            'inject a fault described in JSON, e.g. \'{"method": "POST", "path":'
            ' "/v1/sites/*/events", "fault": "respond", "status": 503}\' (repeatable;'
            " POST /_fake/faults takes the same while it runs)"
        ),
    )


def _pull_arguments(sub: _Parser) -> None:
    """The arguments and options of ``pull``."""
    _site_arguments(sub)
    sub.add_argument(
        "--out",
        metavar="FILE",
        help=(
            "write to FILE instead of stdout. FILE is replaced in one step once the pull has"
            " run to its end and read at least one site; when every site failed, or on an"
            " error or Ctrl-C, FILE is left as it was. A symlink is followed, unless another"
            " user owns it in a directory others can write to (exit 2, nothing sent)"
        ),
    )
    sub.add_argument(
        "--format", choices=PULL_FORMATS, help="json (default) or csv (default for *.csv)"
    )
    sub.add_argument(
        "--csv-raw",
        action="store_true",
        help=(
            "write each CSV cell as it is. Without it a cell that a spreadsheet would run as a"
            " formula, one that starts with =, +, -, @, a tab or a carriage return (say an"
            " event named =HYPERLINK(...)), is written with a ' before it"
        ),
    )


def _sync_arguments(sub: _Parser) -> None:
    """The arguments and options of ``sync``."""
    sub.add_argument(
        "file",
        metavar="FILE",
        help="a TOML sync file (its format: the docs' reference, The sync file)",
    )
    sub.add_argument("--prune", action="store_true", help="delete events the file does not name")
    sub.add_argument("--dry-run", action="store_true", help="show the plan; change nothing")
    sub.add_argument(
        "--set-currency", action="store_true", help="rewrite the currency of existing events"
    )
    sub.add_argument(
        "--check",
        action="store_true",
        help=(
            "for CI: plan, show the changes as --dry-run does, and change nothing; exit 0 when"
            " nothing would change, 3 when something would, 1 when a site could not be listed"
        ),
    )
    sub.add_argument(
        "--all-sites",
        action="store_true",
        help='every site the token can list, as if the file said sites = "all"',
    )
    sub.add_argument(
        "-y",
        "--yes",
        action="store_true",
        help=(
            "make the plan's deletes without asking (they are listed first); without it a"
            " sync that deletes asks on a terminal, and elsewhere exits 2 having sent nothing"
        ),
    )
    sub.add_argument(
        "--max-deletes",
        metavar="N",
        type=_count,
        help="exit 2, having sent nothing, when the plan deletes more than N events in all",
    )


def _exit_codes_text() -> str:
    """``EXIT_CODES`` as the end of ``--help``: one code a paragraph, wrapped."""
    import textwrap  # noqa: PLC0415 - argparse imports it too, once it formats help

    lines = ["exit codes:"]
    for code, text in EXIT_CODES:
        lines += textwrap.wrap(
            text, width=78, initial_indent=f"  {code:<4} ", subsequent_indent=" " * 7
        )
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    """The parser of every command; each command's handler is its ``handler`` default."""
    output, connection, limits, sharing = _option_groups()
    api = [output, connection, limits, sharing]
    parser = _Parser(
        prog=PROG,
        description="Manage Fathom Analytics events from the command line.",
        epilog=_exit_codes_text(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
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

    sub = command(
        "list",
        _command("._commands", "list_"),
        "list every event of a site",
        api,
        "Every event of a site, oldest first, each once. Exit 0; 1 when the API refused or the"
        f" site has more than --max-events events (default {LISTING_CAP:,}: listing stops there).",
    )
    sub.add_argument("site", metavar="SITE")
    _cap_argument(sub, "--max-events", "events")
    sub = command("get", _command("._commands", "get"), "show one event", api)
    sub.add_argument("site", metavar="SITE")
    sub.add_argument("event", metavar="EVENT")
    sub = command("create", _command("._commands", "create"), "create an event", api)
    sub.add_argument("site", metavar="SITE")
    sub.add_argument("name", metavar="NAME")
    sub.add_argument("--currency", metavar="C", help="dollar (default), euro, pound, ...")
    sub = command(
        "update",
        _command("._commands", "update"),
        "rename an event or change its currency",
        api,
    )
    sub.add_argument("site", metavar="SITE")
    sub.add_argument("event", metavar="EVENT")
    sub.add_argument("--name", metavar="N", help="the new name")
    sub.add_argument("--currency", metavar="C", help="the new currency")
    sub = command("delete", _command("._commands", "delete"), "delete an event", api)
    sub.add_argument("site", metavar="SITE")
    sub.add_argument("event", metavar="EVENT")
    sub = command(
        "pull",
        _command("._commands", "pull"),
        "every event of every site named (or --all-sites)",
        api,
        "Every event of every site named (or of every site, --all-sites), as JSON or CSV."
        " Exit 0 when every site was read; exit 1 when some failed (each is named on stderr;"
        " the others are still written, and the JSON lists the failures under 'failed');"
        " exit 2 for bad input; 130 on Ctrl-C.",
    )
    _pull_arguments(sub)
    sub = command(
        "sync",
        _command("._sync", "sync"),
        "give sites the events a sync file names",
        api,
        "Give sites the events a sync file names. Exit 0 when everything was done; exit 1 when"
        " a site could not be listed or a change failed (each is named on stderr); exit 2 for"
        " a bad sync file, nothing sent; 130 on Ctrl-C, after saying what was done. With"
        " --check nothing is changed: exit 0 when nothing would change, 3 when something"
        " would, 1 when a site could not be listed, 2 for a bad sync file.",
    )
    _sync_arguments(sub)
    sub = command(
        "sites",
        _command("._account", "sites"),
        "list the sites the token can see",
        api,
        "The sites the token can list (id, name, sharing, timezone, created_at), oldest first,"
        " each once. Needs a token with '*' or 'all-sites-readonly'. Exit 0; 1 when the API"
        f" refused or it lists more than --max-sites sites (default {LISTING_CAP:,}).",
    )
    _cap_argument(sub, "--max-sites", "sites")
    command(
        "token",
        _command("._account", "token"),
        "what the token may do, and when it expires",
        api,
        "The token's name, what its abilities allow in words, and its dates (never the token"
        " itself). Warns on stderr when it expires within 14 days. Exit 0, or 1 when the API"
        " refused.",
    )
    sub = command(
        "export",
        _command("._export", "export"),
        "write a sync file of the events the sites have",
        api,
        "Write a sync file (see `sync`) that gives the sites exactly the events they have:"
        " events every site has under [[events]], the rest under [site.ID]. No currency is"
        " written (Fathom does not tell an existing event's). Exit 0 when it was written;"
        " exit 1 when a site could not be read or holds an event a sync file cannot name"
        " (each is named on stderr; nothing is written); exit 2 for bad input (an --out FILE"
        " that exists, without --force, is one: nothing is sent); 130 on Ctrl-C.",
    )
    _site_arguments(sub)
    sub.add_argument(
        "--out",
        metavar="FILE",
        help=(
            "write to FILE instead of stdout, in one step once every site was read; otherwise"
            " FILE is left as it was. An existing FILE is refused (exit 2) unless --force is"
            " given, before anything is sent; a special file (/dev/null, /dev/stdout, a pipe)"
            " is not an existing file, and is written to as it is"
        ),
    )
    sub.add_argument(
        "--force", action="store_true", help="replace --out FILE if it exists (see --out)"
    )
    sub = command(
        "fake-server",
        _command("._fakeserver", "fake_server", run_in_asyncio=False),
        "run a fake Fathom API until interrupted",
        [output],
    )
    _fake_server_arguments(sub)
    # The shared --rate-limit (the client's) given before the command is not this one.
    sub.set_defaults(accepted={*OUTPUT_OPTIONS, "token"}, shadowed={"rate_limit"})
    command(
        "demo",
        _command("._demo", "demo"),
        "bulk pull and sync against an in-process fake Fathom",
        [output, limits],
    )
    return parser


def _parse(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = build_parser()
    args = parser.parse_args(argv)
    shared = {*OUTPUT_OPTIONS, *CONNECTION_OPTIONS, *LIMIT_OPTIONS, *SHARING_OPTIONS}
    given = set(vars(args)) & shared
    for dest in sorted(given - args.accepted):
        option = "--" + dest.replace("_", "-")
        command = args.command
        if dest in getattr(args, "shadowed", ()):
            raise UsageError(
                f"{PROG} {command}: {option} before {command} is the client's;"
                f" the fake's goes after it: {command} {option} N/SECONDS"
            )
        raise UsageError(f"{PROG} {command}: {option} does not apply to {command}")
    flag = getattr(args, "redis_url", None)
    for dest, default in _option_defaults().items():
        if not hasattr(args, dest):
            setattr(args, dest, default)
    if "redis_url" in args.accepted:
        _share_the_rate_limit(args, flag)
    return args


def _share_the_rate_limit(args: argparse.Namespace, flag: str | None) -> None:
    """``--redis-url``, or else ``$FATHOM_EVENTS_REDIS_URL``, kept in the rate limit.

    Sets ``args.redis_url`` and ``args.redis_url_from`` (which of the two it
    came from, for messages), and gives ``args.rate_limit`` the URL. A budget
    to share needs a rate limit: with ``--rate-limit off`` it is a usage
    error, before anything is sent, as is a URL ``RateLimit`` refuses (its
    rule shows the URL with the password blotted out). No message here shows
    the URL itself.
    """
    url, source = flag, "--redis-url"
    if url is None:
        url, source = os.environ.get(REDIS_URL_ENV) or None, f"${REDIS_URL_ENV}"
    args.redis_url, args.redis_url_from = url, source
    limit: RateLimit | None = args.rate_limit
    if url is None:
        return
    if limit is None:
        undo = "drop --redis-url" if flag is not None else f"unset {REDIS_URL_ENV}"
        raise UsageError(
            f"{PROG} {args.command}: {source} shares the rate limit through Redis, but"
            f" --rate-limit off sets none: give --rate-limit N/SECONDS, or {undo}"
        )
    from fathom_events import RateLimit  # noqa: PLC0415 - loaded already, by the defaults

    try:
        args.rate_limit = RateLimit(limit.requests, limit.per_seconds, redis_url=url)
    except InvalidRequestError as error:
        raise UsageError(f"{PROG} {args.command}: {source}: {error.rule}") from None


def _fail(error: BaseException, code: int, *, debug: bool) -> int:
    if debug:
        import traceback  # noqa: PLC0415 - only with --debug

        shown = "".join(traceback.format_exception(type(error), error, error.__traceback__))
        print(escape_controls(shown, keep="\n"), end="", file=sys.stderr)  # noqa: T201
    if isinstance(error, UsageError):  # a bad sync file too
        text = str(error)
    elif isinstance(error, InvalidRequestError):
        text = f"invalid input: {error}"
    elif isinstance(error, FathomError):
        text = f"{type(error).__name__}: {error}"
        if getattr(error, "tls_failure", False):  # the library's advice names ssl=
            text += (
                " (here: --ca-bundle FILE trusts a CA, --client-cert FILE presents a certificate)"
            )
    elif isinstance(error, OSError):
        text = f"{error.strerror or error}: {error.filename}" if error.filename else str(error)
    else:
        text = f"unexpected {type(error).__name__}: {error} (run with --debug for the traceback)"
    line = escape_controls(text if text.startswith(PROG) else f"{PROG}: {text}")
    print(line, file=sys.stderr, flush=True)  # noqa: T201
    return code


def run(argv: Sequence[str] | None = None) -> int:
    """Parse ``argv``, run the command, and return its exit code; never raises.

    A pipe whose reader has gone (``| head``) ends the command quietly, as
    SIGPIPE ends other commands: see :func:`_reader_gone`.
    """
    try:
        return _run(argv)
    except BrokenPipeError:
        return _reader_gone()


def _run(argv: Sequence[str] | None) -> int:
    try:
        args = _parse(argv)
    except UsageError as error:
        return _fail(error, 2, debug=False)
    except SystemExit as done:  # --help and --version
        return done.code if isinstance(done.code, int) else 0
    from ._output import Output, retry_log  # noqa: PLC0415 - rich: only once a command runs

    out = Output.choose(json=args.json, quiet=args.quiet, bars=not args.debug)
    with retry_log(args.debug):
        try:
            return args.handler(args, out)  # type: ignore[no-any-return]
        except KeyboardInterrupt:
            out.problem("interrupted")
            return EXIT_INTERRUPTED
        except BrokenPipeError:
            raise  # not a failure to report: run() ends the command quietly
        except (UsageError, InvalidRequestError) as error:
            return _fail(error, 2, debug=args.debug)
        except Exception as error:  # noqa: BLE001 - every failure becomes one line and a code
            return _fail(error, 1, debug=args.debug)


def _reader_gone() -> int:
    """Stdout or stderr is a pipe no one reads any more: exit 141 and say nothing of it.

    141 (128 + SIGPIPE) is what a shell reports for a command that SIGPIPE
    ended, as in ``yes | head``. What a stream still holds goes to devnull
    instead, so that Python's own flush at exit neither prints ``Exception
    ignored ... BrokenPipeError`` nor makes the exit code 120.
    """
    for stream in (sys.stdout, sys.stderr):
        _flush_or_drop(stream)
    return EXIT_BROKEN_PIPE


def _flush_or_drop(stream: TextIO) -> None:
    """Flush ``stream``; when it cannot be (its pipe is broken), point its descriptor at devnull."""
    try:
        stream.flush()
    except (OSError, ValueError):  # the broken pipe (or a closed stream)
        with contextlib.suppress(OSError, ValueError):  # no descriptor (not a file): leave it
            devnull = os.open(os.devnull, os.O_WRONLY)
            try:
                os.dup2(devnull, stream.fileno())
            finally:
                os.close(devnull)

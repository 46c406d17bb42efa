"""The commands that call the API: list, get, create, update, delete and pull.

Each is a coroutine ``(args, out) -> exit code`` run under ``asyncio.run``
with one :class:`AsyncClient`. Errors are raised, not printed: ``_app`` turns
them into one line and an exit code.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import io
import os
import ssl
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

from fathom_events import (
    APIStatusError,
    AsyncClient,
    Event,
    InvalidRequestError,
    PullResult,
    TooManyEventsError,
)

from ._output import (
    Counters,
    Output,
    event_json,
    json_text,
    link_target,
    replace_file,
    tally,
)
from ._text import BASE_URL_ENV, TOKEN_ENV, UsageError

__all__ = [
    "check_out_path",
    "connect",
    "counters",
    "create",
    "delete",
    "every_site",
    "get",
    "list_",
    "listing_sites",
    "named_sites",
    "pull",
    "show_pulled",
    "tls_context",
    "update",
]


async def _insecure_http(args: argparse.Namespace) -> bool:
    """True when the base URL is refused only for plain http past loopback (or its proxy's).

    The client checks its settings when it is made (and sends nothing then): one
    made with ``allow_insecure_http=True`` tells.
    """
    try:
        client = AsyncClient(
            args.token,
            args.base_url,
            proxy=args.proxy,
            trust_env=args.trust_env,
            allow_insecure_http=True,
        )
    except InvalidRequestError:
        return False
    await client.aclose()
    return True


def _pem_error(flag: str, path: str, error: OSError, what: str) -> UsageError:
    """A TLS file that could not be loaded, in the command line's words."""
    if isinstance(error, ssl.SSLError):
        return UsageError(f"{flag} {path}: not {what} ({error.reason or error})")
    return UsageError(f"{flag} {path}: cannot be read ({error.strerror or error})")


def tls_context(args: argparse.Namespace) -> ssl.SSLContext | None:
    """The TLS context ``--ca-bundle``, ``--client-cert`` and ``--client-key`` make, if any.

    ``--ca-bundle`` replaces the system's CAs (as curl's ``--cacert`` does); a file
    that cannot be read or holds no PEM is a usage error, before any request.
    """
    if args.client_key is not None and args.client_cert is None:
        raise UsageError("--client-key needs --client-cert (the certificate it is the key of)")
    if args.ca_bundle is None and args.client_cert is None:
        return None
    try:
        context = ssl.create_default_context(cafile=args.ca_bundle)
    except OSError as error:
        raise _pem_error("--ca-bundle", args.ca_bundle, error, "a PEM certificate bundle") from None
    if args.client_cert is not None:
        try:
            context.load_cert_chain(args.client_cert, args.client_key)
        except OSError as error:
            what = (
                "a PEM certificate and key" if args.client_key else "a PEM certificate with its key"
            )
            raise _pem_error("--client-cert", args.client_cert, error, what) from None
    return context


@contextlib.asynccontextmanager
async def connect(args: argparse.Namespace) -> AsyncIterator[AsyncClient]:
    """An open client from the connection options (or the environment) and the limits.

    The client itself looks the token and base URL up (``None``: ``$FATHOM_API_TOKEN``,
    ``$FATHOM_API_BASE_URL``) and checks every setting; a setting it refuses becomes a
    usage error in the command line's words.
    """
    try:
        client = AsyncClient(
            args.token,
            args.base_url,
            max_in_flight=args.max_in_flight,
            rate_limit=args.rate_limit,
            allow_insecure_http=args.allow_insecure_http,
            proxy=args.proxy,
            trust_env=args.trust_env,
            ssl=tls_context(args),
        )
    except InvalidRequestError as error:
        usage = await _usage_error(error, args)
        if usage is None:
            raise
        raise usage from None
    async with client:
        yield client


async def _usage_error(error: InvalidRequestError, args: argparse.Namespace) -> UsageError | None:
    """The client's refusal of a setting in the command line's words; None: show it as it is."""
    if error.field == "token" and args.token is None and not os.environ.get(TOKEN_ENV):
        # Unset or empty: either way, no token was given.
        return UsageError(f"no API token: pass --token or set {TOKEN_ENV}")
    # Say where the bad setting came from ($FATHOM_API_BASE_URL's rule names it).
    sources = {
        "token": "--token" if args.token else f"${TOKEN_ENV}",
        "base_url": "" if args.base_url is None else "--base-url",
        "proxy": "--proxy" if args.proxy is not None else "--trust-env",
        "ssl": "--ca-bundle" if args.ca_bundle is not None else "--client-cert",
        "redis_url": getattr(args, "redis_url_from", "--redis-url"),
    }
    if error.field not in sources:
        return None
    source = sources[error.field]
    # The library's advice (allow_insecure_http=True) is for callers of
    # Python; here the same choice is an option.
    if "allow_insecure_http=True" in error.rule and await _insecure_http(args):
        if error.field == "base_url":
            where = (
                f"--base-url {args.base_url}"
                if args.base_url is not None
                else f"${BASE_URL_ENV}={os.environ.get(BASE_URL_ENV)}"
            )
            return UsageError(
                f"{where}: plain http:// would send the API token"
                " unencrypted; use https://, a loopback host, or pass --allow-insecure-http"
                " if you really mean it"
            )
        rule = error.rule.replace("allow_insecure_http=True", "--allow-insecure-http")
        return UsageError(f"{source}: {rule}")
    return UsageError(f"{source}: {error.rule}" if source else error.rule)


LIST_SITES_HINT = (
    "listing the sites needs a token with the ability '*' or 'all-sites-readonly'"
    " (see fathom-events token)"
)


@contextlib.contextmanager
def listing_sites(out: Output) -> Iterator[None]:
    """Around a listing of the sites: a refusal is raised after a line saying what would do."""
    try:
        yield
    except APIStatusError as error:
        if error.status in (400, 403, 404):
            out.problem(LIST_SITES_HINT)
        raise


async def every_site(client: AsyncClient, out: Output) -> list[str]:
    """Every site the token can list, oldest first (``--all-sites``, ``sites = "all"``)."""
    with listing_sites(out):
        found = await client.sites.ids()
    out.note(f"found {len(found):,} sites")
    return found


def counters(client: AsyncClient) -> Counters:
    """The requests sent and retries from now on, for the progress of one phase."""
    sent, retries = client.requests_sent, client.retries
    return lambda: (client.requests_sent - sent, client.retries - retries)


async def list_(args: argparse.Namespace, out: Output) -> int:
    """Every event of a site, oldest first, each once; 1 past ``--max-events``.

    Read as ``pull`` reads a site (100 a page, keyed by id, capped), so that a
    server which never stops answering ``has_more`` cannot run it without end.
    """
    async with connect(args) as client:
        result = await client.events.pull([args.site], max_events_per_site=args.max_events)
    if (error := result.failed.get(args.site)) is not None:
        if isinstance(error, TooManyEventsError):
            out.problem(
                f"list {args.site}: the site has more than {error.limit:,} events; listing"
                " stopped there (--max-events N reads more)"
            )
            return 1
        raise error
    show_pulled(out, result, "list")
    events = result[args.site]
    if out.json_mode:
        out.json([event_json(event) for event in events])
    elif events:
        out.events(events)
    else:
        out.note(f"{args.site} has no events")
    return 0


def _show(out: Output, event: Event, *, currency: bool) -> int:
    """One event as JSON or a one-row table; the currency only where the API gives it."""
    if out.json_mode:
        out.json(event_json(event))
    else:
        out.events([event], currency=currency)
    return 0


async def get(args: argparse.Namespace, out: Output) -> int:
    """One event."""
    async with connect(args) as client:
        event = await client.events.get(args.site, args.event)
    return _show(out, event, currency=False)


async def create(args: argparse.Namespace, out: Output) -> int:
    """Create an event (a create is never sent twice by a retry)."""
    async with connect(args) as client:
        event = await client.events.create(args.site, args.name, args.currency)
    return _show(out, event, currency=True)


async def update(args: argparse.Namespace, out: Output) -> int:
    """Rename an event and/or change its currency."""
    async with connect(args) as client:
        event = await client.events.update(args.site, args.event, args.name, args.currency)
    return _show(out, event, currency=True)


async def delete(args: argparse.Namespace, out: Output) -> int:
    """Delete an event."""
    async with connect(args) as client:
        deleted = await client.events.delete(args.site, args.event)
    if out.json_mode:
        out.json({"id": deleted.id, "deleted": deleted.deleted})
    else:
        out.result(f"deleted {deleted.id}")
    return 0


def check_out_path(out: str | None) -> Path | None:
    """``--out FILE`` as a path (None: stdout), checked before any request."""
    target = None if out is None else Path(out)
    if target is not None and (target.is_dir() or not target.parent.is_dir()):
        raise UsageError(f"cannot write {out}: not a file in an existing directory")
    if target is not None:
        link_target(target)  # a symlink that may not be followed is refused now, not at the end
    return target


def _pull_target(args: argparse.Namespace) -> tuple[Path | None, str]:
    """Where pulled events go and in what format, checked before any request."""
    target = check_out_path(args.out)
    fmt = args.format
    if fmt is None:
        fmt = "csv" if target is not None and target.suffix.lower() == ".csv" else "json"
    if target is None and fmt == "csv" and args.json:
        raise UsageError("--json prints JSON on stdout: give --out FILE for the CSV")
    if args.csv_raw and fmt != "csv":
        raise UsageError("pull: --csv-raw is for CSV output (--format csv, or --out FILE.csv)")
    return target, fmt


def named_sites(args: argparse.Namespace) -> list[str]:
    """The SITEs named, each once, in order; none with ``--all-sites`` (found once connected).

    One of the two is needed, not both: otherwise a usage error, before any request.
    """
    if args.all_sites and args.sites:
        raise UsageError(f"{args.command}: give SITE... or --all-sites, not both")
    if not args.all_sites and not args.sites:
        raise UsageError(
            f"{args.command}: give SITE... or --all-sites (see fathom-events {args.command} --help)"
        )
    return list(dict.fromkeys(args.sites))


def show_pulled(out: Output, result: PullResult, command: str) -> None:
    """Each site that could not be read (a problem), and each whose listing repeated events."""
    for site, error in result.failed.items():
        out.problem(f"{command} {site}: {error}")
    for site, ids in result.repeated.items():
        out.note(
            f"{command} {site}: the listing showed {tally(len(ids), 'event')} more than once"
            f" ({', '.join(ids)}); each counts once"
        )


# What starts a formula in a spreadsheet's cell (OWASP's CSV injection list).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def inert_cell(value: str) -> str:
    """``value`` for a spreadsheet to show, not run: with a ' first when it starts a formula."""
    return f"'{value}" if value.startswith(FORMULA_STARTS) else value


def render_pull(result: PullResult, fmt: str, *, csv_raw: bool = False) -> str:
    """Pulled events as a JSON document, or CSV rows site_id,id,name,currency,created_at.

    JSON holds every value exactly. CSV is opened in spreadsheets too, which
    run a cell that starts with =, +, -, @, a tab or a carriage return as a
    formula (``=HYPERLINK(...)`` in an event's name): such a cell is written
    with a ``'`` before it (OWASP's rule), so that it is shown as text. Fathom's
    ids and the ISO dates never start so, and are written as they are; only a
    name (say ``-5% off``), or an id from a server that is not Fathom, gets the
    quote. With ``csv_raw`` (``--csv-raw``) every value is written as it is. A
    field holding a line break is quoted, so no value can forge a row; only a
    lone surrogate, which no UTF-8 file can hold, is written as its
    ``\\udXXX`` escape.
    """
    if fmt == "json":
        document = {
            "sites": {site: [event_json(e) for e in events] for site, events in result.items()},
            "failed": {site: str(error) for site, error in result.failed.items()},
        }
        return json_text(document) + "\n"
    buffer = io.StringIO()
    plain = csv.writer(buffer, lineterminator="\n")
    # The csv module quotes a field holding "\n" but not one holding a lone "\r",
    # where csv readers end the row too: such a row is written fully quoted.
    quoted = csv.writer(buffer, lineterminator="\n", quoting=csv.QUOTE_ALL)
    plain.writerow(["site_id", "id", "name", "currency", "created_at"])
    for site, events in result.items():
        for event in events:
            shown = event_json(event)
            row = [site, shown["id"], shown["name"], shown["currency"] or "", shown["created_at"]]
            if not csv_raw:
                row = [inert_cell(str(field)) for field in row]
            (quoted if any("\r" in str(field) for field in row) else plain).writerow(row)
    return buffer.getvalue().encode("utf-8", "backslashreplace").decode("utf-8")


async def pull(args: argparse.Namespace, out: Output) -> int:
    """Every event of every site named, to stdout or ``--out``, as JSON or CSV.

    ``--out FILE`` is replaced only when the pull has run to its end and read
    at least one site; when every site failed (or on an error or Ctrl-C) it is
    left as it was. Exit 0 when every site was read, else 1. ``--all-sites``:
    every site the token can list, instead of SITE....
    """
    target, fmt = _pull_target(args)
    sites = named_sites(args)
    async with connect(args) as client:
        if args.all_sites:
            sites = await every_site(client, out)
        with out.progress("pull", len(sites), counters(client)) as on_progress:
            result = await client.events.pull(sites, on_progress=on_progress)
    text = render_pull(result, fmt, csv_raw=args.csv_raw)
    written = target is not None and bool(result)
    if target is None:
        out.document(text)  # the pulled events are the answer
    elif written:
        replace_file(target, [text.encode("utf-8")])
    show_pulled(out, result, "pull")
    events = sum(len(found) for found in result.values())
    summary = f"pulled {events:,} events from {len(result):,} sites"
    if result.failed:
        summary += f"; {len(result.failed):,} failed"
    if target is not None and not written:
        out.problem(f"pull: no site could be read; {target} was left as it was")
    if target is None:
        out.note(summary)
    elif out.json_mode:
        failed = {site: str(error) for site, error in result.failed.items()}
        out.json(
            {
                "out": str(target),
                "written": written,
                "format": fmt,
                "sites": len(result),
                "events": events,
                "failed": failed,
            }
        )
    elif written:
        out.result(f"{summary} into {target}")
    return 1 if result.failed else 0

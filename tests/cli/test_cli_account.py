"""The command line's account-wide parts: `sites`, `token`, `--all-sites` and `sites = "all"`.

Through the real entry point (a subprocess) and `main()` in this process, against a
FakeFathom served from a thread, as in `test_cli.py`.
"""

from __future__ import annotations

import json
import re
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from fathom_events._cli import main
from fathom_events._cli._account import ability_words, expiry_warning
from fathom_events._cli._commands import LIST_SITES_HINT
from fathom_events._cli._syncfile import SyncFileError, parse_sync_file
from fathom_events.testing import FakeFathom
from tests.cli import test_cli
from tests.cli.test_cli import ANSI, TOKEN, Cli, Ran, run_cli
from tests.client.test_sites import repeat_sites_across_pages
from tests.support.readme import DOCS, section

# -- the sync file: sites = "all" and exclude ----------------------------------------------

ALL_FILE = """\
sites = "all"
exclude = ["OLD1", "OLD2"]

[[events]]
name = "Signed up"

[site.SITE2]
events = [{ name = "Booked a demo" }]
"""


def test_sites_all_is_read_with_its_exclusions() -> None:
    """`sites = "all"` names no sites itself; `exclude` and the [site.ID] tables are kept."""
    file = parse_sync_file(ALL_FILE, "s.toml")
    assert file.all_sites
    assert file.sites == ()
    assert file.exclude == ("OLD1", "OLD2")
    assert [spec.name for spec in file.extras["SITE2"]] == ["Booked a demo"]
    chosen = file.sites_to_sync(["SITE1", "OLD1", "SITE2", "SITE3"])
    assert chosen == ("SITE1", "SITE2", "SITE3")
    desired = file.desired(chosen)
    assert {site: [s.name for s in specs] for site, specs in desired.items()} == {
        "SITE1": ["Signed up"],
        "SITE2": ["Signed up", "Booked a demo"],
        "SITE3": ["Signed up"],
    }


def test_a_site_table_the_account_lacks_is_an_error_at_its_line() -> None:
    """With `sites = "all"`, a [site.ID] for a site the account does not have names its line."""
    file = parse_sync_file(ALL_FILE, "s.toml")
    with pytest.raises(SyncFileError) as caught:
        file.sites_to_sync(["SITE1", "SITE3"])
    assert caught.value.line == 7
    assert str(caught.value).startswith("s.toml:7: [site.SITE2]: the account has no site 'SITE2'")


def test_all_sites_on_a_listing_file_keeps_its_events() -> None:
    """`--all-sites` makes a file with a `sites` list one for every site; it needs [[events]]."""
    listing = parse_sync_file('sites = ["A"]\n[[events]]\nname = "x"\n', "s.toml")
    every = listing.for_every_site()
    assert every.all_sites
    assert every.for_every_site() is every
    assert every.desired(["A", "B"]) == {"A": list(listing.events), "B": list(listing.events)}
    extras_only = parse_sync_file('sites = ["A"]\n[site.A]\nevents = [{ name = "x" }]\n', "s.toml")
    with pytest.raises(SyncFileError, match="--all-sites needs \\[\\[events\\]\\]"):
        extras_only.for_every_site()


BAD_ALL_FILES = [
    ('sites = ["A"]\nexclude = ["B"]\n[[events]]\nname = "x"\n', 2, "`exclude` goes with"),
    ('sites = "all"\nexclude = "B"\n[[events]]\nname = "x"\n', 2, "`exclude` must be a list"),
    (
        'sites = "all"\nexclude = [\n  "B",\n  "",\n]\n[[events]]\nname = "x"\n',
        4,
        "`exclude` entry 2 must be a non-empty string",
    ),
    (
        'sites = "all"\nexclude = [\n  "B",\n  "C",\n  "B",\n]\n[[events]]\nname = "x"\n',
        5,
        "site 'B' is excluded twice",
    ),
    (
        'sites = "all"\nexclude = ["B"]\n[[events]]\nname = "x"\n\n[site.B]\nevents = []\n',
        6,
        "[site.B]: 'B' is in `exclude`",
    ),
    ('sites = "all"\n[site.A]\nevents = [{ name = "x" }]\n', 1, 'sites = "all" needs [[events]]'),
    (
        'sites = "every"\n[[events]]\nname = "x"\n',
        1,
        '`sites` must be a non-empty list of site ids, or "all"',
    ),
    ('sites = "all"\nexcluded = []\n[[events]]\nname = "x"\n', 2, "unknown key 'excluded'"),
]


@pytest.mark.parametrize(("text", "line", "problem"), BAD_ALL_FILES)
def test_bad_all_sites_file_names_line_and_problem(
    text: str, line: int | None, problem: str
) -> None:
    """Each misuse of `sites = "all"` and `exclude` is refused with its line and what is wrong."""
    with pytest.raises(SyncFileError) as caught:
        parse_sync_file(text, "s.toml")
    assert caught.value.line == line
    assert problem in caught.value.problem


# -- sites and token through the entry point ------------------------------------------------

T_SITE = datetime(2020, 7, 27, 12, 1, 1, tzinfo=timezone.utc)
HOSTILE = "Evil \x1b[2J\u202e site"
READER = "cli-reader-s3cret"
SITE_READER = "cli-site-reader-s3cret"


@pytest.fixture(name="fake")
def _fake() -> FakeFathom:
    fake = FakeFathom({TOKEN: ["*"]})
    fake.add_site("CDBUGS", "Bugs Bunny Portfolio", sharing="none",
                  timezone="America/New_York", created_at=T_SITE)  # fmt: skip
    fake.add_site("EVIL", HOSTILE, sharing="secret-new-mode", created_at=T_SITE + timedelta(1))
    fake.add_site("WXYZ", "Plain", sharing="public", created_at=T_SITE + timedelta(2))
    fake.add_event("CDBUGS", "Signed up", created_at=T_SITE)
    fake.add_event("WXYZ", "Purchased", created_at=T_SITE)
    fake.add_token(READER, ["all-sites-readonly"], name="CI reader")
    fake.add_token(SITE_READER, ["read:CDBUGS"], name="One site")
    return fake


# The fixtures `url` (this module's `fake`, served) and `cli` (main() pointed at it).
_url = test_cli._url
_cli = test_cli._cli


def run_as(capsys: pytest.CaptureFixture[str], url: str, token: str, *args: str) -> Ran:
    """`main()` in this process with ``token``, which must show nowhere."""
    code = main([*args, "--base-url", url, "--token", token])
    captured = capsys.readouterr()
    assert token not in captured.out + captured.err
    return Ran(code, captured.out, captured.err)


def test_sites_prints_a_line_per_site_escaped(url: str) -> None:
    """`fathom-events sites` prints id, name, sharing, timezone, created_at per site, escaped."""
    ran = run_cli("sites", "--base-url", url, "--token", TOKEN, script=True)
    assert ran.code == 0, ran.err
    assert ran.out.splitlines() == [
        "CDBUGS\tBugs Bunny Portfolio\tnone\tAmerica/New_York\t2020-07-27T12:01:01+00:00",
        "EVIL\tEvil \\x1b[2J\\u202e site\tsecret-new-mode\tUTC\t2020-07-28T12:01:01+00:00",
        "WXYZ\tPlain\tpublic\tUTC\t2020-07-29T12:01:01+00:00",
    ]
    assert ran.err == ""


def test_sites_json_and_terminal_table(cli: Cli, monkeypatch: pytest.MonkeyPatch) -> None:
    """`sites --json` gives every field exactly; on a terminal the sites are a table."""
    document = json.loads(cli("sites", "--json").out)
    assert document[1] == {
        "id": "EVIL",
        "name": HOSTILE,
        "sharing": "secret-new-mode",
        "timezone": "UTC",
        "created_at": "2020-07-28T12:01:01+00:00",
    }
    assert [site["id"] for site in document] == ["CDBUGS", "EVIL", "WXYZ"]
    monkeypatch.setenv("TTY_COMPATIBLE", "1")
    monkeypatch.setenv("COLUMNS", "160")
    table = ANSI.sub("", cli("sites").out)
    assert re.search(r"┃ id +┃ name +┃ sharing +┃ timezone +┃ created_at +┃", table)
    assert "Evil \\x1b[2J\\u202e site" in table
    assert "\x1b[2J" not in table


def test_sites_refused_is_exit_1_with_a_hint(capsys: pytest.CaptureFixture[str], url: str) -> None:
    """A token that may not list sites: exit 1, the API's refusal and which abilities would do."""
    ran = run_as(capsys, url, SITE_READER, "sites")
    assert ran.code == 1
    assert ran.out == ""
    assert ran.err.splitlines()[0] == f"fathom-events: {LIST_SITES_HINT}"
    assert "fathom-events: BadRequestError: 400" in ran.err


def test_token_in_words_never_the_token(fake: FakeFathom, url: str) -> None:
    """`token` says name, abilities in words (unknown ones escaped), dates; warns near expiry."""
    soon = datetime.now(timezone.utc).replace(microsecond=0) + timedelta(days=3, hours=1)
    fake.add_token(
        "soon-s3cret",
        ["read:WXYZ", "manage:CDBUGS", "all-sites-readonly", "future:\x1b[31m"],
        name="Deploy \x07bot",
        expires_at=soon,
    )
    ran = run_cli("token", "--base-url", url, "--token", "soon-s3cret", script=True)
    assert "soon-s3cret" not in ran.out + ran.err
    assert ran.code == 0, ran.err
    rows = [line.split("\t") for line in ran.out.splitlines()]
    assert rows[:6] == [
        ["name", "Deploy \\x07bot"],
        ["version", "1"],
        ["may", "read site WXYZ"],
        ["may", "manage site CDBUGS"],
        ["may", "read every site"],
        ["may", "future:\\x1b[31m"],
    ]
    assert rows[6] == ["expires_at", soon.isoformat()]
    assert [row[0] for row in rows[7:]] == ["last_used_at", "created_at", "updated_at"]
    assert ran.err == (
        f"fathom-events: warning: the token expires in 3 days, on {soon.isoformat()};"
        " make a new one before then\n"
    )


def test_token_json_and_no_warning_far_from_expiry(
    capsys: pytest.CaptureFixture[str], fake: FakeFathom, url: str
) -> None:
    """`token --json` gives the abilities raw and in words; no warning 15 days from expiry."""
    later = datetime.now(timezone.utc).replace(microsecond=0) + timedelta(days=15)
    fake.add_token("later-s3cret", ["*"], name="Admin", expires_at=later)
    ran = run_as(capsys, url, "later-s3cret", "token", "--json")
    assert ran.code == 0, ran.err
    assert ran.err == ""
    document = json.loads(ran.out)
    assert document["name"] == "Admin"
    assert document["abilities"] == ["*"]
    assert document["allows"] == ["manage every site"]
    assert document["can_list_sites"] is True
    assert document["expires_at"] == later.isoformat()
    assert document["expiry_warning"] is None
    plain = run_as(capsys, url, READER, "token")
    assert ["expires_at", "never"] in [line.split("\t") for line in plain.out.splitlines()]
    assert plain.err == ""


NOW = datetime(2026, 11, 28, 4, 0, tzinfo=timezone.utc)


@pytest.mark.parametrize(
    ("expires_at", "warning"),
    [
        (None, None),
        (NOW + timedelta(days=14, seconds=1), None),
        (NOW + timedelta(days=14), "expires in 14 days"),
        (NOW + timedelta(days=1), "expires in 1 day,"),
        (NOW + timedelta(days=2, seconds=-1), "expires in 2 days,"),
        (NOW + timedelta(days=1, hours=11), "expires in 1 day,"),
        (NOW + timedelta(hours=5), "expires in 5 h,"),
        (NOW, "expired on 2026-11-28T04:00:00+00:00"),
        (NOW - timedelta(days=2), "expired on 2026-11-26T04:00:00+00:00"),
        (datetime(2026, 11, 30, 4, 0), "expires in 2 days"),  # naive: taken as UTC  # noqa: DTZ001
    ],
)
def test_expiry_warning_within_14_days(expires_at: datetime | None, warning: str | None) -> None:
    """The warning comes from 14 days before expiry on, and says when it expired after."""
    said = expiry_warning(expires_at, NOW)
    if warning is None:
        assert said is None
    else:
        assert said is not None
        assert warning in said


def test_ability_words() -> None:
    """Each documented ability in words; anything else as it is (the output escapes it)."""
    assert [ability_words(a) for a in ["*", "all-sites-readonly", "read:S1", "manage:S 2"]] == [
        "manage every site",
        "read every site",
        "read site S1",
        "manage site S 2",
    ]
    assert [ability_words(a) for a in ["read:", "write:S1", "", "READ:S1"]] == [
        "read:",
        "write:S1",
        "",
        "READ:S1",
    ]


def test_token_and_sites_refuse_stray_arguments(cli: Cli, fake: FakeFathom) -> None:
    """`sites X` and `token X` are usage errors (exit 2) that send nothing."""
    for args in (["sites", "CDBUGS"], ["token", "extra"]):
        ran = cli(*args)
        assert ran.code == 2
        assert "unrecognized arguments" in ran.err
    assert fake.requests == []


# -- --all-sites and sites = "all" ---------------------------------------------------------


def test_pull_all_sites(url: str, fake: FakeFathom) -> None:
    """`pull --all-sites` pulls every site the token can list, oldest first."""
    ran = run_cli("pull", "--all-sites", "--base-url", url, "--token", TOKEN, script=True)
    assert ran.code == 0, ran.err
    document = json.loads(ran.out)
    assert list(document["sites"]) == ["CDBUGS", "EVIL", "WXYZ"]
    assert [e["name"] for e in document["sites"]["WXYZ"]] == ["Purchased"]
    assert "found 3 sites" in ran.err
    assert fake.requests_for("GET", "*/sites")


@pytest.mark.parametrize(
    ("args", "problem"),
    [
        (["pull", "--all-sites", "CDBUGS"], "give SITE... or --all-sites, not both"),
        (["pull"], "give SITE... or --all-sites"),
    ],
)
def test_pull_sites_or_all_sites(cli: Cli, fake: FakeFathom, args: list[str], problem: str) -> None:
    """`pull` takes SITEs or `--all-sites`, exactly one of them: otherwise exit 2, nothing sent."""
    ran = cli(*args)
    assert ran.code == 2
    assert problem in ran.err
    assert fake.requests == []


def test_pull_all_sites_refused_names_the_abilities(
    capsys: pytest.CaptureFixture[str], url: str, fake: FakeFathom
) -> None:
    """`--all-sites` with a token that may not list sites: exit 1, which abilities would do."""
    ran = run_as(capsys, url, SITE_READER, "pull", "--all-sites")
    assert ran.code == 1
    assert ran.out == ""
    assert "'*' or 'all-sites-readonly'" in ran.err
    assert fake.requests_for("GET", "*/events") == []


ALL_SYNC = ALL_FILE.replace('"OLD1", "OLD2"', '"EVIL", "GONE"').replace("SITE2", "WXYZ")


def test_sync_all_sites_from_the_file(url: str, fake: FakeFathom, tmp_path: Path) -> None:
    """`sites = "all"` syncs every listed site but the excluded ones; a missing exclude is said."""
    path = tmp_path / "sync.toml"
    path.write_text(ALL_SYNC)
    ran = run_cli("sync", str(path), "--base-url", url, "--token", TOKEN)
    assert ran.code == 0, ran.err
    assert [e["name"] for e in fake.events("CDBUGS")] == ["Signed up"]
    assert [e["name"] for e in fake.events("WXYZ")] == ["Purchased", "Signed up", "Booked a demo"]
    assert fake.events("EVIL") == []
    assert "exclude: the account has no site 'GONE'" in ran.err
    assert "syncing 2 sites (1 excluded)" in ran.err
    assert ran.out.splitlines()[-1].startswith("sync: 2 created, 0 updated, 0 deleted, 0 failed")


def test_sync_all_sites_with_a_table_for_a_missing_site(
    cli: Cli, fake: FakeFathom, tmp_path: Path
) -> None:
    """A [site.ID] the account lacks is exit 2 at its line, and no write is sent."""
    path = tmp_path / "sync.toml"
    path.write_text(ALL_SYNC.replace("[site.WXYZ]", "[site.WXYZZ]"))
    ran = cli("sync", str(path))
    assert ran.code == 2
    assert f"{path}:7: [site.WXYZZ]: the account has no site 'WXYZZ'" in ran.err
    assert {r.method for r in fake.requests} == {"GET"}
    assert fake.requests_for("GET", "*/events") == []


def test_sync_all_sites_option_on_a_listing_file(
    cli: Cli, fake: FakeFathom, tmp_path: Path
) -> None:
    """`sync FILE --all-sites` gives the file's events to every site, not only those listed."""
    path = tmp_path / "sync.toml"
    path.write_text('sites = ["CDBUGS"]\n[[events]]\nname = "Signed up"\n')
    ran = cli("sync", str(path), "--all-sites", "--dry-run", "--json")
    assert ran.code == 0, ran.err
    plan = json.loads(ran.out)["plan"]
    assert [site["site_id"] for site in plan["changes"]] == ["EVIL", "WXYZ"]
    assert {r.method for r in fake.requests} == {"GET"}


def test_sync_all_sites_with_a_read_only_token_sends_no_write(
    capsys: pytest.CaptureFixture[str], url: str, fake: FakeFathom, tmp_path: Path
) -> None:
    """`sites = "all"` with a token that may not list sites: exit 1, nothing planned or sent."""
    path = tmp_path / "sync.toml"
    path.write_text(ALL_SYNC)
    ran = run_as(capsys, url, SITE_READER, "sync", str(path))
    assert ran.code == 1
    assert "'*' or 'all-sites-readonly'" in ran.err
    assert {r.method for r in fake.requests} == {"GET"}
    assert fake.requests_for("GET", "*/events") == []


def test_export_all_sites(cli: Cli, fake: FakeFathom, tmp_path: Path) -> None:
    """`export --all-sites` writes every site the token can see; `sync --check` of it is clean."""
    path = tmp_path / "goals.toml"
    ran = cli("export", "--all-sites", "--out", str(path))
    assert ran.code == 0, ran.err
    text = path.read_text()
    assert "every site the token can see, 3 sites" in text
    assert parse_sync_file(text).sites == ("CDBUGS", "EVIL", "WXYZ")
    fake.reset_requests()
    checked = cli("sync", str(path), "--check")
    assert checked.code == 0, checked.err
    assert {r.method for r in fake.requests} == {"GET"}
    both = cli("export", "--all-sites", "CDBUGS")
    assert both.code == 2
    assert "give SITE... or --all-sites, not both" in both.err


def test_export_all_sites_counts_a_site_listed_twice_once(
    cli: Cli, fake: FakeFathom, tmp_path: Path
) -> None:
    """A site the listing's pages give twice is found, exported and counted once."""
    repeat_sites_across_pages(fake)  # A, B; then B, A, C
    for site in ("A", "B", "C"):
        fake.add_event(site, "Signed up")
    path = tmp_path / "goals.toml"
    ran = cli("export", "--all-sites", "--out", str(path))
    assert ran.code == 0, ran.err
    assert "found 3 sites" in ran.err
    assert ran.out == f"exported 3 events of 3 sites into {path}\n"
    text = path.read_text()
    assert "from every site the token can see, 3 sites (`sites` below)." in text
    assert parse_sync_file(text).sites == ("A", "B", "C")


def test_sync_check_of_all_sites_finds_drift(cli: Cli, fake: FakeFathom, tmp_path: Path) -> None:
    """`sync --check` of a `sites = "all"` file exits 3 when a site lacks an event; no write."""
    path = tmp_path / "sync.toml"
    path.write_text(ALL_SYNC)
    ran = cli("sync", str(path), "--check")
    assert ran.code == 3, ran.err
    assert {r.method for r in fake.requests} == {"GET"}
    fake.add_site("NEW", created_at=T_SITE + timedelta(3))
    path.write_text('sites = "all"\nexclude = ["NEW"]\n[[events]]\nname = "Signed up"\n')
    assert cli("sync", str(path)).code == 0
    assert cli("sync", str(path), "--check").code == 0
    assert fake.events("NEW") == []


def test_docs_all_sites_example_and_its_error() -> None:
    """The docs' `sites = "all"` file parses, and a typo in its table gives the error shown."""
    text = section(DOCS / "reference" / "sync-file.md", 'Every site: `sites = "all"`')
    (example,) = re.findall(r"```toml\n(.*?)```", text, re.DOTALL)
    shown = re.search(r"`(sync\.toml:\d+: \[site\.CDBUGZ\]: .*?) \.\.\.`", text)
    assert shown is not None
    file = parse_sync_file(example, "sync.toml")
    assert file.all_sites
    assert file.exclude == ("STAGING", "OLDSITE")
    assert file.sites_to_sync(["CDBUGS", "STAGING", "X"]) == ("CDBUGS", "X")
    typo = parse_sync_file(example.replace("[site.CDBUGS]", "[site.CDBUGZ]"), "sync.toml")
    with pytest.raises(SyncFileError) as caught:
        typo.sites_to_sync(["CDBUGS"])
    assert str(caught.value).startswith(shown[1])


def test_an_account_without_sites(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """No site: `sites` says so (exit 0); `export --all-sites` writes nothing and exits 1."""
    empty = FakeFathom({TOKEN: ["*"]})
    with empty.serve_in_thread() as url:
        cli = test_cli.in_process_cli(capsys, url)
        listed = cli("sites")
        assert (listed.code, listed.out, listed.err) == (0, "", "the token can list no sites\n")
        assert cli("sites", "--json").out == "[]\n"
        out = tmp_path / "goals.toml"
        exported = cli("export", "--all-sites", "--out", str(out))
        assert exported.code == 1
        assert "the token can see no site; nothing written" in exported.err
        assert not out.exists()


def test_token_warning_comes_with_json_too(
    capsys: pytest.CaptureFixture[str], fake: FakeFathom, url: str
) -> None:
    """With `--json` the warning is in the document and on stderr; stdout stays pure JSON."""
    soon = datetime.now(timezone.utc).replace(microsecond=0) + timedelta(hours=30)
    fake.add_token("soon-s3cret", ["read:CDBUGS"], expires_at=soon)
    ran = run_as(capsys, url, "soon-s3cret", "token", "--json")
    assert ran.code == 0
    document = json.loads(ran.out)
    assert document["can_list_sites"] is False
    assert document["expiry_warning"].startswith("the token expires in 1 day, on ")
    assert ran.err == f"fathom-events: warning: {document['expiry_warning']}\n"


def test_sync_with_every_site_excluded(cli: Cli, fake: FakeFathom, tmp_path: Path) -> None:
    """`sites = "all"` excluding every site found plans nothing, says so and exits 0."""
    path = tmp_path / "sync.toml"
    path.write_text('sites = "all"\nexclude = ["CDBUGS", "EVIL", "WXYZ"]\n[[events]]\nname = "x"\n')
    ran = cli("sync", str(path), "--check")
    assert ran.code == 0, ran.err
    assert ran.out.splitlines()[-1] == ("nothing to change: no site to sync")
    assert "syncing 0 sites (3 excluded)" in ran.err
    assert fake.requests_for("GET", "*/events") == []

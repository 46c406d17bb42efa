"""The command line's account-wide parts: `sites`, `token`, `--all-sites` and `sites = "all"`.

Through the real entry point (a subprocess) and `main()` in this process, against a
FakeFathom served from a thread, as in `test_cli.py`.
"""

from __future__ import annotations

import pytest

from fathom_events._cli._syncfile import SyncFileError, parse_sync_file

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

"""Changes the token may not make: the command line names them, and they count as drift."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fathom_events._cli import main
from fathom_events.testing import FakeFathom
from tests.cli.test_cli import SYNC_FILE, TOKEN

READER = "read-only-token-for-the-cli-tests"


@pytest.fixture(name="served")
def _served() -> object:
    """A fake where the CLI's token may only read, serving from a thread."""
    fake = FakeFathom({TOKEN: ["*"], READER: ["all-sites-readonly"]})
    fake.seed(2, 4)  # SITE1, SITE2
    with fake.serve_in_thread() as url:
        yield fake, url


@pytest.fixture(name="path")
def _path(tmp_path: Path) -> Path:
    """The sync file of the command-line tests: three creates across two sites."""
    path = tmp_path / "sync.toml"
    path.write_text(SYNC_FILE)
    return path


def sync(
    capsys: pytest.CaptureFixture[str], url: str, path: Path, *options: str
) -> tuple[int, str, str]:
    code = main(["sync", str(path), *options, "--base-url", url, "--token", READER])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_refused_changes_are_named_and_the_sync_exits_1(
    served: tuple[FakeFathom, str], path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A read-only token's sync sends no write, names each refused change, and exits 1."""
    fake, url = served
    code, out, err = sync(capsys, url, path)
    assert code == 1
    assert {request.method for request in fake.requests} == {"GET"}
    assert "3 refused" in out
    assert err.count("refused: create") == 3
    assert "may not manage" in err


def test_check_counts_refused_changes_as_drift(
    served: tuple[FakeFathom, str], path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`sync --check` with a token that may not make the changes still reports drift: exit 3."""
    fake, url = served
    code, _, err = sync(capsys, url, path, "--check")
    assert code == 3
    assert "refused: create" in err
    assert {request.method for request in fake.requests} == {"GET"}


def test_the_json_plan_lists_refused_changes(
    served: tuple[FakeFathom, str], path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`--check --json` lists each refused change with its site, action, target and reason."""
    _, url = served
    code, out, _ = sync(capsys, url, path, "--check", "--json")
    assert code == 3
    refused = json.loads(out)["plan"]["refused"]
    assert {(r["site_id"], r["action"], r["target"]) for r in refused} == {
        ("SITE1", "create", "Booked a demo"),
        ("SITE2", "create", "Booked a demo"),
        ("SITE2", "create", "Abandoned cart"),
    }
    assert all(r["reason"] for r in refused)


def test_the_json_report_lists_refused_changes(
    path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A sync that makes what it may and is refused the rest reports both, and exits 1."""
    fake = FakeFathom({TOKEN: ["*"], READER: ["manage:SITE1", "read:SITE2"]})
    fake.seed(2, 4)
    with fake.serve_in_thread() as url:
        code, out, _ = sync(capsys, url, path, "--json")
    assert code == 1
    report = json.loads(out)["report"]
    assert report["created"] == 1
    assert {(r["site_id"], r["target"]) for r in report["refused"]} == {
        ("SITE2", "Booked a demo"),
        ("SITE2", "Abandoned cart"),
    }
    assert [r.method for r in fake.requests].count("POST") == 1

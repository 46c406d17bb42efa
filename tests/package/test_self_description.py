"""The public objects explain themselves: help() of the package, the clients and every type."""

from __future__ import annotations

import inspect
import pydoc
import re
import typing

import attrs
import pytest

import fathom_events
import fathom_events.testing
from fathom_events import AsyncClient, AsyncEvents, AsyncSites, Client, Events, PullResult, Sites

PUBLIC = [
    (module, name) for module in (fathom_events, fathom_events.testing) for name in module.__all__
]
ATTRS_CLASSES = [
    pytest.param(value, id=name)
    for module, name in PUBLIC
    if attrs.has(value := getattr(module, name))
]


def shown(thing: object) -> str:
    """What ``help(thing)`` prints."""
    return pydoc.plain(pydoc.render_doc(thing))


def documented_fields(cls: type) -> list[str]:
    """The names an ``Attributes:`` section of the class's docstring describes, in order."""
    doc = inspect.cleandoc(cls.__doc__ or "")
    section = re.search(r"^Attributes:\n((?:    .*\n?|\n)+)", doc, re.MULTILINE)
    assert section is not None, f"{cls.__name__} has no Attributes: section"
    return re.findall(r"^    (\w+): \S", section[1], re.MULTILINE)


def test_help_of_the_package_says_what_it_is() -> None:
    """help(fathom_events) opens with what the package is for, not how it imports."""
    text = shown(fathom_events)
    assert "the Python client for the Fathom Analytics Events API" in text
    for word in ("AsyncClient", "Client", "to_builtins", "fathom_events.testing"):
        assert word in text
    assert "PEP 562" not in text
    assert "_LOCATIONS" not in text


@pytest.mark.parametrize(
    ("client", "events", "sites"), [(AsyncClient, AsyncEvents, AsyncSites), (Client, Events, Sites)]
)
def test_help_of_each_client_shows_its_resources(client: type, events: type, sites: type) -> None:
    """help() of each client names .events and .sites, typed properties with a docstring each."""
    text = shown(client)
    assert "client.events" in text
    assert "client.sites" in text
    hints = {
        name: typing.get_type_hints(getattr(client, name).fget) for name in ("events", "sites")
    }
    assert hints["events"]["return"] is events
    assert hints["sites"]["return"] is sites
    assert re.search(r"^ \|  events\n \|      The events of your sites", text, re.MULTILINE)
    assert re.search(r"^ \|  sites\n \|      The account's sites", text, re.MULTILINE)


@pytest.mark.parametrize("cls", ATTRS_CLASSES)
def test_every_field_of_every_public_attrs_class_is_documented(cls: type) -> None:
    """The class's Attributes: section describes each of its fields, in their order."""
    assert documented_fields(cls) == [field.name for field in attrs.fields(cls)]


def test_pull_result_documents_what_it_adds_to_a_dict() -> None:
    """PullResult, a dict, documents the attributes it adds: failed and repeated."""
    assert documented_fields(PullResult) == sorted(vars(PullResult()))


@pytest.mark.parametrize("cls", [*ATTRS_CLASSES, AsyncClient, Client])
def test_constructor_annotations_are_real_types(cls: type) -> None:
    """No parameter of a public type's constructor is annotated `object` (EventSpec's were)."""
    hints = typing.get_type_hints(vars(cls)["__init__"])
    loose = [name for name, hint in hints.items() if hint is object]
    assert loose == []
    assert "object" not in str(inspect.signature(cls))

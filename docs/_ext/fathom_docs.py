"""The project's Sphinx extension: the API reference from ``__all__``, the CLI from its parser.

* ``.. fathom-api:: MODULE`` documents public names of ``MODULE`` with autodoc:
  ``:names: A B C`` those, ``:errors:`` every exception class of its
  ``__all__`` (parents first, as the tree reads), ``:rest:`` every other name of
  its ``__all__`` that no ``fathom-api`` before it in the same page named. So a
  name added to ``__all__`` is documented on the next build, without an edit here.
* ``.. fathom-error-tree:: MODULE`` draws the error classes of its ``__all__``
  as a tree, each with the first sentence of its docstring.
* ``.. fathom-cli::`` writes the command line's reference from
  ``fathom_events._cli._app.build_parser()`` (every command, argument and
  option, with its help) and ``EXIT_CODES``: it cannot drift from the parser.
* Once every page is read, each name of ``fathom_events.__all__`` and
  ``fathom_events.testing.__all__`` must have a reference entry: a missing one
  is a warning, so ``sphinx -W`` fails.

Both directives write reStructuredText: in a MyST page, put them in an
``{eval-rst}`` block.
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import re
import sys
from typing import Any, ClassVar

import attrs
from docutils import nodes
from docutils.parsers.rst import directives
from docutils.statemachine import StringList
from sphinx.application import Sphinx
from sphinx.environment import BuildEnvironment
from sphinx.errors import PycodeError
from sphinx.pycode import ModuleAnalyzer
from sphinx.util import logging
from sphinx.util.docutils import SphinxDirective
from sphinx.util.nodes import nested_parse_with_titles

logger = logging.getLogger(__name__)

#: Classes the library makes for you (``client.events``, ``paginate()``): documented without
#: a signature, since their constructors are not for you to call.
MADE_BY_THE_LIBRARY = frozenset(
    {"AsyncEvents", "AsyncSites", "Events", "Sites", "AsyncPaginator", "Paginator"}
)
#: The modules whose every public name must have a reference entry.
PUBLIC_MODULES = ("fathom_events", "fathom_events.testing")


def public_names(module: str) -> list[str]:
    """The names ``module`` exports, as its ``__all__`` lists them."""
    return list(importlib.import_module(module).__all__)


def _is_error(value: object) -> bool:
    return isinstance(value, type) and issubclass(value, BaseException)


def _tree_order(module: str, errors: list[str]) -> list[str]:
    """The error classes depth first, each after its parent, siblings as ``__all__`` has them."""
    found = importlib.import_module(module)
    classes = {name: getattr(found, name) for name in errors}
    ordered: list[str] = []

    def visit(parent: type | None) -> None:
        for name, cls in classes.items():
            bases = [b for b in cls.__mro__[1:] if b in classes.values()]
            if (bases[0] if bases else None) is parent and name not in ordered:
                ordered.append(name)
                visit(cls)

    visit(None)
    return ordered


def autodoc_lines(module: str, name: str) -> list[str]:
    """The autodoc directive that documents ``module.name``, as lines of reStructuredText."""
    value = getattr(importlib.import_module(module), name)
    target = f"{module}.{name}"
    if isinstance(value, type):
        lines = [f".. autoclass:: {target}"]
        if _is_error(value):
            lines.append("   :show-inheritance:")
        elif name in ("Client", "AsyncClient"):
            lines.append("   :inherited-members:")
        return [*lines, ""]
    if inspect.isroutine(value):
        return [f".. autofunction:: {target}", ""]
    doc = data_doc(module, name)
    return [
        f".. py:data:: {name}",
        f"   :module: {module}",
        f"   :value: {value!r}",
        "",
        f"   {doc}",
        "",
    ]


def data_doc(module: str, name: str) -> str:
    """The ``#:`` comment above the assignment of ``name`` in the package's modules."""
    package = module.split(".", maxsplit=1)[0]
    for loaded in sorted(sys.modules):
        if loaded == package or loaded.startswith(package + "."):
            try:
                docs = ModuleAnalyzer.for_module(loaded).find_attr_docs()
            except PycodeError:
                continue
            if ("", name) in docs:
                return " ".join(line.strip() for line in docs["", name] if line.strip())
    logger.warning("%s.%s has no #: comment to describe it", module, name)
    return ""


class FathomApi(SphinxDirective):
    """``.. fathom-api:: MODULE`` with ``:names:``, ``:errors:`` or ``:rest:``: see above."""

    required_arguments = 1
    option_spec: ClassVar[dict[str, Any]] = {
        "names": directives.unchanged,
        "errors": directives.flag,
        "rest": directives.flag,
    }

    def run(self) -> list[nodes.Node]:
        module = self.arguments[0]
        exported = public_names(module)
        found = importlib.import_module(module)
        named = self.env.temp_data.setdefault("fathom_api_named", set())
        if "names" in self.options:
            names = self.options["names"].split()
            unknown = [name for name in names if name not in exported]
            if unknown:
                logger.warning(
                    "fathom-api: %s does not export %s",
                    module,
                    unknown,
                    location=self.get_location(),
                )
        elif "errors" in self.options:
            names = _tree_order(module, [n for n in exported if _is_error(getattr(found, n))])
        elif "rest" in self.options:
            names = [
                name
                for name in exported
                if (module, name) not in named and not _is_error(getattr(found, name))
            ]
        else:
            logger.warning(
                "fathom-api: say :names:, :errors: or :rest:", location=self.get_location()
            )
            return []
        named.update((module, name) for name in names)
        lines = [line for name in names for line in autodoc_lines(module, name)]
        content = StringList(lines, source=f"<fathom-api {module}>")
        holder = nodes.section()
        holder.document = self.state.document
        nested_parse_with_titles(self.state, content, holder)
        return holder.children


class FathomErrorTree(SphinxDirective):
    """``.. fathom-error-tree:: MODULE``: its error classes drawn as a tree, from the classes.

    Each line is a class, indented under its parent, with ``(also ValueError)``
    for a builtin error it also is, and the first sentence of its docstring.
    """

    required_arguments = 1

    def run(self) -> list[nodes.Node]:
        module = self.arguments[0]
        found = importlib.import_module(module)
        names = _tree_order(
            module, [n for n in public_names(module) if _is_error(getattr(found, n))]
        )
        classes = {name: getattr(found, name) for name in names}
        lines: list[str] = []

        def parent_of(cls: type) -> type | None:
            bases = [b for b in cls.__mro__[1:] if b in classes.values()]
            return bases[0] if bases else None

        def draw(parent: type | None, prefix: str) -> None:
            children = [n for n, c in classes.items() if parent_of(c) is parent]
            for index, name in enumerate(children):
                last = index == len(children) - 1
                cls = classes[name]
                also = [
                    b.__name__
                    for b in cls.__bases__
                    if b.__module__ == "builtins" and b is not Exception
                ]
                summary = (inspect.getdoc(cls) or "").split("\n\n")[0].replace("\n", " ")
                summary = summary.split(". ")[0].rstrip(".").replace("``", "")
                if also:
                    summary = f"(also {', '.join(also)}) {summary}"
                branch = "" if parent is None else ("└── " if last else "├── ")
                label = f"{prefix}{branch}{name}"
                lines.append(f"{label:<34} {summary}".rstrip())
                deeper = "" if parent is None else prefix + ("    " if last else "│   ")
                draw(cls, deeper)

        draw(None, "")
        return [nodes.literal_block(text="\n".join(lines))]


def _option_words(action: argparse.Action) -> str:
    """How an option or argument is written: ``--out FILE``, ``-y, --yes``, ``SITE...``."""
    if not action.option_strings:
        name = action.metavar or action.dest
        return f"{name}..." if action.nargs in ("*", "+") else str(name)
    if action.nargs == 0:
        return ", ".join(action.option_strings)
    metavar = action.metavar or (
        "{" + ",".join(map(str, action.choices)) + "}" if action.choices else action.dest.upper()
    )
    return ", ".join(f"{flag} {metavar}" for flag in action.option_strings)


def _help(action: argparse.Action, parser: argparse.ArgumentParser) -> str:
    text = action.help or ""
    if text and "%(" in text:
        text = text % {"default": action.default, "prog": parser.prog}
    return text


def _arguments(parser: argparse.ArgumentParser) -> nodes.definition_list:
    """Every argument and option of ``parser``, with its help."""
    listing = nodes.definition_list()
    for action in parser._actions:  # noqa: SLF001 - argparse has no public list of them
        if isinstance(action, argparse._SubParsersAction):  # noqa: SLF001 - the commands
            continue
        item = nodes.definition_list_item()
        term = nodes.term()
        term += nodes.literal(text=_option_words(action))
        item += term
        definition = nodes.definition()
        definition += nodes.paragraph(text=_help(action, parser) or "(no description)")
        item += definition
        listing += item
    return listing


def _section(title: str, anchor: str) -> nodes.section:
    section = nodes.section(ids=[nodes.make_id(anchor)], names=[nodes.fully_normalize_name(anchor)])
    section += nodes.title(text=title)
    return section


class FathomCli(SphinxDirective):
    """``.. fathom-cli::``: the command line's reference, from its real parser."""

    def run(self) -> list[nodes.Node]:
        from fathom_events._cli._app import EXIT_CODES, build_parser  # noqa: PLC0415

        parser = build_parser()
        found: list[nodes.Node] = []
        usage = nodes.literal_block(text=parser.format_usage().strip())
        found += [nodes.paragraph(text=parser.description or ""), usage]
        shared = _section("Options of every command", "cli-options")
        shared += nodes.paragraph(
            text="Given before the command or after it; each command takes those that apply to it."
        )
        shared += _arguments(parser)
        found.append(shared)
        codes = _section("Exit codes", "cli-exit-codes")
        table = nodes.definition_list()
        for code, text in EXIT_CODES:
            item = nodes.definition_list_item()
            term = nodes.term()
            term += nodes.literal(text=str(code))
            item += term
            definition = nodes.definition()
            definition += nodes.paragraph(text=text)
            item += definition
            table += item
        codes += table
        found.append(codes)
        subcommands = next(
            action
            for action in parser._actions  # noqa: SLF001
            if isinstance(action, argparse._SubParsersAction)  # noqa: SLF001
        )
        for name, sub in subcommands.choices.items():
            section = _section(f"fathom-events {name}", f"cli-{name}")
            section += nodes.literal_block(text=sub.format_usage().strip())
            section += nodes.paragraph(text=sub.description or "")
            section += _arguments(sub)
            found.append(section)
        return found


def signature_for_readers(
    app: Sphinx,
    what: str,
    name: str,
    obj: object,
    options: object,
    signature: str | None,
    return_annotation: str | None,
) -> tuple[str | None, str | None] | None:
    """No signature for a class the library makes; an attrs factory default as its value.

    An attrs field whose default is a factory shows ``= []`` (the factory's
    value), not attrs' ``NOTHING``.
    """
    if what == "class" and name.rpartition(".")[2] in MADE_BY_THE_LIBRARY:
        return "", return_annotation
    if what not in ("class", "exception") or signature is None or not attrs.has(obj):
        return None
    for field in attrs.fields(obj):  # type: ignore[arg-type]
        default = field.default
        if isinstance(default, attrs.Factory) and not default.takes_self:  # type: ignore[arg-type]
            value = repr(default.factory())
            signature = re.sub(rf"(\b{field.alias}: [^=,]*= )NOTHING", rf"\g<1>{value}", signature)
    return signature, return_annotation


def check_every_name_has_an_entry(app: Sphinx, env: BuildEnvironment) -> None:
    """Warn for each public name that no page documents (``-W`` makes it an error)."""
    objects = env.domains["py"].objects
    for module in PUBLIC_MODULES:
        for name in public_names(module):
            if f"{module}.{name}" not in objects:
                logger.warning("%s.%s has no entry in the reference", module, name)


def setup(app: Sphinx) -> dict[str, Any]:
    app.add_directive("fathom-api", FathomApi)
    app.add_directive("fathom-cli", FathomCli)
    app.add_directive("fathom-error-tree", FathomErrorTree)
    app.connect("env-check-consistency", check_every_name_has_an_entry)
    app.connect("autodoc-process-signature", signature_for_readers)
    return {"version": "1", "parallel_read_safe": False, "parallel_write_safe": True}

"""Sphinx configuration of the fathom-events documentation.

Build it, every warning an error and no network used:

    python -m sphinx -W --keep-going -b html docs docs/_build/html

(``pip install -e ".[docs]"`` first). The reference is generated from the
package: ``fathom_events.__all__`` and ``fathom_events.testing.__all__`` through
autodoc, the command line from its real argument parser (``_ext/fathom_docs.py``).
"""

from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE / "_ext"))  # the project's own extension
sys.path.insert(0, str(HERE.parent))  # the package, from this checkout

import fathom_events  # noqa: E402 - after the path is set

project = "fathom-events"
author = "fathom-events contributors"
copyright = "fathom-events contributors"  # noqa: A001 - Sphinx's own name
release = fathom_events.__version__
version = release

extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "fathom_docs",
]
# No intersphinx: the build reaches no network.

source_suffix = {".md": "markdown"}
root_doc = "index"
exclude_patterns = ["_build"]

myst_enable_extensions = ["colon_fence", "deflist"]
myst_heading_anchors = 3

default_role = "py:obj"  # `Name` in a docstring links to it when it is documented
smartquotes = False  # "--max-deletes" stays as typed, not an en dash
autodoc_member_order = "bysource"
autodoc_typehints = "signature"
autodoc_class_signature = "mixed"
autodoc_default_options = {"members": True}
napoleon_google_docstring = True
napoleon_numpy_docstring = False
napoleon_use_ivar = False  # each field an attribute entry of its own (in objects.inv)
napoleon_attr_annotations = True  # its type from the class's annotation

html_theme = "furo"
html_title = f"fathom-events {release}"
html_static_path: list[str] = []
html_show_sourcelink = False

"""Defaults that cost nothing to import.

``fathom-events --help`` shows the API's URL without loading the client (and
with it aiohttp): it lives here, in a module that imports nothing.
"""

__all__ = ["DEFAULT_BASE_URL"]

DEFAULT_BASE_URL = "https://api.usefathom.com/v1"

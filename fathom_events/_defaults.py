"""Defaults that cost nothing to import.

``fathom-events --help`` shows the API's URL without loading the client (and
with it aiohttp): it lives here, in a module that imports nothing.
"""

__all__ = ["DEFAULT_BASE_URL"]

#: Fathom's API: where a client sends its requests unless given ``base_url``.
DEFAULT_BASE_URL = "https://api.usefathom.com/v1"

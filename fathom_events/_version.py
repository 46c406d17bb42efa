#: The version of fathom-events that is installed (PEP 440).
__version__ = "0.1.0.dev0"

"""The command line (``python -m pipeline``): click commands over the library API, and their messages."""

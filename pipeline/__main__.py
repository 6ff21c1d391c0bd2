"""``python -m pipeline``: the command line."""
from .cli import main

main()

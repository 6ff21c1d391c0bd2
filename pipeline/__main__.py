"""``python -m pipeline``: the command line."""
from .cli.main import main

main()

"""What the test modules share: the CLI as a user runs it, generated media, a local HTTP server,
the demo config, the review-page kit, process and Ray helpers.

Test modules import these (``from helpers.support import cli``), never each other: conftest.py
puts tests/ on ``sys.path``. Fixtures shared by several modules are in conftest.py.
"""

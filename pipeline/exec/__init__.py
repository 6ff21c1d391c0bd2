"""Where the per-source units run: the local process pool or Ray, core budgets, stop signals."""

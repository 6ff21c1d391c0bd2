"""One run: every source through the stages, then the global steps; its status, plan, summary and log."""

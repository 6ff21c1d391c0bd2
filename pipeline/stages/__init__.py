"""The per-source stages, in order: download -> sample -> detect -> crop (one module each)."""

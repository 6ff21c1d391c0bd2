"""Face and person detectors behind one interface (base), the registry of models, and the cache of
their weights."""

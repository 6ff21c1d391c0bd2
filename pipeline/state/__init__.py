"""What a run remembers between runs: markers and fingerprints, the resume rule, the lock, ownership."""

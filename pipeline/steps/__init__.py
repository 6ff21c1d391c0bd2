"""The global steps after all sources: splits, the ImageFolder tree, the manifest, identity clusters."""

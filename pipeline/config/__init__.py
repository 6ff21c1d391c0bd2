"""The run configuration: field types and label rules, the schema's sections, loading a YAML file."""

"""Reading a config file's YAML safely: duplicate keys refused, alias expansion bounded, and
the line of every key path kept for error messages. Kept apart from ``pipeline.config.schema`` (the
schema) because none of it knows what a config holds."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import yaml


class ConfigError(Exception):
    """A config that cannot be used; ``problems`` holds one ``key.path: message`` line each."""

    def __init__(self, problems: list[str], file: str | None = None):
        self.problems = problems
        self.file = file
        where = f"{file}: " if file else ""
        super().__init__(where + "invalid config\n" + "\n".join(f"  {p}" for p in problems))


@dataclass(frozen=True)
class Located:
    """Maps key paths of the YAML document to 1-based line numbers, for error messages."""

    lines: dict[tuple, int]

    def line_of(self, path: tuple) -> int | None:
        while path:
            if path in self.lines:
                return self.lines[path]
            path = path[:-1]
        return None


def locate(text: str) -> Located:
    lines: dict[tuple, int] = {}

    def walk(node: yaml.Node, path: tuple) -> None:
        lines[path] = node.start_mark.line + 1
        if isinstance(node, yaml.MappingNode):
            for k, v in node.value:
                key = k.value
                lines[path + (key,)] = k.start_mark.line + 1
                walk(v, path + (key,))
                lines[path + (key,)] = k.start_mark.line + 1
        elif isinstance(node, yaml.SequenceNode):
            for i, v in enumerate(node.value):
                walk(v, path + (i,))

    try:
        root = yaml.compose(text)
    except yaml.YAMLError:
        root = None
    if root is not None:
        walk(root, ())
    return Located(lines)


MAX_NODES = 1_000_000
"""Most values a config may hold once its aliases (``*name``) are expanded. A config of 20 000
sources holds ~100 000; a "billion laughs" document (each level repeating the one before it)
passes this after a few levels and is refused before anything is expanded."""


class StrictLoader(yaml.SafeLoader):
    """PyYAML's safe loader, but a key given twice in one mapping is an error (PyYAML keeps the
    last one silently: a second ``sources:`` would drop the first list)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":  # "<<: *defaults" may be overridden
                continue
            key, line = self.construct_object(key_node, deep=True), key_node.start_mark.line + 1
            try:
                if key in seen:
                    raise ConfigError([f"{key}: given twice (lines {seen[key]} and {line}); keep one"])
                seen[key] = line
            except TypeError:  # an unhashable key: the base class says so
                continue
        return super().construct_mapping(node, deep)


def expanded_size(node: yaml.Node, limit: int = MAX_NODES) -> int:
    """How many values ``node`` holds with every alias expanded, counted without expanding
    (each node once, its size remembered; capped at ``limit + 1``). An alias of a node inside
    itself expands forever, so it counts as over the limit."""
    sizes: dict[int, int] = {}
    active: set[int] = set()

    def size(n: yaml.Node) -> int:
        if id(n) in sizes:
            return sizes[id(n)]
        if id(n) in active:
            return limit + 1
        active.add(id(n))
        if isinstance(n, yaml.SequenceNode):
            children = list(n.value)
        elif isinstance(n, yaml.MappingNode):
            children = [x for pair in n.value for x in pair]
        else:
            children = []
        total = 1
        for child in children:
            total = min(total + size(child), limit + 1)
        active.discard(id(n))
        sizes[id(n)] = total
        return total

    return size(node)


def load_yaml(text: str) -> Any:
    """The document in ``text``, refusing duplicate keys and documents whose aliases would
    expand past ``MAX_NODES`` (checked on the node graph, before anything is built)."""
    loader = StrictLoader(text)
    try:
        root = loader.get_single_node()
        if root is None:
            return None
        if expanded_size(root) > MAX_NODES:
            raise ConfigError([f"(top level): more than {MAX_NODES:,} values once its aliases "
                               "(*name) are expanded; write the values out, or use fewer aliases"])
        return loader.construct_document(root)
    finally:
        loader.dispose()

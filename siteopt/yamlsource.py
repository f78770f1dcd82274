"""Safe YAML loading that remembers where every value came from.

PyYAML's ``safe_load`` forgets line numbers, expands aliases without bound and
silently keeps the last of two duplicate keys. Scenario files are edited by hand
under deadline, so errors must point at a line. We compose the node graph with
the safe loader (no Python object construction from tags), then build plain
Python data ourselves while recording ``path -> line`` for every key and value,
counting nodes so that alias expansion (a "billion laughs" file) stops early.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

MAX_FILE_BYTES = 4 * 1024 * 1024
MAX_NODES = 200_000

PathKey = tuple[str | int, ...]


class YamlSourceError(Exception):
    """A file that cannot be read as a scenario mapping; ``line`` may be None."""

    def __init__(self, message: str, line: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.line = line


@dataclass
class SourceMap:
    """Data loaded from YAML plus the 1-based line of each path in it."""

    data: dict[str, Any]
    lines: dict[PathKey, int] = field(default_factory=dict)

    def line_of(self, path: PathKey) -> int | None:
        """Line of ``path`` or of its closest ancestor that has one."""
        for cut in range(len(path), -1, -1):
            line = self.lines.get(tuple(path[:cut]))
            if line is not None:
                return line
        return None


class _Builder:
    def __init__(self) -> None:
        self.lines: dict[PathKey, int] = {}
        self.nodes = 0
        self._constructor = yaml.constructor.SafeConstructor()

    def build(self, node: yaml.Node, path: PathKey) -> Any:
        self.nodes += 1
        if self.nodes > MAX_NODES:
            raise YamlSourceError(
                f"the file expands to more than {MAX_NODES:,} values (aliases that expand "
                "without bound?); refusing to load it",
                node.start_mark.line + 1,
            )
        self.lines.setdefault(path, node.start_mark.line + 1)
        if isinstance(node, yaml.MappingNode):
            return self._mapping(node, path)
        if isinstance(node, yaml.SequenceNode):
            return [self.build(item, (*path, i)) for i, item in enumerate(node.value)]
        return self._constructor.construct_object(node, deep=True)

    def _mapping(self, node: yaml.MappingNode, path: PathKey) -> dict[Any, Any]:
        self._constructor.flatten_mapping(node)  # resolves `<<` merge keys
        out: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                raise YamlSourceError("a mapping key must be a plain value", key_node.start_mark.line + 1)
            key = self._constructor.construct_object(key_node)
            if key in out:
                raise YamlSourceError(
                    f"duplicate key {key!r} (a later value would silently win)",
                    key_node.start_mark.line + 1,
                )
            child = (*path, key)
            self.lines[child] = key_node.start_mark.line + 1
            out[key] = self.build(value_node, child)
        return out


def load_yaml_mapping(path: Path) -> SourceMap:
    """Read ``path`` as a YAML mapping with line numbers.

    Raises
    ------
    YamlSourceError
        Missing, too large, empty, not YAML, not a mapping, or expanding beyond
        ``MAX_NODES`` values.
    """
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise YamlSourceError(f"cannot read the file: {exc.strerror or exc}") from None
    if size > MAX_FILE_BYTES:
        raise YamlSourceError(
            f"the file is {size / 2**20:.1f} MiB; scenario files are limited to "
            f"{MAX_FILE_BYTES // 2**20} MiB"
        )
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise YamlSourceError("the file is not UTF-8 text") from None
    except OSError as exc:
        raise YamlSourceError(f"cannot read the file: {exc.strerror or exc}") from None
    return load_yaml_text(text)


def load_yaml_text(text: str) -> SourceMap:
    """Parse YAML text into a :class:`SourceMap` (see :func:`load_yaml_mapping`)."""
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        raise YamlSourceError(f"not valid YAML: {exc.problem or exc}", line) from None
    except yaml.YAMLError as exc:
        raise YamlSourceError(f"not valid YAML: {exc}") from None
    if root is None:
        raise YamlSourceError("the file is empty; a scenario is a YAML mapping (see SCENARIO.md)")
    if not isinstance(root, yaml.MappingNode):
        raise YamlSourceError(
            "the file is not a YAML mapping of scenario keys (name, start, sites, ...)",
            root.start_mark.line + 1,
        )
    builder = _Builder()
    try:
        data = builder.build(root, ())
    except yaml.constructor.ConstructorError as exc:
        mark = exc.problem_mark
        raise YamlSourceError(f"unsupported YAML value: {exc.problem}", mark.line + 1 if mark else None) from None
    except RecursionError:
        raise YamlSourceError("the file nests too deeply (recursive aliases?)") from None
    return SourceMap(data=data, lines=builder.lines)

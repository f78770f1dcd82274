"""Safe YAML loading that remembers where every value came from.

PyYAML's ``safe_load`` forgets line numbers, expands aliases without bound and
silently keeps the last of two duplicate keys. Scenario files are edited by hand
under deadline, so errors must point at a line. We compose the node graph with
the safe loader (no Python object construction from tags), then build plain
Python data ourselves while recording ``path -> line`` for every key and value,
counting nodes so that alias expansion (a "billion laughs" file) stops early.
Collections with a non-standard tag (``!!python/object``, ``!!set``) are refused
rather than silently read as plain lists, and timestamps stay strings (a month
written ``2028-04-01`` is then reported as a malformed month, not a date object).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

MAX_FILE_BYTES = 4 * 1024 * 1024
MAX_NODES = 200_000
MAX_DEPTH = 64

_MAP_TAG = "tag:yaml.org,2002:map"
_SEQ_TAG = "tag:yaml.org,2002:seq"
_TIMESTAMP_TAG = "tag:yaml.org,2002:timestamp"

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
    overridden: list[PathKey] = field(default_factory=list)  # data paths set by --set

    def line_of(self, path: PathKey) -> int | None:
        """Line of ``path`` or of its closest ancestor that has one."""
        return closest_line(self.lines, path)

    def is_overridden(self, path: PathKey) -> bool:
        """Whether ``path`` or an ancestor of it was set by ``--set``."""
        return under_any(path, self.overridden)


def closest_line(lines: Mapping[PathKey, int], path: PathKey) -> int | None:
    """Line of ``path`` or of its closest ancestor in ``lines``; None when none has one."""
    for cut in range(len(path), -1, -1):
        line = lines.get(tuple(path[:cut]))
        if line is not None:
            return line
    return None


def under_any(path: PathKey, roots: Iterable[PathKey]) -> bool:
    """Whether ``path`` is one of ``roots`` or lies below one of them."""
    return any(path[: len(r)] == r for r in roots)


class _Builder:
    def __init__(self) -> None:
        self.lines: dict[PathKey, int] = {}
        self.nodes = 0
        self._constructor = yaml.constructor.SafeConstructor()

    def build(self, node: yaml.Node, path: PathKey) -> Any:
        line = node.start_mark.line + 1
        self.nodes += 1
        if self.nodes > MAX_NODES:
            # an aliased node carries the line of its anchor; name the top-level entry
            # whose value explodes instead
            raise YamlSourceError(
                f"the file expands to more than {MAX_NODES:,} values (aliases that expand "
                "without bound?); refusing to load it",
                self.lines.get(path[:1], line),
            )
        if len(path) > MAX_DEPTH:
            raise YamlSourceError(
                f"the file nests deeper than {MAX_DEPTH} levels (recursive aliases?)", line
            )
        self.lines.setdefault(path, line)
        if isinstance(node, yaml.MappingNode):
            self._check_tag(node, _MAP_TAG)
            return self._mapping(node, path)
        if isinstance(node, yaml.SequenceNode):
            self._check_tag(node, _SEQ_TAG)
            return [self.build(item, (*path, i)) for i, item in enumerate(node.value)]
        if node.tag == _TIMESTAMP_TAG:
            return node.value  # keep `2028-04-01` as text; the schema reports the format
        return self._constructor.construct_object(node, deep=True)

    @staticmethod
    def _check_tag(node: yaml.Node, expected: str) -> None:
        if node.tag != expected:
            tag = node.tag.replace("tag:yaml.org,2002:", "!!")
            raise YamlSourceError(f"unsupported YAML tag {tag!r}", node.start_mark.line + 1)

    def _mapping(self, node: yaml.MappingNode, path: PathKey) -> dict[Any, Any]:
        self._constructor.flatten_mapping(node)  # resolves `<<` merge keys
        out: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                raise YamlSourceError(
                    "a mapping key must be a plain value", key_node.start_mark.line + 1
                )
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
        Missing (``line`` None), too large, not UTF-8, empty, not YAML, not a
        mapping, or expanding beyond ``MAX_NODES`` values. Problems inside an
        existing file always carry a line (1 for whole-file problems).
    """
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        raise YamlSourceError("no such file") from None
    except OSError as exc:
        raise YamlSourceError(f"cannot read the file: {exc.strerror or exc}") from None
    if path.is_dir():
        raise YamlSourceError("is a directory, not a scenario file")
    if size > MAX_FILE_BYTES:
        raise YamlSourceError(
            f"the file is {size / 2**20:.1f} MiB; scenario files are limited to "
            f"{MAX_FILE_BYTES // 2**20} MiB",
            1,
        )
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise YamlSourceError(f"cannot read the file: {exc.strerror or exc}") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise YamlSourceError(
            f"the file is not UTF-8 text (byte 0x{raw[exc.start]:02x} at offset {exc.start})", line
        ) from None
    return load_yaml_text(text)


def load_yaml_text(text: str) -> SourceMap:
    """Parse YAML text into a :class:`SourceMap` (see :func:`load_yaml_mapping`)."""
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        raise YamlSourceError(*_yaml_error(exc)) from None
    except yaml.reader.ReaderError as exc:
        raise YamlSourceError(*_reader_error(exc, text)) from None
    except yaml.YAMLError as exc:
        raise YamlSourceError(f"not valid YAML: {exc}", 1) from None
    if root is None:
        raise YamlSourceError(
            "the file is empty; a scenario is a YAML mapping (see docs/scenario.md)", 1
        )
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
        raise YamlSourceError(
            f"unsupported YAML value: {exc.problem}", mark.line + 1 if mark else 1
        ) from None
    except RecursionError:
        raise YamlSourceError("the file nests too deeply (recursive aliases?)", 1) from None
    return SourceMap(data=data, lines=builder.lines)


def load_yaml_value(text: str) -> Any:
    """Parse one YAML value (a ``--set`` VALUE) with the same rules as a file.

    Safe tags only, timestamps kept as text, bounded expansion; empty text is None.

    Raises
    ------
    YamlSourceError
        Not YAML, or a refused tag.
    """
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        raise YamlSourceError(_yaml_error(exc)[0]) from None
    except yaml.reader.ReaderError as exc:
        raise YamlSourceError(_reader_error(exc, text)[0]) from None
    except yaml.YAMLError as exc:
        raise YamlSourceError(f"not valid YAML: {exc}") from None
    if node is None:
        return None
    try:
        return _Builder().build(node, ())
    except yaml.constructor.ConstructorError as exc:
        raise YamlSourceError(f"unsupported YAML value: {exc.problem}") from None


def _reader_error(exc: yaml.reader.ReaderError, text: str) -> tuple[str, int]:
    """Message and line of a character YAML does not allow (NUL, other control codes).

    PyYAML's own text ends in a second line ``in "<unicode string>", position N``; the
    user needs the line (and column) instead, on one line.
    """
    before = text[: exc.position]
    line = before.count("\n") + 1
    column = exc.position - (before.rfind("\n") + 1) + 1
    code = exc.character if isinstance(exc.character, int) else ord(exc.character)
    return (
        f"not valid YAML: character U+{code:04X} at column {column} is not allowed in "
        "YAML (a control character or a non-character)",
        line,
    )


def _yaml_error(exc: yaml.MarkedYAMLError) -> tuple[str, int]:
    """Message and line of a parser error.

    An unclosed bracket or quote is only noticed at the end of the stream; the
    line that opened it (the error's context) is the one to fix.
    """
    problem = exc.problem or str(exc)
    mark = exc.problem_mark
    if exc.context_mark is not None and (mark is None or "<stream end>" in problem):
        mark = exc.context_mark
        if exc.context:
            problem = f"{problem} ({exc.context} that starts here)"
    return f"not valid YAML: {problem}", (mark.line + 1 if mark is not None else 1)

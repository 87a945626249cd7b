"""Reading spec files without surprises: a strict subset of YAML, read within fixed limits.

:func:`read_yaml` returns the parsed document or raises :class:`YAMLInputError` with one short
line saying what is wrong and where. What it refuses, so that no file can crash, hang or
silently change the meaning of a spec:

* anything but a regular file (a FIFO would block the reader forever), more than
  :data:`MAX_BYTES` bytes, bytes that are not UTF-8;
* anchors and aliases (``&a`` / ``*a``: an alias bomb of a kilobyte expands to gigabytes), merge
  keys (``<<``), nesting deeper than :data:`MAX_DEPTH`, more than :data:`MAX_NODES` nodes;
* duplicate keys in a mapping (YAML would keep the last one silently);
* values a tag cannot build (``!!int abc``, ``!!bool maybe``, ``!!timestamp foo``), tags
  outside YAML's core schema (``!!binary``, ``!!set``, ``!!omap``, ``!custom``), dates.

Only ``str``, ``int``, ``float``, ``bool``, ``None``, ``list`` and ``dict`` with string keys come
out. Quoted values in messages are cut to :data:`SHOW` characters.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any

import yaml
from yaml.composer import Composer
from yaml.constructor import ConstructorError, SafeConstructor
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode
from yaml.resolver import Resolver

MAX_BYTES = 128 * 1024
MAX_DEPTH = 32
MAX_NODES = 50_000
SHOW = 60

CORE_TAGS = {f"tag:yaml.org,2002:{t}" for t in ("str", "int", "float", "bool", "null", "seq",
                                                 "map")}


class YAMLInputError(ValueError):
    """A file that is not an acceptable YAML document; ``where`` is a position or ``(file)``."""

    def __init__(self, where: str, message: str) -> None:
        self.where, self.message = where, message
        super().__init__(f"{where}: {message}")


def short(value: Any, limit: int = SHOW, raw: bool = False) -> str:
    """``repr(value)`` (``value`` itself when ``raw``) cut to ``limit`` characters, so that a
    huge value never floods a message."""
    text = str(value) if raw else repr(value)
    if len(text) > limit:
        text = text[:limit] + f"… ({len(text)} chars)"
    return text


def _at(mark: Any) -> str:
    return f"line {mark.line + 1}, column {mark.column + 1}" if mark is not None else "(yaml)"


if yaml.__with_libyaml__:
    from yaml.cyaml import CParser

    class _Base(Composer, CParser, SafeConstructor, Resolver):  # type: ignore[misc]
        """libyaml's parser (fast, not recursive) under PyYAML's composer, which we extend."""

        def __init__(self, stream: str) -> None:
            CParser.__init__(self, stream)
            Composer.__init__(self)
            SafeConstructor.__init__(self)
            Resolver.__init__(self)
else:  # pragma: no cover
    _Base = yaml.SafeLoader  # type: ignore[misc,assignment]


class StrictLoader(_Base):
    """``yaml.SafeLoader`` without aliases, merge keys, duplicate keys, deep nesting, huge
    documents or tags beyond the core schema; a value a tag cannot build is a YAML error."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0
        self._nodes = 0

    def compose_node(self, parent: Node | None, index: Any) -> Node:  # type: ignore[override]
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            raise ConstructorError(None, None, "aliases (*name) are not allowed in specs",
                                   event.start_mark)
        event = self.peek_event()
        if getattr(event, "anchor", None) is not None:
            raise ConstructorError(None, None, "anchors (&name) are not allowed in specs",
                                   event.start_mark)
        self._nodes += 1
        if self._nodes > MAX_NODES:
            raise ConstructorError(None, None, f"more than {MAX_NODES} values in one file",
                                   event.start_mark)
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                raise ConstructorError(None, None, f"nested deeper than {MAX_DEPTH} levels",
                                       event.start_mark)
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    def construct_object(self, node: Node, deep: bool = False) -> Any:
        if node.tag not in CORE_TAGS:
            raise ConstructorError(None, None, f"tag {short(node.tag)} is not allowed "
                                   "(only strings, numbers, booleans, null, lists, mappings)",
                                   node.start_mark)
        try:
            return super().construct_object(node, deep=deep)
        except ConstructorError:
            raise
        except (ValueError, TypeError, KeyError, AttributeError, OverflowError,
                IndexError):
            value = node.value if isinstance(node, ScalarNode) else "…"
            raise ConstructorError(None, None, f"{short(value)} is not a valid "
                                   f"{node.tag.rsplit(':', 1)[-1]}", node.start_mark) from None

    def construct_mapping(self, node: MappingNode, deep: bool = False) -> dict[Any, Any]:
        if not isinstance(node, MappingNode):
            raise ConstructorError(None, None, f"expected a mapping, found {node.id}",
                                   node.start_mark)
        seen: dict[Any, Any] = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                raise ConstructorError(None, None, "merge keys (<<) are not allowed in specs",
                                       key_node.start_mark)
            if isinstance(key_node, MappingNode | SequenceNode):
                raise ConstructorError(None, None, "a mapping key must be a plain value",
                                       key_node.start_mark)
            key = self.construct_object(key_node, deep=True)
            if not isinstance(key, str):
                raise ConstructorError(None, None, f"mapping keys must be strings, found "
                                       f"{short(key)}", key_node.start_mark)
            if key in seen:
                raise ConstructorError(None, None, f"duplicate key {short(key)} (first at "
                                       f"{_at(seen[key])})", key_node.start_mark)
            seen[key] = key_node.start_mark
        return super().construct_mapping(node, deep=deep)


# Timestamps stay strings: a date is no parameter of any experiment.
StrictLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in Resolver.yaml_implicit_resolvers.items()
}


def read_bytes(path: Path, limit: int = MAX_BYTES) -> bytes:
    """The bytes of a regular file of at most ``limit`` bytes; never blocks on a FIFO or a
    device."""
    try:
        info = os.stat(path)
    except OSError as exc:
        raise YAMLInputError("(file)", f"cannot be read: {exc.strerror}") from None
    if not stat.S_ISREG(info.st_mode):
        raise YAMLInputError("(file)", "not a regular file (a FIFO, device or folder is not "
                             "read)")
    if info.st_size > limit:
        raise YAMLInputError("(file)", f"{info.st_size} bytes, more than the limit of {limit}")
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except OSError as exc:
        raise YAMLInputError("(file)", f"cannot be read: {exc.strerror}") from None
    with os.fdopen(fd, "rb") as handle:
        if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):
            raise YAMLInputError("(file)", "not a regular file")
        data = handle.read(limit + 1)
    if len(data) > limit:
        raise YAMLInputError("(file)", f"more than the limit of {limit} bytes")
    return data


def decode(data: bytes) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise YAMLInputError("(file)", f"not UTF-8 text: byte 0x{data[exc.start]:02x} at offset "
                             f"{exc.start}") from None


def parse(text: str) -> Any:
    """The one YAML document in ``text``, read with :class:`StrictLoader`."""
    loader = None
    try:
        loader = StrictLoader(text)
        return loader.get_single_data()
    except ConstructorError as exc:
        raise YAMLInputError("(yaml)", f"at {_at(exc.problem_mark)}: "
                             f"{short(exc.problem, 200, raw=True)}") from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        problem = exc.problem or exc.context or "malformed YAML"
        raise YAMLInputError("(yaml)", f"YAML syntax error at {_at(mark)}: "
                             f"{short(problem, 200, raw=True)}") from None
    except yaml.YAMLError as exc:
        first = (str(exc).splitlines() or ["malformed YAML"])[0]
        raise YAMLInputError("(yaml)", f"YAML syntax error: {short(first, 200, raw=True)}"
                             ) from None
    except RecursionError:
        raise YAMLInputError("(yaml)", f"nested deeper than {MAX_DEPTH} levels") from None
    finally:
        if loader is not None:
            loader.dispose()


def read_yaml(path: Path | str, limit: int = MAX_BYTES) -> Any:
    """Read, decode and parse one YAML file within the limits above."""
    return parse(decode(read_bytes(Path(path), limit)))

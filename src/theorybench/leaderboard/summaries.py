"""Record summaries carried from one build of the site to the next.

A build reads every record but shows most of them only as history: verdicts, effects, controls,
provenance and cell wall times, never their measurement table, which is most of a record's
bytes. Each build keeps the :func:`~theorybench.results.summary` of every record it read in the
site's ``summaries.json``, by file name and size (records are written once and never edited);
the next build parses only the records it has no summary of. A claim page notes in its record's
summary what it derived from the whole record (:meth:`Summaries.note`), so that it parses the
record again only when it needs the measurement table itself.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson

from theorybench.results import SCHEMA_VERSION, read_record, summary

FILE = "summaries.json"
VERSION = 1
"""The layout of :data:`FILE`, of a summary and of what pages note in it: raise it when one of
them changes, so that a build reads nothing written by another version (summaries of another
record schema are not read either)."""


class Summaries:
    """The summaries of the previous build (``previous``), and those of this build."""

    def __init__(self, previous: Path) -> None:
        try:
            data = orjson.loads((previous / FILE).read_bytes())
            same = (data.get("version"), data.get("schema")) == (VERSION, SCHEMA_VERSION)
            old = data["records"] if same else {}
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            old = {}
        self.old: dict[str, Any] = old if isinstance(old, dict) else {}
        self.new: dict[str, dict[str, Any]] = {}
        self.keys: dict[str, str] = {}  # a record file's path -> its key in ``new``

    def read(self, path: Path) -> dict[str, Any]:
        """The summary of the record file ``path``: the previous build's when it had this file
        (same name and size), else the file read and checked by :func:`read_record` (which
        raises ValueError saying why a file is no record)."""
        try:
            key = f"{path.name} {path.stat().st_size}"
        except OSError:
            key = ""
        found = self.old.get(key)
        kept = found if isinstance(found, dict) else summary(read_record(path))
        if key:
            self.new[key], self.keys[str(path)] = kept, key
        return dict(kept)  # the caller adds its ``_path``; the kept summary stays without it

    @staticmethod
    def full(record: dict[str, Any]) -> dict[str, Any]:
        """The whole record of which ``record`` is the summary; the summary itself when its file
        can no longer be read (the page then says its table cannot be read)."""
        try:
            data = read_record(Path(record["_path"]))
        except ValueError:
            return record
        data["_path"] = record["_path"]
        return data

    def note(self, record: dict[str, Any], name: str, value: Any) -> None:
        """Keep ``value`` as ``name`` in the summary of ``record`` (read by :meth:`read` in this
        build), where the next build finds it."""
        key = self.keys.get(str(record.get("_path")))
        if key is not None:
            self.new[key] = self.new[key] | {name: value}

    def save(self, folder: Path) -> None:
        """Write this build's summaries into the site ``folder``."""
        (folder / FILE).write_bytes(orjson.dumps({"version": VERSION, "schema": SCHEMA_VERSION,
                                                  "records": self.new}))

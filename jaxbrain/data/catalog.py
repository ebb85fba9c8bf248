"""The catalog: what real data and weights jaxbrain can fetch by name, and how to check them.

Entries are data, not code: the built-in ones live in ``catalog.json`` beside this module
(Brain-Score's MajajHong2015 and FreemanZiemba2013 recordings and stimulus sets, torchvision's
ImageNet weights); users add their own from a JSON file in the same format, named by the
``JAXBRAIN_CATALOG`` environment variable (several files separated by ``os.pathsep``) or passed
explicitly. A user entry may replace a built-in one only when it says ``"replaces": true`` (a
private copy of Brain-Score data can differ from the public checksum), so a typo never shadows
real data silently.

Every file an entry names carries a checksum (``sha1:``, ``sha256:`` or ``md5:`` with the full
hex digest, or ``sha256-prefix:`` with at least 8 hex digits for torchvision's weights, whose
names publish only that much) and either URLs or a local ``path``. :mod:`jaxbrain.data.fetch`
turns an entry into verified local files.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
from collections.abc import Iterable, Mapping
from pathlib import Path

CATALOG_ENV = "JAXBRAIN_CATALOG"
BUILTIN = Path(__file__).with_name("catalog.json")
FORMAT = "jaxbrain-catalog/1"

# The files each kind of entry consists of, by role.
ROLES: dict[str, tuple[str, ...]] = {
    "assembly": ("assembly",),  # a Brain-Score NetCDF assembly
    "stimulus_set": ("csv", "images"),  # metadata CSV + a zip (or folder) of the images
    "weights": ("weights",),  # a torchvision-layout .pth/.pt/.safetensors
    "archive": ("archive",),  # a .zip/.tar[.gz] unpacked into a folder (e.g. LaMem)
}
ACCESS_LEVELS = ("public", "credentials")
_HEX_DIGITS = {"sha1": 40, "sha256": 64, "md5": 32}
_MIN_PREFIX = 8
_ENTRY_FIELDS = {"identifier", "kind", "files", "access", "access_reason", "citation",
                 "aliases", "stimulus_set", "arch", "prefix", "replaces", "description"}
_FILE_FIELDS = {"name", "url", "urls", "path", "checksum", "size", "members", "unpacked_bytes"}


class CatalogError(ValueError):
    """A catalog file or entry that cannot be used; the message names the file and the entry."""


@dataclasses.dataclass(frozen=True)
class Checksum:
    """``algorithm:hexdigest``; ``sha256-prefix`` checks only the leading digits."""

    algorithm: str  # "sha1" | "sha256" | "md5" | "sha256-prefix"
    digest: str

    @classmethod
    def parse(cls, text: object) -> Checksum:
        if not isinstance(text, str) or ":" not in text:
            raise ValueError(f"checksum {text!r} is not 'algorithm:hexdigest' "
                             f"(algorithms: {', '.join([*_HEX_DIGITS, 'sha256-prefix'])})")
        algorithm, digest = text.split(":", 1)
        digest = digest.lower()
        if not re.fullmatch(r"[0-9a-f]+", digest):
            raise ValueError(f"checksum {text!r}: the digest is not hexadecimal")
        if algorithm == "sha256-prefix":
            if not _MIN_PREFIX <= len(digest) <= _HEX_DIGITS["sha256"]:
                raise ValueError(f"checksum {text!r}: a sha256 prefix needs {_MIN_PREFIX} to 64 "
                                 "hex digits")
        elif algorithm in _HEX_DIGITS:
            if len(digest) != _HEX_DIGITS[algorithm]:
                raise ValueError(f"checksum {text!r}: {algorithm} has "
                                 f"{_HEX_DIGITS[algorithm]} hex digits, not {len(digest)}")
        else:
            raise ValueError(f"checksum {text!r}: unknown algorithm {algorithm!r}")
        return cls(algorithm, digest)

    @property
    def hash_algorithm(self) -> str:
        """The hashlib name of the digest to compute."""
        return "sha256" if self.algorithm == "sha256-prefix" else self.algorithm

    @property
    def is_prefix(self) -> bool:
        return self.algorithm == "sha256-prefix"

    def matches(self, hexdigest: str) -> bool:
        return hexdigest.lower().startswith(self.digest) if self.is_prefix \
            else hexdigest.lower() == self.digest

    def __str__(self) -> str:
        return f"{self.algorithm}:{self.digest}"


@dataclasses.dataclass(frozen=True)
class FileSpec:
    """One file of an entry: where it comes from and what it must hash to."""

    role: str
    name: str
    checksum: Checksum
    urls: tuple[str, ...] = ()
    path: str | None = None  # a local copy, used in place (never copied into the cache)
    size: int | None = None  # bytes, when known (shown by ``fetch --list``)
    members: int | None = None  # archives: the expected member count
    unpacked_bytes: int | None = None  # archives: the expected unpacked size


@dataclasses.dataclass(frozen=True)
class Entry:
    identifier: str
    kind: str
    files: tuple[FileSpec, ...]
    access: str = "public"
    access_reason: str = ""
    citation: str = ""
    description: str = ""
    aliases: tuple[str, ...] = ()
    stimulus_set: str | None = None  # assemblies: the stimulus set they were recorded on
    arch: str | None = None  # weights: the architecture they fit
    prefix: str = ""  # weights: the key prefix of the network inside the checkpoint
    replaces: bool = False
    source: str = "built-in"  # the catalog file the entry came from

    def file(self, role: str) -> FileSpec:
        return next(f for f in self.files if f.role == role)


class Catalog:
    """Entries by identifier (and alias), built-in first, then user files in order."""

    def __init__(self, entries: Iterable[Entry] = ()):
        self._entries: dict[str, Entry] = {}
        self._names: dict[str, str] = {}
        for entry in entries:
            self.add(entry)

    def add(self, entry: Entry) -> None:
        names = (entry.identifier, *entry.aliases)
        clashes = {self._names[n] for n in names if n in self._names}
        if clashes and not entry.replaces:
            other = self._entries[sorted(clashes)[0]]
            raise CatalogError(
                f"{entry.source}: entry {entry.identifier!r} clashes with {other.identifier!r} "
                f"from {other.source}; set \"replaces\": true to replace it, or rename it")
        if entry.replaces and not clashes:
            raise CatalogError(f"{entry.source}: entry {entry.identifier!r} says \"replaces\": "
                               "true but replaces no entry")
        for identifier in clashes:
            old = self._entries.pop(identifier)
            for name in (old.identifier, *old.aliases):
                self._names.pop(name, None)
        self._entries[entry.identifier] = entry
        self._names.update(dict.fromkeys(names, entry.identifier))

    def __contains__(self, name: object) -> bool:
        return name in self._names

    def __iter__(self):
        return iter(self._entries.values())

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, name: str, kind: str | None = None) -> Entry:
        """The entry called ``name`` (identifier or alias), of ``kind`` if given."""
        if name not in self._names:
            close = sorted(n for n in self._entries
                           if kind is None or self._entries[n].kind == kind)
            raise CatalogError(f"no catalog entry {name!r}" + (f" of kind {kind}" if kind else "")
                               + f"; known: {', '.join(close) or 'none'}")
        entry = self._entries[self._names[name]]
        if kind is not None and entry.kind != kind:
            raise CatalogError(f"catalog entry {name!r} ({entry.source}) is {entry.kind}, "
                               f"not {kind}")
        return entry

    def identifiers(self) -> list[str]:
        return list(self._entries)


def _file_spec(role: str, spec: object, where: str, base: Path | None) -> FileSpec:
    if not isinstance(spec, Mapping):
        raise ValueError(f"{where}: must be an object with checksum and url(s) or path")
    unknown = set(spec) - _FILE_FIELDS
    if unknown:
        raise ValueError(f"{where}: unknown fields {sorted(unknown)} "
                         f"(allowed: {', '.join(sorted(_FILE_FIELDS))})")
    if "checksum" not in spec:
        raise ValueError(f"{where}: missing 'checksum' (e.g. \"sha256:<64 hex digits>\"); a file "
                         "is never used unverified")
    try:
        checksum = Checksum.parse(spec["checksum"])
    except ValueError as err:
        raise ValueError(f"{where}: {err}") from None
    urls = spec.get("urls", [spec["url"]] if "url" in spec else [])
    if isinstance(urls, str) or not all(isinstance(u, str) and "://" in u for u in urls):
        raise ValueError(f"{where}: url(s) must be absolute URLs, got {urls!r}")
    path = spec.get("path")
    if path is not None:
        path = Path(os.path.expanduser(str(path)))
        path = str(path if path.is_absolute() or base is None else base / path)
    if not urls and path is None:
        raise ValueError(f"{where}: needs 'url', 'urls' or 'path'")
    name = spec.get("name") or (Path(path).name if path else urls[0].split("?")[0]
                                .rstrip("/").rsplit("/", 1)[-1])
    if not name or "/" in name or name in (".", ".."):
        raise ValueError(f"{where}: 'name' must be a plain file name, got {name!r}")
    numbers = {}
    for key in ("size", "members", "unpacked_bytes"):
        value = spec.get(key)
        if value is not None and (not isinstance(value, int) or isinstance(value, bool)
                                  or value < 0):
            raise ValueError(f"{where}: {key!r} must be a non-negative integer, got {value!r}")
        numbers[key] = value
    return FileSpec(role, name, checksum, tuple(urls), path, **numbers)


def parse_entry(raw: object, source: str, base: Path | None = None) -> Entry:
    """One entry of a catalog file; every problem is a :class:`CatalogError` naming
    ``source`` and the entry."""
    label = raw.get("identifier") if isinstance(raw, Mapping) else None
    where = f"{source}: entry {label!r}" if label else f"{source}: an entry"
    try:
        if not isinstance(raw, Mapping):
            raise ValueError("must be an object")
        unknown = set(raw) - _ENTRY_FIELDS
        if unknown:
            raise ValueError(f"unknown fields {sorted(unknown)} "
                             f"(allowed: {', '.join(sorted(_ENTRY_FIELDS))})")
        if not isinstance(label, str) or not label or any(c.isspace() for c in label):
            raise ValueError(f"'identifier' must be a non-empty name without spaces, got {label!r}")
        kind = raw.get("kind")
        if kind not in ROLES:
            raise ValueError(f"unknown kind {kind!r} (kinds: {', '.join(ROLES)})")
        files = raw.get("files")
        if not isinstance(files, Mapping) or set(files) != set(ROLES[kind]):
            got = sorted(files) if isinstance(files, Mapping) else files
            raise ValueError(f"'files' of a {kind} must name exactly {list(ROLES[kind])}, "
                             f"got {got!r}")
        access = raw.get("access", "public")
        if access not in ACCESS_LEVELS:
            raise ValueError(f"'access' must be one of {ACCESS_LEVELS}, got {access!r}")
        aliases = raw.get("aliases", [])
        if not isinstance(aliases, list) or not all(isinstance(a, str) and a for a in aliases):
            raise ValueError(f"'aliases' must be a list of names, got {aliases!r}")
        replaces = raw.get("replaces", False)
        if not isinstance(replaces, bool):
            raise ValueError(f"'replaces' must be true or false, got {replaces!r}")
        specs = tuple(_file_spec(role, files[role], f"files.{role}", base)
                      for role in ROLES[kind])
        text = {k: raw.get(k, "") for k in ("access_reason", "citation", "description", "prefix")}
        for key, value in text.items():
            if not isinstance(value, str):
                raise ValueError(f"{key!r} must be a string, got {value!r}")
    except ValueError as err:
        raise CatalogError(f"{where}: {err}") from None
    return Entry(identifier=label, kind=kind, files=specs, access=access,
                 aliases=tuple(aliases), stimulus_set=raw.get("stimulus_set"),
                 arch=raw.get("arch"), replaces=replaces, source=source, **text)


def read_catalog_file(path) -> list[Entry]:
    """The entries of one catalog JSON file (relative ``path`` values are relative to it)."""
    path = Path(path)
    try:
        document = json.loads(path.read_text())
    except FileNotFoundError:
        raise CatalogError(f"{path}: no such catalog file") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise CatalogError(f"{path}: cannot read as a JSON catalog: {err}") from None
    if isinstance(document, list):
        document = {"entries": document}
    if not isinstance(document, dict) or not isinstance(document.get("entries"), list):
        raise CatalogError(f"{path}: expected {{\"entries\": [...]}} (format {FORMAT})")
    if document.get("format", FORMAT) != FORMAT:
        raise CatalogError(f"{path}: format {document['format']!r}, this jaxbrain reads {FORMAT}")
    entries = [parse_entry(raw, str(path), path.parent) for raw in document["entries"]]
    seen: dict[str, str] = {}
    for entry in entries:
        for name in (entry.identifier, *entry.aliases):
            if name in seen:
                raise CatalogError(f"{path}: entry {entry.identifier!r}: name {name!r} is also "
                                   f"used by entry {seen[name]!r} in the same file")
            seen[name] = entry.identifier
    return entries


def user_catalog_files() -> list[Path]:
    """The files named by ``$JAXBRAIN_CATALOG``."""
    value = os.environ.get(CATALOG_ENV, "")
    return [Path(p) for p in value.split(os.pathsep) if p]


def load_catalog(user: Catalog | str | os.PathLike | Iterable | None = None) -> Catalog:
    """The built-in catalog plus user entries: ``user`` (a catalog file, several, or a
    :class:`Catalog`, which is returned as it is) or, when ``None``, the files in
    ``$JAXBRAIN_CATALOG``."""
    if isinstance(user, Catalog):
        return user
    if user is None:
        files = user_catalog_files()
    elif isinstance(user, str | os.PathLike):
        files = [Path(user)]
    else:
        files = [Path(p) for p in user]
    catalog = Catalog(read_catalog_file(BUILTIN))
    for file in files:
        for entry in read_catalog_file(file):
            catalog.add(entry)
    return catalog

"""Catalog entries as verified local files: downloaded once, cached by checksum, checked on use.

Where a file is looked for, in order: the entry's own local ``path``; jaxbrain's cache
``$JAXBRAIN_HOME/<algorithm>/<digest>/<file>`` (default: the platform's user cache, e.g.
``~/.cache/jaxbrain``), which is also where a file may be placed by hand; the caches users
already have — Brain-Score's ``$BRAINIO_HOME/<sha1>/<file>`` (default ``~/.brainio``) and torch
hub's ``$TORCH_HOME/hub/checkpoints/<file>`` — used in place; then each URL in turn. A file is
used only when its checksum matches, every time it is used. For ``sha256-prefix`` entries
(torchvision publishes 8 hex digits of each file's sha256), the full sha256 of the first copy
that matched is recorded beside the cache slot and every later use is checked against it.

Downloads stream through pooch's HTTP downloader (progress bar, timeouts) into a private
staging folder beside the slot and are renamed into place only after the checksum matched, all
under a per-slot file lock: an interrupted download leaves nothing a later run would trust, and
two processes fetching one file end with one verified copy (the second waits, then finds it).
``$JAXBRAIN_MIRROR`` (e.g. ``http://127.0.0.1:8000``) serves every URL from a mirror instead:
``https://host/path?query`` becomes ``$JAXBRAIN_MIRROR/host/path?query``.

Archives (a stimulus set's image zip, ``archive`` entries) are unpacked beside their slot into
a folder named after the archive, refusing members that would land outside it, links, and a
member count or size far beyond what the catalog states.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path
from urllib.parse import urlsplit

import platformdirs
import pooch
import requests

from jaxbrain.data.catalog import Catalog, CatalogError, Entry, FileSpec, load_catalog
from jaxbrain.files import atomic_write, fsync_directory

HOME_ENV = "JAXBRAIN_HOME"
MIRROR_ENV = "JAXBRAIN_MIRROR"
TIMEOUT_S = 60
_CHUNK = 1 << 20
# An archive may hold at most this many times the members / bytes its entry announces, and
# never unpack to more than this many times its own size when the entry announces nothing.
_ARCHIVE_SLACK = 2
_MAX_RATIO = 200


class FetchError(ValueError):
    """A catalog file that could not be had; the message names the identifier, the URL(s),
    the expected checksum and where the file may be placed by hand."""


def home() -> Path:
    """jaxbrain's download cache: ``$JAXBRAIN_HOME`` or the platform's user cache folder."""
    value = os.environ.get(HOME_ENV)
    return Path(value).expanduser() if value else platformdirs.user_cache_path("jaxbrain")


def slot(spec: FileSpec) -> Path:
    """Where jaxbrain keeps (and a user may place by hand) the file ``spec`` describes."""
    return home() / spec.checksum.algorithm / spec.checksum.digest / spec.name


def mirrored(url: str) -> str:
    """``url`` as served by ``$JAXBRAIN_MIRROR``, or unchanged when no mirror is set."""
    mirror = os.environ.get(MIRROR_ENV, "").rstrip("/")
    if not mirror:
        return url
    parts = urlsplit(url)
    return f"{mirror}/{parts.netloc}{parts.path}" + (f"?{parts.query}" if parts.query else "")


def _brainio_home() -> Path:
    return Path(os.path.expanduser(os.environ.get("BRAINIO_HOME", "~/.brainio")))


def _torch_home() -> Path:
    cache = os.environ.get("XDG_CACHE_HOME", "~/.cache")
    return Path(os.path.expanduser(os.environ.get("TORCH_HOME", os.path.join(cache, "torch"))))


def _other_caches(entry: Entry, spec: FileSpec) -> list[tuple[str, Path]]:
    """Copies Brain-Score or torch hub may already have downloaded."""
    found = []
    if spec.checksum.algorithm == "sha1":
        found.append(("brainio", _brainio_home() / spec.checksum.digest / spec.name))
    if entry.kind == "weights":
        found.append(("torch hub", _torch_home() / "hub" / "checkpoints" / spec.name))
    return found


def _record(spec: FileSpec) -> Path:
    """The full sha256 of the first copy that matched a ``sha256-prefix`` checksum."""
    target = slot(spec)
    return target.with_name(target.name + ".sha256")


def _hexdigest(path: Path, algorithm: str) -> str:
    return pooch.file_hash(str(path), alg=algorithm)


def verify(spec: FileSpec, path: Path) -> bool:
    """Whether ``path`` holds the file ``spec`` describes (recording the full sha256 of the
    first copy that matched a prefix checksum)."""
    digest = _hexdigest(path, spec.checksum.hash_algorithm)
    if not spec.checksum.is_prefix:
        return spec.checksum.matches(digest)
    record = _record(spec)
    if record.is_file():
        return digest == record.read_text().strip()
    if not spec.checksum.matches(digest):
        return False
    record.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(record, (digest + "\n").encode())
    return True


@contextlib.contextmanager
def _locked(folder: Path):
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / ".lock", "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _failure(entry: Entry, spec: FileSpec, problems: list[str]) -> FetchError:
    what = f"{entry.identifier!r}" + (f" ({spec.role})" if len(entry.files) > 1 else "")
    return FetchError(
        f"cannot fetch {what}: {'; '.join(problems)}. Expected {spec.checksum}; the file may be "
        f"placed by hand at {slot(spec)}"
    )


def _http_problem(err: Exception, entry: Entry) -> str:
    if isinstance(err, requests.HTTPError) and err.response is not None:
        status = err.response.status_code
        problem = f"HTTP {status} {err.response.reason or ''}".rstrip()
        if status in (401, 403):
            problem += (" (access denied: " + (entry.access_reason or "this file needs "
                        "credentials") + ")" if entry.access == "credentials" else
                        " (access denied)")
        return problem
    if isinstance(err, requests.ConnectionError | requests.Timeout):
        return f"cannot connect (offline?): {type(err).__name__}"
    return f"download interrupted: {type(err).__name__}: {err}"


def _download(entry: Entry, spec: FileSpec, target: Path, progress: bool,
              problems: list[str]) -> bool:
    """Try each URL into a staging folder; rename the first verified copy to ``target``."""
    for url in spec.urls:
        source = mirrored(url)
        staging = Path(tempfile.mkdtemp(prefix=".download-", dir=target.parent))
        try:
            partial = staging / spec.name
            if progress:
                print(f"jaxbrain: fetching {entry.identifier} from {source}", file=sys.stderr)
            downloader = pooch.HTTPDownloader(progressbar=progress, chunk_size=_CHUNK,
                                              timeout=TIMEOUT_S)
            downloader(source, str(partial), None)
            if not verify(spec, partial):
                got = _hexdigest(partial, spec.checksum.hash_algorithm)
                problems.append(f"{source}: checksum mismatch (got "
                                f"{spec.checksum.hash_algorithm}:{got})")
                continue
            os.replace(partial, target)
            fsync_directory(target.parent)
            return True
        except requests.RequestException as err:
            problems.append(f"{source}: {_http_problem(err, entry)}")
        except OSError as err:
            problems.append(f"{source}: cannot write {target.parent}: {err}")
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    return False


def fetch_file(entry: Entry, spec: FileSpec, *, progress: bool | None = None) -> Path:
    """A verified local copy of one file of ``entry``."""
    progress = sys.stderr.isatty() if progress is None else progress
    problems: list[str] = []
    if spec.path is not None:
        local = Path(spec.path)
        if local.is_file() and verify(spec, local):
            return local
        problems.append(f"{local}: " + ("checksum mismatch" if local.is_file() else "no such file"))
        if not spec.urls:
            raise _failure(entry, spec, problems)
    target = slot(spec)
    with _locked(target.parent):
        if target.is_file():
            if verify(spec, target):
                return target
            quarantine = target.with_name(target.name + ".corrupt")
            os.replace(target, quarantine)
            problems.append(f"the cached copy failed its checksum (moved to {quarantine})")
        for _, candidate in _other_caches(entry, spec):
            if candidate.is_file() and verify(spec, candidate):
                return candidate
        if not spec.urls:
            problems.append("no URL to download from")
        if _download(entry, spec, target, progress, problems):
            return target
    raise _failure(entry, spec, problems)


def _members(archive: Path) -> dict[str, int]:
    """Regular-file members and their sizes; raises ValueError for unsafe members."""
    if zipfile.is_zipfile(archive):
        with zipfile.ZipFile(archive) as z:
            infos = z.infolist()
        sizes = {}
        for info in infos:
            name = info.filename
            parts = name.replace("\\", "/").split("/")
            if name.startswith(("/", "\\")) or ".." in parts or ":" in parts[0]:
                raise ValueError(f"member {name!r} would land outside the target folder")
            if (info.external_attr >> 16) & 0o170000 == 0o120000:
                raise ValueError(f"member {name!r} is a symbolic link")
            if not info.is_dir():
                sizes[name] = info.file_size
        return sizes
    with tarfile.open(archive) as t:
        sizes = {}
        for member in t.getmembers():
            try:
                tarfile.data_filter(member, "/target")
            except tarfile.FilterError as err:
                raise ValueError(f"member {member.name!r}: {err}") from None
            if member.isfile():
                sizes[member.name] = member.size
        return sizes


def _check_size(spec: FileSpec, archive: Path, sizes: dict[str, int]) -> None:
    count, total = len(sizes), sum(sizes.values())
    if spec.members is not None and count > _ARCHIVE_SLACK * spec.members:
        raise ValueError(f"{count} members, far beyond the {spec.members} the catalog states")
    if spec.unpacked_bytes is not None and total > _ARCHIVE_SLACK * spec.unpacked_bytes:
        raise ValueError(f"unpacks to {total} bytes, far beyond the {spec.unpacked_bytes} the "
                         "catalog states")
    if spec.unpacked_bytes is None and total > _MAX_RATIO * max(archive.stat().st_size, 1):
        raise ValueError(f"unpacks to {total} bytes from {archive.stat().st_size} "
                         f"(over {_MAX_RATIO}x: refused as a decompression bomb)")


def _complete(folder: Path, sizes: dict[str, int]) -> bool:
    return folder.is_dir() and all(
        (folder / name).is_file() and (folder / name).stat().st_size == size
        for name, size in sizes.items())


def unpack(entry: Entry, spec: FileSpec, archive: Path) -> Path:
    """The folder ``archive`` (a verified copy of ``spec``) unpacks to, made once."""
    stem = spec.name
    for suffix in (".zip", ".tar.gz", ".tgz", ".tar"):
        stem = stem.removesuffix(suffix)
    folder = slot(spec).with_name(stem)
    try:
        sizes = _members(archive)
        _check_size(spec, archive, sizes)
    except (ValueError, OSError, zipfile.BadZipFile, tarfile.TarError) as err:
        raise FetchError(f"{entry.identifier!r}: refusing to unpack {archive}: {err}") from None
    if _complete(folder, sizes):
        return folder
    with _locked(folder.parent):
        if _complete(folder, sizes):
            return folder
        shutil.rmtree(folder, ignore_errors=True)  # a damaged unpack: made again from the archive
        staging = Path(tempfile.mkdtemp(prefix=".unpack-", dir=folder.parent))
        try:
            if zipfile.is_zipfile(archive):
                with zipfile.ZipFile(archive) as z:
                    z.extractall(staging)
            else:
                with tarfile.open(archive) as t:
                    t.extractall(staging, filter="data")
            os.replace(staging, folder)
            fsync_directory(folder.parent)
        except (OSError, zipfile.BadZipFile, tarfile.TarError) as err:
            raise FetchError(f"{entry.identifier!r}: cannot unpack {archive} into {folder}: "
                             f"{err}") from None
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    return folder


# The roles whose file is an archive to unpack, and which path the caller gets for them.
_UNPACKED = {("stimulus_set", "images"), ("archive", "archive")}


def fetch(identifier: str, catalog: Catalog | str | os.PathLike | None = None, *,
          kind: str | None = None, progress: bool | None = None) -> dict[str, Path]:
    """Verified local paths of catalog entry ``identifier``, by role: ``{"assembly": ...}``,
    ``{"csv": ..., "images": <folder>}``, ``{"weights": ...}`` or ``{"archive": <folder>}``.
    ``catalog``: a user catalog file or :class:`Catalog` (default: ``$JAXBRAIN_CATALOG``)."""
    entry = load_catalog(catalog).get(identifier, kind)
    paths = {}
    for spec in entry.files:
        path = fetch_file(entry, spec, progress=progress)
        if (entry.kind, spec.role) in _UNPACKED and path.is_file():
            path = unpack(entry, spec, path)
        paths[spec.role] = path
    return paths


def names_entry(reference, kind: str, catalog=None) -> Entry | None:
    """The catalog entry of ``kind`` that ``reference`` names, or None when ``reference`` is an
    existing path (a path always wins) or names no entry."""
    if not isinstance(reference, str) or Path(reference).exists():
        return None
    entries = load_catalog(catalog)
    if reference not in entries:
        return None
    return entries.get(reference, kind)


def cached_where(entry: Entry) -> str:
    """Where each file of ``entry`` is present now (not verified: that happens on use)."""
    places = []
    for spec in entry.files:
        found = [("path", Path(spec.path))] if spec.path else []
        found += [("jaxbrain", slot(spec)), *_other_caches(entry, spec)]
        places.append(next((label for label, p in found if p.is_file()), None))
    if all(p is None for p in places):
        return "no"
    if any(p is None for p in places):
        return "partly"
    return ", ".join(dict.fromkeys(places))


def present_size(entry: Entry) -> int | None:
    """The entry's size in bytes: stated in the catalog, or of the copies present."""
    total = 0
    for spec in entry.files:
        if spec.size is not None:
            total += spec.size
            continue
        found = [Path(spec.path)] if spec.path else []
        found += [slot(spec), *(p for _, p in _other_caches(entry, spec))]
        present = next((p for p in found if p.is_file()), None)
        if present is None:
            return None
        total += present.stat().st_size
    return total


__all__ = ["CatalogError", "FetchError", "cached_where", "fetch", "fetch_file", "home",
           "mirrored", "names_entry", "present_size", "slot", "unpack", "verify"]

"""Finding the tracking files of an extract: what each file is, and a private place to unpack it.

A file's kind comes from its name when it is one Marketing Cloud writes (``Opens.csv``,
``_Open.txt``, ``clicks.tsv``: case and a leading underscore do not matter); otherwise from its
columns: clicks have ``URL``/``URLID``/``LinkName``, bounces ``BounceCategory``/``SMTPCode``,
SendJobs have ``EmailName``/``Subject`` and no ``EventDate``; the others are told apart by the
first ``EventType`` value, else by a word in the name (``TH_Action_Open_20261101.csv``). A file
read by its columns says so (``ExtractFile.note``), and the summary of a run shows it.

**Unpacking.** A zip is unpacked one member at a time with a fixed buffer into a folder readable
by its owner only (the files hold email addresses), UTF-16 members transcoded to UTF-8 on the
way (``_encoding``). Each member is checked against ``ZipLimits`` before and while it is
written: the size it declares, the bytes actually written, and its compression ratio (a zip bomb
stops with a clear error, not a full disk). Each unpack folder holds a lock for as long as its
process lives; a folder whose lock is free belonged to a process that crashed or was killed, and
is removed the next time any ierkit process unpacks an extract (``sweep_stale``).
"""

from __future__ import annotations

import atexit
import contextlib
import fcntl
import os
import re
import shutil
import tempfile
import time
import zipfile
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import polars as pl

from ierkit.extract import _encoding
from ierkit.extract._encoding import ExtractFormatError

# Files of a tracking extract or of data-view exports, by lower-case stem without a leading
# underscore. "jobs" files describe sends, not events.
_FILE_KINDS: Final[dict[str, str]] = {
    "sent": "Sent",
    "opens": "Open",
    "open": "Open",
    "clicks": "Click",
    "click": "Click",
    "bounces": "Bounce",
    "bounce": "Bounce",
    "unsubs": "Unsub",
    "unsub": "Unsub",
    "unsubscribe": "Unsub",
    "unsubscribes": "Unsub",
    "sendjobs": "jobs",
    "job": "jobs",
    "jobs": "jobs",
}
_SUFFIXES: Final = (".csv", ".txt", ".tsv", ".tab")

#: Header names (lower case) -> canonical column. The first alias found wins. A click's link id
#: is its SendURLID (one per link of the email, so two links to one URL differ), else URLID.
ALIASES: Final[dict[str, tuple[str, ...]]] = {
    "job_id": ("sendid", "jobid"),
    "batch_id": ("batchid",),
    "subscriber_key": ("subscriberkey",),
    "subscriber_id": ("subscriberid",),
    "list_id": ("listid",),
    "email": ("emailaddress",),
    "event_time": ("eventdate",),
    "url": ("url",),
    "link_name": ("alias", "linkname"),
    "send_url_id": ("sendurlid",),
    "url_id": ("urlid",),
    "bounce_category": ("bouncecategory",),
    "bounce_category_id": ("bouncecategoryid",),
    "is_unique": ("isunique",),
}

_CLICK_COLUMNS: Final = {"url", "urlid", "sendurlid", "linkname", "linkcontent", "alias"}
_BOUNCE_COLUMNS: Final = {"bouncecategory", "bouncecategoryid", "smtpcode", "bouncereason"}
_JOB_COLUMNS: Final = {"emailname", "subject", "emailsubject", "fromname", "fromemail"}

# Bytes read from the start of a file to learn its encoding and header.
_HEAD_BYTES: Final = 64 * 1024


@dataclass(frozen=True)
class ZipLimits:
    """How big an unpacked zip member may be (a zip bomb stops here, not at a full disk).

    Attributes:
        max_member_bytes: Largest unpacked member, declared or actually written.
        max_ratio: Largest unpacked/compressed ratio, for members above ``ratio_from_bytes``
            (tracking CSV compresses 5-20x; deflate tops out near 1,000x).
        ratio_from_bytes: Members smaller than this are never refused for their ratio.
    """

    max_member_bytes: int = 64 * 1024**3
    max_ratio: float = 200.0
    ratio_from_bytes: int = 64 * 1024**2

    @classmethod
    def from_env(cls) -> ZipLimits:
        """The defaults, with ``IERKIT_MAX_UNPACKED_GB`` (per member) when it is set."""
        configured = os.environ.get("IERKIT_MAX_UNPACKED_GB", "").strip()
        if not configured:
            return cls()
        try:
            gigabytes = float(configured)
        except ValueError:
            gigabytes = float("nan")
        if not gigabytes > 0 or gigabytes == float("inf"):
            raise ExtractFormatError(
                f"IERKIT_MAX_UNPACKED_GB={configured!r} is not a positive number of GB"
            )
        return cls(max_member_bytes=int(gigabytes * 1024**3))


@dataclass(frozen=True)
class ExtractFile:
    """One file of a tracking extract, as found on disk.

    Attributes:
        path: Where the file is, as UTF-8 (a private temporary copy for zip members and UTF-16).
        name: The name to show in messages (``extract.zip:Clicks.csv`` for zip members).
        kind: ``Sent``, ``Open``, ``Click``, ``Bounce``, ``Unsub`` or ``jobs``.
        separator: ``,``, tab, ``|`` or ``;``.
        header: Column names as written, in file order.
        data_view: True for a data-view export (``JobID``), False for a tracking extract.
        kind_from: ``name`` when the name said the kind, ``columns`` when the header did.
        encoding: The encoding the file was written in (``utf-8``, ``utf-16-le``, ...).
    """

    path: Path
    name: str
    kind: str
    separator: str
    header: tuple[str, ...]
    data_view: bool
    kind_from: str = "name"
    encoding: str = _encoding.UTF8

    def column(self, canonical: str) -> str | None:
        """The header name that holds ``canonical``, or None when the file lacks it."""
        lowered = {h.strip().lower(): h for h in self.header}
        for alias in ALIASES[canonical]:
            if alias in lowered:
                return lowered[alias]
        return None

    @property
    def note(self) -> str | None:
        """A line for the run's summary when the file was not read as a plain UTF-8 file."""
        parts = []
        if self.kind_from != "name":
            parts.append(f"read as {_kind_label(self.kind)} (from its columns)")
        if _encoding.is_utf16(self.encoding):
            parts.append(f"{self.encoding.upper()} transcoded to UTF-8")
        if self.separator not in (",", "\t"):
            parts.append(f"separated by {self.separator!r}")
        return f"{self.name}: {', '.join(parts)}" if parts else None


def _kind_label(kind: str) -> str:
    return "SendJobs" if kind == "jobs" else kind


def _stem(name: str) -> str | None:
    lowered = Path(name).name.lower()
    for suffix in _SUFFIXES:
        if lowered.endswith(suffix):
            return lowered[: -len(suffix)]
    return None if "." in lowered else lowered


def file_kind(name: str) -> str | None:
    """The kind of a tracking file from its name (``Opens.csv`` -> ``Open``), None if unknown."""
    stem = _stem(name)
    return None if stem is None else _FILE_KINDS.get(stem.lstrip("_"))


def _kind_in_name(name: str) -> str | None:
    """A kind named by one word of the file name (``TH_Action_Open_20261101`` -> ``Open``)."""
    stem = _stem(name) or Path(name).name.lower()
    kinds = {_FILE_KINDS[w] for w in re.split(r"[^a-z0-9]+", stem) if w in _FILE_KINDS}
    return kinds.pop() if len(kinds) == 1 else None


def _kind_of_event_type(value: str | None) -> str | None:
    text = (value or "").strip().lower()
    for word, kind in (
        ("unsub", "Unsub"),
        ("bounce", "Bounce"),
        ("click", "Click"),
        ("open", "Open"),
        ("sent", "Sent"),
        ("send", "Sent"),
    ):
        if word in text:
            return kind
    return None


def read_header(path: Path) -> tuple[str, tuple[str, ...]] | None:
    """Separator and column names from the first line of a UTF-8 file; None when it is empty."""
    with open(path, "rb") as handle:
        first = handle.readline(_HEAD_BYTES)
    text = first.decode("utf-8-sig", errors="replace").rstrip("\r\n")
    if not text.strip():
        return None
    separator = _encoding.sniff_separator(text)
    names: list[str] = []
    for position, raw in enumerate(text.split(separator)):
        label = raw.strip().strip('"').strip()
        # A blank or repeated name gets its position, so every column has its own name.
        if not label or label.lower() in (n.lower() for n in names):
            label = f"{label or 'column'}_{position + 1}"
        names.append(label)
    return separator, tuple(names)


def _kind_from_columns(
    path: Path, name: str, separator: str, header: tuple[str, ...]
) -> str | None:
    """The kind of a file whose name says nothing, from its columns; None if not tracking."""
    lowered = {h.lower(): h for h in header}
    if not ({"sendid", "jobid"} & lowered.keys()):
        return None
    if "eventdate" not in lowered:
        return "jobs" if _JOB_COLUMNS & lowered.keys() else None
    if "subscriberkey" not in lowered and "subscriberid" not in lowered:
        return None
    if _CLICK_COLUMNS & lowered.keys():
        return "Click"
    if _BOUNCE_COLUMNS & lowered.keys():
        return "Bounce"
    if "eventtype" in lowered:
        first = _first_value(path, separator, header, lowered["eventtype"])
        if (kind := _kind_of_event_type(first)) is not None:
            return kind
    kind = _kind_in_name(name)
    if kind is None:
        raise ExtractFormatError(
            f"{name}: a tracking file, but neither its name nor an EventType column says whether "
            "it holds sends, opens or unsubscribes; put Sent, Open or Unsub in its name"
        )
    return kind


def _first_value(path: Path, separator: str, header: tuple[str, ...], column: str) -> str | None:
    try:
        frame = (
            pl.scan_csv(
                path,
                has_header=False,
                skip_rows=1,
                separator=separator,
                schema={h: pl.String for h in header},
                truncate_ragged_lines=True,
                missing_columns="insert",
            )
            .select(column)
            .filter(pl.col(column).str.strip_chars() != "")
            .head(1)
            .collect()
        )
    except pl.exceptions.PolarsError:
        return None  # the read proper names what is wrong with the file
    value = frame.item() if frame.height else None
    return value if isinstance(value, str) else None


def describe(
    path: Path, name: str, *, member: str | None = None, encoding: str = _encoding.UTF8
) -> ExtractFile | None:
    """What a UTF-8 file on disk is; None when it is not a tracking file.

    ``name`` is shown in messages; ``member`` (a zip member's own name) is the one whose words
    say the kind, when given.
    """
    own_name = member or name
    kind = file_kind(own_name)
    header = read_header(path)
    if header is None:
        if kind is None:
            return None
        return ExtractFile(path, name, kind, ",", (), False, encoding=encoding)
    separator, names = header
    kind_from = "name"
    if kind is None:
        kind = _kind_from_columns(path, own_name, separator, names)
        if kind is None:
            return None
        kind_from = "columns"
    lowered = {h.lower() for h in names}
    data_view = "jobid" in lowered and "sendid" not in lowered
    return ExtractFile(path, name, kind, separator, names, data_view, kind_from, encoding)


# --- private unpack folders, removed after a crash ------------------------------------------

_PREFIX: Final = "ierkit-extract-"
_LOCK: Final = ".owner.lock"
# Unpack folders of versions without a lock file are removed once they are this old.
_UNLOCKED_MAX_AGE_S: Final = 24 * 3600
_HELD: dict[str, int] = {}  # folder -> fd of its lock, held while this process may read it


def _temp_root() -> Path:
    return Path(tempfile.gettempdir())


def new_unpack_dir() -> Path:
    """A private (0700) temporary folder, locked by this process, after sweeping stale ones."""
    sweep_stale()
    folder = Path(tempfile.mkdtemp(prefix=_PREFIX, dir=_temp_root()))
    fd = os.open(folder / _LOCK, os.O_RDWR | os.O_CREAT, 0o600)
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    _HELD[str(folder)] = fd
    return folder


def remove_unpack_dir(folder: Path) -> None:
    """Remove an unpack folder of this process and release its lock."""
    shutil.rmtree(folder, ignore_errors=True)
    fd = _HELD.pop(str(folder), None)
    if fd is not None:
        os.close(fd)


def sweep_stale(root: Path | None = None) -> list[Path]:
    """Remove unpack folders left by processes that died (their lock is free).

    Returns:
        The folders removed.
    """
    removed: list[Path] = []
    base = _temp_root() if root is None else root
    try:
        candidates = sorted(base.glob(f"{_PREFIX}*"))
    except OSError:
        return removed
    for folder in candidates:
        if str(folder) in _HELD or not folder.is_dir():
            continue
        with contextlib.suppress(OSError):
            if folder.stat().st_uid != os.getuid():
                continue
            if _owner_gone(folder):
                shutil.rmtree(folder, ignore_errors=True)
                removed.append(folder)
    return removed


def _owner_gone(folder: Path) -> bool:
    lock = folder / _LOCK
    if not lock.exists():
        return time.time() - folder.stat().st_mtime > _UNLOCKED_MAX_AGE_S
    fd = os.open(lock, os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False  # its process is alive and may still read it
    finally:
        os.close(fd)
    return True


@atexit.register
def _remove_held() -> None:
    for folder in list(_HELD):
        remove_unpack_dir(Path(folder))


# --- finding the files ----------------------------------------------------------------------


def find_files(source: Path, tmp: Path, *, limits: ZipLimits | None = None) -> list[ExtractFile]:
    """The tracking files at ``source`` (zip, folder or file); copies go into ``tmp``.

    Raises:
        ExtractFormatError: When the path does not exist, holds no tracking file, or a zip
            member is too large.
    """
    return sorted(iter_files(source, tmp, limits=limits), key=lambda f: f.name)


def iter_files(
    source: Path, tmp: Path, *, limits: ZipLimits | None = None
) -> Iterator[ExtractFile]:
    """``find_files``, each file as soon as it is ready: a zip's members in the order their
    unpacking ends (the small ones first), so that reading them overlaps unpacking the large.

    Raises:
        ExtractFormatError: As ``find_files`` (a member too large before any is unpacked).
    """
    if source.is_dir():
        files = [
            described
            for child in sorted(source.iterdir())
            if child.is_file()
            and _may_be_text(child.name)
            and (described := _local_file(child, child.name, tmp)) is not None
        ]
        _require_some(files, source)
        yield from files
        return
    if not source.is_file():
        raise ExtractFormatError(f"{source}: no such file or folder")
    if not zipfile.is_zipfile(source):
        described = _local_file(source, source.name, tmp)
        if described is None:
            raise ExtractFormatError(
                f"{source.name}: not a zip and not a tracking file "
                "(Sent, Opens, Clicks, Bounces, Unsubs, SendJobs or a data view)"
            )
        yield described
        return
    found = 0
    for file in _zip_members(source, tmp, limits or ZipLimits.from_env()):
        found += 1
        yield file
    if not found:
        _require_some([], source)


def _may_be_text(name: str) -> bool:
    """False for hidden files and names whose suffix is not a text one (a PDF, a nested zip)."""
    return not name.startswith(".") and _stem(name) is not None


def _local_file(path: Path, name: str, tmp: Path) -> ExtractFile | None:
    """A file on disk; a UTF-16 one is transcoded into ``tmp`` first."""
    with open(path, "rb") as handle:
        encoding = _encoding.sniff_encoding(handle.read(_HEAD_BYTES))
    if not _encoding.is_utf16(encoding):
        return describe(path, name, encoding=encoding)
    target = tmp / f"{len(list(tmp.iterdir())):04d}-{path.name}"
    with open(path, "rb") as raw:
        _encoding.transcode(raw, target, encoding, name=name)
    return describe(target, name, encoding=encoding)


def _zip_members(source: Path, tmp: Path, limits: ZipLimits) -> Iterator[ExtractFile]:
    """The zip's tracking files unpacked into ``tmp``, two members at a time, each yielded
    as soon as it is unpacked.

    Inflating is most of what unpacking costs and zlib releases the GIL while it works, so two
    threads (each with its own handle on the zip) unpack about twice as fast on two cores.
    """
    with zipfile.ZipFile(source) as archive:
        members = [
            (number, info)
            for number, info in enumerate(sorted(archive.infolist(), key=lambda i: i.filename))
            if not info.is_dir() and _may_be_text(Path(info.filename).name)
        ]
    for _, info in members:
        _check_declared(info, f"{source.name}:{info.filename}", limits)
    # Largest first: the big Sent file starts at once instead of last.
    order = sorted(members, key=lambda m: -m[1].file_size)
    pool = ThreadPoolExecutor(max_workers=_UNPACK_THREADS)
    try:
        futures = [pool.submit(_unpack_member, source, n, info, tmp, limits) for n, info in order]
        for future in as_completed(futures):
            if (file := future.result()) is not None:
                yield file
    finally:
        # A reader that stopped early (a bad file) does not wait for the other members.
        pool.shutdown(wait=True, cancel_futures=True)


#: Zip members unpacked at once (this machine class has two cores).
_UNPACK_THREADS: Final = 2


def _unpack_member(
    source: Path, number: int, info: zipfile.ZipInfo, tmp: Path, limits: ZipLimits
) -> ExtractFile | None:
    member = Path(info.filename).name
    name = f"{source.name}:{info.filename}"
    with zipfile.ZipFile(source) as archive:
        with archive.open(info) as raw:
            encoding = _encoding.sniff_encoding(raw.read(_HEAD_BYTES))
        target = tmp / f"{number:04d}-{member}"
        with archive.open(info) as raw:
            if _encoding.is_utf16(encoding):
                _encoding.transcode(
                    raw, target, encoding, name=name, max_bytes=limits.max_member_bytes
                )
            else:
                _encoding.private_copy(raw, target, name=name, max_bytes=limits.max_member_bytes)
    described = describe(target, name, member=member, encoding=encoding)
    if described is None:
        target.unlink()
    return described


def _check_declared(info: zipfile.ZipInfo, name: str, limits: ZipLimits) -> None:
    """Refuse a member whose declared size or ratio is beyond ``limits`` (before unpacking)."""
    if info.file_size > limits.max_member_bytes:
        raise ExtractFormatError(
            f"{name}: {info.file_size:,} bytes unpacked is more than the "
            f"{limits.max_member_bytes:,} allowed (IERKIT_MAX_UNPACKED_GB raises it)"
        )
    if info.file_size >= limits.ratio_from_bytes:
        ratio = info.file_size / max(info.compress_size, 1)
        if ratio > limits.max_ratio:
            raise ExtractFormatError(
                f"{name}: compressed {ratio:,.0f} to 1, more than the {limits.max_ratio:g} to 1 "
                "a tracking file reaches; refused as a possible zip bomb"
            )


def _require_some(files: list[ExtractFile], source: Path) -> None:
    if not files:
        raise ExtractFormatError(
            f"{source}: no tracking file found (expected Sent, Opens, Clicks, Bounces, Unsubs "
            "or data-view exports such as _Open.csv)"
        )

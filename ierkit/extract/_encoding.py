"""Bytes before rows: a tracking file's encoding, its separator, and where its text goes wrong.

Marketing Cloud writes UTF-8 (with or without a byte-order mark), or UTF-16 when the extract's
"Unicode" option is chosen. polars reads only UTF-8, so a UTF-16 file is transcoded once, in a
streamed pass with a fixed buffer, to a UTF-8 copy in the private unpack folder; line breaks are
kept, so line numbers stay those of the original file. Anything else (Latin-1, Windows-1252) is
refused with the file and line of the first byte that is not text in either encoding.

The finders here (``first_invalid_utf8``, ``unclosed_quote_line``) run only after polars failed to
read a file: the happy path never pays for them. They stream too, so a bad byte at the end of a
10 GB file costs one pass, not memory.
"""

from __future__ import annotations

import codecs
import os
from pathlib import Path
from typing import IO, BinaryIO, Final

from ierkit.errors import IerkitError

#: Bytes read or written at a time by every streamed pass here.
BUFFER: Final = 16 * 1024 * 1024

#: Separators a tracking file may use, in the order a tie is broken (comma first: the extract's
#: default; tab is its option; pipe and semicolon come from data-view exports).
SEPARATORS: Final = (",", "\t", "|", ";")

UTF8: Final = "utf-8"
UTF8_BOM: Final = "utf-8-sig"
UTF16_LE: Final = "utf-16-le"
UTF16_BE: Final = "utf-16-be"

#: What to tell someone whose file is neither UTF-8 nor UTF-16.
ENCODING_FIX: Final = "save it as UTF-8, or choose the Tracking Extract's Unicode option (UTF-16)"


class ExtractFormatError(IerkitError):
    """A tracking file is malformed; the message names the file, line and column."""


class EncodingError(ExtractFormatError):
    """A file is neither UTF-8 nor UTF-16, or too large unpacked; the message names it."""


def sniff_encoding(head: bytes) -> str:
    """The encoding of a file from its first bytes (a few KB are plenty).

    A byte-order mark decides. Without one, UTF-16 shows as NUL bytes in every other position
    (tracking files are mostly ASCII): NULs at odd offsets are little-endian, at even offsets
    big-endian. Everything else is taken for UTF-8 (checked only if polars then fails).

    Returns:
        ``utf-8``, ``utf-8-sig``, ``utf-16-le`` or ``utf-16-be`` (the UTF-16 names mean the mark,
        if any, is still in the bytes: ``transcode`` drops it).
    """
    if head.startswith(codecs.BOM_UTF8):
        return UTF8_BOM
    if head.startswith(codecs.BOM_UTF16_LE):
        return UTF16_LE
    if head.startswith(codecs.BOM_UTF16_BE):
        return UTF16_BE
    sample = head[: len(head) - len(head) % 2]
    if len(sample) >= 4:
        odd_nuls = sample[1::2].count(0)
        even_nuls = sample[0::2].count(0)
        pairs = len(sample) // 2
        # Mostly-ASCII UTF-16: at least half the code units have a NUL high byte.
        if odd_nuls * 2 >= pairs and even_nuls == 0:
            return UTF16_LE
        if even_nuls * 2 >= pairs and odd_nuls == 0:
            return UTF16_BE
    return UTF8


def is_utf16(encoding: str) -> bool:
    """Whether ``sniff_encoding`` found UTF-16 (a file that needs ``transcode``)."""
    return encoding in (UTF16_LE, UTF16_BE)


def transcode(
    source: IO[bytes],
    target: Path,
    encoding: str,
    *,
    name: str,
    max_bytes: int | None = None,
) -> int:
    """Copy a UTF-16 stream into ``target`` as UTF-8, streamed, without its byte-order mark.

    Args:
        source: The UTF-16 bytes (a file or a zip member), read from the start.
        target: The UTF-8 file to write (created 0600: it holds email addresses).
        encoding: ``utf-16-le`` or ``utf-16-be`` (from ``sniff_encoding``).
        name: The file's name for messages.
        max_bytes: Refuse once more than this many bytes were read (a zip size guard).

    Returns:
        Bytes read from ``source``.

    Raises:
        EncodingError: When the bytes are not UTF-16 (naming the line), or exceed ``max_bytes``.
    """
    decoder = codecs.getincrementaldecoder(encoding)(errors="strict")
    read = 0
    lines = 1
    first = True
    with open_private(target) as out:
        while True:
            block = source.read(BUFFER)
            final = not block
            read += len(block)
            if max_bytes is not None and read > max_bytes:
                raise EncodingError(f"{name}: larger than {max_bytes:,} bytes unpacked; refused")
            try:
                text = decoder.decode(block, final=final)
            except UnicodeDecodeError:
                raise EncodingError(
                    f"{name}, line {lines}: not UTF-16 text although it starts like it; "
                    + ENCODING_FIX
                ) from None
            if first and text:
                text = text.removeprefix("\ufeff")
                first = False
            lines += text.count("\n")
            try:
                out.write(text.encode("utf-8"))
            except UnicodeEncodeError:
                # A lone surrogate: UTF-16 that was cut or corrupted.
                raise EncodingError(
                    f"{name}, line {lines}: broken UTF-16 (a lone surrogate); " + ENCODING_FIX
                ) from None
            if final:
                return read


def open_private(path: Path) -> BinaryIO:
    """``open(path, "wb")`` creating the file readable by its owner only (email addresses)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    return os.fdopen(fd, "wb")


def private_copy(
    source: IO[bytes], target: Path, *, name: str, max_bytes: int | None = None
) -> int:
    """Copy a stream into a new 0600 file with a fixed buffer, refusing past ``max_bytes``.

    Returns:
        Bytes copied.

    Raises:
        EncodingError: When the stream holds more than ``max_bytes`` (the size a zip declared
            can lie: the bytes actually written are counted).
    """
    copied = 0
    with open_private(target) as out:
        while block := source.read(BUFFER):
            copied += len(block)
            if max_bytes is not None and copied > max_bytes:
                raise EncodingError(f"{name}: larger than {max_bytes:,} bytes unpacked; refused")
            out.write(block)
    return copied


def sniff_separator(header: str) -> str:
    """The separator of a header line: the candidate found most often outside quotes."""
    counts = dict.fromkeys(SEPARATORS, 0)
    quoted = False
    for char in header:
        if char == '"':
            quoted = not quoted
        elif not quoted and char in counts:
            counts[char] += 1
    best = max(SEPARATORS, key=lambda s: (counts[s], -SEPARATORS.index(s)))
    return best if counts[best] else ","


def first_invalid_utf8(path: Path) -> int | None:
    """The line (1-based) of the first byte that is not UTF-8, or None if the file is UTF-8."""
    decoder = codecs.getincrementaldecoder("utf-8")(errors="strict")
    lines = 1
    with open(path, "rb") as handle:
        while True:
            block = handle.read(BUFFER)
            try:
                decoder.decode(block, final=not block)
            except UnicodeDecodeError as error:
                # The decoder's own buffer holds at most 3 bytes from the previous block: a bad
                # sequence is in this block, at error.start (counted within it) or just before.
                return lines + block[: max(error.start, 0)].count(b"\n")
            if not block:
                return None
            lines += block.count(b"\n")


def unclosed_quote_line(path: Path) -> int | None:
    """The line where a quoted value opens and is never closed, or None.

    A line with an odd number of quote characters opens or closes a quoted value (an escaped
    quote ``""`` counts two), so a file whose count is odd at the end has one left open: the
    line that last opened one is where it started. Streams line by line.
    """
    opened_at: int | None = None
    with open(path, "rb") as handle:
        for number, line in enumerate(handle, start=1):
            if line.count(b'"') % 2:
                opened_at = number if opened_at is None else None
    return opened_at

"""Where generated chunks go on their way to the demo folder (a scratch folder on disk)."""

from __future__ import annotations

from pathlib import Path
from typing import Final

import polars as pl


class ChunkWriter:
    """Collects generated chunks: Parquet parts per table, CSV files per extract file.

    The one stateful object of a generation: it owns the scratch folder on disk (``parts/``
    and ``extract/``) and counts the rows written to each table and file.

    Small chunks are buffered in memory and written once ``FLUSH_ROWS`` rows have gathered, so
    the many small sends do not each cost a file.
    """

    FLUSH_ROWS: Final = 200_000

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.parts: dict[str, list[Path]] = {}
        self.buffers: dict[str, list[pl.DataFrame]] = {}
        self.buffered: dict[str, int] = {}
        self.rows: dict[str, int] = {}
        self.columns: dict[str, tuple[str, ...]] = {}
        (folder / "parts").mkdir(parents=True)
        (folder / "extract").mkdir(parents=True)

    def _add(self, name: str, frame: pl.DataFrame) -> None:
        self.buffers.setdefault(name, []).append(frame)
        self.buffered[name] = self.buffered.get(name, 0) + frame.height
        self.rows[name] = self.rows.get(name, 0) + frame.height
        if self.buffered[name] >= self.FLUSH_ROWS:
            self._flush(name)

    def _flush(self, name: str) -> None:
        frames = self.buffers.pop(name, [])
        self.buffered[name] = 0
        if not frames:
            return
        frame = pl.concat(frames, how="vertical") if len(frames) > 1 else frames[0]
        if name.endswith(".csv"):
            path = self.folder / "extract" / name
            with open(path, "ab") as handle:
                frame.write_csv(handle, include_header=False)
        else:
            paths = self.parts.setdefault(name, [])
            path = self.folder / "parts" / f"{name}-{len(paths):06d}.parquet"
            # Parts are read back once by ``merge``: fast compression is enough.
            frame.write_parquet(path, compression="lz4")
            paths.append(path)

    def part(self, name: str, frame: pl.DataFrame) -> None:
        """Append rows to a table."""
        if frame.height:
            self._add(name, frame)

    def csv(self, name: str, frame: pl.DataFrame) -> None:
        """Append rows to an extract file (the header is written with the first call)."""
        if name not in self.columns:
            self.columns[name] = tuple(frame.columns)
            (self.folder / "extract" / name).write_bytes((",".join(frame.columns) + "\n").encode())
            self.rows.setdefault(name, 0)
        if frame.height:
            self._add(name, frame)

    def finish(self) -> None:
        """Write what is still buffered."""
        for name in list(self.buffers):
            self._flush(name)

    def merge(self, name: str, target: Path, empty: pl.DataFrame) -> int:
        """Concatenate the parts of ``name`` into ``target`` (streaming, order kept)."""
        paths = self.parts.get(name, [])
        if not paths:
            empty.write_parquet(target)
            return 0
        pl.scan_parquet(paths).sink_parquet(target)
        return self.rows[name]

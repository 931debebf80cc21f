"""Reading one tile of a run folder, chunk by chunk, whatever the base-call layout.

A `TileReader` checks that every file of the tile agrees on the cluster count (filter, positions,
every cycle) and yields (calls, pf, xy) for consecutive cluster ranges; memory is bounded by the
chunk size x cycles, not by the tile or the run.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from . import codecs, kernels
from .errors import BaseCallFileError, RunFolderError
from .runinfo import Format, Positions, RunInfo

U8 = npt.NDArray[np.uint8]


def detect_format(run_dir: Path, info: RunInfo) -> tuple[Format, Positions]:
    """Base-call layout and positions kind from what the first lane's first cycle folder holds."""
    lane = info.lanes[0]
    lane_dir = run_dir / f"Data/Intensities/BaseCalls/L{lane:03d}"
    if (lane_dir / "0001.bcl.bgzf").is_file() or (lane_dir / f"s_{lane}.bci").is_file():
        return "bcl.bgzf", "lane.locs"  # NextSeq 500/550: every file of the layout is named by the manifest
    c1 = lane_dir / "C1.1"
    if not c1.is_dir():
        raise RunFolderError("missing cycle folder (no base calls?)", path=c1.relative_to(run_dir))
    names = [p.name for p in c1.iterdir()]
    fmt: Format
    if any(n.endswith(".cbcl") for n in names):
        fmt = "cbcl"
    elif any(n.endswith(".bcl.gz") for n in names):
        fmt = "bcl.gz"
    elif any(n.endswith(".bcl") for n in names):
        fmt = "bcl"
    else:
        raise RunFolderError("no .bcl, .bcl.gz or .cbcl files", path=c1.relative_to(run_dir))
    pos: Positions
    tile = info.lane_tiles(lane)[0]
    if (run_dir / "Data/Intensities/s.locs").is_file():
        pos = "s.locs"
    elif (run_dir / f"Data/Intensities/L{lane:03d}/s_{lane}_{tile}.clocs").is_file():
        pos = "clocs"
    elif (run_dir / f"Data/Intensities/L{lane:03d}/s_{lane}_{tile}.locs").is_file():
        pos = "locs"
    else:
        raise RunFolderError(f"no positions for tile {lane}_{tile} (s.locs, .clocs or .locs)", path="Data/Intensities")
    return fmt, pos


def check_complete(run_dir: Path, info: RunInfo, fmt: Format, pos: Positions) -> None:
    """Every base-call, filter and position file RunInfo implies must exist (markers not required)."""
    expected = info.expected_files(fmt, positions=pos, markers=())
    missing = [f for f in expected if not (run_dir / f).is_file()]
    if missing:
        more = f" (and {len(missing) - 3} more)" if len(missing) > 3 else ""
        raise RunFolderError(
            f"{len(missing)} file(s) missing from the run folder: {', '.join(missing[:3])}{more}",
            path=missing[0],
        )


@dataclass(frozen=True)
class TileSpec:
    lane: int
    tile: int
    surface: int


class TileReader:
    def __init__(self, run_dir: Path, info: RunInfo, fmt: Format, pos: Positions, spec: TileSpec) -> None:
        self.run_dir = run_dir
        self.spec = spec
        lane, tile = spec.lane, spec.tile
        base = run_dir / f"Data/Intensities/BaseCalls/L{lane:03d}"
        self.cycles = info.total_cycles
        self.fmt = fmt
        self._streams: list[codecs.BclStream | codecs.CbclTileStream | codecs.BgzfTileStream] = []
        self._excluded: list[bool] = []
        if fmt == "bcl.bgzf":
            self._open_bgzf(base, info)
            return
        filt = base / f"s_{lane}_{tile}.filter"
        self.pf = codecs.decode_filter(self._read(filt), path=self._rel(filt))
        self.n = int(self.pf.size)
        self.pf_count = int(self.pf.sum())
        if pos == "s.locs":
            ppath = run_dir / "Data/Intensities/s.locs"
        else:
            ppath = run_dir / f"Data/Intensities/L{lane:03d}/s_{lane}_{tile}.{pos}"
        self.xy = codecs.read_positions(ppath, display=self._rel(ppath))
        if self.xy.shape[0] != self.n:
            raise BaseCallFileError(
                f"{self.xy.shape[0]} positions but the filter file of tile {lane}_{tile} has {self.n} clusters",
                path=self._rel(ppath),
            )
        try:
            for c in range(1, self.cycles + 1):
                if fmt == "cbcl":
                    p = base / f"C{c}.1/L{lane:03d}_{spec.surface}.cbcl"
                    s = self._open_cbcl(p, tile)
                    self._streams.append(s)
                    self._excluded.append(s.header.pf_excluded)
                else:
                    p = base / f"C{c}.1/s_{lane}_{tile}.{fmt}"
                    b = codecs.BclStream(p, display=self._rel(p))
                    self._streams.append(b)
                    if b.clusters != self.n:
                        raise BaseCallFileError(
                            f"{b.clusters} clusters but the filter file (and cycle 1) say {self.n}: "
                            f"cluster counts differ between files of tile {lane}_{tile}",
                            path=self._rel(p),
                        )
                    self._excluded.append(False)
        except BaseException:
            self.close()
            raise

    def _open_bgzf(self, base: Path, info: RunInfo) -> None:
        """NextSeq 500/550: the tile's slice of the lane's .bci-indexed filter, positions and cycle files."""
        lane, tile = self.spec.lane, self.spec.tile
        bci = base / f"s_{lane}.bci"
        entries = codecs.decode_bci(self._read(bci), path=self._rel(bci))
        listed = {t for t, _ in entries}
        expected = set(info.lane_tiles(lane))
        if listed != expected:
            extra, missing = sorted(listed - expected), sorted(expected - listed)
            raise BaseCallFileError(
                f"tiles differ from RunInfo.xml for lane {lane}: missing {missing}, not in RunInfo {extra}",
                path=self._rel(bci),
            )
        start, self.n = codecs.bci_offsets(entries)[tile]
        lane_n = sum(n for _, n in entries)
        filt, locs = base / f"s_{lane}.filter", base / f"s_{lane}.locs"
        kw = {"start": start, "count": self.n, "lane_clusters": lane_n}
        self.pf = codecs.read_lane_slice(filt, "filter", display=self._rel(filt), **kw)
        self.pf_count = int(self.pf.sum())
        self.xy = codecs.read_lane_slice(locs, "locs", display=self._rel(locs), **kw)
        try:
            for c in range(1, self.cycles + 1):
                p = base / f"{c:04d}.bcl.bgzf"
                self._streams.append(
                    codecs.BgzfTileStream(p, start=start, clusters=self.n, lane_clusters=lane_n, display=self._rel(p))
                )
                self._excluded.append(False)
        except BaseException:
            self.close()
            raise

    def _rel(self, p: Path) -> str:
        try:
            return str(p.relative_to(self.run_dir))
        except ValueError:
            return str(p)

    def _read(self, p: Path) -> bytes:
        try:
            return p.read_bytes()
        except OSError as e:
            raise RunFolderError(f"cannot read: {e.strerror or e}", path=self._rel(p)) from None

    def _open_cbcl(self, p: Path, tile: int) -> codecs.CbclTileStream:
        return codecs.CbclTileStream(
            p, tile, stored=self.n, display=self._rel(p), pf_count=self.pf_count, clusters=self.n
        )

    @property
    def stores_non_pf(self) -> bool:
        return not any(self._excluded)

    def chunks(self, size: int, *, pf_only: bool) -> Iterator[tuple[npt.NDArray[np.intp], U8]]:
        """Yield (cluster numbers within the tile, calls as a (clusters, cycles) array) per chunk.

        With ``pf_only`` only PF clusters are returned. Otherwise every cluster is, which requires
        base calls for non-PF clusters (CBCLs written with non-PF clusters excluded have none: the
        caller checks `stores_non_pf`). Data arrive cycle by cycle; one compiled pass selects the
        clusters and makes the array cluster-major (numpy's uint8 transpose is ~5x slower).
        """
        for start in range(0, self.n, size):
            stop = min(start + size, self.n)
            m = stop - start
            pf = self.pf[start:stop]
            pf_rows = np.flatnonzero(pf)
            npf = int(pf_rows.size)
            if pf_only:  # (cycles, PF clusters)
                raw = np.empty((self.cycles, npf), dtype=np.uint8)
                for c, (s, excl) in enumerate(zip(self._streams, self._excluded, strict=True)):
                    if excl:  # PF-excluded CBCL: the block holds exactly these
                        raw[c] = s.read(npf)
                    elif npf == m:
                        raw[c] = s.read(m)
                    else:
                        np.take(s.read(m), pf_rows, out=raw[c])
                rows = pf_rows
                picks = np.arange(npf, dtype=np.int64)
            else:
                raw = np.zeros((self.cycles, m), dtype=np.uint8)
                for c, (s, excl) in enumerate(zip(self._streams, self._excluded, strict=True)):
                    if excl:  # pragma: no cover - refused by the caller (no calls for non-PF clusters)
                        raw[c, pf_rows] = s.read(npf)
                    else:
                        raw[c] = s.read(m)
                rows = np.arange(m)
                picks = rows.astype(np.int64)
            calls = np.empty((rows.size, self.cycles), dtype=np.uint8)
            kernels.gather_transpose(raw, picks, calls)
            yield start + rows, calls
        for s in self._streams:
            if isinstance(s, codecs.BclStream):
                s.finish()

    def close(self) -> None:
        for s in self._streams:
            s.close()

"""The ``physionet`` source: build the beat CSVs from the raw MIT-BIH and PTB records.

Where the records come from (``data.physionet.mirror``):

* an ``http(s)://`` base URL laid out like physionet.org, ``BASE/<db>/<version>/RECORDS``
  (``https://physionet.org/files/mitdb/1.0.0/RECORDS``). A mirror that serves
  the database folders without the version level (``BASE/<db>/RECORDS``, as a
  plain HTTP server over a copy does) is detected from where ``RECORDS`` is.
  Files are downloaded into a cache folder of that mirror's own
  (:func:`mirror_cache`: ``cache/physionet/<host-path>-<hash>/<db>/``, see
  :mod:`heartbeat.fetch.download`), so a copy from one mirror is never taken
  for another's, and only the files a run needs are fetched: the header, the
  ``.dat`` that holds the chosen lead, and for MIT-BIH the ``.atr`` annotations;
* a local folder (a path or ``file://`` URL) with the same layout, read in place.

Every cached file is validated on every run, as far as the run reads it: the
header must parse and name plain signal files, the signal file must have the
size its header implies and its lead must read with no invalid sample, the
annotations must read and lie inside the signal. One that fails is deleted
and fetched again once, so a file that was cut short or corrupted is never
trusted, and a fixed mirror is picked up by the next run. No download may
run past the size the format allows (:data:`MAX_FILE_BYTES`).

What it writes (see :func:`fetch_physionet`): the four Kaggle-format CSVs,
``provenance.parquet`` (one row per written beat: where it came from and its
R-R features) and ``report.json`` (counts next to the Kaggle set's).
"""

from __future__ import annotations

import functools
import hashlib
import logging
import re
import urllib.parse
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import wfdb

from heartbeat.core.atomic import write_json
from heartbeat.core.beat_spec import MITBIH_CLASSES, PTB_CLASSES
from heartbeat.core.config import PhysionetConfig
from heartbeat.core.errors import DataError, SourceError, about
from heartbeat.core.layout import RAW_FILES
from heartbeat.core.progress import track
from heartbeat.fetch.beatset import RecordRows, class_counts, concat, write_beat_files
from heartbeat.fetch.download import HTTPStatusError, download_file, remove_quietly
from heartbeat.fetch.kaggle_set import KAGGLE_MITBIH_CLASSES, KAGGLE_ROWS
from heartbeat.signal import detect, segment, wfdb_records
from heartbeat.signal.record_beats import cut_record

log = logging.getLogger("heartbeat.physionet")

SAME_SUBJECT = {"202": "201"}
"""MIT-BIH records 201 and 202 come from one subject; a patient-wise split must keep them together."""

_NAME = re.compile(r"^[A-Za-z0-9_\-]+(/[A-Za-z0-9_\-]+)*$")
MAX_FILE_BYTES = {"RECORDS": 1 << 20, ".hea": 1 << 20, ".atr": 16 << 20}
"""The most a RECORDS index, header or annotation file may be (ptbdb's RECORDS is about 11 KB, the
shared records' largest header and annotation files 3 KB and 9 KB); a signal file's limit is the
size its header implies."""
_BYTES_PER_SAMPLE = {
    "8": 1.0,
    "16": 2.0,
    "24": 3.0,
    "32": 4.0,
    "61": 2.0,
    "80": 1.0,
    "160": 2.0,
    "212": 1.5,
    "310": 4 / 3,
    "311": 4 / 3,
}


# ---------------------------------------------------------------- where the files are


@dataclass(frozen=True)
class _Database:
    """One database on the mirror: either a local folder read in place, or a URL plus a cache folder."""

    name: str
    root: Path | None
    url: str | None
    cache: Path
    cfg: PhysionetConfig

    @property
    def where(self) -> str:
        return str(self.root) if self.root is not None else str(self.url)

    def fetch(self, relpath: str, expected_size: int | None = None) -> tuple[Path, bool]:
        """Path of ``relpath`` on disk (downloading it if needed), and whether it was just downloaded.

        A download runs to ``expected_size`` bytes at most, or to :data:`MAX_FILE_BYTES` for its kind.
        """
        if self.root is not None:
            path = self.root / relpath
            if not path.is_file():
                raise SourceError(f"{path}: not found in the local mirror; check data.physionet.mirror")
            if expected_size is not None and path.stat().st_size != expected_size:
                raise DataError(
                    f"{path}: {path.stat().st_size} bytes, but its header implies {expected_size}; "
                    "the file is truncated or corrupt, replace it"
                )
            return path, False
        dest = self.cache / relpath
        trusted = dest.is_file() and (expected_size is None or dest.stat().st_size == expected_size)
        download_file(
            self.url + urllib.parse.quote(relpath),
            dest,
            expected_size=expected_size,
            max_bytes=MAX_FILE_BYTES.get(relpath if relpath == "RECORDS" else Path(relpath).suffix),
            retries=self.cfg.retries,
            backoff_s=self.cfg.backoff_s,
            timeout_s=self.cfg.timeout_s,
            desc=f"{self.name}/{relpath}",
        )
        return dest, not trusted

    def discard(self, path: Path) -> None:
        """Forget a downloaded file that failed validation; never touches a local mirror."""
        if self.root is None:
            remove_quietly(path)


def mirror_cache(cache: Path, mirror: str) -> Path:
    """The cache folder of the http(s) ``mirror``'s downloads: its host and path, readable, and a
    hash of its URL, so that two mirrors never share a file (one of them may serve a broken copy)."""
    url = mirror.strip().rstrip("/")
    parsed = urllib.parse.urlparse(url)
    readable = re.sub(r"[^A-Za-z0-9.-]+", "_", parsed.netloc + parsed.path).strip("_")[:60]
    return Path(cache) / "physionet" / f"{readable}-{hashlib.sha256(url.encode()).hexdigest()[:12]}"


def local_root(mirror: str) -> Path | None:
    """The folder a local mirror (a path or ``file://`` URL) is read from; None for an http(s) mirror."""
    if mirror.startswith("file://"):
        return Path(urllib.parse.unquote(urllib.parse.urlparse(mirror).path))
    if "://" in mirror:
        if not mirror.startswith(("http://", "https://")):
            raise SourceError(
                f"data.physionet.mirror: {mirror!r} is not an http(s) URL, file:// URL or folder"
            )
        return None
    return Path(mirror).expanduser()


def _locate(cfg: PhysionetConfig, name: str, cache: Path) -> tuple[_Database, list[str]]:
    """Find ``name``'s folder on the mirror (versioned or not) and read its RECORDS index."""
    version = getattr(cfg, f"{name}_version").strip("/")
    levels = [f"{name}/{version}", name] if version else [name]
    root = local_root(cfg.mirror)
    tried = []
    if root is not None:
        for level in levels:
            index = root / level / "RECORDS"
            tried.append(str(index))
            if index.is_file():
                db = _Database(name, root / level, None, cache / name, cfg)
                return db, _parse_records(index, name)
    else:
        base = cfg.mirror.rstrip("/") + "/"
        for level in levels:
            url = f"{base}{level}/"
            tried.append(url + "RECORDS")
            db = _Database(name, None, url, mirror_cache(cache, cfg.mirror) / name, cfg)
            index = db.cache / "RECORDS"
            remove_quietly(index)  # the index is tiny and decides what "all" means: always fresh
            try:
                db.fetch("RECORDS")
            except HTTPStatusError as exc:
                if exc.status == 404:
                    continue
                raise
            return db, _parse_records(index, name)
    raise SourceError(f"{name}: no RECORDS index at {' or '.join(tried)}; check data.physionet.mirror")


def _parse_records(index: Path, name: str) -> list[str]:
    records = [line.strip() for line in index.read_text(encoding="utf-8", errors="replace").splitlines()]
    records = [r for r in records if r]
    bad = [r for r in records if not _NAME.match(r)]
    if bad or not records:
        what = f"has an invalid entry {bad[0][:40]!r}" if bad else "is empty"
        raise DataError(f"{index}: the {name} RECORDS index {what}; the mirror is not a PhysioNet copy")
    return records


def _select(wanted: str | list[str], available: list[str], name: str, where: str) -> list[str]:
    if wanted == "all":
        return available
    known = set(available)
    missing = [r for r in wanted if r not in known]
    if missing:
        raise DataError(
            f"data.physionet.{name}_records: {', '.join(missing[:5])} not in the RECORDS index at {where}; "
            "check the record names"
        )
    return list(dict.fromkeys(wanted))


# ---------------------------------------------------------------- reading one record


def _expected_size(header: wfdb.Record, file_name: str) -> int | None:
    """Bytes the signal file must have, from the header; None for formats we do not size."""
    channels = [i for i, f in enumerate(header.file_name) if f == file_name]
    fmts = {header.fmt[i] for i in channels}
    if len(fmts) != 1 or next(iter(fmts)) not in _BYTES_PER_SAMPLE or header.sig_len is None:
        return None
    offset = int((header.byte_offset or [0] * header.n_sig)[channels[0]] or 0)
    total = header.sig_len * len(channels) * _BYTES_PER_SAMPLE[next(iter(fmts))]
    return offset + int(np.ceil(total))


def _read_header(db: _Database, record: str) -> tuple[wfdb.Record, Path]:
    where = f"{db.name} record {record}"

    def parse(path: Path) -> wfdb.Record:
        try:
            return wfdb_records.read_header(path.with_suffix(""), where)
        except DataError as exc:
            raise DataError(f"{exc}; the copy on the mirror is corrupt") from None

    return _validated(db, f"{record}.hea", parse)


def _validated(db: _Database, relpath: str, check, expected_size: int | None = None):
    """Fetch ``relpath`` and run ``check`` on it; a cached copy that fails is fetched again once."""
    path, fresh = db.fetch(relpath, expected_size)
    try:
        return check(path), path
    except DataError:
        db.discard(path)
        if fresh or db.root is not None:
            raise
    path, _ = db.fetch(relpath, expected_size)
    try:
        return check(path), path
    except DataError:
        db.discard(path)
        raise


def _read_lead(db: _Database, record: str, header: wfdb.Record, lead: str) -> np.ndarray:
    """The chosen lead in physical units, after fetching and size-checking the file that holds it."""
    channel = list(header.sig_name).index(lead)
    folder = record.rsplit("/", 1)[0] + "/" if "/" in record else ""
    file_name = header.file_name[channel]
    expected = _expected_size(header, file_name)

    def check(path: Path) -> np.ndarray:
        if expected is not None and path.stat().st_size != expected:
            raise DataError(
                f"{db.name} record {record}: {file_name} has {path.stat().st_size} bytes, "
                f"its header implies {expected}; the file is truncated or corrupt"
            )
        # Reading the lead is part of the check: a copy with an invalid sample must not stay cached.
        return wfdb_records.read_lead(
            path.parent / Path(record).name, header, lead, f"{db.name} record {record}"
        )

    try:
        return _validated(db, folder + file_name, check, expected)[0]
    except DataError:
        # The header sized and described this file: when the pair disagrees, either may be the bad
        # copy, so neither stays cached (a cached header that disagrees would fail every later fetch).
        db.discard(db.cache / f"{record}.hea")
        raise


def _read_annotations(db: _Database, record: str, length: int) -> tuple[np.ndarray, np.ndarray]:
    """Beat annotations only (AAMI beat symbols), as (samples, symbols), inside the signal's ``length``."""
    where = f"{db.name} record {record}"

    def parse(path: Path) -> tuple[np.ndarray, np.ndarray]:
        try:
            return wfdb_records.read_beat_annotations(path.with_suffix(""), where, length)
        except DataError as exc:
            raise DataError(f"{exc}; the copy on the mirror is truncated or corrupt") from None

    try:
        return _validated(db, f"{record}.atr", parse)[0]
    except DataError:
        db.discard(db.cache / f"{record}.hea")  # it gave the length the beats are checked against
        raise


# ---------------------------------------------------------------- beats of one record


@dataclass
class _Report:
    mitdb: dict[str, dict] = field(default_factory=dict)
    ptbdb: dict[str, dict] = field(default_factory=dict)
    excluded: dict[str, str] = field(default_factory=dict)
    skipped: list[dict[str, str]] = field(default_factory=list)

    def skip(self, database: str, record: str, reason: str) -> None:
        log.warning("skipping %s record %s: %s", database, record, reason)
        self.skipped.append({"database": database, "record": record, "reason": reason})


def segment_options(cfg: PhysionetConfig) -> dict[str, object]:
    """How the physionet source cuts a record's beats (:func:`heartbeat.signal.segment.extract_beats`'s
    options): what anything scoring beats "as the physionet source cuts them" passes too."""
    return {
        "window_s": cfg.window_s,
        "threshold": cfg.detector_threshold,
        "refractory_s": cfg.refractory_s,
        "scaling": cfg.beat_scaling,
    }


def _mitdb_record(
    db: _Database,
    record: str,
    cfg: PhysionetConfig,
    report: _Report,
    reference: str = "median",
    amplitude_stretch_s: float = 0.0,
) -> RecordRows | None:
    header, _ = _read_header(db, record)
    lead = wfdb_records.pick_lead(header.sig_name, (cfg.mitdb_lead, cfg.mitdb_fallback_lead))
    if lead is None:
        wanted = cfg.mitdb_lead + (f" or {cfg.mitdb_fallback_lead}" if cfg.mitdb_fallback_lead else "")
        report.skip("mitdb", record, f"no {wanted} lead (has {', '.join(header.sig_name)})")
        return None
    if lead.lower() != cfg.mitdb_lead.lower():
        log.info("mitdb record %s has no %s lead; using %s instead", record, cfg.mitdb_lead, lead)
    signal = _read_lead(db, record, header, lead)
    ref_samples, ref_symbols = _read_annotations(db, record, int(header.sig_len))
    fs = float(header.fs)
    kwargs = segment_options(cfg)
    detected = segment.extract_beats(signal, fs, None, polarity=cfg.detector_polarity, **kwargs)
    score = detect.score_detector(detected.peaks, ref_samples, fs)
    other = wfdb_records.second_lead(header, lead)
    second = None if other is None else _read_lead(db, record, header, other)
    if cfg.peaks == "annotations":
        beats = cut_record(
            signal,
            fs,
            ref_samples,
            ref_symbols,
            second=second,
            reference=reference,
            amplitude_stretch_s=amplitude_stretch_s,
            **kwargs,
        )
        unmatched = 0
    else:
        match = detect.match_peaks(detected.peaks, ref_samples, fs)
        symbols = np.full(detected.peaks.size, "", dtype=object)
        symbols[match >= 0] = ref_symbols[match[match >= 0]]
        beats = cut_record(
            signal,
            fs,
            None,
            symbols,
            keep=match >= 0,
            second=second,
            reference=reference,
            amplitude_stretch_s=amplitude_stretch_s,
            polarity=cfg.detector_polarity,
            **kwargs,
        )
        unmatched = int(detected.index.size - len(beats))
    labels = wfdb_records.aami_labels(beats.symbol)
    report.mitdb[record] = {
        "lead": lead,
        "inverted_for_detector": detected.inverted,
        "annotated": class_counts(wfdb_records.aami_labels(ref_symbols), MITBIH_CLASSES),
        "written": class_counts(labels, MITBIH_CLASSES),
        "dropped": int(ref_samples.size - len(beats)) if cfg.peaks == "annotations" else None,
        "unlabelled_detections": unmatched if cfg.peaks == "detector" else None,
        "detector": score.as_dict(),
    }
    return RecordRows.of(beats, "mitdb", record, SAME_SUBJECT.get(record, record), labels)


def _ptbdb_record(
    db: _Database,
    record: str,
    cfg: PhysionetConfig,
    report: _Report,
    reference: str = "median",
    amplitude_stretch_s: float = 0.0,
) -> RecordRows | None:
    header, _ = _read_header(db, record)
    diagnosis = wfdb_records.diagnosis(header.comments)
    label = wfdb_records.diagnosis_label(header.comments)
    if label is None:
        report.excluded[record] = diagnosis or "unknown (no 'Reason for admission' comment)"
        return None
    lead = wfdb_records.pick_lead(header.sig_name, (cfg.ptbdb_lead,))
    if lead is None:
        report.skip("ptbdb", record, f"no {cfg.ptbdb_lead} lead (has {', '.join(header.sig_name)})")
        return None
    signal = _read_lead(db, record, header, lead)
    other = wfdb_records.second_lead(header, lead)
    second = None if other is None else _read_lead(db, record, header, other)
    fs = float(header.fs)
    beats = cut_record(
        signal,
        fs,
        None,
        second=second,
        reference=reference,
        amplitude_stretch_s=amplitude_stretch_s,
        polarity=cfg.detector_polarity,
        **segment_options(cfg),
    )
    report.ptbdb[record] = {
        "lead": lead,
        "inverted_for_detector": beats.segmented.inverted,
        "diagnosis": diagnosis,
        "label": PTB_CLASSES[label],
        "detected": int(beats.segmented.peaks.size),
        "written": len(beats),
    }
    return RecordRows.of(beats, "ptbdb", record, record.split("/")[0], np.full(len(beats), label))


def _collect(cfg: PhysionetConfig, name: str, cache: Path, report: _Report, reader) -> list[RecordRows]:
    db, available = _locate(cfg, name, cache)
    records = _select(getattr(cfg, f"{name}_records"), available, name, db.where)
    out = []
    for record in track(records, f"{name} records", unit="records"):
        try:
            beats = reader(db, record, cfg, report)
        except (SourceError, DataError) as exc:
            raise about(exc, f"{name} record {record}") from None
        if beats is not None:
            out.append(beats)
    return out


def collect_beats(cfg: PhysionetConfig, database: str, cache: Path) -> dict[str, np.ndarray]:
    """The beats of every selected record of ``database`` (``mitdb`` or ``ptbdb``), as columns.

    ``X`` (beats), ``label``, ``sample`` (R-peak), ``symbol``, ``record``, ``patient``, ``database``
    and the R-R features (:data:`heartbeat.signal.context.RR_COLUMNS`), one row per beat, in record
    order: what the fetch stage writes, for code that wants the beats without the CSVs.
    """
    reader = {"mitdb": _mitdb_record, "ptbdb": _ptbdb_record}[database]
    return concat(_collect(cfg, database, Path(cache), _Report(), reader))


# ---------------------------------------------------------------- outputs


def _empty_file_error(name: str, report: _Report, n_ptb: int) -> DataError:
    if name == "ptbdb_normal.csv":
        diagnoses = Counter(report.excluded.values()) + Counter(r["diagnosis"] for r in report.ptbdb.values())
        seen = ", ".join(f"{d} ×{n}" for d, n in diagnoses.most_common()) or "none"
        return DataError(
            f"{name}: no healthy-control beats: none of the {n_ptb} selected PTB records has "
            f"'Reason for admission: Healthy control' (diagnoses: {seen}); add healthy-control records "
            "to data.physionet.ptbdb_records (PhysioNet's full ptbdb has 80)"
        )
    return DataError(
        f"{name}: no beats for this file from the selected records; "
        "select more records in data.physionet.mitdb_records / ptbdb_records"
    )


def _report_json(
    cfg: PhysionetConfig, seed: int, mit: dict, ptb: dict, written: dict, report: _Report
) -> dict:
    annotated = Counter()
    for rec in report.mitdb.values():
        annotated.update(rec["annotated"])
    test = written["test_mask"]
    detector = Counter()
    for rec in report.mitdb.values():
        detector.update({k: rec["detector"][k] for k in ("tp", "fp", "fn")})
    overall = detect.DetectorScore(detector["tp"], detector["fp"], detector["fn"])
    excluded = Counter(report.excluded.values())
    return {
        "source": "physionet",
        "mirror": cfg.mirror,
        "peaks": cfg.peaks,
        "beat_scaling": cfg.beat_scaling,
        "seed": seed,
        "rows": {name: {"ours": written["rows"][name], "kaggle": KAGGLE_ROWS[name]} for name in RAW_FILES},
        "mitdb": {
            "classes": {
                name: {
                    "ours": int((mit["label"] == i).sum()),
                    "ours_train": int(((mit["label"] == i) & ~test).sum()),
                    "ours_test": int(((mit["label"] == i) & test).sum()),
                    "annotated": int(annotated[name]),
                    "kaggle": KAGGLE_MITBIH_CLASSES[name],
                }
                for i, name in enumerate(MITBIH_CLASSES)
            },
            "detector_overall": overall.as_dict(),
            "records": report.mitdb,
        },
        "ptbdb": {
            "classes": {
                name: {"ours": int((ptb["label"] == i).sum()), "kaggle": KAGGLE_ROWS[f"ptbdb_{name}.csv"]}
                for i, name in enumerate(PTB_CLASSES)
            },
            "excluded_by_diagnosis": dict(excluded.most_common()),
            "excluded_records": report.excluded,
            "records": report.ptbdb,
        },
        "skipped": report.skipped,
        "shape_stats": written["shape_stats"],
    }


def fetch_physionet(
    cfg: PhysionetConfig,
    seed: int,
    dest: Path,
    cache: Path,
    reference: str = "median",
    amplitude_stretch_s: float = 0.0,
) -> None:
    """Download (or read) the records, cut the beats and write the CSVs, provenance and report into ``dest``.

    ``cache`` keeps the downloads between runs, per mirror (:func:`mirror_cache`).
    Raises :class:`SourceError` or :class:`DataError` naming the record when a
    record cannot be fetched or read, and :class:`DataError` when one of the
    four files would be empty (for example no healthy-control PTB record among
    the selected ones): an empty class file cannot be trained on or validated,
    so we stop instead of writing one.
    """
    dest, cache = Path(dest), Path(cache)
    dest.mkdir(parents=True, exist_ok=True)
    report = _Report()
    options = {"reference": reference, "amplitude_stretch_s": amplitude_stretch_s}
    mit = concat(_collect(cfg, "mitdb", cache, report, functools.partial(_mitdb_record, **options)))
    ptb = concat(_collect(cfg, "ptbdb", cache, report, functools.partial(_ptbdb_record, **options)))
    n_ptb = len(report.ptbdb) + len(report.excluded)
    written = write_beat_files(
        dest, mit, ptb, cfg.test_fraction, seed, lambda name: _empty_file_error(name, report, n_ptb)
    )
    write_json(dest / "report.json", _report_json(cfg, seed, mit, ptb, written, report))
    log.info(
        "physionet: %s MIT-BIH beats from %d records, %s PTB beats from %d records (%d excluded, %d skipped)",
        f"{mit['label'].size:,}",
        len(report.mitdb),
        f"{ptb['label'].size:,}",
        len(report.ptbdb),
        len(report.excluded),
        len(report.skipped),
    )

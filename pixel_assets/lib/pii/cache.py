"""Persistent detection cache (sqlite3 on local disk).

Key: the input record's content_hash + the detector fingerprint. Value: for each text of the
record (messages, rejected_response and source metadata strings), the sha256 of the text and its detections as offsets,
types and scores only — the cache never stores text or detected values. A hit is used only when
every text of the record is found by its own hash (content_hash ignores roles and order, and does
not cover rejected_response or metadata).
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from pathlib import Path

from pixel_assets.lib.pii.detection import Detection

_SCHEMA = """CREATE TABLE IF NOT EXISTS pii_detections (
  content_hash TEXT NOT NULL, fingerprint TEXT NOT NULL, detections TEXT NOT NULL,
  PRIMARY KEY (content_hash, fingerprint))"""


def text_key(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]


class PiiCache:
    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(str(self.path), check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute(_SCHEMA)
        self._db.commit()

    def get_many(self, content_hashes: list[str], fingerprint: str) -> dict[str, dict[str, list[Detection]]]:
        found: dict[str, dict[str, list[Detection]]] = {}
        unique = list(dict.fromkeys(content_hashes))
        for i in range(0, len(unique), 500):
            part = unique[i : i + 500]
            marks = ",".join("?" * len(part))
            rows = self._db.execute(
                f"SELECT content_hash, detections FROM pii_detections WHERE fingerprint=? AND content_hash IN ({marks})",
                [fingerprint, *part],
            )
            for key, blob in rows:
                found[key] = {
                    tk: [Detection(s, e, t, sc) for s, e, t, sc in dets] for tk, dets in json.loads(blob).items()
                }
        return found

    def put_many(self, items: dict[str, dict[str, list[Detection]]], fingerprint: str) -> None:
        rows = [
            (key, fingerprint, json.dumps({tk: [[d.start, d.end, d.entity_type, d.score] for d in dets]
                                           for tk, dets in per_text.items()}))
            for key, per_text in items.items()
        ]
        with self._db:
            self._db.executemany("INSERT OR REPLACE INTO pii_detections VALUES (?,?,?)", rows)

    def __len__(self) -> int:
        return self._db.execute("SELECT COUNT(*) FROM pii_detections").fetchone()[0]

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> "PiiCache":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

"""The eight verification gates of SPEC §6, one implementation for Dagster and `pixel verify`.

Every gate recomputes its verdict from the shards as written (bytes re-read, hashes recomputed,
records re-parsed); the manifest is only the thing being checked, never the source of a count.
Gate figures and offenders carry counts, record ids ("train/train_000.jsonl:12") and content
hashes only, never message text: a field value is shown only when it is one of the values it may
take (a split, a registry family), anything else as a short hash ("value sha256:1a2b3c4d").

Layout: config (names, thresholds), loading (the dataset as written), report (verdicts),
redaction (how offenders are shown), one module per gate, verify (run all, write the report).
The gates' own methods, sharing no code with the producers (lib/dedup, lib/pii): near_duplicates
(exact similarity join), pii_structured (patterns, validators, libphonenumber), pii_names and
pii_gazetteer (NER on whole texts, a census name gazetteer in context).
"""

from pixel_assets.lib.gates.config import (
    COMPILED_EXPORT,
    DEFAULT_PREFIX,
    GATE_NAMES,
    GATE_TITLES,
    MANIFEST_NAME,
    REPORT_NAME,
    GateConfig,
    VerificationError,
)
from pixel_assets.lib.gates.loading import (
    CompiledDataset,
    ManifestShard,
    ShardFile,
    ShardRecord,
    find_dataset_prefix,
    load_compiled_dataset,
)
from pixel_assets.lib.gates.report import GateResult, VerificationReport
from pixel_assets.lib.gates.verify import (
    GATES,
    current_report,
    failed_report,
    report_key,
    run_gates,
    verify_compiled_dataset,
    write_report,
)

__all__ = [
    "COMPILED_EXPORT", "DEFAULT_PREFIX", "GATES", "GATE_NAMES", "GATE_TITLES", "MANIFEST_NAME", "REPORT_NAME",
    "CompiledDataset", "GateConfig", "GateResult", "ManifestShard", "ShardFile", "ShardRecord",
    "VerificationError", "VerificationReport", "current_report", "failed_report", "find_dataset_prefix",
    "load_compiled_dataset", "report_key", "run_gates", "verify_compiled_dataset", "write_report",
]

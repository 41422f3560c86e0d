"""A gate's verdict (GateResult) and the verification report of all gates."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from pixel_assets.lib.gates.config import GATE_TITLES


@dataclass
class GateResult:
    """One gate's verdict. `figures`: what it measured in the shards (name -> number/str);
    `settings`: what it judged them against (GateConfig values, registry policy), kept apart so the
    UI shows them as text, not as a time series; `table`: optional per-family rows."""

    name: str
    passed: bool
    message: str
    figures: dict[str, Any] = field(default_factory=dict)
    settings: dict[str, Any] = field(default_factory=dict)
    # Per problem kind: its first max_offenders ids/hashes and how many there are. Capped per kind,
    # so a flood of one kind (say 90 exact-hash overlaps) cannot hide the others.
    offenders_by_kind: dict[str, list[str]] = field(default_factory=dict)
    offender_counts: dict[str, int] = field(default_factory=dict)
    table: list[dict[str, Any]] = field(default_factory=list)

    @property
    def title(self) -> str:
        return GATE_TITLES[self.name]

    @property
    def offenders(self) -> list[str]:
        """Every listed offender, kind after kind."""
        return [o for items in self.offenders_by_kind.values() for o in items]

    @property
    def offender_count(self) -> int:
        """All offenders, listed or not."""
        return sum(self.offender_counts.values())

    def to_dict(self) -> dict[str, Any]:
        # The flat list and the total too, for readers that do not care about kinds.
        return {"title": self.title, **asdict(self), "offenders": self.offenders, "offender_count": self.offender_count}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> GateResult:
        # Every field required: a report of an older layout raises KeyError (current_report then
        # verifies again instead of showing a report without its offenders).
        return cls(**{f.name: data[f.name] for f in fields(cls)})

    def markdown(self) -> str:
        """A short table a reviewer reads in the Dagster UI (no raw text, ids and hashes only)."""
        lines = [f"**{self.title}**: {'PASSED' if self.passed else 'FAILED'}: {self.message}", "",
                 "| figure | value |", "|---|---|"]
        lines += [f"| {k} | {_md(v)} |" for k, v in self.figures.items()]
        if self.settings:
            lines += ["", "| setting | value |", "|---|---|"]
            lines += [f"| {k} | {_md(str(v))} |" for k, v in self.settings.items()]  # as configured, not rounded
        if self.table:
            cols = list(self.table[0])
            lines += ["", "| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
            lines += ["| " + " | ".join(_md(row.get(c)) for c in cols) + " |" for row in self.table]
        if self.offender_counts:
            kinds = len(self.offender_counts)
            lines += ["", f"Offenders: {self.offender_count} in {kinds} kind{'s' if kinds > 1 else ''}"]
            for kind, n in self.offender_counts.items():  # a heading per kind: none hides another
                shown = self.offenders_by_kind.get(kind, [])
                lines += ["", f"**{_md(kind)}** ({n}{f', first {len(shown)}' if len(shown) < n else ''}):", ""]
                lines += [f"- `{o}`" for o in shown]
        return "\n".join(lines)


def _md(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4f}"
    return str(value).replace("|", "\\|")


@dataclass
class VerificationReport:
    manifest_key: str
    manifest_uri: str
    manifest_sha256: str
    manifest_generated_at: str | None
    verified_at: str
    gates: list[GateResult]
    config: dict[str, Any] = field(default_factory=dict)  # the GateConfig the verdicts were made with
    dataset_fingerprint: str = ""  # the published bytes verified (compiled.dataset_fingerprint)

    @property
    def passed(self) -> bool:
        return all(g.passed for g in self.gates)

    @property
    def failed_gates(self) -> list[str]:
        return [g.name for g in self.gates if not g.passed]

    def gate(self, name: str) -> GateResult:
        return next(g for g in self.gates if g.name == name)

    def to_dict(self) -> dict[str, Any]:
        return {
            "passed": self.passed,
            "failed_gates": self.failed_gates,
            "manifest": {"key": self.manifest_key, "uri": self.manifest_uri,
                         "sha256": self.manifest_sha256, "generated_at": self.manifest_generated_at},
            "verified_at": self.verified_at,
            "config": self.config,
            "dataset_fingerprint": self.dataset_fingerprint,
            "gates": {g.name: g.to_dict() for g in self.gates},
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> VerificationReport:
        manifest = data["manifest"]
        gates = [GateResult.from_dict(g) for g in data["gates"].values()]
        return cls(manifest_key=manifest["key"], manifest_uri=manifest["uri"], manifest_sha256=manifest["sha256"],
                   manifest_generated_at=manifest["generated_at"], verified_at=data["verified_at"],
                   gates=gates, config=data.get("config") or {},
                   dataset_fingerprint=data.get("dataset_fingerprint") or "")

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=1, default=str)

    def markdown(self) -> str:
        rows = [f"| {g.name} | {'PASSED' if g.passed else 'FAILED'} | {_md(g.message)} |" for g in self.gates]
        return "\n".join([
            f"Manifest `{self.manifest_key}` {self.manifest_sha256} (generated_at {self.manifest_generated_at})",
            "", "| gate | verdict | summary |", "|---|---|---|", *rows,
        ])

    def text(self) -> str:
        lines = [f"manifest {self.manifest_uri}", f"  sha256 {self.manifest_sha256}",
                 f"  generated_at {self.manifest_generated_at}", ""]
        for g in self.gates:
            lines.append(f"[{'PASS' if g.passed else 'FAIL'}] {g.title}")
            lines.append(f"       {g.message}")
            for kind, n in g.offender_counts.items():  # up to five of each kind
                listed = g.offenders_by_kind.get(kind, [])
                lines.append(f"       {kind} ({n}):")
                lines += [f"         - {o}" for o in listed[:5]]
                if n > 5:  # --json lists up to max_offenders of each kind
                    lines.append(f"         ... {n - 5} more" + (" (see --json)" if len(listed) > 5 else ""))
        lines += ["", f"{len(self.gates) - len(self.failed_gates)}/{len(self.gates)} gates passed"
                  + (f"; FAILED: {', '.join(self.failed_gates)}" if self.failed_gates else "")]
        return "\n".join(lines)


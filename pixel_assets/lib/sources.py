"""Source formats, their options with defaults, and one declared source (`Source`).

Its own module because both the registry (which validates sources on load) and the ingest
extractors (which read the options) need it; neither imports the other for it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

# Options every turn-list format accepts besides where its turns are (docs/ingest.md, "Dialog options").
DIALOG_OPTIONS: dict[str, Any] = {
    "role_key": ["role", "from", "speaker", "author"],  # first key with a non-null value wins
    "content_key": ["content", "text", "value", "message", "utterance"],  # first string wins
    "role_map": {},  # source role name -> user | assistant | system, before the built-in aliases
    "consecutive_turns": "keep",  # keep | merge | quarantine
    "system_fields": [],  # record keys carried as one system turn ("situation: ...")
    "metadata_fields": [],  # record keys copied into the record metadata (scalars)
}

# Every source format the loaders read, with the options each accepts and their defaults.
# Adding a CSV/JSON/Parquet source with other column or key names is an edit of `options` only.
FORMAT_OPTIONS: dict[str, dict[str, Any]] = {
    "chatml": {"messages_key": "messages", **DIALOG_OPTIONS},
    "client_therapist": {"conversation_key": "conversation", **DIALOG_OPTIONS},
    "sharegpt": {"conversations_key": "conversations", **DIALOG_OPTIONS},
    "context_response": {"user_key": "Context", "assistant_key": "Response"},
    "cot_qa": {"question_key": "question", "answer_key": "answer", "reasoning_key": "metadata.reasoning"},
    "instruction": {"instruction_key": "instruction", "input_key": "input", "output_keys": ["output", "response"]},
    "qa_csv": {"question_columns": ["questionTitle", "questionText"], "answer_column": "answerText", "html": True},
    "marker_text_csv": {"text_column": "text", "user_markers": ["human:"], "assistant_markers": ["gpt:"]},
    "edge_case_prompt_response": {"prompt_key": "prompt", "response_key": "response", "prompt_role": "assistant"},
    "preference_pairs": {"prompt_key": "prompt", "chosen_key": "chosen", "rejected_key": "rejected"},
    "transcripts": {},
    # A dataset saved with datasets.save_to_disk, or hf://owner/name in the local HF hub cache;
    # each row has the shape of `row_format`, whose options are accepted beside these.
    "hf_dataset": {"row_format": "chatml", "split": "train"},
}
ROW_FORMATS_OF_HF_DATASET = tuple(f for f in FORMAT_OPTIONS if f not in ("hf_dataset", "transcripts"))


@dataclass(frozen=True)
class Source:
    path: str
    format: str
    options: dict[str, Any] = field(default_factory=dict)

    @property
    def row_format(self) -> str:
        """The shape of one record: the format itself, or an hf_dataset's `row_format`."""
        if self.format == "hf_dataset":
            return self.options.get("row_format", FORMAT_OPTIONS["hf_dataset"]["row_format"])
        return self.format

    def accepted_options(self) -> dict[str, Any]:
        """Every option this source accepts, with its default."""
        return accepted_options(self.format, self.row_format)

    def option(self, key: str) -> Any:
        return self.options.get(key, self.accepted_options()[key])


def accepted_options(fmt: str, row_format: str | None = None) -> dict[str, Any]:
    if fmt == "hf_dataset":
        return {**FORMAT_OPTIONS.get(row_format or "", {}), **FORMAT_OPTIONS["hf_dataset"]}
    return FORMAT_OPTIONS[fmt]

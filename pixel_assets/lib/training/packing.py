"""Length-aware conversations: token counts with the real tokenizer + chat template, splitting an
over-length conversation at turn boundaries, and best-fit-decreasing packing of whole sessions.

Why the pipeline measures lengths itself: every TRL packing strategy and its unpacked path cut a
sequence longer than `max_length` silently (STACK_NOTES, Training). So a stage's data never holds
a conversation longer than its context: over-length ones are counted and dropped or split here,
before any trainer sees them, and `pack_sessions` refuses (rather than truncates) anything longer.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

Message = dict[str, Any]


def template_ids(tokenizer, conversations: Sequence[Sequence[Message]]) -> list[list[int]]:
    """Token ids of each conversation exactly as the trainer tokenizes it: the chat template rendered,
    then tokenized without extra special tokens (what `apply_chat_template(tokenize=True)` does)."""
    if not conversations:
        return []
    texts = tokenizer.apply_chat_template([list(c) for c in conversations], tokenize=False)
    return tokenizer(texts, add_special_tokens=False)["input_ids"]


def template_length(tokenizer, messages: Sequence[Message]) -> int:
    return len(template_ids(tokenizer, [messages])[0])


def text_ids(tokenizer, texts: Sequence[str]) -> list[list[int]]:
    """Token ids of plain texts (phase A), no special tokens."""
    return tokenizer(list(texts), add_special_tokens=False)["input_ids"] if texts else []


# --- splitting an over-length conversation at turn boundaries ---------------------------------


def _exchanges(turns: list[Message]) -> list[list[Message]]:
    """Turns grouped so a window starts at a user turn: each group is a user turn and the replies
    up to the next user turn (leading non-user turns form their own group)."""
    groups: list[list[Message]] = []
    for turn in turns:
        if turn.get("role") == "user" or not groups:
            groups.append([turn])
        else:
            groups[-1].append(turn)
    return groups


def split_conversation(messages: Sequence[Message], tokenizer, max_length: int) -> tuple[list[list[Message]], int]:
    """Windows of at most `max_length` template tokens, cut only between turns; each keeps the
    conversation's leading system prompt(s). Windows start at a user turn where possible (a whole
    exchange), else at any turn boundary. Returns (windows, turns_left_out): a turn that does not fit
    beside the system prompt even alone is left out and counted; a window without both a user and an
    assistant turn (nothing to learn, or an answer without its question) is left out too (its turns
    counted). A conversation whose single exchange does not fit thus yields no window: it is dropped
    and counted like any over-length conversation."""
    system = [m for m in _leading_system(messages)]
    turns = list(messages[len(system):])

    def fits(window_turns: list[Message]) -> bool:
        return template_length(tokenizer, system + window_turns) <= max_length

    units: list[list[Message]] = []
    for group in _exchanges(turns):
        if fits(group):
            units.append(group)
        else:  # an exchange too long for one window: fall back to single turns
            units.extend([t] for t in group)
    windows: list[list[Message]] = []
    current: list[Message] = []
    left_out = 0
    for unit in units:
        if current and fits(current + unit):
            current = current + unit
            continue
        if current:
            windows.append(current)
        if fits(unit):
            current = list(unit)
        else:
            left_out += len(unit)
            current = []
    if current:
        windows.append(current)
    kept = []
    for w in windows:
        roles = {t.get("role") for t in w}
        if {"user", "assistant"} <= roles:
            kept.append(system + w)
        else:
            left_out += len(w)
    return kept, left_out


def _leading_system(messages: Sequence[Message]) -> list[Message]:
    out = []
    for m in messages:
        if m.get("role") != "system":
            break
        out.append(m)
    return out


# --- best-fit-decreasing packing of whole sessions ----------------------------------------------


class PackingError(ValueError):
    """A session longer than the packing length: it would be truncated, so it is refused."""


def packed_dataset(token_lists: Sequence[Sequence[int]], max_length: int):
    """TRL's best-fit-decreasing packing (`trl.data_utils.pack_dataset`, strategy "bfd") of whole
    sessions into sequences of at most `max_length` tokens, as a `datasets.Dataset` with
    `input_ids`, `session` (the index of the session each token belongs to), `seq_lengths` and
    `position_ids` restarting at 0 for every session (padding-free: attention stays inside a session).

    TRL's "bfd" cuts a sequence longer than `max_length`; this refuses one instead (PackingError),
    and checks afterwards that every token of every session came through."""
    from datasets import Dataset
    from datasets.utils import are_progress_bars_disabled, disable_progress_bars, enable_progress_bars
    from trl.data_utils import pack_dataset

    too_long = [i for i, ids in enumerate(token_lists) if len(ids) > max_length]
    if too_long:
        raise PackingError(f"{len(too_long)} sessions are longer than the packing length {max_length} "
                           f"(first: index {too_long[0]}, {len(token_lists[too_long[0]])} tokens); they must be "
                           "dropped or split before packing, never truncated")
    empty = [i for i, ids in enumerate(token_lists) if not ids]
    if empty:
        raise PackingError(f"session {empty[0]} has no tokens")
    quiet = are_progress_bars_disabled()
    disable_progress_bars()
    try:
        return _pack(Dataset, pack_dataset, token_lists, max_length)
    finally:
        if not quiet:
            enable_progress_bars()


def _pack(Dataset, pack_dataset, token_lists: Sequence[Sequence[int]], max_length: int):
    ds = Dataset.from_dict({
        "input_ids": [list(ids) for ids in token_lists],
        "session": [[i] * len(ids) for i, ids in enumerate(token_lists)],
    })
    # One batch: BFD over all sessions at once (the default map batch of 1000 would pack per batch).
    packed = pack_dataset(ds, max_length, strategy="bfd", map_kwargs={"batch_size": max(1, len(token_lists))})

    def positions(row: dict[str, Any]) -> dict[str, Any]:
        return {"position_ids": [p for n in row["seq_lengths"] for p in range(n)]}

    packed = packed.map(positions)
    total_in = sum(len(ids) for ids in token_lists)
    total_out = sum(len(row) for row in packed["input_ids"])
    if total_out != total_in:  # pragma: no cover - guarded above; kept as the never-truncate invariant
        raise PackingError(f"packing changed the token count ({total_in} -> {total_out})")
    return packed


def pack_sessions(token_lists: Sequence[Sequence[int]], max_length: int) -> list[list[int]]:
    """The bins of a best-fit-decreasing packing: per packed sequence, the session indices it holds
    in order. Refuses (PackingError) any session longer than `max_length` instead of truncating it."""
    if not token_lists:
        return []
    bins = []
    for row in packed_dataset(token_lists, max_length)["session"]:
        order: list[int] = []
        for s in row:
            if not order or order[-1] != s:
                order.append(s)
        bins.append(order)
    return bins


def packing_stats(token_lists: Sequence[Sequence[int]], max_length: int, bins: list[list[int]]) -> dict[str, Any]:
    tokens = sum(len(t) for t in token_lists)
    return {
        "sequences": len(bins),
        "sessions": sum(len(b) for b in bins),
        "tokens": tokens,
        "max_length": max_length,
        "fill": round(tokens / (len(bins) * max_length), 4) if bins else 0.0,
    }

"""`pixel pii-eval`, `pixel pii-labeled-set`, `pixel pii-detect` and `pixel bench pii`."""

from __future__ import annotations

import argparse
import json
import sys

from pixel_assets.cli._common import CliError, add_repeats, check_family, non_negative_int, positive_int

# presidio-research span fields and their JSON types.
SPAN_FIELDS = {"entity_type": str, "entity_value": str, "start_position": int, "end_position": int}
LABELED_FORMAT = ("a JSON list of {full_text, spans} objects, each span with entity_type, entity_value, "
                  "start_position, end_position")


def _err(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def register(commands, bench) -> None:
    ev = commands.add_parser("pii-eval", help="precision/recall/F2 of the PII detector on a labeled set")
    src = ev.add_mutually_exclusive_group()
    src.add_argument("--labeled", metavar="FILE", help="presidio-research JSON list of {full_text, spans}")
    src.add_argument("--generate", type=positive_int, metavar="N", help="generate N labeled samples (default 2000)")
    src.add_argument("--real", action="store_true",
                     help="the shipped labeled sample of real therapist writing (330 counsel-chat answers), "
                          "next to naive presidio: precision/recall per type, placeholders per 1,000 words")
    ev.add_argument("--split", choices=("eval", "tune"), default="eval", help="template split for --generate")
    ev.add_argument("--informal", action="store_true",
                    help="with --generate: half chat-style templates, names lowercased at --lowercase rate")
    ev.add_argument("--lowercase", type=_fraction, default=1 / 3, metavar="F",
                    help="with --informal: share of person names written in lowercase (default 1/3)")
    ev.add_argument("--seed", type=int, default=13)
    ev.add_argument("--clean", type=non_negative_int, default=300, metavar="N",
                    help="PII-free conversations for the over-redaction figure (0 = skip)")
    ev.add_argument("--family", default=None, help="apply this family's allow-list (a registry family name; "
                    "with --real, default: the family the counsel-chat source feeds)")
    ev.add_argument("--config", default=None, help="PII config file (default: packaged config/pii.yaml)")
    ev.add_argument("--json", action="store_true", help="print one JSON object")
    ev.set_defaults(handler=_eval)

    gen = commands.add_parser("pii-labeled-set", help="write a generated labeled PII set (presidio-research format)")
    gen.add_argument("--n", type=positive_int, default=2000)
    gen.add_argument("--split", choices=("eval", "tune"), default="eval")
    gen.add_argument("--informal", action="store_true",
                     help="informal variants: chat-style templates, lowercase names, accents, lowercase titles")
    gen.add_argument("--lowercase", type=_fraction, default=1 / 3, metavar="F",
                     help="with --informal: share of person names written in lowercase (default 1/3)")
    gen.add_argument("--seed", type=int, default=13)
    gen.add_argument("--out", required=True, help="output JSON file")
    gen.set_defaults(handler=_labeled_set)

    det = commands.add_parser("pii-detect", help="JSON lines with a `text` field on stdin -> detected spans")
    det.add_argument("--family", default=None, help="apply this family's allow-list (a registry family name)")
    det.add_argument("--config", default=None, help="PII config file (default: packaged config/pii.yaml)")
    det.set_defaults(handler=_detect)

    bp = bench.add_parser("pii", help="naive presidio baseline vs the project scrubber (+ cache re-compilation)")
    bp.add_argument("--conversations", type=positive_int, default=200)
    bp.add_argument("--recompile-conversations", type=positive_int, default=1000)
    bp.add_argument("--mode", choices=("all", "speed", "recompile"), default="all")
    add_repeats(bp)
    bp.add_argument("--corpus", choices=("synthetic", "informal", "counsel_chat"), default="synthetic",
                    help="synthetic therapy conversations (seeded), the same with chat-style informal PII "
                         "(lowercase names), or the packaged real counsel-chat sample")
    bp.add_argument("--seed", type=int, default=11)
    bp.add_argument("--json", action="store_true")
    bp.set_defaults(handler=_bench)


def _fraction(value: str) -> float:
    try:
        f = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {value!r}") from None
    if not 0 <= f <= 1:
        raise argparse.ArgumentTypeError(f"must be within 0..1, got {value}")
    return f


def _generated(n: int, args) -> list[dict]:
    from pixel_assets.lib.pii.informal import informal_set
    from pixel_assets.lib.pii.labeled import labeled_set

    if args.informal:
        return informal_set(n, seed=args.seed, split=args.split, lowercase=args.lowercase)
    return labeled_set(n, seed=args.seed, split=args.split)


def _json_type(value) -> str:
    return {dict: "object", list: "list", str: "string", bool: "boolean", type(None): "null"}.get(
        type(value), "number")


def labeled_problem(samples) -> str | None:
    """Why `samples` is not a usable labeled set (index of the first bad item), or None."""
    if not isinstance(samples, list):
        return f"top level is a JSON {_json_type(samples)}, not a list"
    if not samples:
        return "the list is empty"
    for i, sample in enumerate(samples):
        if not isinstance(sample, dict):
            return f"item {i} is a JSON {_json_type(sample)}, not an object"
        text = sample.get("full_text")
        if not isinstance(text, str):
            return f"item {i}: full_text is {'missing' if text is None else 'not a string'}"
        spans = sample.get("spans")
        if not isinstance(spans, list):
            return f"item {i}: spans is {'missing' if spans is None else 'not a list'}"
        for j, span in enumerate(spans):
            if not isinstance(span, dict):
                return f"item {i}, span {j} is a JSON {_json_type(span)}, not an object"
            for key, kind in SPAN_FIELDS.items():
                if key not in span:
                    return f"item {i}, span {j}: lacks {key}"
                if not isinstance(span[key], kind) or isinstance(span[key], bool):
                    return f"item {i}, span {j}: {key} is not {'a string' if kind is str else 'an integer'}"
            if not 0 <= span["start_position"] <= span["end_position"] <= len(text):
                return f"item {i}, span {j}: positions are not within full_text"
    return None


def _read_labeled(path: str) -> list[dict]:
    try:
        with open(path, encoding="utf-8") as fh:
            samples = json.load(fh)
    except json.JSONDecodeError as exc:  # position only: the message must not quote the file
        raise CliError(f"--labeled {path}: not valid JSON (line {exc.lineno}, column {exc.colno})") from None
    except UnicodeDecodeError as exc:
        raise CliError(f"--labeled {path}: not UTF-8 text (byte {exc.start})") from None
    problem = labeled_problem(samples)
    if problem:
        raise CliError(f"--labeled {path}: {problem}; expected {LABELED_FORMAT}")
    return samples


def _eval(args) -> int:
    from pixel_assets.lib.pii.config import load_config
    from pixel_assets.lib.pii.evaluate import evaluate_detector
    from pixel_assets.lib.pii.labeled import clean_conversations
    from pixel_assets.lib.pii.scrubber import PiiScrubber

    check_family(args.family)
    if args.informal and (args.labeled or args.real):
        raise CliError("--informal generates samples: it cannot be combined with --labeled or --real")
    config = load_config(args.config)
    if args.real:
        return _eval_real(PiiScrubber(config), args)
    if args.labeled:
        samples = _read_labeled(args.labeled)
        source = {"labeled": args.labeled}
    else:
        n = 2000 if args.generate is None else args.generate
        samples = _generated(n, args)
        source = {"generated": n, "split": args.split, "seed": args.seed, "informal": args.informal,
                  **({"lowercase": round(args.lowercase, 4)} if args.informal else {})}
    scrubber = PiiScrubber(config)
    _err(f"pii-eval: detecting on {len(samples)} samples")
    clean = clean_conversations(args.clean) if args.clean else None
    if clean and args.informal:  # chat style: the same share of PII-free messages written in lowercase
        import random

        rng = random.Random(args.seed)
        clean = [[{**m, "content": m["content"].lower() if rng.random() < args.lowercase else m["content"]}
                  for m in conv] for conv in clean]
    result = {"source": source, **evaluate_detector(scrubber, samples, clean=clean, family=args.family)}
    if args.json:
        print(json.dumps(result))
        return 0
    print(f"{'type':<16}{'precision':>10}{'recall':>8}{'F2':>8}{'support':>9}")
    rows = list(result["per_type"].items()) + [("OVERALL", result["overall"])]
    for t, f in rows:
        fmt = lambda v: "   -" if v is None else f"{v:.3f}"  # noqa: E731
        print(f"{t:<16}{fmt(f['precision']):>10}{fmt(f['recall']):>8}{fmt(f['f2']):>8}{f['support']:>9}")
    if "over_redaction" in result:
        o = result["over_redaction"]
        print(f"over-redaction: {o['false_detections']} false detections on {o['conversations']} PII-free "
              f"conversations = {o['per_conversation']} per conversation {o['by_type']}")
    return 0


def _eval_real(scrubber, args) -> int:
    from pixel_assets.lib.pii.real import REAL_TYPES, evaluate_real, load_real_labels, real_family
    from pixel_assets.lib.registry import load_registry

    samples = load_real_labels()
    family = args.family or real_family(load_registry())  # the pipeline's settings for these answers
    _err(f"pii-eval --real: detecting on {len(samples)} labeled counsel-chat answers with family {family!r}'s "
         "settings (project, then naive presidio)")
    result = {"family": family, **evaluate_real(scrubber, samples, family=family)}
    if args.json:
        print(json.dumps(result))
        return 0
    fmt = lambda v: "   -" if v is None else f"{v:.3f}"  # noqa: E731
    print(f"{result['answers']} answers, {result['words']} words, {result['truth']['spans']} labeled spans")
    print(f"{'type':<14}{'support':>8} | {'project P':>10}{'R':>7} | {'naive P':>8}{'R':>7}")
    for t in REAL_TYPES:
        p, n = result["project"]["per_type"][t], result["naive_presidio"]["per_type"][t]
        print(f"{t:<14}{p['support']:>8} | {fmt(p['precision']):>10}{fmt(p['recall']):>7} | "
              f"{fmt(n['precision']):>8}{fmt(n['recall']):>7}")
    print(f"placeholders per 1,000 words: labeled truth {result['truth']['placeholders_per_1000_words']}, "
          f"project {result['project']['placeholders_per_1000_words']}, "
          f"naive presidio {result['naive_presidio']['placeholders_per_1000_words']}")
    print("targets: " + ("all met" if not result["misses"] else "; ".join(result["misses"])))
    return 0


def _labeled_set(args) -> int:
    samples = _generated(args.n, args)
    with open(args.out, "w", encoding="utf-8") as fh:
        json.dump(samples, fh, ensure_ascii=False)
    kind = f"informal, lowercase {args.lowercase:.2f}, " if args.informal else ""
    _err(f"pii-labeled-set: wrote {len(samples)} samples ({kind}{args.split} templates) to {args.out}")
    return 0


def _detect(args) -> int:
    from pixel_assets.lib.pii.config import load_config
    from pixel_assets.lib.pii.scrubber import PiiScrubber

    check_family(args.family)  # before reading stdin: bad options fail at once
    config = load_config(args.config)
    texts, bad = [], 0
    for lineno, line in enumerate(sys.stdin, 1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
            text = obj["text"]
            if not isinstance(text, str):
                raise TypeError
        except (ValueError, KeyError, TypeError):
            _err(f"pixel pii-detect: error: line {lineno}: not a JSON object with a string `text` field")
            bad += 1
            continue
        texts.append(text)
    if bad:
        return 2
    for dets in PiiScrubber(config).detect(texts, args.family):
        sys.stdout.write(json.dumps({"spans": [d.as_dict() for d in dets]}) + "\n")
    return 0


def _bench(args) -> int:
    from pixel_assets.lib.pii.bench import bench_pii

    from pixel_assets.lib.benchmarking import repeat_ratio

    def once() -> dict:
        return bench_pii(args.conversations, recompile_conversations=args.recompile_conversations,
                         seed=args.seed, mode=args.mode, corpus=args.corpus, log=_err)

    # The ratio repeated: the speed-up, or in recompile mode the warm share of the cold time.
    key = "speedup" if args.mode != "recompile" else None
    result, spread = repeat_ratio(
        once, (lambda r: r[key]) if key else (lambda r: r["recompile"]["recompile_fraction_of_cold"]), args.repeats,
        log=lambda m: _err(f"bench pii: {m}"))
    result["ratio_spread"] = {"of": key or "recompile_fraction_of_cold", **spread.as_dict()}
    if args.json:
        print(json.dumps(result))
        return 0
    if "speedup" in result:
        n, p = result["naive"], result["project"]
        c = result["corpus"]
        print(f"corpus {c['name']}: {c['conversations']} conversations, {c['messages']} messages, "
              f"{c['sentences_run_through_ner']}/{c['sentences']} sentences needed NER")
        for label, f in (("naive presidio ", n), ("project scrubber", p)):
            print(f"{label}: {f['conversations_per_s']:8.2f} conversations/s  (recall templated "
                  f"{f['labeled_recall']}, informal {f['informal_recall']}; PERSON recall templated "
                  f"{f['labeled_person_recall']}, informal {f['informal_person_recall']})")
        print(f"speed-up: {spread.text()}  ({result['n_process']} processes, {result['cpu_count']} cpus; "
              "figures above from the median run)")
    if "recompile" in result:
        r = result["recompile"]
        print(f"re-compilation: cold {r['cold_seconds']}s for {r['conversations']} conversations; "
              f"+{r['new_conversations']} new -> {r['recompile_seconds']}s = "
              f"{r['recompile_fraction_of_cold']:.1%} of cold (hits {r['cache_hits']}, misses {r['cache_misses']})")
    return 0

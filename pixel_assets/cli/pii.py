"""`pixel pii-eval`, `pixel pii-labeled-set`, `pixel pii-detect` and `pixel bench pii`."""

from __future__ import annotations

import json
import sys


def _err(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def register(commands, bench) -> None:
    ev = commands.add_parser("pii-eval", help="precision/recall/F2 of the PII detector on a labeled set")
    src = ev.add_mutually_exclusive_group()
    src.add_argument("--labeled", metavar="FILE", help="presidio-research JSON list of {full_text, spans}")
    src.add_argument("--generate", type=int, metavar="N", help="generate N labeled samples (default 2000)")
    ev.add_argument("--split", choices=("eval", "tune"), default="eval", help="template split for --generate")
    ev.add_argument("--seed", type=int, default=13)
    ev.add_argument("--clean", type=int, default=300, metavar="N",
                    help="PII-free conversations for the over-redaction figure (0 = skip)")
    ev.add_argument("--family", default=None, help="apply this family's allow-list")
    ev.add_argument("--config", default=None, help="PII config file (default: packaged config/pii.yaml)")
    ev.add_argument("--json", action="store_true", help="print one JSON object")
    ev.set_defaults(handler=_eval)

    gen = commands.add_parser("pii-labeled-set", help="write a generated labeled PII set (presidio-research format)")
    gen.add_argument("--n", type=int, default=2000)
    gen.add_argument("--split", choices=("eval", "tune"), default="eval")
    gen.add_argument("--seed", type=int, default=13)
    gen.add_argument("--out", required=True, help="output JSON file")
    gen.set_defaults(handler=_labeled_set)

    det = commands.add_parser("pii-detect", help="JSON lines with a `text` field on stdin -> detected spans")
    det.add_argument("--family", default=None, help="apply this family's allow-list")
    det.add_argument("--config", default=None)
    det.set_defaults(handler=_detect)

    bp = bench.add_parser("pii", help="naive presidio baseline vs the project scrubber (+ cache re-compilation)")
    bp.add_argument("--conversations", type=int, default=200)
    bp.add_argument("--recompile-conversations", type=int, default=1000)
    bp.add_argument("--mode", choices=("all", "speed", "recompile"), default="all")
    bp.add_argument("--corpus", choices=("synthetic", "counsel_chat"), default="synthetic",
                    help="synthetic therapy conversations (seeded) or the packaged real counsel-chat sample")
    bp.add_argument("--seed", type=int, default=11)
    bp.add_argument("--json", action="store_true")
    bp.set_defaults(handler=_bench)


def _eval(args) -> int:
    from pixel_assets.lib.pii.evaluate import evaluate_detector
    from pixel_assets.lib.pii.labeled import clean_conversations, labeled_set
    from pixel_assets.lib.pii.scrubber import PiiScrubber

    if args.labeled:
        with open(args.labeled, encoding="utf-8") as fh:
            samples = json.load(fh)
        if not isinstance(samples, list) or not all(isinstance(s, dict) and "full_text" in s for s in samples):
            _err("pii-eval: --labeled must be a JSON list of objects with full_text and spans")
            return 2
        source = {"labeled": args.labeled}
    else:
        n = args.generate or 2000
        samples = labeled_set(n, seed=args.seed, split=args.split)
        source = {"generated": n, "split": args.split, "seed": args.seed}
    scrubber = PiiScrubber(args.config)
    _err(f"pii-eval: detecting on {len(samples)} samples")
    clean = clean_conversations(args.clean) if args.clean else None
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


def _labeled_set(args) -> int:
    from pixel_assets.lib.pii.labeled import labeled_set

    samples = labeled_set(args.n, seed=args.seed, split=args.split)
    with open(args.out, "w", encoding="utf-8") as fh:
        json.dump(samples, fh, ensure_ascii=False)
    _err(f"pii-labeled-set: wrote {len(samples)} samples ({args.split} templates) to {args.out}")
    return 0


def _detect(args) -> int:
    from pixel_assets.lib.pii.scrubber import PiiScrubber

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
            _err(f"pii-detect: line {lineno}: not a JSON object with a string `text` field")
            bad += 1
            continue
        texts.append(text)
    if bad:
        return 2
    for dets in PiiScrubber(args.config).detect(texts, args.family):
        sys.stdout.write(json.dumps({"spans": [d.as_dict() for d in dets]}) + "\n")
    return 0


def _bench(args) -> int:
    from pixel_assets.lib.pii.bench import bench_pii

    result = bench_pii(args.conversations, recompile_conversations=args.recompile_conversations,
                       seed=args.seed, mode=args.mode, corpus=args.corpus, log=_err)
    if args.json:
        print(json.dumps(result))
        return 0
    if "speedup" in result:
        n, p = result["naive"], result["project"]
        c = result["corpus"]
        print(f"corpus {c['name']}: {c['conversations']} conversations, {c['messages']} messages, "
              f"{c['sentences_run_through_ner']}/{c['sentences']} sentences needed NER")
        print(f"naive presidio : {n['conversations_per_s']:8.2f} conversations/s  (labeled recall {n['labeled_recall']})")
        print(f"project scrubber: {p['conversations_per_s']:8.2f} conversations/s  (labeled recall {p['labeled_recall']})")
        print(f"speed-up: {result['speedup']}x  ({result['n_process']} processes, {result['cpu_count']} cpus)")
    if "recompile" in result:
        r = result["recompile"]
        print(f"re-compilation: cold {r['cold_seconds']}s for {r['conversations']} conversations; "
              f"+{r['new_conversations']} new -> {r['recompile_seconds']}s = "
              f"{r['recompile_fraction_of_cold']:.1%} of cold (hits {r['cache_hits']}, misses {r['cache_misses']})")
    return 0

"""`pixel bench train`: project SFT settings (packing, padding-free, assistant-only loss) vs TRL defaults.
`pixel bench sample`: batched rejected-response sampling vs one prompt at a time."""

from __future__ import annotations

import json
import sys

from pixel_assets.cli._common import add_repeats, positive_float, positive_int


def register(commands, bench) -> None:
    bt = bench.add_parser("train", help="SFT tokens/s: packed, padding-free, assistant-only vs TRL's padded defaults")
    bt.add_argument("--records", type=positive_int, default=None,
                    help="conversations, one epoch per path (default 256; 4096 with --model-size 1b)")
    bt.add_argument("--batch-size", type=positive_int, default=8)
    bt.add_argument("--max-length", type=positive_int, default=2048, help="packed sequence length")
    bt.add_argument("--model-size", choices=("tiny", "small", "1b"), default="tiny",
                    help="tiny (0.1M, attention-bound), small (~13M, CPU-friendly) or a randomly initialised "
                         "~1B Mistral (needs a CUDA GPU; adds MFU)")
    bt.add_argument("--cpu", action="store_true", help="stay on the CPU even when a GPU is present")
    bt.add_argument("--peak-tflops", type=positive_float, default=None,
                    help="the GPU's dense bf16 peak for MFU (default: known from the GPU name)")
    bt.add_argument("--max-turns", type=positive_int, default=12, help="longest conversation, in exchanges")
    bt.add_argument("--seed", type=int, default=0)
    add_repeats(bt)
    bt.add_argument("--json", action="store_true", help="print one JSON object")
    bt.set_defaults(handler=_bench)
    bs = bench.add_parser("sample", help="rejected-response sampling: length-sorted batches vs one prompt at a time")
    bs.add_argument("--prompts", type=positive_int, default=64)
    bs.add_argument("--batch-size", type=positive_int, default=16)
    bs.add_argument("--max-new-tokens", type=positive_int, default=64)
    bs.add_argument("--seed", type=int, default=0)
    bs.add_argument("--json", action="store_true", help="print one JSON object")
    bs.set_defaults(handler=_bench_sample)


def _bench_sample(args) -> int:
    import contextlib

    with contextlib.redirect_stdout(sys.stderr):
        from pixel_assets.lib.training.bench_sampling import bench_sample

        result = bench_sample(prompts=args.prompts, batch_size=args.batch_size, max_new_tokens=args.max_new_tokens,
                              seed=args.seed)
    if args.json:
        print(json.dumps(result))
        return 0
    print(f"pixel bench sample: {result['prompts']} prompts, greedy, {result['max_new_tokens']} new tokens, tiny model, "
          f"{result['threads']} threads")
    print(f"  one prompt at a time   {result['one_at_a_time_s']:>8.2f} s")
    print(f"  batches of {result['batch_size']:<11} {result['batched_s']:>8.2f} s   same text: {result['same_text']}")
    print(f"  ratio (one at a time / batched): {result['ratio']:.2f}x")
    return 0


def _bench(args) -> int:
    import contextlib

    with contextlib.redirect_stdout(sys.stderr):  # library chatter never mixes with the figures on stdout
        from pixel_assets.lib.benchmarking import repeat_ratio
        from pixel_assets.lib.training.bench import bench_train

        def log(message: str) -> None:
            print(f"bench train: {message}", file=sys.stderr)

        result, spread = repeat_ratio(
            lambda: bench_train(records=args.records, batch_size=args.batch_size, max_length=args.max_length,
                                model_size=args.model_size, seed=args.seed, max_turns=args.max_turns,
                                force_cpu=args.cpu, peak_tflops=args.peak_tflops, log=log),
            lambda r: r["ratio"], args.repeats, log=log)
        result["ratio_spread"] = spread.as_dict()
    if args.json:
        print(json.dumps(result))
        return 0
    where = result.get("gpu") or result["device"]
    print(f"pixel bench train: {result['records']} conversations (mean {result['mean_record_tokens']} tokens), "
          f"{result['model_size']} model ({result['parameters'] / 1e6:.1f}M parameters), {where} {result['dtype']}, "
          f"batch {result['batch_size']}")
    for name, label in (("baseline", "TRL defaults (padded)"), ("project", "packed + padding-free + assistant-only")):
        r = result[name]
        mfu = f", {r['tflops']} TFLOP/s, MFU {r['mfu']:.1%}" if r.get("mfu") is not None else ""
        print(f"  {label:<40} {r['tokens_per_s']:>10.0f} tokens/s  padding {r['padding_fraction']:.1%} "
              f"of {r['computed_tokens']} computed tokens, {r['steps']} steps{mfu}")
    print(f"  ratio (project / baseline): {spread.text()}; figures above from the median run")
    return 0

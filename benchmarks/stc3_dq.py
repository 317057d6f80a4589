"""STC-3 dialogue quality (A, S, E): NMD and RSNOD of uniform, popularity, character
1-3-gram TF-IDF + ridge, and the grader's quality model, all in one run.

    python benchmarks/stc3_dq.py [--stc3 DIR] [--out out/stc3_dq.json] [--model-dir DIR]

Trains on `train.jsonl` only (every choice is made on a seeded dev part of it, the same
split for the baseline's alpha and the grader's model), then predicts `test.jsonl` once.
Prints the table, the training time of the grader's model and its prediction throughput,
and writes them as JSON.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # runnable as a script from anywhere
    sys.path.insert(0, str(ROOT))

from grader.models.quality import clip_renormalise, dialogue_text, load_quality_model  # noqa: E402
from training.dq_metrics import score_table  # noqa: E402
from training.quality import is_dev, read_labeled, train_quality  # noqa: E402

DIMS = ("A", "S", "E")
ALPHAS = (0.03, 0.1, 0.3, 1.0, 3.0, 10.0)
TARGET_RATIO = 0.9


def gold(records: list[dict]) -> dict[str, np.ndarray]:
    return {d: np.stack([r["labels"][d] for r in records]) for d in DIMS}


def popularity(train: dict[str, np.ndarray], n: int) -> dict[str, np.ndarray]:
    return {d: np.broadcast_to(train[d].mean(0), (n, 5)) for d in DIMS}


def tfidf_ridge(train_texts: list[str], train_y: dict[str, np.ndarray], dev: np.ndarray,
                test_texts: list[str]) -> tuple[dict[str, np.ndarray], float, dict[str, float]]:
    """The README's baseline: character 1-3-gram TF-IDF of the whole dialogue, one multi-output
    ridge onto the 3 x 5 probabilities, alpha chosen on dev, refitted on all of train,
    predictions clipped at 0 and renormalised."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import Ridge

    y = np.concatenate([train_y[d] for d in DIMS], axis=1)

    def fit_predict(texts, targets, alpha, new_texts):
        vec = TfidfVectorizer(analyzer="char", ngram_range=(1, 3))
        ridge = Ridge(alpha=alpha).fit(vec.fit_transform(texts), targets)
        raw = ridge.predict(vec.transform(new_texts)).reshape(len(new_texts), len(DIMS), 5)
        return {d: clip_renormalise(raw[:, j]) for j, d in enumerate(DIMS)}

    fit_texts = [t for t, m in zip(train_texts, dev) if not m]
    dev_texts = [t for t, m in zip(train_texts, dev) if m]
    dev_gold = {d: train_y[d][dev] for d in DIMS}
    by_alpha = {}
    for alpha in ALPHAS:
        table = score_table(fit_predict(fit_texts, y[~dev], alpha, dev_texts), dev_gold)
        by_alpha[alpha] = float(np.mean([table[d]["nmd"] for d in DIMS]))
    best = min(by_alpha, key=by_alpha.get)
    return fit_predict(train_texts, y, best, test_texts), best, by_alpha


def print_table(results: dict[str, dict], out=sys.stdout) -> None:
    header = f"{'method':<22}" + "".join(f"{d + ' NMD':>10}{d + ' RSNOD':>10}" for d in DIMS)
    print(header, file=out)
    print("-" * len(header), file=out)
    for name, table in results.items():
        print(f"{name:<22}" + "".join(f"{table[d]['nmd']:>10.4f}{table[d]['rsnod']:>10.4f}" for d in DIMS), file=out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--stc3", type=Path, default=ROOT.parent / "shared" / "data" / "stc3")
    parser.add_argument("--out", type=Path, default=ROOT / "out" / "stc3_dq.json")
    parser.add_argument("--model-dir", type=Path, default=ROOT / "out" / "stc3_quality_model")
    parser.add_argument("--seed", type=int, default=13)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--quantize", action="store_true", help="int8 encoder (faster, a little less accurate)")
    parser.add_argument("--char-ngrams", action="store_true", help="blend a char n-gram model into the grader's")
    args = parser.parse_args(argv)
    train_path, test_path = args.stc3 / "train.jsonl", args.stc3 / "test.jsonl"
    if not (train_path.is_file() and test_path.is_file()):
        print(f"error: no train.jsonl / test.jsonl in {args.stc3}", file=sys.stderr)
        return 2

    import torch

    torch.set_num_threads(args.threads)
    log = lambda m: print(m, file=sys.stderr, flush=True)  # noqa: E731
    train, _ = read_labeled(train_path, "stc3")
    test, _ = read_labeled(test_path, "stc3")
    train_y, test_y = gold(train), gold(test)
    dev = np.array([is_dev(r["id"], args.seed, 0.2) for r in train])
    log(f"train {len(train)} dialogues ({int(dev.sum())} of them dev), test {len(test)}")

    results = {"uniform": score_table({d: np.full((len(test), 5), 0.2) for d in DIMS}, test_y),
               "popularity": score_table(popularity(train_y, len(test)), test_y)}
    started = time.time()
    texts = [dialogue_text(r["transcript"]) for r in train]
    tfidf_pred, alpha, by_alpha = tfidf_ridge(texts, train_y, dev, [dialogue_text(r["transcript"]) for r in test])
    results["tfidf_char13_ridge"] = score_table(tfidf_pred, test_y)
    log(f"TF-IDF + ridge: alpha {alpha} chosen on dev ({time.time() - started:.0f}s)")

    started = time.time()
    folder = train_quality(train_path, fmt="stc3", out=args.model_dir, seed=args.seed, log=log, threads=args.threads,
                           quantize=args.quantize, char_ngrams=args.char_ngrams)
    train_minutes = (time.time() - started) / 60
    loaded = time.time()
    model = load_quality_model(folder, threads=args.threads)
    model.load()
    load_s = time.time() - loaded
    started = time.time()
    probs = model.distributions([r["transcript"] for r in test])
    predict_s = time.time() - started
    results["grader_quality_model"] = score_table({d: probs[:, model.dims.index(d)] for d in DIMS}, test_y)

    base = results["tfidf_char13_ridge"]
    ours = results["grader_quality_model"]
    ratios = {d: ours[d]["nmd"] / base[d]["nmd"] for d in DIMS}
    targets = {"nmd_ratio_at_most": TARGET_RATIO, "nmd_ratio": ratios,
               "nmd_met": all(r <= TARGET_RATIO for r in ratios.values()),
               "rsnod_better": all(ours[d]["rsnod"] < base[d]["rsnod"] for d in DIMS),
               "train_minutes_at_most": 30, "train_met": train_minutes <= 30}
    report = {
        "split": {"train": len(train), "dev": int(dev.sum()), "test": len(test)},
        "results": results,
        "tfidf_alpha": alpha, "tfidf_dev_mean_nmd_by_alpha": {str(a): v for a, v in by_alpha.items()},
        "grader_model": {"folder": str(folder), "version": model.version,
                         "train_minutes": round(train_minutes, 2), "load_seconds": round(load_s, 2),
                         "predict_seconds": round(predict_s, 2),
                         "dialogues_per_second": round(len(test) / predict_s, 2),
                         "dev": json.loads((folder / "metrics.json").read_text(encoding="utf-8")).get("dev")},
        "targets": targets,
        "machine": {"threads": args.threads, "python": platform.python_version(), "torch": torch.__version__,
                    "processor": platform.processor() or platform.machine()},
    }
    print_table(results)
    print(f"\ngrader model {model.version}: trained in {train_minutes:.1f} min; predicted {len(test)} test dialogues "
          f"in {predict_s:.1f} s ({len(test) / predict_s:.1f} dialogues/s, encoder load {load_s:.1f} s)")
    print("NMD / TF-IDF baseline: " + ", ".join(f"{d} {ratios[d]:.3f}" for d in DIMS) +
          f" (target <= {TARGET_RATIO}: {'met' if targets['nmd_met'] else 'NOT met'}); RSNOD better on all: "
          f"{'yes' if targets['rsnod_better'] else 'NO'}; "
          f"training <= 30 min: {'yes' if targets['train_met'] else 'NO'}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")
    print(f"written {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

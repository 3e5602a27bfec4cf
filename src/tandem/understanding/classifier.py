"""The trained understander: per tenant, an intent model trained at first use from the tenant's shipped
examples (``examples/<tenant>/intents/``), cached on disk under a hash of those examples.

Out of scope comes back as the single intent ``out_of_scope``, so the bot says it did not understand and
offers a person: it never acts on a guess the model is not sure of. A tenant without examples is served by
the rule-based understander.
"""

from __future__ import annotations

import importlib
import logging
import os
import pickle
import threading
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

import yaml

from tandem.case.interaction import Interaction
from tandem.participants.protocol import Understanding
from tandem.understanding import embeddings as emb
from tandem.understanding.entities import extract
from tandem.understanding.examples import OUT_OF_SCOPE, Example, data_hash, read_intents_dir
from tandem.understanding.model import RECIPE_VERSION, IntentModel, Recipe
from tandem.understanding.redaction import redact_card_numbers
from tandem.understanding.rules import RuleUnderstander
from tandem.understanding.sentiment import assess
from tandem.world.world import EXAMPLES_DIR, World

log = logging.getLogger(__name__)


def cache_dir() -> Path:
    """``$TANDEM_CACHE_DIR``, else ``$XDG_CACHE_HOME/tandem``, else ``~/.cache/tandem``."""
    if explicit := os.environ.get("TANDEM_CACHE_DIR"):
        return Path(explicit)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "tandem"


def model_key(examples: Sequence[Example], recipe: Recipe, embedder: emb.Embedder | None) -> str:
    sklearn_version = str(importlib.import_module("sklearn").__version__)
    return data_hash(examples, recipe.key, embedder.name if embedder else "no-embeddings", sklearn_version)


def load_or_train(
    examples: Sequence[Example],
    *,
    cache: Path | None = None,
    recipe: Recipe | None = None,
    embedder: emb.Embedder | None = None,
) -> tuple[IntentModel, bool]:
    """The model for these examples, from the cache when it has one under their hash; ``(model, cached)``."""
    recipe = recipe or Recipe()
    folder = (cache or cache_dir()) / "nlu"
    path = folder / f"{model_key(examples, recipe, embedder)}.pkl"
    if path.exists():
        try:
            with path.open("rb") as f:
                # Our own file, written below under a digest of its inputs; never a file from elsewhere.
                model = pickle.load(f)
            if isinstance(model, IntentModel):
                model.embedder = embedder
                return model, True
        except (OSError, pickle.UnpicklingError, EOFError, AttributeError, ImportError, TypeError) as exc:
            log.warning("retraining: cached intent model %s is unreadable (%s)", path, exc)
    model = IntentModel.train(examples, recipe=recipe, embedder=embedder)
    folder.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    with tmp.open("wb") as f:
        pickle.dump(model, f, protocol=pickle.HIGHEST_PROTOCOL)
    os.replace(tmp, path)  # atomic: a concurrent reader sees the old file or the whole new one
    return model, False


def intents_dirs(root: Path = EXAMPLES_DIR) -> dict[str, Path]:
    """Tenant id -> its ``intents/`` folder, for every ``<root>/*/world.yaml`` that has one beside it."""
    found: dict[str, Path] = {}
    for world_file in sorted(root.glob("*/world.yaml")):
        folder = world_file.parent / "intents"
        if not folder.is_dir():
            continue
        raw = yaml.safe_load(world_file.read_text()) or {}
        tenant_id = (raw.get("tenant") or {}).get("id")
        if tenant_id:
            found[str(tenant_id)] = folder
    return found


class ClassifierUnderstander:
    """Implements :class:`tandem.participants.protocol.Understander` with one trained model per tenant."""

    model = "intent-classifier"
    prompt_version = RECIPE_VERSION

    def __init__(
        self,
        world: World,
        *,
        examples_root: Path | None = None,
        cache: Path | None = None,
        use_embeddings: bool | None = None,
    ) -> None:
        """``use_embeddings``: MiniLM features beside the n-grams; by default when the extra is installed."""
        self.world = world
        self.cache = cache
        self.embedder: emb.Embedder | None = None
        if use_embeddings or (use_embeddings is None and emb.available()):
            self.embedder = emb.MiniLM(cache=cache)
        self.fallback = RuleUnderstander({t.id: t.kind for t in world})
        self._dirs = intents_dirs(examples_root or EXAMPLES_DIR)
        self._models: dict[str, IntentModel] = {}
        self._lock = threading.Lock()

    def model_for(self, tenant_id: str) -> IntentModel | None:
        """The tenant's model, trained (or read from the cache) at first use; None without examples."""
        if (model := self._models.get(tenant_id)) is not None:
            return model
        folder = self._dirs.get(tenant_id)
        if folder is None:
            return None
        with self._lock:
            if tenant_id not in self._models:
                examples = read_intents_dir(folder)
                self._models[tenant_id], _ = load_or_train(examples, cache=self.cache, embedder=self.embedder)
        return self._models[tenant_id]

    def warm(self) -> None:
        """Train or load every tenant's model now rather than at the first customer line."""
        for tenant in self.world:
            self.model_for(tenant.id)

    def understand(self, text: str, case: Interaction, now: datetime) -> Understanding:
        text = redact_card_numbers(text)
        model = self.model_for(case.tenant_id)
        if model is None:
            return self.fallback.understand(text, case, now)
        prediction = model.predict([text])[0]
        intents: tuple[tuple[str, float], ...]
        intents = ((OUT_OF_SCOPE, prediction.confidence),) if prediction.label == OUT_OF_SCOPE else prediction.ranked
        assessment = assess(text, case)
        return Understanding(
            intents=intents, entities=extract(text, now), sentiment=assessment.as_tuple(), text=text,
            cues=assessment.cues,
        )  # fmt: skip

"""A suite: every chosen method over every chosen seed, trained, evaluated and attacked, as one job.

The suite holds one worker slot and runs its parts in it, one after another (seed by seed, so a
half-finished suite already compares methods). Each part is an ordinary run: a trained model is a `train`
run any page can open, its attack an `attack` run whose parent is the model. A finished run with the same
training config (or the same attack) is reused, not repeated; the suite's status lists what each item uses.
"""
from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from engine.runs import Run, RunError, RunStore

# config keys that do not change the trained model: runs that differ only here are the same run
NOT_MODEL_KEYS = ("device", "eval_every", "record_every", "log_every")


def default_methods() -> list[str]:
    """Every registered method, in the registry's order: a new method joins the default suite by existing."""
    from engine.methods import registry

    return list(registry())


class SuiteError(ValueError):
    """A suite that cannot run; the message says why."""


@dataclass
class SuiteSpec:
    methods: list[str]
    seeds: list[int]
    train_size: int | None = 2000
    epochs: int = 2
    model: str = "minilm"
    dataset: str = "sst2"
    recipe: str | None = "deepwordbug"     # None or attack_n 0: no attacks
    attack_dataset: str = "sst2-dev"
    attack_n: int = 100
    reuse: bool = True
    behaviour: str | None = None   # a behaviour suite (sentiment, or a suite file) run on each trained model
    train: dict[str, Any] = field(default_factory=dict)   # further TrainConfig fields (batch_size, lr, ...)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> SuiteSpec:
        names = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in values.items() if k in names})

    def attacks(self) -> bool:
        return bool(self.recipe) and self.attack_n > 0

    def train_config(self, method: str, seed: int):
        from engine.train_config import TrainConfig

        return TrainConfig(**{**self.train, "dataset": self.dataset, "model": self.model, "method": method,
                              "train_size": self.train_size, "epochs": self.epochs, "seed": seed})

    def items(self) -> list[tuple[str, int]]:
        """(method, seed) in the order they run: seed by seed, methods in the order given."""
        return [(method, seed) for seed in self.seeds for method in self.methods]

    def check(self) -> None:
        """Refuse an empty or impossible suite before anything is queued."""
        from engine.attacks.attacker import Budget
        from engine.attacks.batch import batch_config
        from engine.methods import registry

        if not self.methods:
            raise SuiteError("a suite needs at least one method (for example vanilla,rose-ensemble)")
        if not self.seeds:
            raise SuiteError("a suite needs at least one seed (for example 0,1,2)")
        for name, values in (("methods", self.methods), ("seeds", self.seeds)):
            repeated = sorted({str(v) for v in values if values.count(v) > 1})
            if repeated:
                raise SuiteError(f"{name} repeated: {', '.join(repeated)}")
        unknown = [m for m in self.methods if m not in registry()]
        if unknown:
            raise SuiteError(f"unknown method(s) {', '.join(unknown)}; known: {', '.join(registry())}")
        if any(not isinstance(s, int) or s < 0 for s in self.seeds):
            raise SuiteError(f"seeds must be whole numbers >= 0 (got {self.seeds})")
        if self.attack_n < 0:
            raise SuiteError(f"the number of examples to attack must be >= 0 (got {self.attack_n})")
        for method in self.methods:
            self.train_config(method, self.seeds[0]).check()
        if self.attacks():
            batch_config("check", self.recipe, self.attack_dataset, self.attack_n, Budget())
        if self.behaviour:
            from engine.behaviour.spec import SuiteFileError, load_suite

            try:
                load_suite(self.behaviour)
            except SuiteFileError as err:
                raise SuiteError(f"behaviour suite: {err}") from err


def suite_config(spec: SuiteSpec) -> dict[str, Any]:
    """Check a suite and return the config its `suite` run stores."""
    spec.check()
    from engine.train import preflight

    preflight(spec.train_config(spec.methods[0], spec.seeds[0]))
    return {**asdict(spec), "method": "suite", "seed": spec.seeds[0] if len(spec.seeds) == 1 else None}


def submit_suite(store: RunStore, spec: SuiteSpec) -> Run:
    """Queue a whole suite as one background job (it waits for a free slot like any run)."""
    from engine import jobs

    return jobs.submit(store, suite_config(spec), kind="suite")


def model_config(config: dict[str, Any]) -> dict[str, Any]:
    """The parts of a training config that decide the trained model, with the method's settings filled in."""
    from engine.methods import make_method
    from engine.train_config import TrainConfig

    values = TrainConfig.from_dict(config).to_dict()
    values["settings"] = make_method(values["method"], values["settings"]).settings
    return {k: v for k, v in values.items() if k not in NOT_MODEL_KEYS}


def find_trained(store: RunStore, config) -> Run | None:
    """The newest finished train run with a saved model and the same model config, or None."""
    wanted = model_config(config.to_dict())
    for row in store.list(kind="train", status="done", method=config.method):
        run = store.get(row["id"])
        if run.has_model() and not run.config.get("recovery") and model_config(run.config) == wanted:
            return run
    return None


def suite_items(run: Run) -> list[dict[str, Any]]:
    """What each (method, seed) of a suite uses and how far it got, as the suite last recorded it."""
    recorded = run.status.get("items")
    if recorded:
        return recorded
    spec = SuiteSpec.from_dict(run.config)
    return [{"method": m, "seed": s, "train_run": None, "train_status": "queued", "attack_run": None,
             "attack_status": "queued" if spec.attacks() else "none"} for m, s in spec.items()]


def suite_train_runs(store: RunStore, run: Run) -> list[str]:
    """The train runs a suite uses (those it has reached so far)."""
    return [item["train_run"] for item in suite_items(run) if item.get("train_run")]


def estimate_seconds(store: RunStore, spec: SuiteSpec) -> dict[str, float | None]:
    """Training time each method would need, from finished runs of the same model on this machine
    (seconds per example and epoch, median); None for a method with no such run. Reused runs cost 0."""
    from statistics import median

    rates: dict[str, list[float]] = {}
    for row in store.list(kind="train", status="done", model=spec.model):
        speed = row["summary"].get("train_examples_per_second")
        if speed:
            rates.setdefault(row["method"], []).append(1.0 / speed)
    size = spec.train_size or 67349
    out: dict[str, float | None] = {}
    for method in spec.methods:
        todo = [s for s in spec.seeds if not (spec.reuse and find_trained(store, spec.train_config(method, s)))]
        out[method] = median(rates[method]) * size * spec.epochs * len(todo) if method in rates else (
            0.0 if not todo else None)
    return out


def list_suites(store: RunStore) -> list[dict[str, Any]]:
    return store.list(kind="suite")


def run_job(run: Run, should_stop: Callable[[], bool], progress: Callable | None = None) -> dict[str, Any]:
    """The `suite` job kind: for each (method, seed) train (or reuse), evaluate, attack (or reuse)."""
    from engine.attacks.attacker import Budget
    from engine.attacks.batch import batch_config, find_cached
    from engine.behaviour.runner import behaviour_part
    from engine.evaluate import evaluate_run
    from engine.jobs import PartProgress, execute
    from engine.train import environment, load_splits

    spec = SuiteSpec.from_dict(run.config)
    store = RunStore(run.dir.parent)
    first = spec.train_config(spec.methods[0], spec.seeds[0])
    splits = load_splits(first)
    train_steps = math.ceil(len(splits.train) / first.batch_size) * first.epochs
    eval_sets = [splits.dev_name, *splits.robustness]
    attack_units = spec.attack_n if spec.attacks() else 0
    per_item = train_steps + attack_units
    items = suite_items(run)
    total = per_item * len(items)
    run.set_status(step=0, total_steps=total, items=items)
    run.log(f"suite: {len(spec.methods)} methods x {len(spec.seeds)} seeds; {train_steps} training steps each"
            + (f"; {spec.recipe} on {spec.attack_n} {spec.attack_dataset} examples" if spec.attacks() else ""))

    def record(index: int, **fields: Any) -> None:
        items[index].update(fields)
        run.set_status(items=items)

    for index, (method, seed) in enumerate(spec.items()):
        if should_stop():
            break
        offset = index * per_item
        run.set_status(current=f"{method} seed {seed}", step=offset)
        config = spec.train_config(method, seed)
        trained = find_trained(store, config) if spec.reuse else None
        if trained is not None:
            record(index, train_run=trained.id, train_status="done", reused=True)
            run.log(f"{method} seed {seed}: reusing finished run {trained.id}")
        else:
            trained = store.create({**config.to_dict(), "environment": environment(), "suite": run.id})
            record(index, train_run=trained.id, train_status="running", reused=False)
            run.log(f"{method} seed {seed}: training run {trained.id}")
            outcome = execute(store, trained, should_stop, PartProgress(run, progress, offset, total),
                              slot_held=True)
            record(index, train_status=outcome.get("status", "failed"), error=outcome.get("error"))
            if outcome.get("status") != "done":
                continue
        try:   # an evaluation or attack that cannot run fails its item, not the models already trained
            evaluate_run(store, trained.id, eval_sets)   # already stored by training; fills in what is missing
            if spec.behaviour and not should_stop():
                record(index, **behaviour_part(store, trained.id, spec.behaviour, should_stop, spec.reuse))
            if not spec.attacks() or should_stop():
                continue
            attack_config = batch_config(trained.id, spec.recipe, spec.attack_dataset, spec.attack_n, Budget())
            attack = find_cached(store, attack_config) if spec.reuse else None
            if attack is not None:
                record(index, attack_run=attack.id, attack_status="done")
                continue
            attack = store.create(attack_config, kind="attack", parent=trained.id)
            record(index, attack_run=attack.id, attack_status="running")
            outcome = execute(store, attack, should_stop,
                              PartProgress(run, progress, offset + train_steps, total), slot_held=True)
            record(index, attack_status=outcome.get("status", "failed"),
                   **({"error": outcome["error"]} if outcome.get("error") else {}))
        except Exception as err:
            record(index, attack_status="failed", error=f"{type(err).__name__}: {err}")
            run.log(f"{method} seed {seed}: evaluation or attack failed: {type(err).__name__}: {err}")
    finished = [item for item in items if item["train_status"] == "done"]
    failed = [item for item in items if "failed" in (item["train_status"], item.get("attack_status"))]
    status = "cancelled" if should_stop() else ("failed" if not finished else "done")
    run.set_status(step=total if status == "done" else run.status.get("step", 0), current=None)
    run.log(f"suite {status}: {len(finished)} of {len(items)} models trained; {len(failed)} part(s) failed")
    if status == "failed":
        raise RunError("every training run of the suite failed; the first: "
                       + str(next((i.get("error") for i in items if i.get("error")), "no error recorded")))
    return {"status": status, "items": items, "train_runs": [i["train_run"] for i in finished],
            "n_items": len(items), "n_trained": len(finished), "n_failed": len(failed)}

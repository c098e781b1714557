"""A suite: every chosen method over every chosen seed, trained, evaluated and attacked, as one job.

The suite hands its items to an executor (`engine.execution.executor`): on this machine it holds one worker slot
and runs them in it, one after another (seed by seed, so a half-finished suite already compares methods); on a
Ray cluster each item is a task on some node, and its runs come back into this store. Each part is an ordinary run: a
trained model is a `train` run any page can open, its attack an `attack` run whose parent is the model. A
finished run with the same training config (or the same attack) is reused, not repeated; the suite's status
lists what each item uses.
"""
from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from functools import partial
from typing import TYPE_CHECKING, Any

from engine.attacks.attacker import Budget
from engine.attacks.batch import batch_config
from engine.behaviour.runner import behaviour_config
from engine.behaviour.spec import BehaviourSuiteError, load_behaviour_suite
from engine.data.registry import TASKS, load_dataset
from engine.data.text_dataset import PAIR_TASKS, DataError
from engine.execution import jobs
from engine.execution.executor import ExecutorSpec, Item, Work, discard, reserve
from engine.execution.executors import make_executor
from engine.execution.jobs import execute
from engine.execution.kinds import find_done, job_kind
from engine.limits import MAX_ATTACK_EXAMPLES, MAX_SEED, MAX_SEEDS, number_text
from engine.methods import registry
from engine.store.runs import Run, RunError, RunStore
from engine.training.config import TrainConfig
from engine.training.evaluate import dev_set_name, evaluate_run
from engine.user_text import quoted

if TYPE_CHECKING:
    from engine.execution.executor import ExecutorSpec, Item, Work

def default_methods() -> list[str]:
    """Every registered method, in the registry's order: a new method joins the default suite by existing."""
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
    attack_dataset: str | None = None      # None: the dataset's own dev set (a CSV's held-out rows)
    attack_n: int = 100
    reuse: bool = True
    behaviour: str | None = None   # a behaviour suite (sentiment, or a suite file) run on each trained model
    train: dict[str, Any] = field(default_factory=dict)   # further TrainConfig fields (batch_size, lr, ...)
    # which look of the two-look design (engine.stats.DESIGN) this suite's report is: 2 for the extra seeds queued
    # after look 1, with the seeds each method counted at look 1 (engine.reporting.benchmark.extra_seed_suites)
    look: int = 1
    first_look: dict[str, list[int]] | None = None

    def __post_init__(self) -> None:
        if self.attack_dataset is None:
            self.attack_dataset = dev_set_name({"dataset": self.dataset})

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> SuiteSpec:
        names = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in values.items() if k in names})

    def attacks(self) -> bool:
        return bool(self.recipe) and self.attack_n > 0

    def train_config(self, method: str, seed: int):
        return TrainConfig(**{**self.train, "dataset": self.dataset, "model": self.model, "method": method,
                              "train_size": self.train_size, "epochs": self.epochs, "seed": seed})

    def items(self) -> list[tuple[str, int]]:
        """(method, seed) in the order they run: seed by seed, methods in the order given."""
        return [(method, seed) for seed in self.seeds for method in self.methods]

    def check(self) -> None:
        """Refuse an empty or impossible suite before anything is queued."""
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
        if len(self.seeds) > MAX_SEEDS:
            raise SuiteError(f"{len(self.seeds):,} seeds; a suite takes at most {MAX_SEEDS} (each seed trains every "
                             f"method once)")
        if any(not isinstance(s, int) or not 0 <= s <= MAX_SEED for s in self.seeds):
            raise SuiteError(f"seeds must be whole numbers in 0..{MAX_SEED:,}")
        if not 0 <= self.attack_n <= MAX_ATTACK_EXAMPLES:
            raise SuiteError(f"the number of examples to attack must be >= 0 and at most {MAX_ATTACK_EXAMPLES:,} "
                             f"(got {number_text(self.attack_n)})")
        for method in self.methods:
            self.train_config(method, self.seeds[0]).check()
        if self.attacks():
            batch_config("check", self.recipe, self.attack_dataset, self.attack_n, Budget())
            self._check_attack_dataset()
        if self.behaviour:
            try:
                load_behaviour_suite(self.behaviour)
            except BehaviourSuiteError as err:
                raise SuiteError(f"behaviour suite: {err}") from err


    def _check_attack_dataset(self) -> None:
        """Read the attacked set as the attacks will (`heldout`: the training CSV's own split), and refuse one
        that does not exist or holds sentence pairs for single-sentence training data (or the reverse), before
        anything is queued: otherwise every item's attack fails after its training."""
        name = self.attack_dataset
        if name == "heldout":
            if not self.dataset.startswith("csv:"):
                raise SuiteError(f"attack dataset: `heldout` exists only for a suite trained on an uploaded CSV; "
                                 f"{quoted(self.dataset)} has its own dev set")
            return
        try:
            data = load_dataset(name)
        except DataError as err:
            raise SuiteError(f"attack dataset: {err}") from None
        task = TASKS.get(self.dataset)
        if task is not None and data.is_pair != (task in PAIR_TASKS):
            shape = "sentence pairs" if data.is_pair else "single sentences"
            raise SuiteError(f"attack dataset: {quoted(name)} holds {shape}, but {self.dataset} does not; attack a "
                             f"set of the same task (default: {quoted(dev_name(self.dataset))})")


def dev_name(dataset: str) -> str:
    return dev_set_name({"dataset": dataset})


def suite_config(spec: SuiteSpec, where: ExecutorSpec | None = None) -> dict[str, Any]:
    """Check a suite and return the config its `suite` run stores, with where its items run (default: here)."""
    spec.check()
    where = where or ExecutorSpec()
    where.check()
    job_kind("train").preflight(spec.train_config(spec.methods[0], spec.seeds[0]).to_dict())
    return {**asdict(spec), "method": "suite", "seed": spec.seeds[0] if len(spec.seeds) == 1 else None,
            "executor": where.to_dict()}


def submit_suite(store: RunStore, spec: SuiteSpec, where: ExecutorSpec | None = None) -> Run:
    """Queue a whole suite as one background job (it waits for a free slot like any run)."""
    return jobs.submit(store, suite_config(spec, where), kind="suite")


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
        todo = [s for s in spec.seeds
                if not (spec.reuse and find_done(store, "train", spec.train_config(method, s).to_dict()))]
        out[method] = median(rates[method]) * size * spec.epochs * len(todo) if method in rates else (
            0.0 if not todo else None)
    return out


def list_suites(store: RunStore) -> list[dict[str, Any]]:
    return store.list(kind="suite")


def run_job(run: Run, should_stop: Callable[[], bool], progress: Callable | None = None) -> dict[str, Any]:
    """The `suite` job kind: for each (method, seed) train (or reuse), evaluate, attack (or reuse), each item
    handed to the executor the suite's config names (this machine, or a Ray cluster)."""
    from engine.training.train import load_splits

    spec = SuiteSpec.from_dict(run.config)
    store = RunStore(run.dir.parent)
    executor = make_executor(ExecutorSpec.from_config(run.config))   # a cluster that cannot run says so first
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

    def note(item: Item, **fields: Any) -> None:
        items[item.index].update(fields)
        run.set_status(items=items)

    def finished(item: Item, fields: dict[str, Any]) -> None:
        note(item, **fields)
        if "failed" in (fields.get("train_status"), fields.get("attack_status")):
            run.log(f"{item.label}: failed: {fields.get('error')}")

    plan: list[Item] = []
    for index, (method, seed) in enumerate(spec.items()):
        item = Item(index, f"{method} seed {seed}", per_item, prepare=lambda: None)
        item.prepare = partial(_prepare_item, store, spec, run, item, method, seed, eval_sets, train_steps, note)
        plan.append(item)
    executor.run(store, run, plan, should_stop, progress, note, finished)
    finished_items = [item for item in items if item["train_status"] == "done"]
    failed = [item for item in items if "failed" in (item["train_status"], item.get("attack_status"))]
    status = "cancelled" if should_stop() else ("failed" if not finished_items else "done")
    run.set_status(step=total if status == "done" else run.status.get("step", 0), current=None)
    run.log(f"suite {status}: {len(finished_items)} of {len(items)} models trained; {len(failed)} part(s) failed")
    if status == "failed":
        raise RunError("every training run of the suite failed; the first: "
                       + str(next((i.get("error") for i in items if i.get("error")), "no error recorded")))
    return {"status": status, "items": items, "train_runs": [i["train_run"] for i in finished_items],
            "n_items": len(items), "n_trained": len(finished_items), "n_failed": len(failed)}


def _prepare_item(store: RunStore, spec: SuiteSpec, suite: Run, item: Item, method: str, seed: int,
                  eval_sets: list[str], train_steps: int, note: Callable[..., None]) -> Work:
    """Decide what one item reuses and record the runs it will write (the suite's process, just before the item
    starts): a finished run of the same kind with the same reuse key is reused (`find_done`), model or child."""
    from engine.training.train import environment

    config = spec.train_config(method, seed).to_dict()
    trained = find_done(store, "train", config) if spec.reuse else None
    writes: list[str] = []
    if trained is not None:
        note(item, train_run=trained.id, train_status="done", reused=True)
        suite.log(f"{item.label}: reusing finished run {trained.id}")
    else:
        trained = reserve(store, {**config, "environment": environment(), "suite": suite.id})
        writes.append(trained.id)
        note(item, train_run=trained.id, train_status="queued", reused=False)
        suite.log(f"{item.label}: training run {trained.id}")
    task = SuiteItem(trained.id, train=bool(writes), eval_sets=eval_sets, train_steps=train_steps)
    reuse = spec.reuse and not task.train    # a model trained now has no finished children yet
    if spec.behaviour:
        task.behaviour_run = _child_to_run(store, behaviour_config(trained.id, load_behaviour_suite(spec.behaviour)),
                                           "behaviour", reuse, trained, item, note, writes)
    if spec.attacks():
        try:
            attack_config = batch_config(trained.id, spec.recipe, spec.attack_dataset, spec.attack_n, Budget())
        except Exception as err:   # an attack that cannot run fails its item, not the models trained
            task.attack_error = f"{type(err).__name__}: {err}"
        else:
            task.attack_run = _child_to_run(store, attack_config, "attack", reuse, trained, item, note, writes)
    return Work(task, writes, reads=[] if task.train else [trained.id])


def _child_to_run(store: RunStore, config: dict[str, Any], kind: str, reuse: bool, trained: Run,
                  item: Item, note: Callable[..., None], writes: list[str]) -> str | None:
    """A model's attack or behaviour run for an item: a finished one of the same reuse key is noted as done and
    None returned; otherwise a new run is reserved among the item's writes and its id returned, to run."""
    found = find_done(store, kind, config) if reuse else None
    if found is not None:
        note(item, **{f"{kind}_run": found.id, f"{kind}_status": "done"})
        return None
    child = reserve(store, config, kind=kind, parent=trained.id)
    writes.append(child.id)
    return child.id


@dataclass
class SuiteItem:
    """One (method, seed) of a suite as the executor runs it, in the suite's process or a Ray task on some node:
    its `train` run (trained here unless `train` is False: a finished identical model is reused), the sets it is
    evaluated on, and its `behaviour` and `attack` child runs (None: reused or not asked for). Each child runs
    through `jobs.execute`, that is through its job kind."""
    train_run: str
    train: bool
    eval_sets: list[str]
    train_steps: int
    attack_run: str | None = None
    attack_error: str | None = None      # an attack config that could not be made: the item's attack fails so
    behaviour_run: str | None = None

    def lost(self, state: str, reason: str) -> dict[str, Any]:
        """Its training (or, for a reused model, its attack) ended so: the task never came back."""
        return {"train_status" if self.train else "attack_status": state, "error": reason}

    def run(self, store: RunStore, should_stop: Callable[[], bool], progress: Callable,
            note: Callable[..., None]) -> dict[str, Any]:
        """Train unless reused, evaluate, run the behaviour suite and attack unless reused. Returns the item's
        fields for the suite's status."""
        fields: dict[str, Any] = {}
        attack_id, behaviour_id = self.attack_run, self.behaviour_run
        if self.train:
            note(train_status="running")
            outcome = execute(store, store.get(self.train_run), should_stop, progress, slot_held=True)
            fields.update(train_status=outcome.get("status", "failed"), error=outcome.get("error"))
            if fields["train_status"] != "done":
                discard(store, attack_id)
                discard(store, behaviour_id)
                return fields
        try:   # an evaluation or attack that cannot run fails its item, not the models already trained
            evaluate_run(store, self.train_run, self.eval_sets)   # stored by training; fills in what is missing
            if behaviour_id is not None:
                if should_stop():
                    discard(store, behaviour_id)
                else:
                    note(behaviour_run=behaviour_id, behaviour_status="running")
                    outcome = execute(store, store.get(behaviour_id), should_stop, slot_held=True)
                    fields.update(behaviour_run=behaviour_id, behaviour_status=outcome.get("status", "failed"))
            if self.attack_error:
                return {**fields, "attack_status": "failed", "error": self.attack_error}
            if attack_id is None or should_stop():
                discard(store, attack_id)
                return fields
            note(attack_run=attack_id, attack_status="running")
            outcome = execute(store, store.get(attack_id), should_stop,
                              lambda step, total, value: progress(self.train_steps + step, total, value),
                              slot_held=True)
            fields.update(attack_run=attack_id, attack_status=outcome.get("status", "failed"),
                          **({"error": outcome["error"]} if outcome.get("error") else {}))
        except Exception as err:
            fields.update(attack_status="failed", error=f"{type(err).__name__}: {err}")
        return fields

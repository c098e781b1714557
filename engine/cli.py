"""What every `python -m engine` command shares: printing its result, refusing a flag's value by name before
anything runs, and running a job in the foreground with a progress bar on stderr (so --json keeps stdout to one
JSON line)."""
from __future__ import annotations

import argparse
import errno
import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from engine.user_text import FlagError

if TYPE_CHECKING:
    from engine.execution.executor import ExecutorSpec
    from engine.store.runs import Run, RunStore


MESSAGE_CHARS = 2000   # an error line is cut here: a message that repeats a 789 KB argument buries the terminal
USAGE_CHARS = 300      # argparse's own errors (`invalid int value: '...'`) repeat the argument whole: cut sooner
# the arguments that name a file or a run (comma lists for runs and sets), checked by `check_names` before any
# command runs, so a name too long for the file system is refused by its flag, not by a traceback
NAME_ARGS = {"run_id": "RUN_ID", "runs": "--runs", "out": "--out", "suite": "--suite", "behaviour": "--behaviour",
             "extra_data": "--extra-data", "dataset": "--dataset", "attack_dataset": "--attack-dataset",
             "sets": "--sets", "run_dir": "RUN_DIR"}
LISTS = ("runs", "sets")


class Parser(argparse.ArgumentParser):
    """argparse, with its own error lines (`invalid int value: '...'`) cut and their control characters shown, like
    every other error line (`error_line`)."""

    def error(self, message: str):
        from engine.user_text import shown

        super().error(shown(message, USAGE_CHARS))


def error_line(err: BaseException | str) -> str:
    """What a refused command prints: `error: ` and the message on one line, cut at MESSAGE_CHARS, control and
    invisible characters (a terminal escape, a bidi override) written as code points."""
    from engine.user_text import shown

    return f"error: {shown(str(err), MESSAGE_CHARS)}"


def too_long_name(err: OSError) -> bool:
    """An OSError saying a name is too long for the file system (`check_names` refuses the usual ones first)."""
    return err.errno == errno.ENAMETOOLONG


def check_names(args: argparse.Namespace) -> None:
    """Refuse, naming its flag, an argument that names a file or a run but is too long for the file system."""
    from engine.limits import path_problem
    from engine.user_text import quoted

    for attr, flag_name in NAME_ARGS.items():
        value = getattr(args, attr, None)
        if not isinstance(value, str):
            continue
        for part in value.split(",") if attr in LISTS else [value]:
            problem = path_problem(part.strip().removeprefix("csv:"))
            if problem:
                raise FlagError(f"{flag_name}: {quoted(part)} cannot name a file or a run: {problem}")


def emit(data: Any, as_json: bool) -> None:
    """A command's result: one JSON line with --json, indented JSON for a person otherwise."""
    if as_json:
        print(json.dumps(data, default=str))
    else:
        print(json.dumps(data, indent=2, default=str))


@contextmanager
def blaming(flag: str, *errors: type[Exception]) -> Iterator[None]:
    """Any of `errors` raised inside becomes a FlagError naming `flag` (the command exits 2 with one line)."""
    try:
        yield
    except errors as err:
        raise FlagError(f"{flag}: {err}") from err


class ProgressBar:
    """A tqdm bar on stderr, fed by a job's progress callback `(done, total, value)`; `value_format` shows
    the value next to it (None: not shown). The total may change while the job runs (a suite's does)."""

    def __init__(self, unit: str = "step", value_format: str | None = "loss={:.4f}") -> None:
        self.unit, self.value_format = unit, value_format
        self.bar = None

    def __call__(self, done: int, total: int, value: float) -> None:
        from tqdm import tqdm

        if self.bar is None:
            self.bar = tqdm(total=total, file=sys.stderr, unit=self.unit, dynamic_ncols=True)
        self.bar.total = total
        self.bar.update(done - self.bar.n)
        if self.value_format:
            self.bar.set_postfix_str(self.value_format.format(value))

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def run_foreground(store: RunStore, run: Run, as_json: bool, what: str = "run", bar: ProgressBar | None = None,
                   shape: Callable[[dict], Any] = lambda results: results) -> int:
    """Execute a created run in this process (Ctrl-C stops it at the next step, keeping what it recorded),
    print `shape(results)`, and return the exit code: 0 when done or cancelled, 1 when it failed."""
    from engine.execution import jobs

    print(f"{what} {run.id} in {run.dir}", file=sys.stderr)
    bar = bar or ProgressBar()
    try:
        results = jobs.execute(store, run, jobs.StopFlag().install(), bar)
    finally:
        bar.close()
    emit(shape(results), as_json)
    return 0 if results.get("status") in ("done", "cancelled") else 1


def add_executor_flags(parser: argparse.ArgumentParser) -> None:
    """Where a suite's or grid's items run: --executor local|ray, --address, --shared-home, --cpus-per-item."""
    parser.add_argument("--executor", default="local", choices=["local", "ray"],
                        help="local: this machine, one item after another; ray: each item a task on a Ray cluster")
    parser.add_argument("--address", default="auto", help="the Ray cluster: auto, host:6379 or ray://host:10001")
    parser.add_argument("--shared-home", action="store_true", default=None,
                        help="every Ray node mounts ROBUSTLAB_HOME at the same path: tasks write runs in place "
                             "(default: ROBUSTLAB_SHARED_HOME, else runs come back as archives)")
    parser.add_argument("--cpus-per-item", type=int, default=1,
                        help="CPU threads each Ray task asks for on a cluster without GPUs")


def executor_spec(args: argparse.Namespace) -> ExecutorSpec:
    """The executor the flags ask for; a Ray cluster is asked what it offers now, so an unreachable or full one is
    refused (naming --address) before any run is recorded."""
    from engine.execution.executor import ExecutorError, ExecutorSpec

    shared = {} if args.shared_home is None else {"shared_home": True}
    spec = ExecutorSpec(kind=args.executor, address=args.address, cpus=args.cpus_per_item, **shared)
    with blaming("--cpus-per-item", ExecutorError):
        spec.check()
    if spec.kind == "ray":
        from engine.execution.cluster import capacity_problem, probe

        with blaming("--address", ExecutorError):
            problem = capacity_problem(probe(spec.address), spec.cpus)
            if problem:
                raise ExecutorError(problem)
    return spec

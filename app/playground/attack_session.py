"""A live attack for one browser tab: TextAttack runs in a background thread, the page polls a snapshot.

The thread never touches Streamlit; it writes progress into this object under a lock, and the page
(through `app.live.poll`) re-reads `snapshot()` every fraction of a second. Cancel sets an event that the
model wrapper checks before every query batch. Each tab keeps its own `LiveAttack` in `st.session_state`,
so two tabs can attack at once without touching each other's state (the shared model serialises their
forward passes).
"""
from __future__ import annotations

import threading
import time
import traceback
from dataclasses import dataclass, field

from engine.attacks.attacker import AttackOutcome, AttackSnapshot, Budget
from engine.attacks.recipes import AttackError
from engine.data.text_dataset import Input
from engine.models.inference import LoadedModel


@dataclass
class RunState:
    """What one model's attack has reached."""
    progress: AttackSnapshot | None = None
    outcome: AttackOutcome | None = None
    error: str | None = None
    started: float | None = None


@dataclass
class Snapshot:
    running: bool
    cancelled: bool
    runs: dict[str, RunState] = field(default_factory=dict)
    elapsed: float = 0.0


class LiveAttack:
    """Attack one text (or one sentence pair, on its `segment`: first or second) with one recipe and budget on
    one or two models, one model after the other."""

    def __init__(self, models: dict[str, LoadedModel], text: Input, recipe: str, budget: Budget,
                 label: int | None = None, segment: str | None = None) -> None:
        self.models, self.text, self.recipe, self.budget, self.label = models, text, recipe, budget, label
        self.segment = segment
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._states = {run_id: RunState() for run_id in models}
        self._started = time.time()
        self._finished: float | None = None
        self._thread = threading.Thread(target=self._work, name="playground-attack", daemon=True)

    def start(self) -> LiveAttack:
        self._thread.start()
        return self

    def cancel(self) -> None:
        self._stop.set()

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the attack ends (tests); True when it has."""
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def snapshot(self) -> Snapshot:
        with self._lock:
            runs = {k: RunState(v.progress, v.outcome, v.error, v.started) for k, v in self._states.items()}
        end = self._finished or time.time()
        return Snapshot(self.running, self._stop.is_set(), runs, end - self._started)

    def _work(self) -> None:
        from engine.attacks.attacker import Attacker

        try:
            for run_id, loaded in self.models.items():
                if self._stop.is_set():
                    break
                with self._lock:
                    self._states[run_id].started = time.time()
                try:
                    attacker = Attacker(loaded, self.recipe, self.budget, should_stop=self._stop.is_set,
                                        on_progress=lambda p, rid=run_id: self._update(rid, p), segment=self.segment)
                    outcome = attacker.attack_text(self.text, self.label)
                except AttackError as err:
                    self._set_error(run_id, str(err))
                    continue
                except Exception as err:  # the page shows it; the app keeps running
                    traceback.print_exc()
                    self._set_error(run_id, f"the attack stopped with an error: {type(err).__name__}: {err}")
                    continue
                with self._lock:
                    self._states[run_id].outcome = outcome
        finally:
            self._finished = time.time()

    def _update(self, run_id: str, progress: AttackSnapshot) -> None:
        with self._lock:
            self._states[run_id].progress = progress

    def _set_error(self, run_id: str, message: str) -> None:
        with self._lock:
            self._states[run_id].error = message

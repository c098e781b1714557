"""Extra training examples from a CSV (`TrainConfig.extra_data`, `train --extra-data FILE.csv`): added to the run's
training sample, e.g. the failing cases a behaviour suite exported with their correct labels.

The rows are added after the `train_size` sample (all of them, every epoch), their labels read as the run's own
class names, so a file with only some of the classes, or with names in another order, trains what it says.
"""
from __future__ import annotations

from engine.data.csv_reading import read_csv
from engine.data.text_dataset import DataError, TextDataset
from engine.training.config import ConfigError


def with_extra_rows(train: TextDataset, path: str) -> TextDataset:
    """The training sample plus the CSV's rows (text and label columns, two text columns for a pair run;
    labels among the run's classes)."""
    try:
        extra = read_csv(path[4:] if path.startswith("csv:") else path, known_labels=train.label_names)
    except DataError as err:
        raise ConfigError(("extra_data", str(err))) from err
    if extra.is_pair != train.is_pair:
        shape = "sentence pairs" if extra.is_pair else "single sentences"
        wanted = (f"two text columns ({' / '.join(train.segment_names)})" if train.is_pair
                  else "one text column")
        raise ConfigError(("extra_data", f"{path} holds {shape}, but the run trains on "
                                         f"{'sentence pairs' if train.is_pair else 'single sentences'}: give "
                                         f"{wanted}"))
    pairs = train.texts_b + extra.texts_b if train.texts_b is not None and extra.texts_b is not None else None
    return TextDataset(train.name, train.texts + extra.texts, list(train.labels) + list(extra.labels),
                       list(train.label_names), pairs, train.segment_names)

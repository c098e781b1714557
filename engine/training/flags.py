"""The `train` command's flags, generated from `TrainConfig`'s fields, and the command line that reproduces
a stored config; one field table serves both, so a new config field is a new flag with nothing else to edit.

Field `foo_bar` is flag `--foo-bar` with the field's default and help. A field that may be None takes -1
for None (for `lr`, None is the model's default rate). Two dict fields are mapped by hand: `settings` is
given as repeated `--set KEY=VALUE`, and `corruption` as one JSON object
(`--corruption '{"positions": ["bottom"], ...}'`).

A list field (`label_order`) is given comma-separated: `--label-order neg,neutral,pos`.

`--set preset=NAME` expands one of the method's presets (`Method.presets`): its method settings, and the
optimiser options its source fixes (`PRESET_TRAINING_FIELDS`). Whatever is given explicitly, another `--set`
or a flag, wins over the preset; the stored config holds the expanded numbers, not the preset's name.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import shlex
import typing
from typing import Any

from engine.training.config import ConfigError, TrainConfig, default_lr
from engine.user_text import FlagError, quoted

NONE = -1          # how a None-able number is written on the command line
SETTINGS = "settings"
JSON_FIELDS = ("corruption",)
PRESET = "preset"  # the --set key that names a preset
GIVEN = "given_train_flags"   # namespace attribute: the fields whose flags were given on the command line


class _Given(argparse.Action):
    """Stores a flag's value and notes that it was given, so a preset never overrides what a person typed."""

    def __call__(self, parser, namespace, values, option_string=None) -> None:
        setattr(namespace, self.dest, values)
        setattr(namespace, GIVEN, {*getattr(namespace, GIVEN, ()), self.dest})


def _fields() -> list[tuple[dataclasses.Field, Any]]:
    """(field, its type with any `| None` removed) for every TrainConfig field, in declaration order."""
    hints = typing.get_type_hints(TrainConfig)
    out = []
    for f in dataclasses.fields(TrainConfig):
        kinds = [k for k in typing.get_args(hints[f.name]) if k is not type(None)] or [hints[f.name]]
        out.append((f, typing.get_origin(kinds[0]) or kinds[0]))
    return out


def flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def _default(f: dataclasses.Field) -> Any:
    return f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default


def _default_for(f: dataclasses.Field, model: str) -> Any:
    """The value a field takes when its flag is left out, for `model` (the learning rate depends on it)."""
    return default_lr(model) if f.name == "lr" else _default(f)


def add_train_flags(parser: argparse.ArgumentParser) -> None:
    """One flag per TrainConfig field, with the field's default and help."""
    for f, kind in _fields():
        help_text, none = f.metadata["help"], f.metadata.get("none")
        default = _default(f)
        if f.name == SETTINGS:
            parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                                help="a method setting, repeatable; preset=NAME sets a named group of settings "
                                     "(and the optimiser options its source fixes) that other flags override "
                                     "(see `python -m engine methods`)")
        elif f.name in JSON_FIELDS:
            parser.add_argument(flag(f.name), type=json_object, default=default, metavar="JSON", action=_Given,
                                help=f"{help_text}; a JSON object, or null (default: {none or default})")
        elif kind is bool:
            parser.add_argument(flag(f.name), action=argparse.BooleanOptionalAction, default=default,
                                help=f"{help_text} (default: {default})")
        elif kind is list:
            parser.add_argument(flag(f.name), type=comma_list, default=default, metavar="A,B,C", action=_Given,
                                help=f"{help_text}; comma-separated (default: {none or default})")
        elif kind is str and default is None:   # a name: left out for None (-1 could be a column's name)
            parser.add_argument(flag(f.name), default=None, action=_Given, help=f"{help_text} (default: {none})")
        else:
            shown = f"{none}, or {NONE}" if default is None else f"{default}; {NONE}: {none}" if none else default
            parser.add_argument(flag(f.name), type=kind, default=default, action=_Given,
                                help=f"{help_text} (default: {shown})")


def comma_list(text: str) -> list[str]:
    """A list flag's value: comma-separated items, spaces around each dropped."""
    return [item.strip() for item in text.split(",")]


def json_object(text: str) -> dict[str, Any] | None:
    """A JSON flag's value: an object, or null."""
    try:
        value = json.loads(text)
    except json.JSONDecodeError as err:
        raise argparse.ArgumentTypeError(f"not JSON ({err}): {quoted(text)}") from None
    if value is not None and not isinstance(value, dict):
        raise argparse.ArgumentTypeError(f"takes a JSON object or null (got {quoted(text)})")
    return value


def parse_sets(values: list[str]) -> dict[str, str]:
    """`--set key=value` pairs."""
    out = {}
    for item in values:
        if "=" not in item:
            raise ValueError(f"--set takes key=value (got {quoted(item)})")
        key, value = item.split("=", 1)
        out[key.strip()] = value.strip()
    return out


def typed_settings(method: str, values: dict[str, Any]) -> dict[str, Any]:
    """Method settings given as text, each parsed by the method's own Setting (so config.json keeps numbers
    as numbers); names the method does not know are left for `TrainConfig.check` to refuse."""
    from engine.methods import registry

    cls = registry().get(method)
    specs = {s.name: s for s in cls.settings_spec} if cls else {}
    return {k: specs[k].parse(v) if k in specs else v for k, v in values.items()}


def with_preset(values: dict[str, Any], name: str, given: set[str]) -> dict[str, Any]:
    """TrainConfig `values` with the preset `name` of their method filled in: its settings under the settings
    already there, its training options into every field not in `given`."""
    from engine.methods import SettingError, registry

    cls = registry().get(values["method"])
    if cls is None:
        raise SettingError(f"unknown method {quoted(values['method'])}; known: {', '.join(registry())}")
    preset = cls.preset(name)
    out = {**values, SETTINGS: {**preset.settings, **values[SETTINGS]}}
    out.update({k: v for k, v in preset.training.items() if k not in given})
    return out


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    """The TrainConfig the `train` flags describe (with `--set preset=NAME` expanded)."""
    values: dict[str, Any] = {}
    sets = parse_sets(args.set)
    preset = sets.pop(PRESET, None)
    for f, kind in _fields():
        if f.name == SETTINGS:
            values[SETTINGS] = typed_settings(args.method, sets)
            continue
        value = getattr(args, f.name)
        if f.metadata.get("none") and value == NONE and kind is not str:
            value = None
        values[f.name] = value
    if preset is not None:
        values = with_preset(values, preset, getattr(args, GIVEN, set()))
    return TrainConfig(**values)


def checked_train_config(args: argparse.Namespace) -> tuple[TrainConfig, list[str]]:
    """The config the flags describe, refused before any run exists when it cannot train
    (the train kind's preflight): a FlagError that leads each reason with its flag. The config is fitted to the
    examples there are (a small CSV trains on fewer than asked), and comes with the data's notes to show."""
    from engine.execution.kinds import job_kind
    from engine.methods import SettingError

    try:
        config = config_from_args(args)
    except SettingError as err:   # a --set value or preset that cannot be read
        raise FlagError(f"--set: {err}") from err
    try:
        splits = job_kind("train").preflight(config.to_dict())
    except ConfigError as err:
        raise FlagError("; ".join(f"{_flag_of(name)}: {text}" if name else text
                                  for name, text in err.reasons)) from err
    return config.fitted_to(splits.pool), splits.notes


def _flag_of(field_name: str) -> str:
    """The flag that sets a TrainConfig field (method settings: --set)."""
    return "--set" if field_name == SETTINGS else flag(field_name)


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, (list, tuple)):
        return ",".join(_text(v) for v in value)
    if isinstance(value, dict):
        return json.dumps(value, sort_keys=True)
    return str(value)


def train_command(config: dict[str, Any], **overrides: Any) -> str:
    """`python -m engine train ...` that trains `config` (with `overrides`) again: the method, every field
    that differs from its default (for the learning rate: the model's default), and each method setting
    as --set."""
    values = TrainConfig.from_dict({**config, **overrides}).to_dict()
    parts = ["python -m engine train", "--method", shlex.quote(values["method"])]
    for f, kind in _fields():
        value = values[f.name]
        if f.name in (SETTINGS, "method") or value == _default_for(f, values["model"]):
            continue
        if kind is bool:
            parts.append(flag(f.name) if value else flag("no_" + f.name))
        elif value is None:
            parts += [flag(f.name), str(NONE)] if f.name not in JSON_FIELDS else [flag(f.name), "null"]
        else:
            parts += [flag(f.name), shlex.quote(_text(value))]
    for key, value in (values[SETTINGS] or {}).items():
        parts += ["--set", shlex.quote(f"{key}={_text(value)}")]
    return " ".join(parts)

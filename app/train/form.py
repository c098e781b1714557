"""The Train page's form: the data (a registered set or an uploaded CSV), the model, the method with its
settings, the training budget, and the button that queues the run."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import streamlit as st

from app.checks import custom_model_problem, data_folder_help
from app.components import settings_form
from app.plain_text import markdown_text
from app.state import dataset_availability, get_store
from app.train.uploads import CsvChoice, UploadSummary, accept_upload, upload_header
from app.train.your_run import follow
from engine.data.csv_reading import read_csv
from engine.data.csv_table import ENCODING_NAMES, encoding_note
from engine.data.registry import DEV_SET, REGISTRY, ROBUSTNESS_SETS
from engine.data.splits import held_out_count, split_sizes_text
from engine.data.text_dataset import PAIR_TASKS, DataError
from engine.execution import jobs
from engine.execution.kinds import job_kind
from engine.methods import Method, Preset, SettingError, registry
from engine.models.loading import known_models
from engine.store.runs import ACTIVE, RunError
from engine.training.config import ConfigError, TrainConfig, default_lr, default_lr_text
from engine.training.train import environment

UPLOAD = "Upload CSV"
SINGLE = "none: single sentences"
OWN_TASK = "none: a task of its own"
NO_PRESET = "none"
OTHER_MODEL = "other"
defaults = TrainConfig()


@dataclass
class Choice:
    """What was chosen (a dataset or model name for TrainConfig) and why it cannot be used, if it cannot (as
    Markdown, anything typed or uploaded in it shown as text)."""
    name: str
    problem: str | None
    uploaded: bool = False
    class_sizes: list[int] = field(default_factory=list)   # examples per class of an uploaded CSV
    label_order: list[str] | None = None                    # an uploaded CSV's named labels in a chosen id order
    csv: CsvChoice = field(default_factory=dict)            # an uploaded CSV's columns and declared task


def data_choice() -> Choice:
    """A registered training set (with the sets it is scored on), or an uploaded CSV, checked and previewed."""
    found = dataset_availability()
    train_sets = [name for name in DEV_SET if name in REGISTRY]
    dataset_choice = st.selectbox(
        "Training set", [*train_sets, UPLOAD], key="train-dataset",
        help="Each GLUE task's runs are scored on its dev set and on its AdvGLUE set (adversarial examples): "
             "SST-2 sentences, or RTE, QNLI, QQP and MNLI sentence pairs. An uploaded CSV has a share of its rows "
             "held out as the dev set.")
    dataset, data_problem, class_sizes, label_order, csv = dataset_choice, None, [], None, {}
    if dataset_choice != UPLOAD:
        st.caption(f"{REGISTRY[dataset_choice].description}; scored on "
                   f"{', '.join([DEV_SET[dataset_choice], *ROBUSTNESS_SETS.get(dataset_choice, [])])}.")
    if dataset_choice == UPLOAD:
        uploaded = st.file_uploader("CSV with a text column, or two for sentence pairs, and a label column (names, "
                                    "or integers 0, 1, …)", type=["csv", "tsv", "txt"], key="train-upload",
                                    help="Text column: text, sentence, review, content or document; sentence pairs: "
                                         "sentence1/sentence2, premise/hypothesis, question/sentence or "
                                         "question1/question2. Label column: label, labels, class, target or y. You "
                                         "can pick other columns once it is uploaded. Up to 25 MB.")
        if uploaded is None:
            data_problem = "upload a CSV file first"
        else:
            try:
                csv = column_choice(*upload_header(uploaded.getvalue()))
                summary = accept_upload(uploaded.getvalue(), uploaded.name, columns=csv)
            except DataError as err:
                data_problem = markdown_text(f"{uploaded.name} cannot be used: {err}")
                st.error(data_problem, icon=":material/error:")
            else:
                dataset, class_sizes = summary.dataset_name, summary.class_sizes
                show_upload(uploaded.name, summary)
                label_order, data_problem = order_choice(summary)
    elif not found.get(dataset_choice) or not found.get(DEV_SET[dataset_choice]):
        absent = [REGISTRY[name] for name in (dataset_choice, DEV_SET[dataset_choice]) if not found.get(name)]
        where = " ".join(f"Put {spec.source} in the data folder as `{spec.local_file}`." for spec in absent
                         if spec.source)
        data_problem = f"the {dataset_choice} files are not in the data folder. {where} {data_folder_help()}"
        st.error(data_problem, icon=":material/folder_off:")
    return Choice(dataset, data_problem, uploaded=dataset_choice == UPLOAD, class_sizes=class_sizes,
                  label_order=label_order, csv=csv)


def column_choice(header: list[str], found: CsvChoice) -> CsvChoice:
    """Which columns of an uploaded CSV hold the text (or the two texts of a sentence pair) and the label, starting
    at the ones found by name, and, for pairs, the GLUE task its labels belong to (so its AdvGLUE sets apply)."""
    def start(name: str | None, options: list[str]) -> int | None:
        """The column found by name; none (the picker left empty, and the file read as if nothing was picked, so
        the engine says what it looked for) when there is none."""
        return options.index(name) if name in options else None

    c1, c2, c3 = st.columns(3)
    text = c1.selectbox("Text column", header, index=start(found["text_column"], header), key="train-text-column",
                        placeholder="pick the text column", help="The text, or the first text of a sentence pair.")
    seconds = [SINGLE, *header]
    second = c2.selectbox("Second text column", seconds, index=start(found["text_column_b"], seconds) or 0,
                          key="train-text-column-b",
                          help="For sentence pairs (premise and hypothesis, question and answer, …): the second text "
                               "of each pair. The model reads both, with its separator token between them.")
    label = c3.selectbox("Label column", header, index=start(found["label_column"], header),
                         key="train-label-column", placeholder="pick the label column")
    chosen: CsvChoice = {"text_column": text, "text_column_b": None if second == SINGLE else second,
                         "label_column": label, "task": None}
    if chosen["text_column_b"] is not None:
        task = st.selectbox("GLUE task of these pairs", [OWN_TASK, *PAIR_TASKS], key="train-task",
                            help="If the labels are the classes of one of GLUE's pair tasks (e.g. entailment / "
                                 "not_entailment for RTE), name it: the classes get GLUE's ids and the run is also "
                                 "scored on the task's AdvGLUE sets. Every class of the task needs examples.")
        chosen["task"] = None if task == OWN_TASK else task
    return chosen


def order_choice(summary: UploadSummary) -> tuple[list[str] | None, str | None]:
    """For a CSV whose labels are names: the classes' id order (sorted unless the user writes another) and why
    it cannot be used, if it cannot. None for the sorted order, so the config says only what was chosen."""
    if not summary.named_labels or summary.columns.get("task"):   # a declared task fixes the order
        return None, None
    typed = st.text_input("Class order (ids 0, 1, …)", value=", ".join(summary.label_names), key="train-label-order",
                          help="The label names in the order of their class ids, comma-separated: every label of "
                               "the file once. Sorted by name unless you change it.")
    order = [name.strip() for name in typed.split(",")]
    if order == summary.label_names:
        return None, None
    try:
        read_csv(summary.path, label_order=order, **summary.columns)
    except DataError as err:
        problem = markdown_text(f"class order: {err}")
        st.error(problem, icon=":material/error:")
        return None, problem
    return order, None


def show_upload(filename: str, summary: UploadSummary) -> None:
    """What was read: size, classes and encoding (a warning when it was guessed), the first rows with their
    label, and every class's count."""
    filename = markdown_text(filename)
    pairs = (f" of sentence pairs ({markdown_text(' / '.join(summary.segment_names))})" if summary.segment_names
             else "")
    st.success(f"{filename}: {summary.rows:,} rows{pairs}, {summary.num_labels} classes, "
               f"{ENCODING_NAMES[summary.encoding]}.")
    guessed = encoding_note(summary.encoding)
    if guessed:
        st.warning(f"{filename}: {guessed}.", icon=":material/translate:")
    width = "medium" if summary.segment_names else "large"     # both texts of a pair in view, side by side
    st.dataframe(summary.preview, hide_index=True,
                 column_config={"label": st.column_config.TextColumn(width=None if summary.segment_names else "small"),
                                **{name: st.column_config.TextColumn(width=width)
                                   for name in summary.preview.columns if name != "label"}})
    counts = summary.class_counts.itertuples(index=False)
    st.caption("Examples per class: " + " · ".join(
        f"{markdown_text(label)}: {examples:,} ({share:.0%})" for label, examples, share in counts))


def fit_to_data(data: Choice, budget: dict[str, Any]) -> dict[str, Any]:
    """For an uploaded CSV: say how many rows train and how many are held out as dev, and cut the training size
    to the rows there are, so the queued config says what is used."""
    if not data.class_sizes:
        return budget
    rows = sum(data.class_sizes)
    held_out = held_out_count(data.class_sizes, budget["dev_fraction"])
    sizes = split_sizes_text(rows, held_out, budget["train_size"])
    st.info(f"{sizes[0].upper()}{sizes[1:]}.", icon=":material/dataset:")
    if budget["train_size"] is None:
        return budget
    return {**budget, "train_size": min(budget["train_size"], rows - held_out)}


def model_choice() -> Choice:
    """A known model, or a local folder / hub id checked for use."""
    models = known_models()
    model_choice = st.radio("Model", [*models, OTHER_MODEL], horizontal=True, key="train-model",
                            format_func=lambda m: "local folder / hub id" if m == OTHER_MODEL else m,
                            help="\n\n".join(f"**{k}**: {v}" for k, v in models.items()))
    model, model_problem = model_choice, None
    if model_choice == OTHER_MODEL:
        model = st.text_input("Model folder or hub id", key="train-model-path",
                              placeholder="/path/to/model-folder or org/model-name").strip()
        problem = custom_model_problem(model)
        model_problem = markdown_text(problem) if problem else None
        if model_problem and model:
            st.warning(model_problem)
    else:
        st.caption(models[model_choice])
    return Choice(model, model_problem)


def method_choice() -> tuple[str, Preset | None, dict[str, Any]]:
    """The fine-tuning method, its preset (if it has presets and one is chosen) and its settings, which start
    at the preset's values."""
    methods = registry()
    method = st.selectbox("Fine-tuning method", list(methods), key="train-method",
                          format_func=lambda m: methods[m].title)
    st.caption(methods[method].summary_line)
    preset = preset_choice(methods[method])
    settings = settings_form(methods[method], key=_keyed("train-settings", preset),
                             start=preset.settings if preset else None)
    return method, preset, settings


def preset_choice(method_cls: type[Method]) -> Preset | None:
    """One of the method's named presets, or none (RobustLab's defaults), and where its numbers come from."""
    if not method_cls.presets:
        return None
    names = [NO_PRESET, *(p.name for p in method_cls.presets)]
    name = st.selectbox("Preset", names, key=f"train-preset-{method_cls.name}",
                        format_func=lambda n: "none: RobustLab's defaults" if n == NO_PRESET else n,
                        help="A preset fills in the settings below and the training options its source fixes "
                             "(learning rate, batch, weight decay, warm-up, Adam beta2, clipping, length), never "
                             "the budget or the seed. Anything you change afterwards wins.")
    if name == NO_PRESET:
        return None
    preset = method_cls.preset(name)
    fixed = ", ".join(f"{k.replace('_', ' ')} {v:g}" for k, v in preset.training.items())
    st.caption(f"From {preset.source}." + (f" Training options it sets: {fixed}." if fixed else ""))
    return preset


def _keyed(key: str, preset: Preset | None) -> str:
    """A widget key per preset, so choosing a preset starts its inputs at the preset's values."""
    return key if preset is None else f"{key}-{preset.name}"


def training_budget(uploaded: bool, model: str, preset: Preset | None = None) -> dict[str, Any]:
    """Size, epochs, batch, learning rate (starting at `model`'s default), seed, length, and (under Advanced)
    evaluation and regularisation: TrainConfig's fields by name. A preset's training options are the starting
    values of the inputs it concerns; those with no input here (Adam beta2, clipping) are passed on as they are."""
    start = {"batch_size": defaults.batch_size, "lr": default_lr(model), "max_length": defaults.max_length,
             "warmup_ratio": defaults.warmup_ratio, "weight_decay": defaults.weight_decay,
             **(preset.training if preset else {})}
    whole = st.session_state.get("train-whole", False)
    c1, c2, c3 = st.columns([0.4, 0.3, 0.3])
    train_size = int(c1.number_input("Training examples", min_value=1, value=defaults.train_size, step=100,
                                     key="train-size", disabled=whole,
                                     help="A seeded random sample of the training set."))
    epochs = int(c2.number_input("Epochs", min_value=1, max_value=100, value=defaults.epochs, key="train-epochs"))
    batch_size = int(c3.number_input("Batch size", min_value=1, value=start["batch_size"],
                                     key=_keyed("train-batch", preset)))
    if st.checkbox("Use the whole training set", key="train-whole",
                   help="Train on every example (67k for SST-2: hours on a CPU)."):
        train_size = None
    c1, c2, c3 = st.columns(3)
    start_lr = start["lr"]   # keyed by it, so choosing another model starts from that model's rate
    lr = float(c1.number_input("Learning rate", min_value=0.0, max_value=0.5, value=start_lr, step=1e-5,
                               format="%g", key=_keyed(f"train-lr-{start_lr:g}", preset),
                               help=f"Peak AdamW learning rate (linear warm-up then linear decay). Starts at the "
                                    f"preset's rate if one is chosen, else the model's default: "
                                    f"{default_lr_text()}."))
    seed = int(c2.number_input("Seed", min_value=0, value=defaults.seed, key="train-seed",
                               help="Fixes the sample, the classifier head and the batch order."))
    max_length = int(c3.number_input("Max length", min_value=8, max_value=512, value=start["max_length"],
                                     key=_keyed("train-maxlen", preset),
                                     help="Tokens per sentence; longer ones are cut."))
    with st.expander("Advanced"):
        c1, c2 = st.columns(2)
        eval_every = int(c1.number_input("Evaluate every (steps)", min_value=0, value=defaults.eval_every,
                                         key="train-eval-every", help="0: about four dev evaluations per run."))
        dev_size = int(c2.number_input("Dev examples per evaluation", min_value=0, value=0, key="train-dev-size",
                                       help="0: the whole dev set. A cap makes the evaluations during training "
                                            "faster; the final score always uses the whole dev set."))
        warmup = float(c1.slider("Warm-up share of steps", 0.0, 0.5, start["warmup_ratio"], 0.05,
                                 key=_keyed("train-warmup", preset)))
        weight_decay = float(c2.number_input("Weight decay", min_value=0.0, max_value=1.0,
                                             value=start["weight_decay"], step=0.01,
                                             key=_keyed("train-wd", preset)))
        dev_fraction = float(c1.slider("Held-out share of an uploaded CSV", 0.05, 0.5, defaults.dev_fraction,
                                       0.05, key="train-dev-fraction", disabled=not uploaded))
    return {**start, "train_size": train_size, "epochs": epochs, "batch_size": batch_size, "lr": lr, "seed": seed,
            "max_length": max_length, "eval_every": eval_every, "dev_size": dev_size or None,
            "warmup_ratio": warmup, "weight_decay": weight_decay, "dev_fraction": dev_fraction}


def train_button(data: Choice, model: Choice, method: str, settings: dict[str, Any], budget: dict[str, Any]) -> None:
    """Train: queue the run (it becomes the page's run), or say why it cannot start."""
    store = get_store()
    active = [row for row in store.list() if row["status"] in ACTIVE]
    if active:
        st.info(f"{len(active)} run(s) already queued or running. A new run waits its turn: this machine "
                f"trains {jobs.max_jobs()} at a time.", icon=":material/schedule:")
    if st.button("Train", type="primary", icon=":material/play_arrow:", key="train-start"):
        config = TrainConfig(dataset=data.name, model=model.name, method=method, settings=settings,
                             label_order=data.label_order, **data.csv, **budget)
        problem = data.problem or model.problem
        if not problem:
            try:   # the train kind's own preflight: what the worker and the CLI check, refused before queueing
                job_kind("train").preflight(config.to_dict())
            except (ConfigError, SettingError) as err:
                problem = markdown_text(str(err))
        if problem:
            st.error(f"Not started: {problem}.", icon=":material/block:")
        else:
            try:
                run = jobs.submit(store, {**config.to_dict(), "environment": environment()})
            except RunError as err:   # the queue is full
                st.error(f"Not started: {markdown_text(str(err))}", icon=":material/block:")
            else:
                follow(run.id)
                st.toast(f"Run {run.id} queued", icon=":material/play_arrow:")

"""Training throughput: RobustLab's loop against Hugging Face `Trainer`, same model, data and hyperparameters.

Fine-tunes MiniLM on the same 1,024 SST-2 examples (batch 32, max length 128, 1 epoch, AdamW 5e-5,
linear warm-up 10 %, dynamic padding) with each, in one process, and prints one JSON line:
{"robustlab_eps": ..., "hf_trainer_eps": ..., "ratio": ...}. Only training time counts for both.
Usage: python benchmarks/train_throughput.py [--n 1024] [--model minilm]
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("HF_HUB_OFFLINE", "1")


def hf_trainer_eps(texts: list[str], labels: list[int], model_name: str, args: argparse.Namespace) -> float:
    import datasets
    from transformers import DataCollatorWithPadding, Trainer, TrainingArguments

    from engine.models.loading import build_classifier, load_tokenizer

    tokenizer = load_tokenizer(model_name)
    data = datasets.Dataset.from_dict({"text": texts, "label": labels}).map(
        lambda b: tokenizer(b["text"], truncation=True, max_length=args.max_length), batched=True,
        remove_columns=["text"])
    model = build_classifier(model_name, 2, seed=0)
    with tempfile.TemporaryDirectory() as out:
        training_args = TrainingArguments(
            output_dir=out, per_device_train_batch_size=args.batch_size, num_train_epochs=1, learning_rate=args.lr,
            warmup_ratio=0.1, weight_decay=0.01, max_grad_norm=1.0, lr_scheduler_type="linear", save_strategy="no",
            eval_strategy="no", logging_strategy="no", report_to=[], seed=0, dataloader_num_workers=0,
            use_cpu=not __import__("torch").cuda.is_available(), disable_tqdm=True)
        trainer = Trainer(model=model, args=training_args, train_dataset=data,
                          data_collator=DataCollatorWithPadding(tokenizer))
        metrics = trainer.train().metrics
    return float(metrics["train_samples_per_second"])


def robustlab_eps(model_name: str, args: argparse.Namespace) -> float:
    from engine.training.config import TrainConfig
    from engine.training.train import train

    config = TrainConfig(model=model_name, train_size=args.n, epochs=1, batch_size=args.batch_size, lr=args.lr,
                         max_length=args.max_length, eval_every=10**9, dev_size=32)
    return float(train(config)["train_examples_per_second"])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=1024)
    parser.add_argument("--model", default="minilm")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--max-length", type=int, default=128)
    parser.add_argument("--lr", type=float, default=5e-5)
    args = parser.parse_args()

    from engine.data.registry import load_dataset

    subset = load_dataset("sst2").sample(args.n, 0)   # the exact subset RobustLab's loop draws with seed 0
    ours = robustlab_eps(args.model, args)
    theirs = hf_trainer_eps(subset.texts, subset.labels, args.model, args)
    print(json.dumps({"robustlab_eps": round(ours, 2), "hf_trainer_eps": round(theirs, 2),
                      "ratio": round(ours / theirs, 3), "n": args.n, "model": args.model}))


if __name__ == "__main__":
    main()

"""IM-BERT's implicit solver on pretrained MiniLM: for each K, every layer solved with K steps, the relative
residual ||z - x - h F(z)|| / ||z|| each layer ends at, on the first 16 AdvGLUE-SST2 sentences (eval mode;
the encoder is the pretrained one, the untrained head plays no part). The numbers behind the K table of
docs/methods.md (IM-BERT section). Each K is its own forward pass, because a layer's input is what the
layers before it solved with the same K.

    python benchmarks/im_bert_solver.py --K 0,1,2,4,6,8,10 [--set exact_grad=true] [--json]
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--K", default="0,1,2,4,6,8,10", help="solver steps per layer, comma-separated")
    parser.add_argument("--set", action="append", default=[], metavar="NAME=VALUE", help="an IM-BERT setting")
    parser.add_argument("--sentences", type=int, default=16)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)

    import torch

    from engine.data.batching import encode, pad_batch
    from engine.data.registry import load_dataset
    from engine.methods import make_method
    from engine.methods.im_bert import solver_residuals
    from engine.models.loading import build_classifier, load_tokenizer

    settings = dict(item.split("=", 1) for item in args.set)
    tokenizer = load_tokenizer("minilm")
    texts = load_dataset("advglue-sst2").texts[:args.sentences]
    batch = pad_batch(encode(tokenizer, texts, 128), range(len(texts)), tokenizer.pad_token_id)
    rows = []
    for k in (int(v) for v in args.K.split(",")):
        method = make_method("im-bert", {**settings, "K": k})
        torch.manual_seed(0)
        model = method.prepare_model(build_classifier("minilm", 2, 0))
        start = time.perf_counter()
        trajectory = solver_residuals(model, batch)
        final = trajectory[:, -1]
        rows.append({"K": k, "final_per_layer": final.round(4).tolist(), "worst": round(float(final.max()), 4),
                     "worst_layer": int(final.argmax()) + 1,
                     "falls_at_every_step": bool((trajectory[:, 1:] <= trajectory[:, :-1]).all()),
                     "seconds": round(time.perf_counter() - start, 2)})
    if args.json:
        print(json.dumps({"settings": {**method.settings, "K": None}, "rows": rows}))
        return 0
    print(f"settings: {({**method.settings, 'K': '(each row)'})}")
    print("K    worst (layer)  per layer 1..6                               falls every step   seconds")
    for r in rows:
        layers = " ".join(f"{v:.4f}" for v in r["final_per_layer"])
        print(f"{r['K']:<4d} {r['worst']:.4f} ({r['worst_layer']})     {layers}   "
              f"{r['falls_at_every_step']!s:<17} {r['seconds']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

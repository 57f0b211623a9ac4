"""The PyTorch side of `npm run bench -- train`: the same checkpoint, adapter and batch as ours.

MoSLoRA as PEFT plus the reference MoSLoRA code would run it: frozen base weights, and on each
targeted linear layer y += s * lora_B(lora_AB(lora_A(dropout(x)))). torch.optim.AdamW. Prints one
JSON line per timed step: {"step": i, "seconds": s, "loss": l}. Run with Debian's /usr/bin/python3.
"""
import argparse
import json
import math
import os
import sys
import time

import torch
import torch.utils.checkpoint

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "scripts", "reference"))
from hf_reference import Llama, causal_lm_loss, load_model  # noqa: E402


class MoSLoRALlama(Llama):
    def __init__(self, base: Llama, targets: list, r: int, alpha: float, checkpointing: bool):
        self.__dict__.update(base.__dict__)
        self.checkpointing = checkpointing
        self.scaling_lora = alpha / r
        self.adapters = {}
        for name, weight in self.w.items():
            module = name[: -len(".weight")]
            if name.endswith(".weight") and weight.dim() == 2 and any(module.endswith("." + t) for t in targets):
                d_out, d_in = weight.shape
                a = torch.empty(r, d_in)
                torch.nn.init.kaiming_uniform_(a, a=math.sqrt(5))
                m = torch.empty(r, r)
                torch.nn.init.kaiming_uniform_(m, a=math.sqrt(5))
                b = torch.randn(d_out, r) * 0.01
                self.adapters[module] = [p.requires_grad_() for p in (a, m, b)]

    def _linear(self, x, name, bias):
        y = super()._linear(x, name, bias)
        adapter = self.adapters.get(name)
        if adapter is None:
            return y
        a, m, b = adapter
        return y + self.scaling_lora * torch.nn.functional.linear(torch.nn.functional.linear(torch.nn.functional.linear(x, a), m), b)

    def _block(self, h, i, cos, sin, mask):
        if not self.checkpointing:
            return super()._block(h, i, cos, sin, mask)
        return torch.utils.checkpoint.checkpoint(super()._block, h, i, cos, sin, mask, use_reentrant=False)

    def parameters(self):
        return [p for adapter in self.adapters.values() for p in adapter]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", required=True)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--tokens", type=int, default=256)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--rank", type=int, default=16)
    parser.add_argument("--targets", default="q_proj,k_proj,v_proj,up_proj,down_proj")
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--checkpointing", action="store_true", help="recompute each layer in the backward pass")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    base = load_model(args.model)
    for weight in base.w.values():
        weight.requires_grad_(False)
    model = MoSLoRALlama(base, args.targets.split(","), args.rank, 2 * args.rank, args.checkpointing)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=0.0)
    vocab = base.c["vocab_size"]
    generator = torch.Generator().manual_seed(1)
    ids = torch.randint(0, vocab, (args.batch, args.tokens), generator=generator)
    for step in range(args.warmup + args.steps):
        started = time.perf_counter()
        loss = causal_lm_loss(model.logits(ids), ids)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        seconds = time.perf_counter() - started
        if step >= args.warmup:
            print(json.dumps({"step": step, "seconds": seconds, "loss": loss.item()}), flush=True)


if __name__ == "__main__":
    main()

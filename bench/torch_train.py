"""The PyTorch side of `npm run bench -- train`: the same checkpoint, adapter and batch as ours.

Two implementations (--impl):
  reference  frozen base weights through scripts/reference/hf_reference.py (a torch re-implementation
             of transformers' Llama; runs on Debian's python3-torch, which has no transformers), and on
             each targeted linear y += s * lora_B(lora_AB(lora_A(x))).
  peft       transformers' LlamaForCausalLM with a PEFT LoRA adapter (dropout 0.05, as ours), the
             mixer a small nn.Linear(r, r) between lora_A and lora_B, as the reference MoSLoRA code
             puts it. Needs torch, transformers and peft.
Gradients clipped to global norm 1 (as ours trains by default), then torch.optim.AdamW. Prints a JSON line of versions, then one per timed step: {"step": i, "seconds": s,
"loss": l}. --device cuda times a GPU step to its end (torch.cuda.synchronize).
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


class MixedDown(torch.nn.Module):
    """lora_A followed by the r x r mixer, standing where PEFT keeps lora_A (it reads .weight)."""

    def __init__(self, down: torch.nn.Linear):
        super().__init__()
        self.down = down
        r = down.out_features
        self.mixer = torch.nn.Linear(r, r, bias=False, device=down.weight.device, dtype=down.weight.dtype)
        torch.nn.init.kaiming_uniform_(self.mixer.weight, a=math.sqrt(5))

    @property
    def weight(self):
        return self.down.weight

    def forward(self, x):
        return self.mixer(self.down(x))


def peft_model(model_dir: str, targets: list, r: int, device: str, checkpointing: bool):
    import peft
    import transformers
    from peft.tuners.lora import LoraLayer

    model = transformers.AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32).to(device)
    if checkpointing:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    config = peft.LoraConfig(r=r, lora_alpha=2 * r, lora_dropout=0.05, target_modules=targets, task_type="CAUSAL_LM")
    model = peft.get_peft_model(model, config)
    for module in model.modules():
        if isinstance(module, LoraLayer):
            module.lora_A["default"] = MixedDown(module.lora_A["default"])
            # B starts non-zero, as ours in the benchmark, so every product has work to do
            torch.nn.init.normal_(module.lora_B["default"].weight, std=0.01)
    model.train()
    versions = {"torch": torch.__version__, "transformers": transformers.__version__, "peft": peft.__version__}
    return model, [p for p in model.parameters() if p.requires_grad], versions


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
    parser.add_argument("--impl", choices=["reference", "peft"], default="reference")
    parser.add_argument("--device", default="cpu", help="cpu or cuda (peft only)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    targets = args.targets.split(",")
    if args.impl == "peft":
        model, params, versions = peft_model(args.model, targets, args.rank, args.device, args.checkpointing)
        vocab = model.config.vocab_size

        def step_loss(ids):
            return model(input_ids=ids, labels=ids).loss
    else:
        base = load_model(args.model)
        for weight in base.w.values():
            weight.requires_grad_(False)
        reference = MoSLoRALlama(base, targets, args.rank, 2 * args.rank, args.checkpointing)
        params, versions, vocab = reference.parameters(), {"torch": torch.__version__}, base.c["vocab_size"]

        def step_loss(ids):
            return causal_lm_loss(reference.logits(ids), ids)
    trainable = sum(p.numel() for p in params)
    print(json.dumps({"impl": args.impl, "device": args.device, "trainable": trainable, **versions}), flush=True)
    optimizer = torch.optim.AdamW(params, lr=1e-4, weight_decay=0.0)
    generator = torch.Generator().manual_seed(1)
    ids = torch.randint(0, vocab, (args.batch, args.tokens), generator=generator).to(args.device)
    for step in range(args.warmup + args.steps):
        started = time.perf_counter()
        loss = step_loss(ids)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        value = loss.item()  # waits for the step to finish on a GPU
        seconds = time.perf_counter() - started
        if step >= args.warmup:
            print(json.dumps({"step": step, "seconds": seconds, "loss": value}), flush=True)


if __name__ == "__main__":
    main()

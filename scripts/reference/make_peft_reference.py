"""Reference logits for an adapter fixture, from transformers and stock PEFT.

    python3 scripts/reference/make_peft_reference.py FIXTURE_DIR BASE_MODEL_DIR
    (needs torch, transformers and peft)

FIXTURE_DIR holds `adapter/` (MoSLoRA Studio's native adapter: PEFT names plus the mixer as
`lora_AB`) and `peft/` (its export, plain LoRA with A' = M.A). This
  1. loads `peft/` with PeftModel.from_pretrained over the base and checks that every tensor of the
     file is in the model, unchanged (stock PEFT took it whole);
  2. loads `adapter/` the way the reference MoSLoRA code runs it: stock PEFT for lora_A and lora_B,
     and the mixer as an nn.Linear(r, r) between them (y += s * lora_B(lora_AB(lora_A(x))));
  3. merges `peft/` into the base (merge_and_unload);
and writes FIXTURE_DIR/reference.safetensors (`logits` of (1), float32 [2, 12, vocab]) and
FIXTURE_DIR/reference.json (the input ids, the versions, and how far (2) and (3) are from (1)).
Exits 1 if (2) or (3) differ from (1) beyond float32 rounding.
"""

import json
import os
import sys

import peft
import torch
import transformers
from peft.tuners.lora import LoraLayer
from safetensors.torch import load_file, save_file

TOLERANCE = 1e-5


class MixedDown(torch.nn.Module):
    """lora_A, then the mixer: where the reference MoSLoRA code applies lora_AB."""

    def __init__(self, down: torch.nn.Linear, mixer: torch.Tensor):
        super().__init__()
        self.down = down
        self.mixer = torch.nn.Linear(mixer.shape[1], mixer.shape[0], bias=False)
        self.mixer.weight.data.copy_(mixer)

    @property
    def weight(self):
        return self.down.weight

    def forward(self, x):
        return self.mixer(self.down(x))


def base_model(base_dir: str):
    return transformers.AutoModelForCausalLM.from_pretrained(base_dir, dtype=torch.float32, attn_implementation="eager").eval()


def logits_of(model, ids: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return model(input_ids=ids).logits


def stock_peft(base_dir: str, adapter_dir: str):
    """PeftModel.from_pretrained, and a check that it holds every tensor of the file unchanged."""
    model = peft.PeftModel.from_pretrained(base_model(base_dir), adapter_dir).eval()
    state = model.state_dict()
    saved = load_file(os.path.join(adapter_dir, "adapter_model.safetensors"))
    for name, tensor in saved.items():
        loaded = name.replace(".weight", ".default.weight")
        if loaded not in state:
            sys.exit(f"{adapter_dir}: {name} was not loaded by PEFT (no {loaded} in the model)")
        if not torch.equal(state[loaded], tensor):
            sys.exit(f"{adapter_dir}: {name} changed on loading")
    return model


def reference_moslora(base_dir: str, adapter_dir: str):
    """The native adapter as the reference MoSLoRA code runs it."""
    tensors = load_file(os.path.join(adapter_dir, "adapter_model.safetensors"))
    config = json.load(open(os.path.join(adapter_dir, "adapter_config.json")))
    lora = peft.LoraConfig(
        r=config["r"], lora_alpha=config["lora_alpha"], target_modules=config["target_modules"],
        lora_dropout=0.0, use_rslora=config["use_rslora"], fan_in_fan_out=config["fan_in_fan_out"],
    )
    model = peft.get_peft_model(base_model(base_dir), lora).eval()
    mixed = 0
    for name, module in model.named_modules():
        if not isinstance(module, LoraLayer):
            continue
        module.lora_A["default"].weight.data.copy_(tensors[f"{name}.lora_A.weight"])
        module.lora_B["default"].weight.data.copy_(tensors[f"{name}.lora_B.weight"])
        module.lora_A["default"] = MixedDown(module.lora_A["default"], tensors[f"{name}.lora_AB.weight"])
        mixed += 1
    expected = sum(1 for name in tensors if name.endswith(".lora_AB.weight"))
    if mixed != expected:
        sys.exit(f"{adapter_dir}: {expected} mixers in the file, {mixed} adapted modules in the model")
    return model


def main() -> None:
    fixture, base_dir = sys.argv[1], sys.argv[2]
    reference = json.load(open(os.path.join(base_dir, "reference.json")))
    ids = torch.tensor(reference["input_ids"])
    exported = stock_peft(base_dir, os.path.join(fixture, "peft"))
    logits = logits_of(exported, ids)
    native = logits_of(reference_moslora(base_dir, os.path.join(fixture, "adapter")), ids)
    merged = logits_of(exported.merge_and_unload(), ids)
    base = logits_of(base_model(base_dir), ids)
    report = {
        "input_ids": reference["input_ids"],
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "peft": peft.__version__,
        "native_with_mixer_vs_peft_max_abs_diff": float((native - logits).abs().max()),
        "merge_and_unload_vs_peft_max_abs_diff": float((merged - logits).abs().max()),
        "adapter_vs_base_max_abs_diff": float((logits - base).abs().max()),
    }
    save_file({"logits": logits.contiguous()}, os.path.join(fixture, "reference.safetensors"), metadata={"format": "pt"})
    with open(os.path.join(fixture, "reference.json"), "w") as f:
        json.dump(report, f, indent=2)
        f.write("\n")
    print(json.dumps({k: v for k, v in report.items() if k != "input_ids"}))
    if report["native_with_mixer_vs_peft_max_abs_diff"] > TOLERANCE or report["merge_and_unload_vs_peft_max_abs_diff"] > TOLERANCE:
        sys.exit(1)


if __name__ == "__main__":
    main()

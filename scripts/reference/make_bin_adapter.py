"""A MoSLoRA adapter in the reference code's layout, saved with torch.save as adapter_model.bin.

    /usr/bin/python3 scripts/reference/make_bin_adapter.py [OUT_DIR]
    (needs only torch: Debian's python3-torch)

The reference MoSLoRA code (wutaiqiang/MoSLoRA, a fork of PEFT) adds to each LoRA layer a mixer
`lora_AB = nn.Linear(r, r)` between lora_A and lora_B when adapter_config.json says
"lora_use_mixer": true (its get_weight_A is lora_AB.weight @ lora_A.weight), and saves the state
dict with torch.save(state_dict, "adapter_model.bin"): a plain dict of
base_model.model.<module>.lora_A.weight, .lora_AB.weight and .lora_B.weight, pickled with
protocol 2 inside torch's zip format.

This writes such an adapter for examples/tiny-model (q_proj and v_proj of its 4 layers, r 4,
alpha 8) with values drawn as a trained adapter's would look (seeded), into OUT_DIR (default
test/fixtures/peft/tiny-bin-moslora):
  adapter/adapter_model.bin, adapter/adapter_config.json  the adapter, as the fork saves it
  tensors.safetensors   the same tensors, contiguous, each in its own dtype: what reading the .bin gives
  peft.safetensors      its plain-LoRA export in float32: lora_A' = lora_AB @ lora_A (in float64,
                        then rounded), lora_B' = lora_B
The state dict also exercises what torch's format allows beyond the fork's own files: layer 1's
tensors are F16 and layer 2's BF16 (a real adapter has one dtype), layer 3's q_proj lora_B is a
transposed view (strides (1, 128): not contiguous), and layer 3's v_proj lora_A and lora_AB are
views at offsets 7 and 519 into one shared storage.
"""

import json
import math
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from safetensors_io import save_file  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MODEL = os.path.join(REPO, "examples", "tiny-model")
R, ALPHA = 4, 8


def module_shapes() -> dict:
    """{module name: (d_out, d_in)} for q_proj and v_proj of every layer, from config.json."""
    config = json.load(open(os.path.join(MODEL, "config.json")))
    hidden, head_dim = config["hidden_size"], config["head_dim"]
    shapes = {}
    for layer in range(config["num_hidden_layers"]):
        shapes[f"model.layers.{layer}.self_attn.q_proj"] = (config["num_attention_heads"] * head_dim, hidden)
        shapes[f"model.layers.{layer}.self_attn.v_proj"] = (config["num_key_value_heads"] * head_dim, hidden)
    return shapes


def factors(d_out: int, d_in: int) -> tuple:
    """lora_A as nn.Linear's kaiming-uniform init (the fork's), a kaiming-uniform mixer, and a
    nonzero lora_B (after training it is no longer its zero init)."""
    bound = 1 / math.sqrt(d_in)
    a = torch.empty(R, d_in).uniform_(-bound, bound)
    ab = torch.empty(R, R).uniform_(-1 / math.sqrt(R), 1 / math.sqrt(R))
    b = torch.randn(d_out, R) * 0.05
    return a, ab, b


def main() -> None:
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(REPO, "test", "fixtures", "peft", "tiny-bin-moslora")
    adapter_dir = os.path.join(out, "adapter")
    os.makedirs(adapter_dir, exist_ok=True)
    torch.manual_seed(0)
    state, folded = {}, {}
    for module, (d_out, d_in) in module_shapes().items():
        a, ab, b = factors(d_out, d_in)
        key = f"base_model.model.{module}"
        folded[f"{key}.lora_A.weight"] = (ab.double() @ a.double()).float()
        folded[f"{key}.lora_B.weight"] = b.clone()
        layer = int(module.split(".")[2])
        if layer == 1:
            a, ab, b = a.half(), ab.half(), b.half()
        elif layer == 2:
            a, ab, b = a.bfloat16(), ab.bfloat16(), b.bfloat16()
        elif layer == 3 and module.endswith("q_proj"):
            b = b.t().contiguous().t()  # same values, strides (1, d_out)
            assert not b.is_contiguous()
        elif layer == 3:
            shared = torch.randn(7 + R * d_in + R * R + 5)
            shared[7 : 7 + R * d_in] = a.flatten()
            shared[7 + R * d_in : 7 + R * d_in + R * R] = ab.flatten()
            a = shared[7 : 7 + R * d_in].view(R, d_in)
            ab = shared[7 + R * d_in : 7 + R * d_in + R * R].view(R, R)
        if layer in (1, 2):
            # the export reads the stored (rounded) values, so the expected fold uses them too
            folded[f"{key}.lora_A.weight"] = (ab.double() @ a.double()).float()
            folded[f"{key}.lora_B.weight"] = b.float()
        state[f"{key}.lora_A.weight"] = a
        state[f"{key}.lora_AB.weight"] = ab
        state[f"{key}.lora_B.weight"] = b
    torch.save(state, os.path.join(adapter_dir, "adapter_model.bin"))
    # The fork's LoraConfig fields, as its save_pretrained writes them (sorted keys, indent 2).
    config = {
        "base_model_name_or_path": "../../../../examples/tiny-model",
        "bias": "none",
        "enable_lora": None,
        "fan_in_fan_out": False,
        "inference_mode": True,
        "lora_alpha": ALPHA,
        "lora_dropout": 0.05,
        "lora_use_mixer": True,
        "merge_weights": False,
        "modules_to_save": None,
        "peft_type": "LORA",
        "r": R,
        "target_modules": ["q_proj", "v_proj"],
        "task_type": "CAUSAL_LM",
    }
    with open(os.path.join(adapter_dir, "adapter_config.json"), "w") as f:
        json.dump(config, f, indent=2, sort_keys=True)
        f.write("\n")
    save_file({name: t.contiguous() for name, t in state.items()}, os.path.join(out, "tensors.safetensors"))
    save_file(folded, os.path.join(out, "peft.safetensors"))
    reloaded = torch.load(os.path.join(adapter_dir, "adapter_model.bin"))
    for name, t in state.items():
        assert torch.equal(reloaded[name], t) and reloaded[name].stride() == t.stride(), name
    print(f"wrote {len(state)} tensors for {len(state) // 3} modules to {out}")


if __name__ == "__main__":
    main()

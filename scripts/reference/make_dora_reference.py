"""Reference logits for a DoRA adapter fixture, from PEFT's DoRA layer re-implemented in plain torch.

    /usr/bin/python3 scripts/reference/make_dora_reference.py FIXTURE_DIR BASE_MODEL_DIR
    (needs only torch: Debian's python3-torch; PEFT and transformers cannot be installed here)

FIXTURE_DIR holds `adapter/` (MoSLoRA Studio's native adapter with use_dora: lora_A, lora_B, the
mixer lora_AB and lora_magnitude_vector) and `peft/` (its export: plain LoRA with A' = M.A, the
magnitudes, "use_dora": true). The base model runs as hf_reference.py computes it (transformers'
eager code paths), each adapted linear module as PEFT computes a LoRA layer with use_dora in
evaluation, following, operation by operation,
  src/peft/tuners/lora/layer.py     Linear.forward: result = base_layer(x), then the variant
  src/peft/tuners/lora/variants.py  DoraLinearVariant.forward: without dropout (eval) the base
                                    result is reused; merge_safe: the merged weight
  src/peft/tuners/lora/dora.py      DoraLinearLayer.get_weight_norm (the norm of
                                    transpose(W, fan_in_fan_out) + s.lora_weight over dim 1, per
                                    output feature), forward: (m/|W + s.BA| - 1).(base result -
                                    bias) + m/|W + s.BA|.lora_B(lora_A(x)).s, the norm detached
of huggingface/peft as of commits d20332ed (dora.py) and b921e124 (variants.py). This
  1. runs `peft/` (LoRA with DoRA, as PeftModel would load it);
  2. runs `adapter/` with the mixer between lora_A and lora_B, as the reference MoSLoRA code
     applies lora_AB (lora_B(lora_AB(lora_A(x)))), and DoRA on top;
  3. merges `peft/` into the base weights as merge_safe does, and runs the merged model;
and writes FIXTURE_DIR/reference.safetensors (`logits` of (1), float32 [2, 12, vocab]) and
FIXTURE_DIR/reference.json (the input ids, the versions, how far (2) and (3) are from (1), and
how far the adapter moves the logits and the magnitudes from the base's norms).
Exits 1 if (2) or (3) differ from (1) beyond float32 rounding, or if a tensor of a file is unused.
"""

import json
import os
import sys

import torch
import torch.nn.functional as F

from hf_reference import GPT2, Llama, load_model
from safetensors_io import load_file, save_file

TOLERANCE = 1e-5
PREFIX = "base_model.model."


def transpose(weight: torch.Tensor, fan_in_fan_out: bool) -> torch.Tensor:
    """peft.utils.other.transpose."""
    return weight.T if fan_in_fan_out else weight


class DoraModule:
    """One adapted module: lora_A [r, in], optional mixer lora_AB [r, r], lora_B [out, r], magnitude [out]."""

    def __init__(self, tensors: dict, used: set, module: str, scaling: float, fan_in_fan_out: bool, mixer: bool):
        def take(suffix: str) -> torch.Tensor:
            name = f"{PREFIX}{module}.{suffix}"
            if name not in tensors:
                sys.exit(f"{module}: no tensor {name}")
            used.add(name)
            return tensors[name].to(torch.float32)

        self.lora_A = take("lora_A.weight")
        self.lora_AB = take("lora_AB.weight") if mixer else None
        self.lora_B = take("lora_B.weight")
        self.magnitude = take("lora_magnitude_vector")
        self.scaling = scaling
        self.fan_in_fan_out = fan_in_fan_out

    def lora(self, x: torch.Tensor) -> torch.Tensor:
        """lora_B(lora_AB(lora_A(x))): the nn.Linear layers, bias-free."""
        h = F.linear(x, self.lora_A)
        if self.lora_AB is not None:
            h = F.linear(h, self.lora_AB)
        return F.linear(h, self.lora_B)

    def lora_weight(self, dtype) -> torch.Tensor:
        # DoraLinearLayer.forward: lora_B(lora_A(x_eye)).T rather than lora_B.weight @ lora_A.weight
        x_eye = torch.eye(self.lora_A.shape[1], dtype=dtype)
        return self.lora(x_eye).T

    def weight_norm(self, weight: torch.Tensor, lora_weight: torch.Tensor, scaling: float) -> torch.Tensor:
        """DoraLinearLayer.get_weight_norm."""
        weight = transpose(weight, self.fan_in_fan_out)
        weight = weight + scaling * lora_weight
        return torch.linalg.norm(weight, dim=1).to(weight.dtype)

    def forward(self, x: torch.Tensor, weight: torch.Tensor, bias, result: torch.Tensor) -> torch.Tensor:
        """DoraLinearVariant.forward in eval (dropout not applied: base_result = result), then DoraLinearLayer.forward."""
        lora_weight = self.lora_weight(x.dtype)
        weight_norm = self.weight_norm(weight, lora_weight.detach(), self.scaling).detach()
        mag_norm_scale = (self.magnitude / weight_norm).view(1, -1)
        lora_result = self.lora(x)
        base_result = result - bias if bias is not None else result
        result_dora = (mag_norm_scale - 1) * base_result + mag_norm_scale * lora_result * self.scaling
        return result + result_dora

    def merged(self, weight: torch.Tensor) -> torch.Tensor:
        """DoraLinearVariant.merge_safe (get_delta_weight: transpose(B @ A, fan_in_fan_out) * scaling)."""
        delta_weight = transpose(self.lora_weight(weight.dtype), self.fan_in_fan_out) * self.scaling
        weight_norm = self.weight_norm(weight, transpose(delta_weight, self.fan_in_fan_out), scaling=1).detach()
        dora_factor = self.magnitude / weight_norm
        dora_factor = transpose(dora_factor.view(-1, 1), self.fan_in_fan_out)
        return dora_factor * (weight + delta_weight)


def read_adapter(adapter_dir: str, mixer: bool) -> tuple[dict, dict]:
    config = json.load(open(os.path.join(adapter_dir, "adapter_config.json")))
    if config.get("use_dora") is not True:
        sys.exit(f"{adapter_dir}: adapter_config.json does not set use_dora: true")
    if config.get("rank_pattern") or config.get("alpha_pattern"):
        sys.exit(f"{adapter_dir}: rank_pattern / alpha_pattern are not supported here")
    r, alpha = config["r"], config["lora_alpha"]
    scaling = alpha / r ** 0.5 if config.get("use_rslora") else alpha / r
    tensors = load_file(os.path.join(adapter_dir, "adapter_model.safetensors"))
    modules = sorted({name[len(PREFIX):].rsplit(".lora_", 1)[0] for name in tensors})
    used: set = set()
    adapted = {m: DoraModule(tensors, used, m, scaling, config["fan_in_fan_out"], mixer) for m in modules}
    if used != set(tensors):
        sys.exit(f"{adapter_dir}: tensors not used: {sorted(set(tensors) - used)}")
    return adapted, config


def with_adapter(model, adapted: dict):
    """The model with each adapted module's linear layer replaced by PEFT's LoRA layer with DoRA."""
    if isinstance(model, Llama):
        def linear(x, name, bias):
            weight, b = model.w[name + ".weight"], model.w[name + ".bias"] if bias else None
            result = F.linear(x, weight, b)
            return adapted[name].forward(x, weight, b, result) if name in adapted else result
        model._linear = linear
    elif isinstance(model, GPT2):
        plain = model._conv1d

        def conv1d(x, name):
            result = plain(x, name)
            return adapted[name].forward(x, model.w[name + ".weight"], model.w[name + ".bias"], result) if name in adapted else result
        model._conv1d = conv1d
    else:
        sys.exit(f"unsupported model {type(model).__name__}")
    missing = [name for name in adapted if name + ".weight" not in model.w]
    if missing:
        sys.exit(f"modules the model does not have: {missing}")
    return model


def logits_of(model, ids: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return model.logits(ids)


def main() -> None:
    fixture, base_dir = sys.argv[1], sys.argv[2]
    reference = json.load(open(os.path.join(base_dir, "reference.json")))
    ids = torch.tensor(reference["input_ids"])
    exported, _ = read_adapter(os.path.join(fixture, "peft"), mixer=False)
    native, _ = read_adapter(os.path.join(fixture, "adapter"), mixer=True)
    logits = logits_of(with_adapter(load_model(base_dir), exported), ids)
    native_logits = logits_of(with_adapter(load_model(base_dir), native), ids)
    merged_model = load_model(base_dir)
    with torch.no_grad():
        for name, module in exported.items():
            merged_model.w[name + ".weight"] = module.merged(merged_model.w[name + ".weight"])
    merged = logits_of(merged_model, ids)
    base_model = load_model(base_dir)
    base = logits_of(base_model, ids)
    moved = max(
        float((m.magnitude - torch.linalg.norm(transpose(base_model.w[name + ".weight"], m.fan_in_fan_out), dim=1)).abs().max())
        for name, m in exported.items()
    )
    report = {
        "input_ids": reference["input_ids"],
        "torch": torch.__version__,
        "peft": "DoRA re-implemented from huggingface/peft's lora/layer.py, variants.py (b921e124) and dora.py (d20332ed)",
        "native_with_mixer_vs_peft_max_abs_diff": float((native_logits - logits).abs().max()),
        "merged_vs_peft_max_abs_diff": float((merged - logits).abs().max()),
        "adapter_vs_base_max_abs_diff": float((logits - base).abs().max()),
        "magnitude_vs_base_norm_max_abs_diff": moved,
    }
    save_file({"logits": logits.contiguous()}, os.path.join(fixture, "reference.safetensors"), metadata={"format": "pt"})
    with open(os.path.join(fixture, "reference.json"), "w") as f:
        json.dump(report, f, indent=2)
        f.write("\n")
    print(json.dumps({k: v for k, v in report.items() if k != "input_ids"}))
    if report["native_with_mixer_vs_peft_max_abs_diff"] > TOLERANCE or report["merged_vs_peft_max_abs_diff"] > TOLERANCE:
        sys.exit(1)


if __name__ == "__main__":
    main()

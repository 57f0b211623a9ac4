"""Reference forward passes of LlamaForCausalLM (also Mistral), Qwen2ForCausalLM and
GPT2LMHeadModel in plain torch, loading a Hugging Face model folder (config.json + safetensors).

`transformers` cannot be installed on our build machines, so this is a re-implementation that
follows, operation by operation and in the same order, the eager code paths of
  src/transformers/models/llama/modeling_llama.py   (LlamaRMSNorm, LlamaRotaryEmbedding,
      rotate_half/apply_rotary_pos_emb, LlamaMLP, repeat_kv, eager attention, LlamaForCausalLM)
  src/transformers/models/qwen2/modeling_qwen2.py   (the same, with q/k/v bias)
  src/transformers/models/gpt2/modeling_gpt2.py     (GPT2Attention, GPT2MLP, GPT2Block, Conv1D)
  src/transformers/activations.py                   (NewGELUActivation = "gelu_new", SiLU)
  src/transformers/loss/loss_utils.py               (ForCausalLMLoss: shift by one, ignore -100)
and the defaults of configuration_{llama,mistral,qwen2,gpt2}.py. Weights are upcast to
float32, as `from_pretrained(..., torch_dtype=torch.float32)` does; there is no dropout
(eval mode), no KV cache, and no padding mask (every position attends causally).
"""

import json
import math
import os

import torch
import torch.nn.functional as F

from safetensors_io import load_checkpoint

LLAMA_DEFAULTS = {  # configuration_llama.py (the fields read here)
    "hidden_act": "silu",
    "rms_norm_eps": 1e-6,
    "tie_word_embeddings": False,
    "rope_theta": 10000.0,
    "rope_scaling": None,
    "attention_bias": False,
    "mlp_bias": False,
    "head_dim": None,
    "num_key_value_heads": None,
}
# configuration_mistral.py: no biases, a sliding window on every layer.
MISTRAL_DEFAULTS = {**LLAMA_DEFAULTS, "sliding_window": 4096}
# configuration_qwen2.py: q/k/v always biased, o_proj and MLP never; sliding window off by default.
QWEN2_DEFAULTS = {**LLAMA_DEFAULTS, "use_sliding_window": False}
GPT2_DEFAULTS = {  # configuration_gpt2.py
    "activation_function": "gelu_new",
    "layer_norm_epsilon": 1e-5,
    "scale_attn_weights": True,
    "scale_attn_by_inverse_layer_idx": False,
    "reorder_and_upcast_attn": False,
}


class Llama:
    """LlamaForCausalLM / MistralForCausalLM / Qwen2ForCausalLM (eager attention)."""

    def __init__(self, config: dict, w: dict):
        defaults = {"llama": LLAMA_DEFAULTS, "mistral": MISTRAL_DEFAULTS, "qwen2": QWEN2_DEFAULTS}
        c = {**defaults[config["model_type"]], **config}
        if c["rope_scaling"] is not None:
            raise NotImplementedError("rope_scaling is not reproduced by this reference")
        if c["hidden_act"] != "silu":
            raise NotImplementedError(f"hidden_act {c['hidden_act']}")
        self.c, self.w = c, w
        self.qwen2 = c["model_type"] == "qwen2"
        self.n_heads = c["num_attention_heads"]
        self.n_kv = c["num_key_value_heads"] or self.n_heads
        self.head_dim = c["head_dim"] or c["hidden_size"] // self.n_heads
        self.scaling = self.head_dim**-0.5
        if c.get("use_sliding_window"):
            raise NotImplementedError("Qwen2 sliding-window layers are not reproduced by this reference")
        self.window = c["sliding_window"] if c["model_type"] == "mistral" else None
        # LlamaRotaryEmbedding (default rope type): inv_freq from int64 arange cast to float
        self.inv_freq = 1.0 / (
            c["rope_theta"] ** (torch.arange(0, self.head_dim, 2, dtype=torch.int64).float() / self.head_dim)
        )

    def _linear(self, x, name, bias):
        return F.linear(x, self.w[name + ".weight"], self.w[name + ".bias"] if bias else None)

    def _rms_norm(self, x, name):
        input_dtype = x.dtype
        x = x.to(torch.float32)
        variance = x.pow(2).mean(-1, keepdim=True)
        x = x * torch.rsqrt(variance + self.c["rms_norm_eps"])
        return self.w[name + ".weight"] * x.to(input_dtype)

    def _rope(self, position_ids):
        inv = self.inv_freq[None, :, None].float().expand(position_ids.shape[0], -1, 1)
        freqs = (inv @ position_ids[:, None, :].float()).transpose(1, 2)
        emb = torch.cat((freqs, freqs), dim=-1)
        return emb.cos(), emb.sin()

    @staticmethod
    def _rotate_half(x):
        x1, x2 = x[..., : x.shape[-1] // 2], x[..., x.shape[-1] // 2 :]
        return torch.cat((-x2, x1), dim=-1)

    @staticmethod
    def _repeat_kv(x, n_rep):
        b, h, s, d = x.shape
        if n_rep == 1:
            return x
        return x[:, :, None, :, :].expand(b, h, n_rep, s, d).reshape(b, h * n_rep, s, d)

    def _attention(self, x, p, cos, sin, mask):
        b, s, _ = x.shape
        qkv_bias = self.qwen2 or self.c["attention_bias"]
        o_bias = (not self.qwen2) and self.c["attention_bias"]
        q = self._linear(x, p + "q_proj", qkv_bias).view(b, s, -1, self.head_dim).transpose(1, 2)
        k = self._linear(x, p + "k_proj", qkv_bias).view(b, s, -1, self.head_dim).transpose(1, 2)
        v = self._linear(x, p + "v_proj", qkv_bias).view(b, s, -1, self.head_dim).transpose(1, 2)
        cos, sin = cos.unsqueeze(1), sin.unsqueeze(1)
        q = (q * cos) + (self._rotate_half(q) * sin)
        k = (k * cos) + (self._rotate_half(k) * sin)
        k = self._repeat_kv(k, self.n_heads // self.n_kv)
        v = self._repeat_kv(v, self.n_heads // self.n_kv)
        attn = torch.matmul(q, k.transpose(2, 3)) * self.scaling
        attn = attn + mask
        attn = F.softmax(attn, dim=-1, dtype=torch.float32).to(q.dtype)
        out = torch.matmul(attn, v).transpose(1, 2).contiguous().reshape(b, s, -1)
        return self._linear(out, p + "o_proj", o_bias)

    def _mlp(self, x, p):
        bias = (not self.qwen2) and self.c["mlp_bias"]
        gate = self._linear(x, p + "gate_proj", bias)
        return self._linear(F.silu(gate) * self._linear(x, p + "up_proj", bias), p + "down_proj", bias)

    def _causal_mask(self, s, dtype):
        i = torch.arange(s)[:, None]
        j = torch.arange(s)[None, :]
        allowed = j <= i
        if self.window is not None:
            allowed &= i - j < self.window
        mask = torch.zeros(s, s, dtype=dtype)
        return mask.masked_fill(~allowed, torch.finfo(dtype).min)[None, None]

    def _block(self, h, i, cos, sin, mask):
        p = f"model.layers.{i}."
        h = h + self._attention(self._rms_norm(h, p + "input_layernorm"), p + "self_attn.", cos, sin, mask)
        return h + self._mlp(self._rms_norm(h, p + "post_attention_layernorm"), p + "mlp.")

    def logits(self, input_ids: torch.Tensor) -> torch.Tensor:
        b, s = input_ids.shape
        h = F.embedding(input_ids, self.w["model.embed_tokens.weight"])
        position_ids = torch.arange(s)[None].expand(b, -1)
        cos, sin = self._rope(position_ids)
        mask = self._causal_mask(s, h.dtype)
        for i in range(self.c["num_hidden_layers"]):
            h = self._block(h, i, cos, sin, mask)
        h = self._rms_norm(h, "model.norm")
        tied = self.c["tie_word_embeddings"]
        return F.linear(h, self.w["model.embed_tokens.weight" if tied else "lm_head.weight"])


class GPT2:
    """GPT2LMHeadModel (eager attention, lm_head tied to transformer.wte)."""

    def __init__(self, config: dict, w: dict):
        c = {**GPT2_DEFAULTS, **config}
        if c["activation_function"] != "gelu_new":
            raise NotImplementedError(f"activation_function {c['activation_function']}")
        if c["reorder_and_upcast_attn"]:
            raise NotImplementedError("reorder_and_upcast_attn")
        self.c, self.w = c, w
        self.n_heads = c["n_head"]

    def _layer_norm(self, x, name):
        return F.layer_norm(
            x, (x.shape[-1],), self.w[name + ".weight"], self.w[name + ".bias"], self.c["layer_norm_epsilon"]
        )

    def _conv1d(self, x, name):
        # transformers' Conv1D: weight stored [in, out], y = x @ W + b
        out_shape = x.shape[:-1] + (self.w[name + ".weight"].shape[1],)
        y = torch.addmm(self.w[name + ".bias"], x.reshape(-1, x.shape[-1]), self.w[name + ".weight"])
        return y.view(out_shape)

    @staticmethod
    def _gelu_new(x):
        return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * torch.pow(x, 3.0))))

    def _attention(self, x, p, layer_idx):
        b, s, d = x.shape
        head_dim = d // self.n_heads
        q, k, v = self._conv1d(x, p + "c_attn").split(d, dim=2)
        q, k, v = (t.view(b, s, -1, head_dim).transpose(1, 2) for t in (q, k, v))
        attn = torch.matmul(q, k.transpose(-1, -2))
        if self.c["scale_attn_weights"]:
            attn = attn / torch.full([], v.size(-1) ** 0.5, dtype=attn.dtype)
        if self.c["scale_attn_by_inverse_layer_idx"]:
            attn = attn / float(layer_idx + 1)
        causal = torch.tril(torch.ones((s, s), dtype=torch.bool)).view(1, 1, s, s)
        attn = torch.where(causal, attn, torch.tensor(torch.finfo(attn.dtype).min, dtype=attn.dtype))
        attn = F.softmax(attn, dim=-1).type(v.dtype)
        out = torch.matmul(attn, v).transpose(1, 2).reshape(b, s, -1).contiguous()
        return self._conv1d(out, p + "c_proj")

    def logits(self, input_ids: torch.Tensor) -> torch.Tensor:
        b, s = input_ids.shape
        w = self.w
        position_ids = torch.arange(s)[None]
        h = F.embedding(input_ids, w["transformer.wte.weight"]) + F.embedding(position_ids, w["transformer.wpe.weight"])
        for i in range(self.c["n_layer"]):
            p = f"transformer.h.{i}."
            h = h + self._attention(self._layer_norm(h, p + "ln_1"), p + "attn.", i)
            x = self._layer_norm(h, p + "ln_2")
            h = h + self._conv1d(self._gelu_new(self._conv1d(x, p + "mlp.c_fc")), p + "mlp.c_proj")
        h = self._layer_norm(h, "transformer.ln_f")
        return F.linear(h, w["transformer.wte.weight"])


ARCHITECTURES = {"llama": Llama, "mistral": Llama, "qwen2": Llama, "gpt2": GPT2}


def load_model(folder: str):
    with open(os.path.join(folder, "config.json")) as f:
        config = json.load(f)
    weights = {k: v.to(torch.float32) for k, v in load_checkpoint(folder).items()}
    return ARCHITECTURES[config["model_type"]](config, weights)


def causal_lm_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """ForCausalLMLoss: predict token t+1 from position t; mean over labels != -100."""
    logits = logits.float()
    shift_logits = logits[..., :-1, :].contiguous().view(-1, logits.shape[-1])
    shift_labels = labels[..., 1:].contiguous().view(-1)
    return F.cross_entropy(shift_logits, shift_labels, ignore_index=-100, reduction="mean")


@torch.no_grad()
def greedy_generate(model, prompt_ids: list, max_new_tokens: int, eos_token_ids: list) -> list:
    """generate(do_sample=False, num_beams=1) for one prompt: argmax of the last position's
    logits, appended; stops after max_new_tokens or once an EOS id has been produced."""
    ids = list(prompt_ids)
    for _ in range(max_new_tokens):
        nxt = int(model.logits(torch.tensor([ids]))[0, -1].argmax())
        ids.append(nxt)
        if nxt in eos_token_ids:
            break
    return ids[len(prompt_ids) :]

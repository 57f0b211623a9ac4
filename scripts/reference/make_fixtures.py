"""Write the tiny test checkpoints under test/fixtures/models/ with their reference outputs.

    /usr/bin/python3 scripts/reference/make_fixtures.py [out_dir]   (default test/fixtures/models)

Everything is seeded: running it twice writes the same bytes.
"""

import json
import os
import shutil
import sys

import torch

from bpe import ByteLevelBPE
from hf_reference import causal_lm_loss, greedy_generate, load_model
from safetensors_io import save_file, save_sharded

# A small original text to train the fixtures' shared tokenizer on (no external corpus needed).
TOKENIZER_CORPUS = """\
The ship left the harbour at dawn, and the sea was grey and still. The sailors
watched the water for a sign of the whale; the captain watched the sailors.
"There she blows!" cried the man at the mast-head, and every hand ran to the rail.
Three boats were lowered into the water, and the men pulled at the oars until
their arms ached. The whale rose, blew, and went down again, and the boats waited.
It was the third day of the chase. On the first day they had seen nothing but
the long swell of the ocean; on the second day a storm had driven them north.
Now the wind had fallen, the sky had cleared, and the whale was near.
In the evening the crew sat on the deck and told stories of other ships and
other seas: of ice in the south, of islands where the trees grew down to the
water, of a whale so white that men said it could not be killed.
Numbers: 1, 2, 3, 10, 42, 100, 2024, 3.14 and 1e-6; lists: a, b, c; code: x = y + 1.
User: what is the weather like today? Assistant: the weather is calm and clear.
User: how many boats were lowered? Assistant: three boats were lowered.
"""

TEST_TEXTS = [
    "The whale rose, blew, and went down again.",
    "Don't stop! It's 3.14159 -- or 42? (maybe) [x=1]; done.",
    "Line one\nLine two\n\n  indented\tTabbed   spaces   ",
    "Café naïve résumé — “quoted” 🐳🚢 ok",
    "<|im_start|>user\nHello there!<|im_end|>\n<|im_start|>assistant\n",
    "a<pad><pad>b<|endoftext|>",
]
REFERENCE_TEXTS = [
    "The captain watched the sailors, and the sailors watched the sea for a sign.",
    "Three boats were lowered into the water; the men pulled at the oars until dawn.",
]
PROMPT = "The whale"
SEQ = 12
VOCAB = 512
INIT_STD = 0.1  # initializer_range: larger than the usual 0.02 so attention is far from uniform


def tokenizer() -> ByteLevelBPE:
    return ByteLevelBPE.train([TOKENIZER_CORPUS], VOCAB)


def _normal(gen, shape, std):
    return torch.empty(shape).normal_(0.0, std, generator=gen)


def _perturbed_ones(gen, n, std=0.1):
    # transformers initialises norm weights to 1 and biases to 0; we move them off those values
    # (seeded) so that a loader which drops a norm weight or a bias fails the logits check
    return 1.0 + _normal(gen, (n,), std)


def llama_weights(c: dict, seed: int, qkv_bias: bool, norm_std: float = 0.1) -> dict:
    """Llama/Qwen2 weights by transformers' init; norm weights 1 + N(0, norm_std)."""
    gen = torch.Generator().manual_seed(seed)
    d = c["hidden_size"]
    hd = c.get("head_dim") or d // c["num_attention_heads"]
    nq, nkv, inter = c["num_attention_heads"] * hd, c["num_key_value_heads"] * hd, c["intermediate_size"]
    std = c["initializer_range"]
    embed = _normal(gen, (c["vocab_size"], d), std)
    embed[c["pad_token_id"]] = 0.0  # nn.Embedding(padding_idx=pad_token_id) zeroes that row
    w = {"model.embed_tokens.weight": embed}
    for i in range(c["num_hidden_layers"]):
        p = f"model.layers.{i}."
        for name, shape in (("q_proj", (nq, d)), ("k_proj", (nkv, d)), ("v_proj", (nkv, d)), ("o_proj", (d, nq))):
            w[p + f"self_attn.{name}.weight"] = _normal(gen, shape, std)
            if qkv_bias and name != "o_proj":
                w[p + f"self_attn.{name}.bias"] = _normal(gen, (shape[0],), std)
        for name, shape in (("gate_proj", (inter, d)), ("up_proj", (inter, d)), ("down_proj", (d, inter))):
            w[p + f"mlp.{name}.weight"] = _normal(gen, shape, std)
        w[p + "input_layernorm.weight"] = _perturbed_ones(gen, d, norm_std)
        w[p + "post_attention_layernorm.weight"] = _perturbed_ones(gen, d, norm_std)
    w["model.norm.weight"] = _perturbed_ones(gen, d, norm_std)
    if not c["tie_word_embeddings"]:
        w["lm_head.weight"] = _normal(gen, (c["vocab_size"], d), std)
    return w


def gpt2_weights(c: dict, seed: int) -> dict:
    gen = torch.Generator().manual_seed(seed)
    d, std, n_layer = c["n_embd"], c["initializer_range"], c["n_layer"]
    inner = c["n_inner"] or 4 * d
    # GPT2PreTrainedModel._init_weights: residual projections get std / sqrt(2 * n_layer)
    proj_std = std / (2 * n_layer) ** 0.5
    w = {
        "transformer.wte.weight": _normal(gen, (c["vocab_size"], d), std),
        "transformer.wpe.weight": _normal(gen, (c["n_positions"], d), std),
    }
    for i in range(n_layer):
        p = f"transformer.h.{i}."
        # Conv1D stores weight as [in_features, out_features]
        for name, shape, s in (
            ("attn.c_attn", (d, 3 * d), std),
            ("attn.c_proj", (d, d), proj_std),
            ("mlp.c_fc", (d, inner), std),
            ("mlp.c_proj", (inner, d), proj_std),
        ):
            w[p + name + ".weight"] = _normal(gen, shape, s)
            w[p + name + ".bias"] = _normal(gen, (shape[1],), std)
        for ln in ("ln_1", "ln_2"):
            w[p + ln + ".weight"] = _perturbed_ones(gen, d)
            w[p + ln + ".bias"] = _normal(gen, (d,), std)
    w["transformer.ln_f.weight"] = _perturbed_ones(gen, d)
    w["transformer.ln_f.bias"] = _normal(gen, (d,), std)
    return w


def llama_config(tok: ByteLevelBPE) -> dict:
    return {
        "architectures": ["LlamaForCausalLM"],
        "attention_bias": False,
        "attention_dropout": 0.0,
        "bos_token_id": tok.vocab["<|endoftext|>"],
        "eos_token_id": tok.vocab["<|endoftext|>"],
        "head_dim": 16,
        "hidden_act": "silu",
        "hidden_size": 64,
        "initializer_range": INIT_STD,
        "intermediate_size": 128,
        "max_position_embeddings": 128,
        "mlp_bias": False,
        "model_type": "llama",
        "num_attention_heads": 4,
        "num_hidden_layers": 2,
        "num_key_value_heads": 2,
        "pad_token_id": tok.vocab["<pad>"],
        "pretraining_tp": 1,
        "rms_norm_eps": 1e-06,
        "rope_scaling": None,
        "rope_theta": 10000.0,
        "tie_word_embeddings": False,
        "torch_dtype": "float32",
        "use_cache": True,
        "vocab_size": len(tok.vocab),
    }


def qwen2_config(tok: ByteLevelBPE) -> dict:
    return {
        "architectures": ["Qwen2ForCausalLM"],
        "attention_dropout": 0.0,
        "bos_token_id": tok.vocab["<|endoftext|>"],
        "eos_token_id": tok.vocab["<|endoftext|>"],
        "hidden_act": "silu",
        "hidden_size": 64,
        "initializer_range": INIT_STD,
        "intermediate_size": 128,
        "max_position_embeddings": 128,
        "max_window_layers": 2,
        "model_type": "qwen2",
        "num_attention_heads": 4,
        "num_hidden_layers": 2,
        "num_key_value_heads": 1,
        "pad_token_id": tok.vocab["<pad>"],
        "rms_norm_eps": 1e-06,
        "rope_scaling": None,
        "rope_theta": 1000000.0,
        "sliding_window": None,
        "tie_word_embeddings": True,
        "torch_dtype": "bfloat16",
        "use_cache": True,
        "use_sliding_window": False,
        "vocab_size": len(tok.vocab),
    }


def gpt2_config(tok: ByteLevelBPE) -> dict:
    return {
        "activation_function": "gelu_new",
        "architectures": ["GPT2LMHeadModel"],
        "attn_pdrop": 0.1,
        "bos_token_id": tok.vocab["<|endoftext|>"],
        "embd_pdrop": 0.1,
        "eos_token_id": tok.vocab["<|endoftext|>"],
        "initializer_range": INIT_STD,
        "layer_norm_epsilon": 1e-05,
        "model_type": "gpt2",
        "n_embd": 64,
        "n_head": 4,
        "n_inner": None,
        "n_layer": 2,
        "n_positions": 64,
        "reorder_and_upcast_attn": False,
        "resid_pdrop": 0.1,
        "scale_attn_by_inverse_layer_idx": False,
        "scale_attn_weights": True,
        "summary_activation": None,
        "summary_first_dropout": 0.1,
        "summary_proj_to_labels": True,
        "summary_type": "cls_index",
        "summary_use_proj": True,
        "tie_word_embeddings": True,
        "torch_dtype": "float16",
        "use_cache": True,
        "vocab_size": len(tok.vocab),
    }


def write_json(path: str, obj) -> None:
    with open(path, "w", encoding="utf-8") as f:
        json.dump(obj, f, indent=2, sort_keys=True, ensure_ascii=False)  # as PretrainedConfig writes
        f.write("\n")


def write_reference(folder: str, tok: ByteLevelBPE, config: dict) -> dict:
    """reference.json + reference.safetensors, computed by loading `folder` back."""
    model = load_model(folder)
    input_ids = torch.tensor([tok.encode(t)[:SEQ] for t in REFERENCE_TEXTS])
    assert input_ids.shape == (2, SEQ), input_ids.shape
    labels = input_ids.clone()
    labels[0, :4] = -100  # a masked "prompt"
    labels[1, -3:] = -100  # masked padding at the end
    with torch.no_grad():
        logits = model.logits(input_ids)
        loss = causal_lm_loss(logits, labels)
    prompt_ids = tok.encode(PROMPT)
    new_ids = greedy_generate(model, prompt_ids, 8, [config["eos_token_id"]])
    ref = {
        "input_ids": input_ids.tolist(),
        "labels": labels.tolist(),
        "loss": float(loss),
        "texts": TEST_TEXTS,
        "text_ids": [tok.encode(t) for t in TEST_TEXTS],
        "generated_greedy": {"prompt": PROMPT, "prompt_ids": prompt_ids, "new_ids": new_ids},
    }
    with open(os.path.join(folder, "reference.json"), "w", encoding="utf-8") as f:
        lines = (f"  {json.dumps(k)}: {json.dumps(v, ensure_ascii=False)}" for k, v in sorted(ref.items()))
        f.write("{\n" + ",\n".join(lines) + "\n}\n")
    save_file({"logits": logits.float()}, os.path.join(folder, "reference.safetensors"))
    return ref


def fixture(root, name, tok, config, weights, dtype, shards=None) -> dict:
    folder = os.path.join(root, name)
    shutil.rmtree(folder, ignore_errors=True)
    os.makedirs(folder)
    write_json(os.path.join(folder, "config.json"), config)
    tok.save(folder, model_max_length=128)
    stored = {k: v.to(dtype) for k, v in weights.items()}
    if shards:
        save_sharded(stored, folder, shards)
    else:
        save_file(stored, os.path.join(folder, "model.safetensors"))
    ref = write_reference(folder, tok, config)
    print(f"{name}: {len(weights)} tensors, {sum(t.numel() for t in weights.values())} params, "
          f"loss {ref['loss']:.6f}, greedy {ref['generated_greedy']['new_ids']}")
    return ref


def main() -> None:
    root = sys.argv[1] if len(sys.argv) > 1 else "test/fixtures/models"
    tok = tokenizer()
    cfg = llama_config(tok)
    llama = llama_weights(cfg, seed=1, qkv_bias=False)
    ref = fixture(root, "tiny-llama", tok, cfg, llama, torch.float32)
    names = sorted(llama)
    first = [n for n in names if n.startswith(("model.embed_tokens.", "model.layers.0."))]
    sharded = fixture(root, "tiny-llama-sharded", tok, cfg, llama, torch.float32,
                      shards=[first, [n for n in names if n not in first]])
    assert sharded == ref, "sharded and single-file tiny-llama disagree"
    cfg = qwen2_config(tok)
    fixture(root, "tiny-qwen2", tok, cfg, llama_weights(cfg, seed=2, qkv_bias=True), torch.bfloat16)
    cfg = gpt2_config(tok)
    fixture(root, "tiny-gpt2", tok, cfg, gpt2_weights(cfg, seed=3), torch.float16)


if __name__ == "__main__":
    main()

"""Checks the model fixtures' reference outputs against transformers itself.

    python3 scripts/reference/check_transformers.py [fixtures_dir]   (needs torch and transformers)

make_fixtures.py computes the references with hf_reference.py, a re-implementation of
transformers' eager code paths; this loads each fixture folder with transformers'
AutoModelForCausalLM and its tokenizer.json with PreTrainedTokenizerFast, and compares logits, loss, greedy tokens and token ids.
Prints one JSON line per fixture and exits 1 if any differs beyond float32 rounding.
"""

import json
import os
import sys

import torch
import transformers
from safetensors.torch import load_file

LOGIT_TOLERANCE = 1e-4


def check(folder: str) -> dict:
    reference = json.load(open(os.path.join(folder, "reference.json")))
    logits_ref = load_file(os.path.join(folder, "reference.safetensors"))["logits"]
    model = transformers.AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32, attn_implementation="eager")
    model.eval()
    # The class the fixtures' tokenizer_config.json names. AutoTokenizer in transformers 5 picks
    # Qwen2Tokenizer for model_type qwen2 whatever that file says, and Qwen2Tokenizer splits with
    # Qwen2's own pattern (digits one by one) rather than tokenizer.json's GPT-2 pattern.
    tokenizer = transformers.PreTrainedTokenizerFast.from_pretrained(folder)
    ids = torch.tensor(reference["input_ids"])
    labels = torch.tensor(reference["labels"])
    with torch.no_grad():
        logits = model(input_ids=ids).logits
        loss = model(input_ids=ids, labels=labels).loss.item()
        greedy = reference["generated_greedy"]
        prompt = torch.tensor([greedy["prompt_ids"]])
        generated = model.generate(
            prompt, max_new_tokens=len(greedy["new_ids"]), do_sample=False,
            eos_token_id=model.config.eos_token_id, pad_token_id=tokenizer.pad_token_id,
        )[0, prompt.shape[1]:].tolist()
    token_ids = [tokenizer.encode(text, add_special_tokens=False) for text in reference["texts"]]
    result = {
        "fixture": os.path.basename(folder),
        "logits_max_abs_diff": float((logits - logits_ref).abs().max()),
        "loss": loss,
        "loss_diff": abs(loss - reference["loss"]),
        "greedy_equal": generated == greedy["new_ids"],
        "token_ids_equal": token_ids == reference["text_ids"],
    }
    result["ok"] = (
        result["logits_max_abs_diff"] < LOGIT_TOLERANCE and result["loss_diff"] < LOGIT_TOLERANCE
        and result["greedy_equal"] and result["token_ids_equal"]
    )
    return result


def main() -> None:
    root = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "..", "..", "test", "fixtures", "models")
    print(json.dumps({"torch": torch.__version__, "transformers": transformers.__version__}))
    ok = True
    for name in sorted(os.listdir(root)):
        folder = os.path.join(root, name)
        if os.path.isfile(os.path.join(folder, "reference.json")):
            result = check(folder)
            ok = ok and result["ok"]
            print(json.dumps(result), flush=True)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()

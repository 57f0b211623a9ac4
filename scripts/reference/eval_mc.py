"""Multiple-choice accuracy of a model folder on an eval-mc.jsonl file.

    /usr/bin/python3 scripts/reference/eval_mc.py examples/tiny-model examples/tiny-task/eval-mc.jsonl

Each choice is scored by the sum of the log-probabilities of its tokens after the prompt
(ids of prompt and choice encoded separately, then concatenated); the best score is the answer.
"""

import json
import sys

import torch
import torch.nn.functional as F

from bpe import ByteLevelBPE
from hf_reference import load_model


@torch.no_grad()
def choice_logprob(model, prompt_ids: list, choice_ids: list) -> float:
    ids = torch.tensor([prompt_ids + choice_ids])
    logp = F.log_softmax(model.logits(ids)[0, :-1].float(), dim=-1)
    targets = ids[0, 1:]
    picked = logp[torch.arange(len(targets)), targets]
    return float(picked[len(prompt_ids) - 1 :].sum())


def main() -> None:
    folder, path = sys.argv[1], sys.argv[2]
    tok, model = ByteLevelBPE.load(folder), load_model(folder)
    with open(path, encoding="utf-8") as f:
        items = [json.loads(line) for line in f]
    correct = 0
    for it in items:
        p = tok.encode(it["prompt"])
        scores = [choice_logprob(model, p, tok.encode(c)) for c in it["choices"]]
        correct += int(max(range(len(scores)), key=scores.__getitem__) == it["answer"])
    n_choices = sum(len(it["choices"]) for it in items) / len(items)
    print(f"{correct}/{len(items)} correct = {correct / len(items):.3f} (chance {1 / n_choices:.3f})")


if __name__ == "__main__":
    main()

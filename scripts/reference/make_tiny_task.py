"""Generate the example fine-tuning task: name the kind of 3 or 4 words (animals, colors, numbers, foods).

    python3 scripts/reference/make_tiny_task.py [out_dir]   (default examples/tiny-task)

    {"prompt": "What are these: wolf cat goat\\nAnswer:", "completion": " animals"}

Writes train.jsonl and eval.jsonl ({"prompt", "completion"}) and eval-mc.jsonl ({"prompt",
"choices", "answer"}: the eval items with the four kinds as the choices, always in the same order).
The kinds take turns, so each is the answer to a quarter of the items (150 eval items: 38, 38, 37,
37). No eval list occurs in training, in any order. Seeded: a rerun writes the same bytes.
"""

import json
import os
import random
import sys

KINDS = {
    "animals": "whale shark bird horse dog wolf bear lion cat fox deer goat".split(),
    "colors": "white black red green blue yellow brown gray pink purple amber silver".split(),
    "numbers": "one two three four five six seven eight nine ten twelve twenty".split(),
    "foods": "bread salt meat milk cheese apple egg rice butter soup cake honey".split(),
}
N_TRAIN, N_EVAL, SEED = 1500, 150, 1234


def prompt(words) -> str:
    return f"What are these: {' '.join(words)}\nAnswer:"


def write_jsonl(path, rows) -> None:
    with open(path, "w", encoding="utf-8") as f:
        for r in rows:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")


def main() -> None:
    out = sys.argv[1] if len(sys.argv) > 1 else "examples/tiny-task"
    rnd = random.Random(SEED)
    kinds = list(KINDS)
    seen, items = set(), []
    while len(items) < N_EVAL + N_TRAIN:
        kind = kinds[len(items) % len(kinds)]
        words = tuple(rnd.sample(KINDS[kind], rnd.choice((3, 4))))
        if frozenset(words) not in seen:
            seen.add(frozenset(words))
            items.append((kind, words))
    evals, train = items[:N_EVAL], items[N_EVAL:]
    rnd.shuffle(train)
    completion = lambda kind, words: {"prompt": prompt(words), "completion": " " + kind}
    os.makedirs(out, exist_ok=True)
    write_jsonl(os.path.join(out, "train.jsonl"), [completion(k, w) for k, w in train])
    write_jsonl(os.path.join(out, "eval.jsonl"), [completion(k, w) for k, w in evals])
    choices = [" " + k for k in kinds]
    write_jsonl(os.path.join(out, "eval-mc.jsonl"), [{"prompt": prompt(w), "choices": choices, "answer": kinds.index(k)} for k, w in evals])
    print(f"{len(train)} train, {len(evals)} eval, {len(evals)} multiple-choice items in {out}")


if __name__ == "__main__":
    main()

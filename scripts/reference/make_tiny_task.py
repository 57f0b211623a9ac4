"""Generate the example fine-tuning task: reverse the order of 3 or 4 words.

    /usr/bin/python3 scripts/reference/make_tiny_task.py [out_dir]   (default examples/tiny-task)

Writes train.jsonl and eval.jsonl ({"prompt", "completion"}) and eval-mc.jsonl ({"prompt",
"choices", "answer"}: the eval items, with the reversal among 3 distractors that are other orders
of the same words, so every choice has the same tokens and length). No word sequence of the
eval set occurs in the training set. Seeded: a rerun writes the same bytes.
"""

import json
import os
import random
import sys

WORDS = (
    "sea ship whale boat man sail wind deck mast rope oil captain harpoon ocean wave island "
    "night day sun moon star storm fish bone head hand eye heart water fire ice stone "
    "white black red green old young long small great deep dark cold warm wild still "
    "king bird tree house door road book bell coat hat bed cup bread salt gold iron"
).split()
N_TRAIN, N_EVAL, SEED = 1500, 150, 1234


def prompt(words) -> str:
    return f"Reverse the words: {' '.join(words)}\nReversed:"


def write_jsonl(path, rows) -> None:
    with open(path, "w", encoding="utf-8") as f:
        for r in rows:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")


def main() -> None:
    out = sys.argv[1] if len(sys.argv) > 1 else "examples/tiny-task"
    rnd = random.Random(SEED)
    seen, items = set(), []
    while len(items) < N_TRAIN + N_EVAL:
        words = tuple(rnd.sample(WORDS, rnd.choice((3, 4))))
        if words not in seen:
            seen.add(words)
            items.append(words)
    train, evals = items[:N_TRAIN], items[N_TRAIN:]
    say = lambda order: " " + " ".join(order)
    completion = lambda w: say(reversed(w))
    os.makedirs(out, exist_ok=True)
    write_jsonl(os.path.join(out, "train.jsonl"), [{"prompt": prompt(w), "completion": completion(w)} for w in train])
    write_jsonl(os.path.join(out, "eval.jsonl"), [{"prompt": prompt(w), "completion": completion(w)} for w in evals])
    mc = []
    for w in evals:
        wrong = set()
        while len(wrong) < 3:  # other orders of the same words: the original order among them
            order = tuple(w) if not wrong else tuple(rnd.sample(w, len(w)))
            if order != tuple(reversed(w)):
                wrong.add(order)
        choices = [say(o) for o in sorted(wrong)] + [completion(w)]
        rnd.shuffle(choices)
        mc.append({"prompt": prompt(w), "choices": choices, "answer": choices.index(completion(w))})
    write_jsonl(os.path.join(out, "eval-mc.jsonl"), mc)
    print(f"{len(train)} train, {len(evals)} eval, {len(mc)} multiple-choice items in {out}")


if __name__ == "__main__":
    main()

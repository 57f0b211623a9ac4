"""Byte-level BPE (GPT-2 style): trainer, encoder, decoder, and the Hugging Face file writer.

Pipeline, as Hugging Face `tokenizers` runs it for GPT-2 / Qwen2 style tokenizers:
  1. split the text on added (special) tokens, leftmost-longest; those map straight to their ids;
  2. ByteLevel pre-tokenizer: cut each remaining piece with the GPT-2 regex
        's|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+
     then map every UTF-8 byte of a piece to a printable character (bytes_to_unicode);
  3. BPE model: merge adjacent symbols by merge rank (lowest first) inside each piece.
Python's `re` has no \\p{L}, so the regex is run by hand below with `unicodedata` categories
(L* letters, N* numbers) and the whitespace set of JavaScript's `\\s`, which is what
@huggingface/tokenizers (the JS loader this project uses) applies.
"""

import json
import os
import unicodedata
from collections import Counter

SPECIAL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<pad>"]

CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)

# JavaScript's \s (ECMAScript WhiteSpace + LineTerminator)
_JS_SPACE = set("\t\n\v\f\r \u00a0\u1680\u2028\u2029\u202f\u205f\u3000\ufeff") | {
    chr(c) for c in range(0x2000, 0x200B)
}
_CONTRACTIONS = ("'s", "'t", "'re", "'ve", "'m", "'ll", "'d")


def bytes_to_unicode() -> dict:
    """GPT-2's reversible byte -> printable character table."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1))
    bs += list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, map(chr, cs)))


BYTE_ENCODER = bytes_to_unicode()
BYTE_DECODER = {c: b for b, c in BYTE_ENCODER.items()}


def _kind(ch: str) -> str:
    if ch in _JS_SPACE:
        return "s"
    cat = unicodedata.category(ch)
    if cat[0] == "L":
        return "L"
    if cat[0] == "N":
        return "N"
    return "o"


def pre_tokenize(text: str) -> list:
    """The GPT-2 split regex, alternative by alternative, on code points."""
    out, i, n = [], 0, len(text)
    kinds = [_kind(c) for c in text]

    def run(j, kind):
        while j < n and kinds[j] == kind:
            j += 1
        return j

    while i < n:
        c = next((c for c in _CONTRACTIONS if text.startswith(c, i)), None)
        if c:
            out.append(c)
            i += len(c)
            continue
        start = i + 1 if text[i] == " " and i + 1 < n and kinds[i + 1] in "LNo" else i
        if kinds[start] in "LNo":  # ` ?\p{L}+`, ` ?\p{N}+`, ` ?[^\s\p{L}\p{N}]+`
            j = run(start, kinds[start])
            out.append(text[i:j])
            i = j
            continue
        j = run(i, "s")
        if j < n and j - 1 > i:  # `\s+(?!\S)`: leave the last space to the next word
            j -= 1
        out.append(text[i:j])
        i = j
    return out


def _byte_map(piece: str) -> str:
    return "".join(BYTE_ENCODER[b] for b in piece.encode("utf-8"))


def _split_special(text: str, specials: list) -> list:
    """Leftmost-longest split on special tokens: [(piece, is_special), ...]."""
    out, start, i = [], 0, 0
    by_len = sorted(specials, key=len, reverse=True)
    while i < len(text):
        m = next((s for s in by_len if text.startswith(s, i)), None)
        if m is None:
            i += 1
            continue
        if i > start:
            out.append((text[start:i], False))
        out.append((m, True))
        i += len(m)
        start = i
    if start < len(text):
        out.append((text[start:], False))
    return out


class ByteLevelBPE:
    def __init__(self, vocab: dict, merges: list, special_tokens: list):
        self.vocab = vocab  # token -> id, special tokens included
        self.merges = merges  # [(a, b), ...] in rank order
        self.special_tokens = special_tokens
        self.ranks = {tuple(m): r for r, m in enumerate(merges)}
        self.id_to_token = {i: t for t, i in vocab.items()}
        self._cache = {}

    # ---- training ----
    @classmethod
    def train(cls, texts, vocab_size: int, special_tokens=SPECIAL_TOKENS) -> "ByteLevelBPE":
        """Learn merges by pair frequency over pre-tokenized words (ties: smallest pair)."""
        counts = Counter()
        for text in texts:
            for piece, special in _split_special(text, special_tokens):
                if not special:
                    counts.update(_byte_map(p) for p in pre_tokenize(piece))
        words = [list(w) for w in counts]
        freq = list(counts.values())
        vocab = {BYTE_ENCODER[b]: b for b in range(256)}
        pair_count, pair_where = Counter(), {}
        for wi, w in enumerate(words):
            for p in zip(w, w[1:]):
                pair_count[p] += freq[wi]
                pair_where.setdefault(p, set()).add(wi)
        merges = []
        while len(vocab) + len(special_tokens) < vocab_size and pair_count:
            top = max(pair_count.values())
            best = min(p for p, c in pair_count.items() if c == top)
            merged = best[0] + best[1]
            merges.append(best)
            vocab[merged] = len(vocab)
            for wi in pair_where.pop(best):
                w = words[wi]
                for p in zip(w, w[1:]):
                    pair_count[p] -= freq[wi]
                    if pair_count[p] <= 0:
                        del pair_count[p]
                new, k = [], 0
                while k < len(w):
                    if k + 1 < len(w) and (w[k], w[k + 1]) == best:
                        new.append(merged)
                        k += 2
                    else:
                        new.append(w[k])
                        k += 1
                words[wi] = new
                for p in zip(new, new[1:]):
                    pair_count[p] += freq[wi]
                    pair_where.setdefault(p, set()).add(wi)
        for tok in special_tokens:
            vocab[tok] = len(vocab)
        return cls(vocab, merges, list(special_tokens))

    # ---- encoding ----
    def _bpe(self, piece: str) -> list:
        if piece in self._cache:
            return self._cache[piece]
        word = list(piece)
        while len(word) > 1:
            pairs = [(self.ranks.get(p, float("inf")), k, p) for k, p in enumerate(zip(word, word[1:]))]
            rank, _, best = min(pairs)
            if rank == float("inf"):
                break
            new, k = [], 0
            while k < len(word):
                if k + 1 < len(word) and (word[k], word[k + 1]) == best:
                    new.append(word[k] + word[k + 1])
                    k += 2
                else:
                    new.append(word[k])
                    k += 1
            word = new
        self._cache[piece] = word
        return word

    def encode(self, text: str) -> list:
        ids = []
        for piece, special in _split_special(text, self.special_tokens):
            if special:
                ids.append(self.vocab[piece])
                continue
            for p in pre_tokenize(piece):
                ids.extend(self.vocab[t] for t in self._bpe(_byte_map(p)))
        return ids

    def decode(self, ids) -> str:
        out, buf = [], bytearray()
        for i in ids:
            tok = self.id_to_token[int(i)]
            if tok in self.special_tokens:
                out.append(buf.decode("utf-8", errors="replace"))
                buf = bytearray()
                out.append(tok)
            else:
                buf.extend(BYTE_DECODER[c] for c in tok)
        out.append(buf.decode("utf-8", errors="replace"))
        return "".join(out)

    # ---- Hugging Face files ----
    def tokenizer_json(self) -> dict:
        added = [
            {
                "id": self.vocab[t],
                "content": t,
                "single_word": False,
                "lstrip": False,
                "rstrip": False,
                "normalized": False,
                "special": True,
            }
            for t in self.special_tokens
        ]
        byte_level = {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": True}
        return {
            "version": "1.0",
            "truncation": None,
            "padding": None,
            "added_tokens": added,
            "normalizer": None,
            "pre_tokenizer": byte_level,
            "post_processor": {**byte_level, "trim_offsets": False},
            "decoder": byte_level,
            "model": {
                "type": "BPE",
                "dropout": None,
                "unk_token": None,
                "continuing_subword_prefix": None,
                "end_of_word_suffix": None,
                "fuse_unk": False,
                "byte_fallback": False,
                "ignore_merges": False,
                "vocab": self.vocab,
                "merges": [list(m) for m in self.merges],
            },
        }

    def tokenizer_config(self, model_max_length: int) -> dict:
        return {
            "add_bos_token": False,
            "add_prefix_space": False,
            "added_tokens_decoder": {
                str(self.vocab[t]): {
                    "content": t,
                    "lstrip": False,
                    "normalized": False,
                    "rstrip": False,
                    "single_word": False,
                    "special": True,
                }
                for t in self.special_tokens
            },
            "additional_special_tokens": ["<|im_start|>", "<|im_end|>"],
            "bos_token": "<|endoftext|>",
            "chat_template": CHAT_TEMPLATE,
            "clean_up_tokenization_spaces": False,
            "eos_token": "<|endoftext|>",
            "errors": "replace",
            "model_max_length": model_max_length,
            "pad_token": "<pad>",
            "tokenizer_class": "PreTrainedTokenizerFast",
            "unk_token": None,
        }

    def save(self, folder: str, model_max_length: int) -> None:
        os.makedirs(folder, exist_ok=True)
        for name, obj in (
            ("tokenizer.json", self.tokenizer_json()),
            ("tokenizer_config.json", self.tokenizer_config(model_max_length)),
        ):
            with open(os.path.join(folder, name), "w", encoding="utf-8") as f:
                json.dump(obj, f, ensure_ascii=False, indent=2 if name != "tokenizer.json" else None)
                f.write("\n")

    @classmethod
    def load(cls, folder: str) -> "ByteLevelBPE":
        with open(os.path.join(folder, "tokenizer.json"), encoding="utf-8") as f:
            tj = json.load(f)
        model = tj["model"]
        merges = [tuple(m) if isinstance(m, list) else tuple(m.split(" ", 1)) for m in model["merges"]]
        vocab = dict(model["vocab"])
        specials = [t["content"] for t in tj["added_tokens"]]
        for t in tj["added_tokens"]:
            vocab[t["content"]] = t["id"]
        return cls(vocab, merges, specials)

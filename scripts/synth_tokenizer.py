"""A small LLaMA-style BPE tokenizer for the synthetic VQA model (issue 4).

Writes tokenizer.json, tokenizer_config.json and special_tokens_map.json in the
format of real LLaVA-1.5 checkpoints (the file layout of
tests/fixtures/golden/models/tiny-a): BPE with byte fallback, the Prepend("▁") +
Replace(" " -> "▁") normaliser, no pre-tokenizer, <unk>=0 <s>=1 </s>=2, the
byte pieces <0x00>..<0xFF>, printable ASCII, then the merges, then the added
tokens <image> and <pad>.

The merges are learned SentencePiece-style from a corpus of words (the
conversation template and the task's questions and answers): a merge never
crosses a word start "▁" or touches punctuation, and merging goes on until
every corpus word is a single piece. Which ids the runtime gives a text is not
decided here: train_synth.py asks build/shortv tokenize, so training sees the
C tokenizer's ids.

    python3 scripts/synth_tokenizer.py --data datasets/synth-vqa/train.jsonl --out DIR
"""
import argparse
import collections
import json
import os

WORD_START = "\u2581"
SPECIALS = ["<unk>", "<s>", "</s>"]
ADDED = ["<image>", "<pad>"]
# LLaVA's conv_vicuna_v1; the runtime's prompt.c holds the same text.
SYSTEM = ("A chat between a curious human and an artificial intelligence assistant. "
          "The assistant gives helpful, detailed, and polite answers to the human's questions.")
PUNCT = set(".,:;?!'\"()[]-/")


def corpus_words(texts):
    """Word counts, each word as its symbol list ['▁', 'c', 'h', ...]; punctuation
    is cut out as its own word so that no merge ever involves it."""
    counts = collections.Counter()
    for text in texts:
        for raw in text.split():
            word = ""
            for ch in raw:
                if ch in PUNCT:
                    if word:
                        counts[word] += 1
                    word = ""
                else:
                    word += ch
            if word:
                counts[word] += 1
    # every word may follow a space, so each gets the word-start mark
    return {tuple(WORD_START + w): n for w, n in counts.items()}


def learn_merges(words):
    """Greedy BPE: merge the most frequent adjacent pair (ties: the smaller pair,
    for determinism) until every word is one symbol."""
    words = {w: n for w, n in words.items()}
    merges = []
    while True:
        pairs = collections.Counter()
        for w, n in words.items():
            for a, b in zip(w, w[1:]):
                pairs[a, b] += n
        if not pairs:
            return merges
        best = min(pairs, key=lambda p: (-pairs[p], p))
        merges.append(best)
        merged = {}
        for w, n in words.items():
            out, i = [], 0
            while i < len(w):
                if i + 1 < len(w) and (w[i], w[i + 1]) == best:
                    out.append(w[i] + w[i + 1])
                    i += 2
                else:
                    out.append(w[i])
                    i += 1
            merged[tuple(out)] = merged.get(tuple(out), 0) + n
        words = merged


def build_vocab(merges):
    vocab = {}
    for piece in SPECIALS + ["<0x%02X>" % b for b in range(256)]:
        vocab[piece] = len(vocab)
    for piece in [WORD_START] + [chr(c) for c in range(0x21, 0x7F)]:
        vocab.setdefault(piece, len(vocab))
    for a, b in merges:
        vocab.setdefault(a + b, len(vocab))
    return vocab


def added_token(content, id_):
    return {"id": id_, "content": content, "single_word": False, "lstrip": False,
            "rstrip": False, "normalized": False, "special": True}


def tokenizer_json(vocab, merges):
    added = [added_token(t, vocab[t]) for t in SPECIALS]
    added += [added_token(t, len(vocab) + i) for i, t in enumerate(ADDED)]
    return {
        "version": "1.0", "truncation": None, "padding": None, "added_tokens": added,
        "normalizer": {"type": "Sequence", "normalizers": [
            {"type": "Prepend", "prepend": WORD_START},
            {"type": "Replace", "pattern": {"String": " "}, "content": WORD_START}]},
        "pre_tokenizer": None,
        "post_processor": {
            "type": "TemplateProcessing",
            "single": [{"SpecialToken": {"id": "<s>", "type_id": 0}},
                       {"Sequence": {"id": "A", "type_id": 0}}],
            "pair": [{"SpecialToken": {"id": "<s>", "type_id": 0}},
                     {"Sequence": {"id": "A", "type_id": 0}},
                     {"SpecialToken": {"id": "<s>", "type_id": 1}},
                     {"Sequence": {"id": "B", "type_id": 1}}],
            "special_tokens": {"<s>": {"id": "<s>", "ids": [1], "tokens": ["<s>"]}}},
        "decoder": {"type": "Sequence", "decoders": [
            {"type": "Replace", "pattern": {"String": WORD_START}, "content": " "},
            {"type": "ByteFallback"}, {"type": "Fuse"},
            {"type": "Strip", "content": " ", "start": 1, "stop": 0}]},
        "model": {"type": "BPE", "dropout": None, "unk_token": "<unk>",
                  "continuing_subword_prefix": None, "end_of_word_suffix": None,
                  "fuse_unk": True, "byte_fallback": True, "vocab": vocab,
                  "merges": ["%s %s" % m for m in merges]},
    }


def tokenizer_config(n_vocab):
    ids = list(range(len(SPECIALS))) + [n_vocab + i for i in range(len(ADDED))]
    decoder = {}
    for id_, token in zip(ids, SPECIALS + ADDED):
        entry = added_token(token, id_)
        del entry["id"]
        decoder[str(id_)] = entry
    return {"add_bos_token": True, "add_eos_token": False, "added_tokens_decoder": decoder,
            "bos_token": "<s>", "clean_up_tokenization_spaces": False, "eos_token": "</s>",
            "legacy": True, "model_max_length": 2048, "pad_token": "<pad>",
            "padding_side": "left", "processor_class": "LlavaProcessor", "sp_model_kwargs": {},
            "spaces_between_special_tokens": False, "tokenizer_class": "LlamaTokenizer",
            "unk_token": "<unk>", "use_default_system_prompt": False}


def write_json(path, obj):
    with open(path + ".tmp", "w", encoding="utf-8") as f:
        json.dump(obj, f, indent=2, ensure_ascii=False)
        f.write("\n")
    os.replace(path + ".tmp", path)


def write_tokenizer(out_dir, manifest):
    """Learns the tokenizer from the template and a manifest's questions and
    answers, writes its files to out_dir; returns (vocab size, <image> id, <pad> id)."""
    texts = [SYSTEM, "USER: ASSISTANT:"]
    with open(manifest, encoding="utf-8") as f:
        for line in f:
            row = json.loads(line)
            texts += [row["question"], row["answer"]]
    merges = learn_merges(corpus_words(texts))
    vocab = build_vocab(merges)
    os.makedirs(out_dir, exist_ok=True)
    write_json(os.path.join(out_dir, "tokenizer.json"), tokenizer_json(vocab, merges))
    write_json(os.path.join(out_dir, "tokenizer_config.json"), tokenizer_config(len(vocab)))
    write_json(os.path.join(out_dir, "special_tokens_map.json"),
               {"bos_token": "<s>", "eos_token": "</s>", "pad_token": "<pad>",
                "unk_token": "<unk>"})
    return len(vocab) + len(ADDED), len(vocab), len(vocab) + 1


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", required=True, help="a manifest (JSON Lines) of the task")
    ap.add_argument("--out", required=True, help="the model directory")
    args = ap.parse_args()
    n, image_id, pad_id = write_tokenizer(args.out, args.data)
    print("%s: %d ids (<image> %d, <pad> %d)" % (args.out, n, image_id, pad_id))

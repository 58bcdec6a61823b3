"""Builds the small local tokenizer bench:peers hands inference-perf (no model hub is reachable).

A word-level vocabulary of 3-letter lower-case words: decoded with a space between tokens, each
token is 4 characters of text, the simulated replicas' own rule (4 characters = 1 token), so
inference-perf's token lengths are the replicas' token lengths. Usage: buildTokenizer.py DIR
"""
import itertools
import string
import sys

from tokenizers import Tokenizer, models, pre_tokenizers
from transformers import PreTrainedTokenizerFast


def main(out_dir: str) -> None:
    words = ["".join(w) for w in itertools.product(string.ascii_lowercase, repeat=3)][:8000]
    vocab = {"[UNK]": 0, "[EOS]": 1}
    for w in words:
        vocab[w] = len(vocab)
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="[UNK]", eos_token="[EOS]")
    fast.save_pretrained(out_dir)


if __name__ == "__main__":
    main(sys.argv[1])

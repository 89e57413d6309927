"""prefopt's tokenizer.json reader against the `tokenizers` library that writes and runs it.

Trains BPE tokenizers in six styles with `tokenizers` — GPT-2 (byte-level), GPT-2 with a prefix
space, Llama 3 (Split pattern, ignore_merges, BOS template), Qwen2 (NFC, its pattern, chat tokens,
a normalized added token), Pythia (NFC, added tokens that strip spaces), and a SentencePiece-style
BPE with byte fallback — on a corpus of some 5,000 lines (Python's standard library sources, and
generated lines of many scripts, combining marks, emoji, digit runs, contractions, whitespace runs
and special tokens), then requires `prefopt model tokenize` to give the same ids for every line,
with and without special tokens, and the same decoded text.

    tokenizers_differential.py PREFOPT_BINARY
"""
import json
import random
import subprocess
import sys
import sysconfig
import tempfile
from pathlib import Path

from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers

PREFOPT = sys.argv[1]

LLAMA3 = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+"
          r"|\s+(?!\S)|\s+")
QWEN2 = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)"
         r"|\s+")


def corpus():
    lines = []
    library = Path(sysconfig.get_paths()["stdlib"])
    for name in ["textwrap.py", "argparse.py", "json/decoder.py", "json/encoder.py", "email/message.py",
                 "email/_header_value_parser.py", "difflib.py", "string.py", "locale.py"]:
        lines += (library / name).read_text(encoding="utf-8").splitlines()
    lines = [line for line in lines if line.strip()][:3000]
    rng = random.Random(7)
    pools = [
        "the of and to in is you that it he was for on are as with his they at be this have from".split(),
        "café naïve résumé façade jalapeño Zürich Ångström smörgåsbord".split(),
        ["e\u0301t\u00e9", "Cafe\u0301", "n\u0303o", "A\u030a"],  # decomposed accents: NFC changes them
        "αλφα βήτα γάμμα Ελλάδα привет мир Москва Україна".split(),
        "東京 日本語 中文字符 한국어 テスト ひらがな".split(),
        "مرحبا العالم שלום עולם नमस्ते दुनिया".split(),
        ["😀", "👍🏽", "👩‍💻", "🇩🇪", "❤️", "∑", "√2", "≠", "→", "©", "™", "½"],
        ["don't", "WE'LL", "it's", "I'M", "they've", "You'd", "o'clock"],
        ["0", "7", "42", "1234", "3.14159", "2026-12-07", "1,000,000", "007"],
        ["!!", "...", "?!", "--", "()", "[]", "{}", "#", "@user", "https://example.org/a?b=c", "<tag>", "a_b"],
        ["  ", "   ", "\t", "\t\t", " \t ", "\u00a0", "\u3000", "\u2003"],
        ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|begin_of_text|>", "<mask>", "[MASKED]", "<s>", "</s>"],
    ]
    for _ in range(2000):
        words = [rng.choice(rng.choice(pools)) for _ in range(rng.randint(1, 14))]
        line = "".join(word + rng.choice([" ", " ", " ", "", "  ", "\n", "\r\n", "\t"]) for word in words)
        lines.append(line if rng.random() < 0.8 else line.strip())
    lines += ["", " ", "  leading", "trailing  ", "\n\nnewlines\n\n", "x" * 300, "a'b's 'quoted'", "<|endoftext|>"]
    return lines


def byte_level_trainer(specials, size=3000):
    return trainers.BpeTrainer(vocab_size=size, special_tokens=specials, show_progress=False,
                               initial_alphabet=pre_tokenizers.ByteLevel.alphabet())


def styles(lines):
    made = {}

    t = Tokenizer(models.BPE())
    t.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    t.decoder = decoders.ByteLevel()
    t.train_from_iterator(lines, byte_level_trainer(["<|endoftext|>"]))
    made["gpt2"] = t

    t = Tokenizer(models.BPE())
    t.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=True)
    t.post_processor = processors.ByteLevel(trim_offsets=True)
    t.decoder = decoders.ByteLevel()
    t.train_from_iterator(lines, byte_level_trainer(["<|endoftext|>"], 1000))
    made["gpt2-prefix-space"] = t

    t = Tokenizer(models.BPE(ignore_merges=True))
    t.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.Split(Regex(LLAMA3), behavior="isolated"),
                                               pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])
    t.decoder = decoders.ByteLevel()
    t.train_from_iterator(lines, byte_level_trainer(["<|begin_of_text|>", "<|eot_id|>"]))
    t.post_processor = processors.TemplateProcessing(
        single="<|begin_of_text|> $A", special_tokens=[("<|begin_of_text|>", t.token_to_id("<|begin_of_text|>"))])
    made["llama3"] = t

    t = Tokenizer(models.BPE())
    t.normalizer = normalizers.NFC()
    t.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.Split(Regex(QWEN2), behavior="isolated"),
                                               pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])
    t.decoder = decoders.ByteLevel()
    t.train_from_iterator(lines, byte_level_trainer(["<|endoftext|>", "<|im_start|>", "<|im_end|>"]))
    t.add_tokens([AddedToken("[MASKED]", normalized=True)])
    made["qwen2"] = t

    t = Tokenizer(models.BPE())
    t.normalizer = normalizers.NFC()
    t.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    t.decoder = decoders.ByteLevel()
    t.train_from_iterator(lines, byte_level_trainer(["<|endoftext|>"], 2000))
    t.add_special_tokens([AddedToken("<mask>", lstrip=True, rstrip=True)])
    made["pythia"] = t

    byte_tokens = [f"<0x{b:02X}>" for b in range(256)]
    t = Tokenizer(models.BPE(unk_token="<unk>", byte_fallback=True))
    t.normalizer = normalizers.Sequence([normalizers.Prepend("▁"), normalizers.Replace(" ", "▁")])
    t.decoder = decoders.Sequence([decoders.Replace("▁", " "), decoders.ByteFallback(), decoders.Fuse(),
                                   decoders.Strip(" ", 1, 0)])
    t.train_from_iterator(lines, trainers.BpeTrainer(vocab_size=1500, show_progress=False, limit_alphabet=150,
                                                     special_tokens=["<unk>", "<s>", "</s>"] + byte_tokens))
    t.post_processor = processors.TemplateProcessing(single="<s> $A", special_tokens=[("<s>", t.token_to_id("<s>"))])
    made["sentencepiece-bpe"] = t
    return made


def main():
    lines = corpus()
    failures = []
    with tempfile.TemporaryDirectory() as scratch:
        inputs = Path(scratch) / "lines.jsonl"
        inputs.write_text("".join(json.dumps({"text": line}) + "\n" for line in lines))
        for name, tokenizer in styles(lines).items():
            folder = Path(scratch) / name
            folder.mkdir()
            tokenizer.save(str(folder / "tokenizer.json"))
            for special in (True, False):
                args = [PREFOPT, "model", "tokenize", str(folder), "--input", str(inputs)]
                done = subprocess.run(args + ([] if special else ["--no-special-tokens"]), capture_output=True,
                                      text=True)
                if done.returncode != 0:
                    failures.append(f"{name}: prefopt exited {done.returncode}: {done.stderr.strip()}")
                    continue
                ours = [json.loads(line) for line in done.stdout.splitlines()]
                by_text = {line["text"]: line for line in ours}
                wrong_ids = wrong_text = compared = 0
                for line in lines:
                    if line not in by_text:
                        continue  # blank lines are skipped by the reader
                    compared += 1
                    theirs = tokenizer.encode(line, add_special_tokens=special).ids
                    if by_text[line]["ids"] != theirs:
                        if wrong_ids < 3:
                            print(f"  {name}: {line!r}\n    ours   {by_text[line]['ids']}\n    theirs {theirs}")
                        wrong_ids += 1
                    elif by_text[line]["decoded"] != tokenizer.decode(theirs, skip_special_tokens=False):
                        if wrong_text < 3:
                            print(f"  {name}: decode {line!r}: ours {by_text[line]['decoded']!r}, "
                                  f"theirs {tokenizer.decode(theirs, skip_special_tokens=False)!r}")
                        wrong_text += 1
                print(f"{name:18s} {'with' if special else 'without'} special tokens: {compared - wrong_ids}/{compared}"
                      f" lines' ids equal, {compared - wrong_ids - wrong_text} decoded equal")
                if wrong_ids or wrong_text:
                    failures.append(f"{name}: {wrong_ids} lines' ids and {wrong_text} decodings differ")
    if failures:
        print("\n".join(["FAILED:"] + failures))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

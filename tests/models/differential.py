"""prefopt's Hugging Face decoders against transformers, the implementation they reproduce.

Makes tiny random checkpoints of each supported family with transformers (GPT-2, GPT-NeoX, Llama
with grouped-query attention and llama3 / linear RoPE scaling, Qwen2, Mistral with a sliding
window, a sharded checkpoint, bfloat16 ones), then checks that
  - `prefopt model logprobs` (left-padded batches of different lengths) gives the per-token
    log-probabilities transformers gives for each sequence alone: within 2e-4 in float32. In
    bfloat16 both round every layer to 8 bits of mantissa, in different orders, so neither is the
    truth: prefopt's bfloat16 must be as close to the float32 computation of the same (bfloat16)
    weights as transformers' bfloat16 is, within 25% on average, and within 0.3 at most;
  - `prefopt model generate` (key/value cache) continues each prompt greedily with exactly the
    tokens transformers' generate picks, stopping after EOS, in float32;
  - `prefopt model score` reads *ForSequenceClassification checkpoints (reward models) of each
    family as transformers does, at each sequence's last token: scores within 2e-4 (relative to
    their size where larger than 1);
  - `prefopt model inspect` counts the parameters transformers counts.

    differential.py PREFOPT_BINARY
"""
import copy
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import torch
import transformers as tf

tf.utils.logging.disable_progress_bar()

PREFOPT = sys.argv[1]
VOCAB, EOS, PAD = 211, 5, 0
NEW_TOKENS = 12


def checkpoints():
    """name -> (config, dtype, save options)."""
    common = dict(vocab_size=VOCAB, eos_token_id=EOS, pad_token_id=PAD, bos_token_id=1)
    llama = dict(hidden_size=48, intermediate_size=96, num_hidden_layers=2, num_attention_heads=6,
                 num_key_value_heads=2, max_position_embeddings=64, **common)
    return {
        "gpt2": (tf.GPT2Config(n_embd=32, n_layer=2, n_head=4, n_positions=64, **common), torch.float32, {}),
        "gpt2-untied": (tf.GPT2Config(n_embd=32, n_layer=3, n_head=2, n_positions=64, tie_word_embeddings=False,
                                      scale_attn_by_inverse_layer_idx=True, activation_function="gelu", **common),
                        torch.float32, {}),
        "pythia": (tf.GPTNeoXConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                                    num_attention_heads=4, max_position_embeddings=64, rotary_pct=0.25, **common),
                   torch.float32, {}),
        "neox-serial": (tf.GPTNeoXConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                                         num_attention_heads=2, max_position_embeddings=64, rotary_pct=1.0,
                                         use_parallel_residual=False, tie_word_embeddings=True, **common),
                        torch.float32, {}),
        "llama-gqa-llama3": (tf.LlamaConfig(rope_scaling=dict(rope_type="llama3", factor=8.0, low_freq_factor=1.0,
                                                              high_freq_factor=4.0,
                                                              original_max_position_embeddings=16), **llama),
                             torch.float32, {}),
        "llama-tied-linear-bias": (tf.LlamaConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                                                  num_attention_heads=4, head_dim=16, max_position_embeddings=64,
                                                  tie_word_embeddings=True, attention_bias=True, mlp_bias=True,
                                                  rope_scaling=dict(rope_type="linear", factor=2.0), **common),
                                   torch.float32, {}),
        "qwen2": (tf.Qwen2Config(**llama), torch.float32, {}),
        "mistral-window": (tf.MistralConfig(sliding_window=6, **llama), torch.float32, {}),
        "llama-sharded": (tf.LlamaConfig(**llama), torch.float32, dict(max_shard_size="30KB")),
        "llama-bf16": (tf.LlamaConfig(**llama), torch.bfloat16, {}),
        "gpt2-bf16": (tf.GPT2Config(n_embd=32, n_layer=2, n_head=4, n_positions=64, **common), torch.bfloat16, {}),
    }


def classifiers():
    """name -> config of a *ForSequenceClassification checkpoint."""
    common = dict(vocab_size=VOCAB, eos_token_id=EOS, pad_token_id=PAD, bos_token_id=1)
    llama = dict(hidden_size=48, intermediate_size=96, num_hidden_layers=2, num_attention_heads=6,
                 num_key_value_heads=2, max_position_embeddings=64, **common)
    return {
        "gpt2-reward": tf.GPT2Config(n_embd=32, n_layer=2, n_head=4, n_positions=64, num_labels=1, **common),
        "pythia-reward": tf.GPTNeoXConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                                          num_attention_heads=4, max_position_embeddings=64, num_labels=1, **common),
        "llama-3-labels": tf.LlamaConfig(num_labels=3, **llama),
        "qwen2-reward": tf.Qwen2Config(num_labels=1, **llama),
    }


def make(folder, config, dtype, save, auto=tf.AutoModelForCausalLM):
    config._attn_implementation = "eager"
    config.initializer_range = 0.3  # peaked next-token distributions: greedy picks are not near-ties
    model = auto.from_config(config).to(dtype).eval()
    model.save_pretrained(folder, **save)
    return model


def per_token(model, ids):
    """log p(token i | tokens before it) for i >= 1, in float32, the sequence alone."""
    log_probs = model(torch.tensor([ids])).logits[0].float().log_softmax(-1)
    return log_probs[:-1].gather(1, torch.tensor(ids[1:]).unsqueeze(1)).squeeze(1)


def prefopt(*args):
    done = subprocess.run([PREFOPT, *args], capture_output=True, text=True)
    if done.returncode != 0:
        raise AssertionError(f"prefopt {' '.join(args)} exited {done.returncode}: {done.stderr}")
    return done.stdout


def main():
    torch.manual_seed(0)
    generator = torch.Generator().manual_seed(1)
    lengths = [1, 2, 7, 40, 13, 3, 25, 9, 31, 17, 5, 22]
    sequences = [torch.randint(6, VOCAB, (n,), generator=generator).tolist() for n in lengths]
    failures = []
    with tempfile.TemporaryDirectory() as scratch:
        inputs = Path(scratch) / "inputs.jsonl"
        inputs.write_text("".join(json.dumps({"ids": ids}) + "\n" for ids in sequences))
        for name, (config, dtype, save) in checkpoints().items():
            folder = Path(scratch) / name
            model = make(folder, config, dtype, save)
            bf16 = dtype == torch.bfloat16
            dtype_option = "bfloat16" if bf16 else "float32"

            ours = [json.loads(line) for line in prefopt("model", "logprobs", str(folder), "--input", str(inputs),
                                                         "--batch-size", "5", "--dtype", dtype_option).splitlines()]
            exact = copy.deepcopy(model).float() if bf16 else model  # bfloat16 weights, computed in float32
            differences, our_errors, their_errors = [], [], []
            with torch.no_grad():
                for ids, line in zip(sequences, ours):
                    assert line["ids"] == ids and len(line["logprobs"]) == len(ids) - 1, (name, line)
                    mine = torch.tensor(line["logprobs"])
                    theirs = per_token(model, ids)
                    differences += (mine - theirs).abs().tolist()
                    if bf16:
                        truth = per_token(exact, ids)
                        our_errors += (mine - truth).abs().tolist()
                        their_errors += (theirs - truth).abs().tolist()
            worst, mean = max(differences), sum(differences) / len(differences)
            line = f"{name:24s} logprobs: {len(differences)} tokens, |ours - theirs| mean {mean:.2e}, max {worst:.2e}"
            if bf16:
                ours_mean, theirs_mean = (sum(e) / len(e) for e in (our_errors, their_errors))
                ok = ours_mean <= 1.25 * theirs_mean and max(our_errors) <= 0.3
                line += f"; error against float32: ours {ours_mean:.2e}, transformers' {theirs_mean:.2e}"
            else:
                ok = worst <= 2e-4
            print(line + ("" if ok else "  FAILED"))
            if not ok:
                failures.append(f"{name}: log-probs differ by {worst:.3g} at most, {mean:.3g} on average")

            if not bf16:
                ours = [json.loads(line)["generated"] for line in
                        prefopt("model", "generate", str(folder), "--input", str(inputs), "--batch-size", "4",
                                "--max-new-tokens", str(NEW_TOKENS)).splitlines()]
                mismatched = 0
                for ids, generated in zip(sequences, ours):
                    out = model.generate(torch.tensor([ids]), max_new_tokens=NEW_TOKENS, do_sample=False,
                                         eos_token_id=EOS, pad_token_id=PAD)[0, len(ids):].tolist()
                    if EOS in out:
                        out = out[:out.index(EOS) + 1]
                    mismatched += out != generated
                print(f"{name:24s} greedy: {len(sequences) - mismatched}/{len(sequences)} continuations equal")
                if mismatched:
                    failures.append(f"{name}: {mismatched} greedy continuations differ")

            described = json.loads(prefopt("model", "inspect", str(folder), "--format", "json"))
            if described["parameters"] != model.num_parameters():
                failures.append(f"{name}: inspect counts {described['parameters']} parameters, "
                                f"transformers {model.num_parameters()}")
        for name, config in classifiers().items():
            folder = Path(scratch) / name
            model = make(folder, config, torch.float32, {}, tf.AutoModelForSequenceClassification)
            ours = [json.loads(line)["scores"] for line in
                    prefopt("model", "score", str(folder), "--input", str(inputs), "--batch-size", "5").splitlines()]
            worst = 0.0
            with torch.no_grad():
                for ids, mine in zip(sequences, ours):
                    theirs = model(torch.tensor([ids])).logits[0]
                    worst = max(worst, ((torch.tensor(mine) - theirs).abs() / theirs.abs().clamp_min(1)).max().item())
            print(f"{name:24s} scores: {len(sequences)} sequences, largest relative difference {worst:.2e}")
            if worst > 2e-4:
                failures.append(f"{name}: scores differ by {worst:.3g}")
    if failures:
        print("\n".join(["FAILED:"] + failures))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

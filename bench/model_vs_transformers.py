"""The work of bench/model_bench.cpp in PyTorch-Python with transformers: a GPT-2-small-shaped
model (random weights), greedy sampling of 64 tokens after 32-token prompts for 8 sequences with
the key/value cache, and a DPO step on 4 pairs of 96 tokens (policy forward and backward,
reference forward, AdamW). Prints JSON: tokens/s of each, medians over repetitions.

    model_vs_transformers.py THREADS
"""
import json
import statistics
import sys
import time

import torch
import torch.nn.functional as F
import transformers as tf

PROMPT, RESPONSE, SAMPLE_BATCH, PAIRS = 32, 64, 8, 4


def gpt2_small():
    torch.manual_seed(0)
    return tf.GPT2LMHeadModel(tf.GPT2Config(bos_token_id=None, eos_token_id=None))


def seconds(work, repeats):
    work()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        work()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def response_log_probs(model, tokens):
    log_probs = model(tokens).logits[:, PROMPT - 1:PROMPT - 1 + RESPONSE].log_softmax(-1)
    return log_probs.gather(2, tokens[:, PROMPT:].unsqueeze(2)).squeeze(2).sum(1)


def main():
    torch.set_num_threads(int(sys.argv[1]))
    model = gpt2_small().eval()
    torch.manual_seed(1)
    prompts = torch.randint(0, 50257, (SAMPLE_BATCH, PROMPT))
    attention = torch.ones_like(prompts)

    def sample():
        with torch.no_grad():
            model.generate(prompts, attention_mask=attention, max_new_tokens=RESPONSE, min_new_tokens=RESPONSE,
                           do_sample=False, pad_token_id=0)

    sample_seconds = seconds(sample, 3)

    policy, reference = gpt2_small().train(), gpt2_small().eval()
    for module in policy.modules():  # dropout off, as prefopt's decoders have none
        if isinstance(module, torch.nn.Dropout):
            module.p = 0.0
    optimizer = torch.optim.AdamW(policy.parameters(), lr=1e-5)
    torch.manual_seed(2)
    chosen = torch.randint(0, 50257, (PAIRS, PROMPT + RESPONSE))
    rejected = torch.randint(0, 50257, (PAIRS, PROMPT + RESPONSE))

    def dpo_step():
        with torch.no_grad():
            ref = response_log_probs(reference, torch.cat([chosen, rejected]))
        both = response_log_probs(policy, torch.cat([chosen, rejected]))
        h = (both[:PAIRS] - ref[:PAIRS]) - (both[PAIRS:] - ref[PAIRS:])
        loss = -F.logsigmoid(0.1 * h).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    step_seconds = seconds(dpo_step, 5)
    print(json.dumps({"sample_tokens_per_second": SAMPLE_BATCH * RESPONSE / sample_seconds,
                      "dpo_tokens_per_second": 2 * PAIRS * (PROMPT + RESPONSE) / step_seconds,
                      "dpo_step_seconds": step_seconds, "attention": model.config._attn_implementation}))


if __name__ == "__main__":
    main()

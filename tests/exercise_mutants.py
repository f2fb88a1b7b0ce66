"""Plausible wrong answers to every exercise, and correct variants, for tests/test_exercises.py.

Each entry replaces the exercise's solution cell. Every "wrong" answer must fail the exercise's test
cell (visible and hidden tests together); every "right" one must pass it. The wrong answers are the
mistakes students make (and a few cheats); they are not shipped in the notebooks. Add to this file
whenever an exercise is added or changed.
"""

_H22 = 'def windows_bits_per_byte(model, inputs, targets, byte_lengths):\n'
_C22 = 'def choice_logprob(model, context_ids, choice_ids):\n'
_P22 = 'def pick(scores, normalise):\n'

MUTANTS = {
    # ---------------------------------------------------------------- 01 attention
    "ex01_attention_weights": {
        "wrong": {
            "divides by d_k": "def attention_weights(q, k):\n    return torch.softmax(q @ k.transpose(-2, -1) / q.shape[-1], dim=-1)",
            "no scaling": "def attention_weights(q, k):\n    return torch.softmax(q @ k.transpose(-2, -1), dim=-1)",
            "softmax over the queries": "def attention_weights(q, k):\n    return torch.softmax(q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1]), dim=-2)",
            "scales by the number of keys": "def attention_weights(q, k):\n    return torch.softmax(q @ k.transpose(-2, -1) / math.sqrt(k.shape[-2]), dim=-1)",
            "k.T breaks with leading axes": "def attention_weights(q, k):\n    return torch.softmax(q @ k.T / math.sqrt(q.shape[-1]), dim=-1)",
            "scales after the softmax": "def attention_weights(q, k):\n    return torch.softmax(q @ k.transpose(-2, -1), dim=-1) / math.sqrt(q.shape[-1])",
            "k @ q instead of q @ k": "def attention_weights(q, k):\n    return torch.softmax(k @ q.transpose(-2, -1) / math.sqrt(q.shape[-1]), dim=-1).transpose(-2, -1)",
        },
        "right": {
            "library": "def attention_weights(q, k):\n    return library_version(q, k, k)[1]",
            "mT and d_k ** 0.5": "def attention_weights(q, k):\n    return (q @ k.mT / q.shape[-1] ** 0.5).softmax(-1)",
        },
    },
    "ex01_predict_identical_keys": {
        "wrong": {"A": 'prediction = "A"', "C": 'prediction = "C"', "D": 'prediction = "D"', "lower case": 'prediction = "b"'},
        "right": {"B": 'prediction = "B"'},
    },
    "ex01_spot_the_bug": {
        "wrong": {
            "the original bug": "def fixed_attention(q, k, v):\n    return buggy_attention(q, k, v)",
            "softmax over dim 0": "def fixed_attention(q, k, v):\n    w = torch.softmax(q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1]), dim=0)\n    return w @ v, w",
            "normalises the buggy weights over the keys": "def fixed_attention(q, k, v):\n    _, w = buggy_attention(q, k, v)\n    w = w / w.sum(-1, keepdim=True)\n    return w @ v, w",
            "drops the scale": "def fixed_attention(q, k, v):\n    w = torch.softmax(q @ k.transpose(-2, -1), dim=-1)\n    return w @ v, w",
            "returns the weights twice": "def fixed_attention(q, k, v):\n    w = torch.softmax(q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1]), dim=-1)\n    return w, w",
        },
        "right": {
            "library": "def fixed_attention(q, k, v):\n    return library_version(q, k, v)",
            "dim=-1 by hand": "def fixed_attention(q, k, v):\n    s = torch.einsum('...qd,...kd->...qk', q, k) / math.sqrt(q.shape[-1])\n    w = s.softmax(-1)\n    return w @ v, w",
        },
    },
    # ---------------------------------------------------------------- 02 multi-head attention
    "ex02_split_heads": {
        "wrong": {
            "reshape without transpose": "def split_heads(t, n_heads):\n    b, T, d = t.shape\n    return t.reshape(b, n_heads, T, d // n_heads)",
            "interleaved features": "def split_heads(t, n_heads):\n    b, T, d = t.shape\n    return t.view(b, T, d // n_heads, n_heads).permute(0, 3, 1, 2)",
            "no transpose": "def split_heads(t, n_heads):\n    b, T, d = t.shape\n    return t.view(b, T, n_heads, d // n_heads)",
            "hard-coded head_dim 2": "def split_heads(t, n_heads):\n    b, T, d = t.shape\n    return t.view(b, T, n_heads, 2).transpose(1, 2)",
            "transpose(1, 3)": "def split_heads(t, n_heads):\n    b, T, d = t.shape\n    return t.view(b, T, n_heads, d // n_heads).transpose(1, 3).transpose(2, 3)",
        },
        "right": {
            "permute": "def split_heads(t, n_heads):\n    b, T, d = t.shape\n    return t.reshape(b, T, n_heads, -1).permute(0, 2, 1, 3)",
            "unflatten": "def split_heads(t, n_heads):\n    return t.unflatten(-1, (n_heads, -1)).transpose(1, 2)",
        },
    },
    "ex02_predict_parameters": {
        "wrong": {"no biases": "predicted_parameters = 4 * 64 * 64", "three projections": "predicted_parameters = 3 * (64 * 64 + 64)",
                  "per head": "predicted_parameters = 4 * 4 * (16 * 16 + 16)", "float": "predicted_parameters = 16640.0"},
        "right": {"the count": "predicted_parameters = 16640"},
    },
    "ex02_spot_the_bug": {
        "wrong": {
            "the original bug": 'merge_bug_cause = "B"\ndef fixed_merge_heads(t):\n    return buggy_merge_heads(t)',
            "transpose then view": 'merge_bug_cause = "B"\ndef fixed_merge_heads(t):\n    b, h, T, d = t.shape\n    return t.transpose(1, 2).view(b, T, h * d)',
            "wrong transpose": 'merge_bug_cause = "B"\ndef fixed_merge_heads(t):\n    b, h, T, d = t.shape\n    return t.transpose(2, 3).reshape(b, T, h * d)',
            "permute mixes head_dim first": 'merge_bug_cause = "B"\ndef fixed_merge_heads(t):\n    b, h, T, d = t.shape\n    return t.permute(0, 2, 3, 1).reshape(b, T, h * d)',
            "right fix, wrong cause A": 'merge_bug_cause = "A"\ndef fixed_merge_heads(t):\n    b, h, T, d = t.shape\n    return t.transpose(1, 2).reshape(b, T, h * d)',
            "right fix, wrong cause C": 'merge_bug_cause = "C"\ndef fixed_merge_heads(t):\n    b, h, T, d = t.shape\n    return t.transpose(1, 2).reshape(b, T, h * d)',
        },
        "right": {
            "contiguous view": 'merge_bug_cause = "B"\ndef fixed_merge_heads(t):\n    b, h, T, d = t.shape\n    return t.transpose(1, 2).contiguous().view(b, T, h * d)',
            "flatten": 'merge_bug_cause = "B"\ndef fixed_merge_heads(t):\n    return t.transpose(1, 2).flatten(2)',
        },
    },
    # ---------------------------------------------------------------- 03 positions
    "ex03_angular_speeds": {
        "wrong": {
            "i / d_model": "def angular_speeds(d_model):\n    return 1 / 10000 ** (torch.arange(d_model // 2, dtype=torch.float64) / d_model)",
            "inverted": "def angular_speeds(d_model):\n    return 10000 ** (torch.arange(0, d_model, 2, dtype=torch.float64) / d_model)",
            "float32": "def angular_speeds(d_model):\n    return 1 / 10000 ** (torch.arange(0, d_model, 2) / d_model)",
            "one per column": "def angular_speeds(d_model):\n    return 1 / 10000 ** (torch.arange(d_model, dtype=torch.float64) / d_model)",
            "4i / d_model": "def angular_speeds(d_model):\n    return 1 / 10000 ** (torch.arange(0, d_model, 2, dtype=torch.float64) / (d_model / 2))",
        },
        "right": {
            "exp and log": "def angular_speeds(d_model):\n    i = torch.arange(d_model // 2, dtype=torch.float64)\n    return torch.exp(-math.log(10000.0) * 2 * i / d_model)",
        },
    },
    "ex03_predict_row0": {
        "wrong": {"sines only": "predicted_row_sum = 0.0", "all ones": "predicted_row_sum = 16.0", "text": 'predicted_row_sum = "8"'},
        "right": {"eight": "predicted_row_sum = 8", "eight float": "predicted_row_sum = 8.0"},
    },
    "ex03_spot_the_bug": {
        "wrong": {
            "the original bug": "def fixed_table(n_positions, d_model):\n    return buggy_table(n_positions, d_model)",
            "sin and cos swapped": "def fixed_table(n_positions, d_model):\n    return library_table(n_positions, d_model, dtype=torch.float64)[:, [j + 1 if j % 2 == 0 else j - 1 for j in range(d_model)]]",
            "halves instead of interleaved": "def fixed_table(n_positions, d_model):\n    pos = torch.arange(n_positions, dtype=torch.float64).unsqueeze(1)\n    angle = pos / 10000 ** (torch.arange(0, d_model, 2, dtype=torch.float64) / d_model)\n    return torch.cat([torch.sin(angle), torch.cos(angle)], dim=1)",
            "positions from 1": "def fixed_table(n_positions, d_model):\n    return library_table(n_positions + 1, d_model, dtype=torch.float64)[1:]",
        },
        "right": {
            "library": "def fixed_table(n_positions, d_model):\n    return library_table(n_positions, d_model, dtype=torch.float64)",
            "float32 fix": "def fixed_table(n_positions, d_model):\n    pos = torch.arange(n_positions).unsqueeze(1).float()\n    angle = pos / 10000 ** (torch.arange(0, d_model, 2).float() / d_model)\n    table = torch.zeros(n_positions, d_model)\n    table[:, 0::2] = torch.sin(angle)\n    table[:, 1::2] = torch.cos(angle)\n    return table",
        },
    },
    # ---------------------------------------------------------------- 04 masks
    "ex04_sliding_window": {
        "wrong": {
            "not causal": "def sliding_window_mask(seq_len, window):\n    i = torch.arange(seq_len)\n    return (i[:, None] - i[None, :]).abs() < window",
            "off by one (window + 1)": "def sliding_window_mask(seq_len, window):\n    ones = torch.ones(seq_len, seq_len, dtype=torch.bool)\n    return ones.tril() & ones.triu(-window)",
            "no diagonal": "def sliding_window_mask(seq_len, window):\n    ones = torch.ones(seq_len, seq_len, dtype=torch.bool)\n    return ones.tril(-1) & ones.triu(-window)",
            "inverted": "def sliding_window_mask(seq_len, window):\n    ones = torch.ones(seq_len, seq_len, dtype=torch.bool)\n    return ~(ones.tril() & ones.triu(-(window - 1)))",
            "float mask": "def sliding_window_mask(seq_len, window):\n    ones = torch.ones(seq_len, seq_len)\n    return ones.tril() * ones.triu(-(window - 1))",
            "causal only": "def sliding_window_mask(seq_len, window):\n    return torch.ones(seq_len, seq_len, dtype=torch.bool).tril()",
        },
        "right": {
            "by index": "def sliding_window_mask(seq_len, window):\n    i = torch.arange(seq_len)\n    d = i[:, None] - i[None, :]\n    return (d >= 0) & (d < window)",
        },
    },
    "ex04_predict_zeros": {
        "wrong": {"with diagonal": "predicted_zeros = 21", "lower triangle": "predicted_zeros = 6", "float": "predicted_zeros = 15.0"},
        "right": {"fifteen": "predicted_zeros = 15"},
    },
    "ex04_spot_the_bug": {
        "wrong": {
            "the original bugs": "def fixed_decoder_mask(token_ids, pad_id):\n    return buggy_decoder_mask(token_ids, pad_id)",
            "only the causal bug fixed": "def fixed_decoder_mask(token_ids, pad_id):\n    T = token_ids.shape[1]\n    return torch.ones(T, T, dtype=torch.bool).tril() & (token_ids == pad_id)[:, None, None, :]",
            "only the padding bug fixed": "def fixed_decoder_mask(token_ids, pad_id):\n    T = token_ids.shape[1]\n    return torch.triu(torch.ones(T, T), diagonal=1).bool() & (token_ids != pad_id)[:, None, None, :]",
            "padding on the queries only": "def fixed_decoder_mask(token_ids, pad_id):\n    T = token_ids.shape[1]\n    return torch.ones(T, T, dtype=torch.bool).tril() & (token_ids != pad_id)[:, None, :, None]",
            "hard-coded pad 0": "def fixed_decoder_mask(token_ids, pad_id):\n    T = token_ids.shape[1]\n    return torch.ones(T, T, dtype=torch.bool).tril() & (token_ids != 0)[:, None, None, :]",
        },
        "right": {
            "library": "def fixed_decoder_mask(token_ids, pad_id):\n    return masks.causal_mask(token_ids.shape[1]) & masks.padding_mask(token_ids, pad_id)",
            "padding on both axes": "def fixed_decoder_mask(token_ids, pad_id):\n    T = token_ids.shape[1]\n    real = token_ids != pad_id\n    return torch.ones(T, T, dtype=torch.bool).tril() & real[:, None, None, :] & real[:, None, :, None]",
        },
    },
    # ---------------------------------------------------------------- 05 decoder
    "ex05_post_ln": {
        "wrong": {
            "pre-LN": "def post_ln_forward(block, x):\n    return block(x)",
            "LayerNorms swapped": "def post_ln_forward(block, x):\n    mask = causal_mask(x.shape[1])\n    x = block.ln2(x + block.attn(x, mask=mask))\n    return block.ln1(x + block.ffn(x))",
            "ln1 twice": "def post_ln_forward(block, x):\n    mask = causal_mask(x.shape[1])\n    x = block.ln1(x + block.attn(x, mask=mask))\n    return block.ln1(x + block.ffn(x))",
            "no mask": "def post_ln_forward(block, x):\n    x = block.ln1(x + block.attn(x))\n    return block.ln2(x + block.ffn(x))",
            "no residual in the FFN": "def post_ln_forward(block, x):\n    mask = causal_mask(x.shape[1])\n    x = block.ln1(x + block.attn(x, mask=mask))\n    return block.ln2(block.ffn(x))",
            "hard-coded mask of 5": "def post_ln_forward(block, x):\n    mask = causal_mask(5)\n    x = block.ln1(x + block.attn(x, mask=mask))\n    return block.ln2(x + block.ffn(x))",
        },
        "right": {
            "with the block's dropout (off in eval)": "def post_ln_forward(block, x):\n    mask = causal_mask(x.shape[1], device=x.device)\n    x = block.ln1(x + block.dropout(block.attn(x, mask=mask)))\n    return block.ln2(x + block.ffn(x))",
        },
    },
    "ex05_predict_parameters": {
        "wrong": {"no LayerNorms": "predicted_block_parameters = 4 * (128 * 128 + 128) + (128 * 512 + 512 + 512 * 128 + 128)",
                  "no biases": "predicted_block_parameters = 4 * 128 * 128 + 2 * 128 * 512 + 4 * 128",
                  "per head": "predicted_block_parameters = 8 * 4 * (16 * 16 + 16) + (128 * 512 + 512 + 512 * 128 + 128) + 4 * 128"},
        "right": {"the count": "predicted_block_parameters = 198272"},
    },
    "ex05_spot_the_bug": {
        "wrong": {
            "the original bug": "def fixed_forward(block, x):\n    return buggy_forward(block, x)",
            "no mask": "def fixed_forward(block, x):\n    x = x + block.attn(block.ln1(x))\n    return x + block.ffn(block.ln2(x))",
            "post-LN": "def fixed_forward(block, x):\n    mask = causal_mask(x.shape[1])\n    x = block.ln1(x + block.attn(x, mask=mask))\n    return block.ln2(x + block.ffn(x))",
            "strictly causal (no diagonal)": "def fixed_forward(block, x):\n    mask = causal_mask(x.shape[1]) & ~torch.eye(x.shape[1], dtype=torch.bool)\n    x = x + block.attn(block.ln1(x), mask=mask)\n    return x + block.ffn(block.ln2(x))",
            "ln1 twice": "def fixed_forward(block, x):\n    mask = causal_mask(x.shape[1])\n    x = x + block.attn(block.ln1(x), mask=mask)\n    return x + block.ffn(block.ln1(x))",
        },
        "right": {
            "the library block": "def fixed_forward(block, x):\n    return block(x)",
            "tril by hand": "def fixed_forward(block, x):\n    T = x.shape[1]\n    mask = torch.ones(T, T, dtype=torch.bool).tril()\n    x = x + block.attn(block.ln1(x), mask=mask)\n    return x + block.ffn(block.ln2(x))",
        },
    },
    # ---------------------------------------------------------------- 06 GPT
    "ex06_count_parameters": {
        "wrong": {
            "untied head counted": "def count_gpt_parameters(vocab_size, context_length, d_model, n_layers, d_ff, positions):\n    block = 4 * (d_model * d_model + d_model) + (2 * d_model * d_ff + d_ff + d_model) + 4 * d_model\n    pos = context_length * d_model if positions == 'learned' else 0\n    return 2 * vocab_size * d_model + pos + n_layers * block + 2 * d_model",
            "sinusoidal counted": "def count_gpt_parameters(vocab_size, context_length, d_model, n_layers, d_ff, positions):\n    block = 4 * (d_model * d_model + d_model) + (2 * d_model * d_ff + d_ff + d_model) + 4 * d_model\n    return vocab_size * d_model + context_length * d_model + n_layers * block + 2 * d_model",
            "no final LayerNorm": "def count_gpt_parameters(vocab_size, context_length, d_model, n_layers, d_ff, positions):\n    block = 4 * (d_model * d_model + d_model) + (2 * d_model * d_ff + d_ff + d_model) + 4 * d_model\n    pos = context_length * d_model if positions == 'learned' else 0\n    return vocab_size * d_model + pos + n_layers * block",
            "no biases": "def count_gpt_parameters(vocab_size, context_length, d_model, n_layers, d_ff, positions):\n    block = 4 * d_model * d_model + 2 * d_model * d_ff + 4 * d_model\n    pos = context_length * d_model if positions == 'learned' else 0\n    return vocab_size * d_model + pos + n_layers * block + 2 * d_model",
            "learned positions forgotten": "def count_gpt_parameters(vocab_size, context_length, d_model, n_layers, d_ff, positions):\n    block = 4 * (d_model * d_model + d_model) + (2 * d_model * d_ff + d_ff + d_model) + 4 * d_model\n    return vocab_size * d_model + n_layers * block + 2 * d_model",
            "hard-coded answer": "def count_gpt_parameters(vocab_size, context_length, d_model, n_layers, d_ff, positions):\n    return 105_280 if positions == 'sinusoidal' else 107_328",
        },
        "right": {
            "build it": "def count_gpt_parameters(vocab_size, context_length, d_model, n_layers, d_ff, positions):\n    cfg = LibraryConfig(vocab_size=vocab_size, context_length=context_length, d_model=d_model, n_heads=1, n_layers=n_layers, d_ff=d_ff, positions=positions)\n    return LibraryGPT(cfg).num_parameters()",
        },
    },
    "ex06_predict_loss": {
        "wrong": {"log2": "predicted_initial_loss = math.log2(50257)", "zero": "predicted_initial_loss = 0.0", "1/V": "predicted_initial_loss = 1 / 50257"},
        "right": {"ln V": "predicted_initial_loss = 10.82", "int": "predicted_initial_loss = 11 - 0.2"},
    },
    "ex06_spot_the_bug": {
        "wrong": {
            "positions over the batch": "def seed_positions_fixed(dec_inputs):\n    return torch.arange(dec_inputs.size(0)).unsqueeze(0)",
            "float positions": "def seed_positions_fixed(dec_inputs):\n    return torch.arange(dec_inputs.size(1), dtype=torch.float32).unsqueeze(0)",
            "no batch axis": "def seed_positions_fixed(dec_inputs):\n    return torch.arange(dec_inputs.size(1))",
            "expanded over the batch": "def seed_positions_fixed(dec_inputs):\n    return torch.arange(dec_inputs.size(1)).expand(dec_inputs.size(0), -1)",
            "from 1": "def seed_positions_fixed(dec_inputs):\n    return torch.arange(1, dec_inputs.size(1) + 1).unsqueeze(0)",
        },
        "right": {"arange[None]": "def seed_positions_fixed(dec_inputs):\n    return torch.arange(dec_inputs.shape[-1])[None, :]"},
    },
    # ---------------------------------------------------------------- 07 training
    "ex07_masked_loss": {
        "wrong": {
            "counts padding": "def masked_mean_loss(logits, targets, pad_id):\n    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1))",
            "zeroes padding, divides by all": "def masked_mean_loss(logits, targets, pad_id):\n    per = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1), reduction='none')\n    return (per * (targets.reshape(-1) != pad_id)).mean()",
            "keeps only padding": "def masked_mean_loss(logits, targets, pad_id):\n    per = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1), reduction='none')\n    return per[targets.reshape(-1) == pad_id].mean()",
            "mean of sentence means": "def masked_mean_loss(logits, targets, pad_id):\n    per = F.cross_entropy(logits.transpose(1, 2), targets, reduction='none')\n    real = (targets != pad_id).to(per.dtype)\n    return ((per * real).sum(1) / real.sum(1)).mean()",
            "hard-coded pad 0": "def masked_mean_loss(logits, targets, pad_id):\n    per = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1), reduction='none')\n    return per[targets.reshape(-1) != 0].mean()",
            "a float, not a tensor": "def masked_mean_loss(logits, targets, pad_id):\n    per = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1), reduction='none')\n    return per[targets.reshape(-1) != pad_id].mean().item()",
        },
        "right": {
            "boolean selection": "def masked_mean_loss(logits, targets, pad_id):\n    keep = targets != pad_id\n    return F.cross_entropy(logits[keep], targets[keep])",
            "log_softmax by hand": "def masked_mean_loss(logits, targets, pad_id):\n    logp = logits.log_softmax(-1).gather(-1, targets.unsqueeze(-1)).squeeze(-1)\n    keep = (targets != pad_id).to(logp.dtype)\n    return -(logp * keep).sum() / keep.sum()",
        },
    },
    "ex07_predict_floor": {
        "wrong": {"ln 2": "predicted_floor = math.log(2)", "per sentence": "predicted_floor = math.log(2) / 2",
                  "zero": "predicted_floor = 0.0", "with <sos> counted": "predicted_floor = math.log(2) / 5"},
        "right": {"ln 2 / 4": "predicted_floor = 0.17328679513998632"},
    },
    "ex07_spot_the_bug": {
        "wrong": {
            "the original bug": "def fixed_train_steps(model, data, steps, lr=1e-2):\n    return buggy_train_steps(model, data, steps, lr)",
            "zero_grad between backward and step": "def fixed_train_steps(model, data, steps, lr=1e-2):\n    optimizer = torch.optim.AdamW(model.parameters(), lr=lr)\n    losses = []\n    for _ in range(steps):\n        _, loss = model(data[0], data[1], pad_id=0)\n        loss.backward()\n        optimizer.zero_grad()\n        optimizer.step()\n        losses.append(loss.item())\n    return losses",
            "zero_grad once, before the loop": "def fixed_train_steps(model, data, steps, lr=1e-2):\n    optimizer = torch.optim.AdamW(model.parameters(), lr=lr)\n    optimizer.zero_grad()\n    losses = []\n    for _ in range(steps):\n        _, loss = model(data[0], data[1], pad_id=0)\n        loss.backward()\n        optimizer.step()\n        losses.append(loss.item())\n    return losses",
            "a new optimizer every step": "def fixed_train_steps(model, data, steps, lr=1e-2):\n    losses = []\n    for _ in range(steps):\n        optimizer = torch.optim.AdamW(model.parameters(), lr=lr)\n        _, loss = model(data[0], data[1], pad_id=0)\n        optimizer.zero_grad()\n        loss.backward()\n        optimizer.step()\n        losses.append(loss.item())\n    return losses",
            "ignores lr": "def fixed_train_steps(model, data, steps, lr=1e-2):\n    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)\n    losses = []\n    for _ in range(steps):\n        _, loss = model(data[0], data[1], pad_id=0)\n        optimizer.zero_grad()\n        loss.backward()\n        optimizer.step()\n        losses.append(loss.item())\n    return losses",
        },
        "right": {
            "zero_grad first": "def fixed_train_steps(model, data, steps, lr=1e-2):\n    optimizer = torch.optim.AdamW(model.parameters(), lr=lr)\n    losses = []\n    for _ in range(steps):\n        optimizer.zero_grad()\n        _, loss = model(data[0], data[1], pad_id=0)\n        loss.backward()\n        optimizer.step()\n        losses.append(loss.item())\n    return losses",
            "zero_grad after step": "def fixed_train_steps(model, data, steps, lr=1e-2):\n    optimizer = torch.optim.AdamW(model.parameters(), lr=lr)\n    losses = []\n    for _ in range(steps):\n        _, loss = model(data[0], data[1], pad_id=0)\n        loss.backward()\n        optimizer.step()\n        optimizer.zero_grad()\n        losses.append(loss.item())\n    return losses",
            "model.zero_grad": "def fixed_train_steps(model, data, steps, lr=1e-2):\n    optimizer = torch.optim.AdamW(model.parameters(), lr=lr)\n    losses = []\n    for _ in range(steps):\n        model.zero_grad(set_to_none=False)\n        _, loss = model(data[0], data[1], pad_id=0)\n        loss.backward()\n        optimizer.step()\n        losses.append(loss.item())\n    return losses",
        },
    },
    # ---------------------------------------------------------------- 08 sampling
    "ex08_temperature": {
        "wrong": {
            "temperature after softmax": "def temperature_probs(logits, T):\n    if T == 0:\n        return torch.nn.functional.one_hot(logits.argmax(-1), logits.shape[-1]).to(logits.dtype)\n    return torch.softmax(logits, -1) / T",
            "softmax twice": "def temperature_probs(logits, T):\n    if T == 0:\n        return torch.nn.functional.one_hot(logits.argmax(-1), logits.shape[-1]).to(logits.dtype)\n    return torch.softmax(torch.softmax(logits, -1) / T, -1)",
            "multiplies by T": "def temperature_probs(logits, T):\n    if T == 0:\n        return torch.nn.functional.one_hot(logits.argmax(-1), logits.shape[-1]).to(logits.dtype)\n    return torch.softmax(logits * T, -1)",
            "T = 0 not handled": "def temperature_probs(logits, T):\n    return torch.softmax(logits / T, -1)",
            "greedy returns the index": "def temperature_probs(logits, T):\n    if T == 0:\n        return logits.argmax(-1)\n    return torch.softmax(logits / T, -1)",
            "softmax over dim 0": "def temperature_probs(logits, T):\n    if T == 0:\n        return torch.nn.functional.one_hot(logits.argmax(-1), logits.shape[-1]).to(logits.dtype)\n    return torch.softmax(logits / T, 0)",
        },
        "right": {
            "library distribution": "from course_lib.sampling import next_token_distribution\ndef temperature_probs(logits, T):\n    return next_token_distribution(logits, temperature=T)",
            "integer one-hot": "def temperature_probs(logits, T):\n    if T == 0:\n        return torch.nn.functional.one_hot(logits.argmax(-1), logits.shape[-1])\n    return torch.softmax(logits / T, -1)",
            "powers of probabilities": "def temperature_probs(logits, T):\n    if T == 0:\n        return torch.nn.functional.one_hot(logits.argmax(-1), logits.shape[-1]).float()\n    p = torch.softmax(logits, -1) ** (1 / T)\n    return p / p.sum(-1, keepdim=True)",
        },
    },
    "ex08_predict_top_p": {
        "wrong": {"one and two": "kept_at_05 = 1\nkept_at_07 = 2", "two and three": "kept_at_05 = 2\nkept_at_07 = 3", "floats": "kept_at_05 = 2.0\nkept_at_07 = 2.0"},
        "right": {"two and two": "kept_at_05 = 2\nkept_at_07 = 2"},
    },
    "ex08_spot_the_bug": {
        "wrong": {
            "the original bug": "def fixed_top_k(logits, k):\n    return buggy_top_k(logits, k)",
            "keeps k + 1": "def fixed_top_k(logits, k):\n    kth = torch.topk(logits, k + 1).values[..., -1:]\n    return logits.masked_fill(logits < kth, float('-inf'))",
            "keeps the bottom k": "def fixed_top_k(logits, k):\n    kth = torch.topk(logits, k, largest=False).values[..., -1:]\n    return logits.masked_fill(logits > kth, float('-inf'))",
            "drops the k-th": "def fixed_top_k(logits, k):\n    kth = torch.topk(logits, k).values[..., -1:]\n    return logits.masked_fill(logits <= kth, float('-inf'))",
            "-1 is not impossible": "def fixed_top_k(logits, k):\n    kth = torch.topk(logits, k).values[..., -1:]\n    return torch.where(logits < kth, torch.full_like(logits, -1.0), logits)",
            "returns probabilities": "def fixed_top_k(logits, k):\n    kth = torch.topk(logits, k).values[..., -1:]\n    return torch.softmax(logits.masked_fill(logits < kth, float('-inf')), -1)",
        },
        "right": {
            "library": "def fixed_top_k(logits, k):\n    return filter_logits(logits, top_k=k)",
            "-1e9 also zeroes": "def fixed_top_k(logits, k):\n    kth = torch.topk(logits, k).values[..., -1:]\n    return torch.where(logits < kth, torch.full_like(logits, -1e9), logits)",
        },
    },
    # ---------------------------------------------------------------- 09 tokenization
    "ex09_most_frequent_pair": {
        "wrong": {
            "non-overlapping count": "def most_frequent_pair(ids):\n    counts, i = {}, 0\n    while i + 1 < len(ids):\n        pair = (ids[i], ids[i + 1])\n        counts[pair] = counts.get(pair, 0) + 1\n        i += 2 if ids[i] == ids[i + 1] else 1\n    return max(counts, key=counts.get) if counts else None",
            "ties to the smallest pair": "def most_frequent_pair(ids):\n    counts = Counter(zip(ids, ids[1:]))\n    return min(counts, key=lambda p: (-counts[p], p)) if counts else None",
            "ties to the last pair": "def most_frequent_pair(ids):\n    counts = Counter(zip(ids, ids[1:]))\n    best = None\n    for p, c in counts.items():\n        if best is None or c >= counts[best]:\n            best = p\n    return best",
            "pairs at even positions only": "def most_frequent_pair(ids):\n    counts = Counter(zip(ids[::2], ids[1::2]))\n    return max(counts, key=counts.get) if counts else None",
            "crashes on one id": "def most_frequent_pair(ids):\n    counts = Counter(zip(ids, ids[1:]))\n    return max(counts, key=counts.get)",
            "the count, not the pair": "def most_frequent_pair(ids):\n    counts = Counter(zip(ids, ids[1:]))\n    return max(counts.values()) if counts else None",
        },
        "right": {
            "most_common": "from collections import Counter\ndef most_frequent_pair(ids):\n    counts = Counter(zip(ids, ids[1:]))\n    return counts.most_common(1)[0][0] if counts else None",
            "a plain loop": "def most_frequent_pair(ids):\n    counts = {}\n    for pair in zip(ids, ids[1:]):\n        counts[pair] = counts.get(pair, 0) + 1\n    best = None\n    for pair, c in counts.items():\n        if best is None or c > counts[best]:\n            best = pair\n    return best",
        },
    },
    "ex09_predict_merge": {
        "wrong": {"overlapping": "tokens_for_4 = 2\ntokens_for_5 = 2", "three and four": "tokens_for_4 = 3\ntokens_for_5 = 4", "one each": "tokens_for_4 = 1\ntokens_for_5 = 1"},
        "right": {"two and three": "tokens_for_4 = 2\ntokens_for_5 = 3"},
    },
    "ex09_spot_the_bug": {
        "wrong": {
            "the original bug": "def fixed_decode(vocab, ids):\n    return buggy_decode(vocab, ids)",
            "replace per token": "def fixed_decode(vocab, ids):\n    return ''.join(vocab[i].decode('utf-8', errors='replace') for i in ids)",
            "ignore per token": "def fixed_decode(vocab, ids):\n    return ''.join(vocab[i].decode('utf-8', errors='ignore') for i in ids)",
            "latin-1": "def fixed_decode(vocab, ids):\n    return b''.join(vocab[i] for i in ids).decode('latin-1')",
            "ids as characters": "def fixed_decode(vocab, ids):\n    return ''.join(chr(i) for i in ids)",
        },
        "right": {
            "library": "def fixed_decode(vocab, ids):\n    return bpe.decode(ids)",
            "strict utf-8": "def fixed_decode(vocab, ids):\n    return bytes(b for i in ids for b in vocab[i]).decode('utf-8')",
        },
    },
    # ---------------------------------------------------------------- 10 evaluation
    "ex10_perplexity": {
        "wrong": {
            "sums the logs": "def perplexity_from_probabilities(p):\n    return math.exp(-p.log().sum().item())",
            "1 / mean": "def perplexity_from_probabilities(p):\n    return 1 / p.mean().item()",
            "the loss": "def perplexity_from_probabilities(p):\n    return -p.log().mean().item()",
            "sign": "def perplexity_from_probabilities(p):\n    return math.exp(p.log().mean().item())",
            "a tensor": "def perplexity_from_probabilities(p):\n    return torch.exp(-p.log().mean())",
            "log2 base": "def perplexity_from_probabilities(p):\n    return math.exp(-p.log2().mean().item())",
        },
        "right": {
            "geometric mean": "def perplexity_from_probabilities(p):\n    return float(torch.prod(p.double()) ** (-1 / len(p)))",
            "2 ** entropy in bits": "def perplexity_from_probabilities(p):\n    return 2 ** (-p.log2().mean().item())",
        },
    },
    "ex10_predict_perplexity": {
        "wrong": {"0.1": "predicted_perplexity = 0.1", "the loss": "predicted_perplexity = 2.302585092994046", "text": 'predicted_perplexity = "10"'},
        "right": {"ten": "predicted_perplexity = 10", "ten float": "predicted_perplexity = 10.0"},
    },
    "ex10_spot_the_bug": {
        "wrong": {
            "the original bug": "def fixed_split(sentences, n_val):\n    return buggy_split(sentences, n_val)",
            "validation at the front": "def fixed_split(sentences, n_val):\n    return WordTokenizer.from_sentences(sentences[n_val:]), sentences[n_val:], sentences[:n_val]",
            "off by one": "def fixed_split(sentences, n_val):\n    train, val = sentences[:-n_val - 1], sentences[-n_val:]\n    return WordTokenizer.from_sentences(train), train, val",
            "tokenizer from the validation set": "def fixed_split(sentences, n_val):\n    train, val = sentences[:-n_val], sentences[-n_val:]\n    return WordTokenizer.from_sentences(val), train, val",
            "hard-coded 4": "def fixed_split(sentences, n_val):\n    train, val = sentences[:-4], sentences[-4:]\n    return WordTokenizer.from_sentences(train), train, val",
        },
        "right": {"by length": "def fixed_split(sentences, n_val):\n    cut = len(sentences) - n_val\n    return WordTokenizer.from_sentences(sentences[:cut]), list(sentences[:cut]), list(sentences[cut:])"},
    },
    # ---------------------------------------------------------------- 11 KV cache
    "ex11_append": {
        "wrong": {
            "new first": "def append_to_cache(cached, new):\n    return new if cached is None else torch.cat([new, cached], dim=-2)",
            "features axis": "def append_to_cache(cached, new):\n    return new if cached is None else torch.cat([cached, new], dim=-1)",
            "None not handled": "def append_to_cache(cached, new):\n    return torch.cat([cached, new], dim=-2)",
            "keeps only the new": "def append_to_cache(cached, new):\n    return new",
            "stack": "def append_to_cache(cached, new):\n    return new if cached is None else torch.stack([cached[..., -1, :], new[..., 0, :]], dim=-2)",
        },
        "right": {"dim 2": "def append_to_cache(cached, new):\n    if cached is None:\n        return new\n    return torch.cat((cached, new), 2)"},
    },
    "ex11_predict_work": {
        "wrong": {"one more each": "positions_uncached = 5150\npositions_cached = 101", "squared": "positions_uncached = 10000\npositions_cached = 100",
                  "same": "positions_uncached = 100\npositions_cached = 100"},
        "right": {"5050 and 100": "positions_uncached = 5050\npositions_cached = 100"},
    },
    "ex11_spot_the_bug": {
        "wrong": {
            "the original bug": "def fixed_positions(n_cached, n_new):\n    return buggy_positions(n_cached, n_new)",
            "float positions": "def fixed_positions(n_cached, n_new):\n    return torch.arange(n_cached, n_cached + n_new, dtype=torch.float32)",
            "off by one": "def fixed_positions(n_cached, n_new):\n    return torch.arange(n_cached + 1, n_cached + n_new + 1)",
            "only the first new position": "def fixed_positions(n_cached, n_new):\n    return torch.tensor([n_cached])",
            "counts up to n_new": "def fixed_positions(n_cached, n_new):\n    return torch.arange(n_cached, n_new)",
        },
        "right": {"arange plus offset": "def fixed_positions(n_cached, n_new):\n    return torch.arange(n_new) + n_cached"},
    },
    # ---------------------------------------------------------------- 12 pretraining
    "ex12_schedule": {
        "wrong": {
            "warm-up from 0": "def warmup_cosine(step, lr, min_lr, warmup, decay_steps):\n    if step < warmup:\n        return lr * step / warmup\n"
                              "    if step >= decay_steps:\n        return min_lr\n    p = (step - warmup) / (decay_steps - warmup)\n"
                              "    return min_lr + 0.5 * (1 + math.cos(math.pi * p)) * (lr - min_lr)",
            "progress from step 0": "def warmup_cosine(step, lr, min_lr, warmup, decay_steps):\n    if step < warmup:\n        return lr * (step + 1) / warmup\n"
                                    "    if step >= decay_steps:\n        return min_lr\n    p = step / decay_steps\n"
                                    "    return min_lr + 0.5 * (1 + math.cos(math.pi * p)) * (lr - min_lr)",
            "decays to 0": "def warmup_cosine(step, lr, min_lr, warmup, decay_steps):\n    if step < warmup:\n        return lr * (step + 1) / warmup\n"
                           "    if step >= decay_steps:\n        return min_lr\n    p = (step - warmup) / (decay_steps - warmup)\n"
                           "    return 0.5 * (1 + math.cos(math.pi * p)) * lr",
            "linear decay": "def warmup_cosine(step, lr, min_lr, warmup, decay_steps):\n    if step < warmup:\n        return lr * (step + 1) / warmup\n"
                            "    if step >= decay_steps:\n        return min_lr\n    p = (step - warmup) / (decay_steps - warmup)\n"
                            "    return lr - p * (lr - min_lr)",
            "no floor after decay_steps": "def warmup_cosine(step, lr, min_lr, warmup, decay_steps):\n    if step < warmup:\n        return lr * (step + 1) / warmup\n"
                                          "    p = (step - warmup) / (decay_steps - warmup)\n"
                                          "    return min_lr + 0.5 * (1 + math.cos(math.pi * p)) * (lr - min_lr)",
            "a full cosine period": "def warmup_cosine(step, lr, min_lr, warmup, decay_steps):\n    if step < warmup:\n        return lr * (step + 1) / warmup\n"
                                    "    if step >= decay_steps:\n        return min_lr\n    p = (step - warmup) / (decay_steps - warmup)\n"
                                    "    return min_lr + 0.5 * (1 + math.cos(2 * math.pi * p)) * (lr - min_lr)",
            "no warm-up": "def warmup_cosine(step, lr, min_lr, warmup, decay_steps):\n    if step >= decay_steps:\n        return min_lr\n"
                          "    p = max(0, step - warmup) / (decay_steps - warmup)\n"
                          "    return min_lr + 0.5 * (1 + math.cos(math.pi * p)) * (lr - min_lr)",
        },
        "right": {
            "the library": "from course_lib.pretraining import TrainConfig, lr_at\n\n"
                           "def warmup_cosine(step, lr, min_lr, warmup, decay_steps):\n"
                           "    return lr_at(step, TrainConfig(steps=decay_steps, lr=lr, min_lr=min_lr, warmup_steps=warmup, lr_decay_steps=decay_steps))",
            "min/max and a tensor": "def warmup_cosine(step, lr, min_lr, warmup, decay_steps):\n    if step < warmup:\n        return torch.tensor(lr * (step + 1) / warmup)\n"
                                    "    p = min(1.0, (step - warmup) / (decay_steps - warmup))\n"
                                    "    return torch.tensor(min_lr + (lr - min_lr) * (math.cos(math.pi * p) + 1) / 2)",
        },
    },
    "ex12_decay_groups": {
        "wrong": {
            "every matrix (embeddings too)": "def decay_names(model):\n    return [n for n, p in model.named_parameters() if p.dim() >= 2]",
            "every parameter": "def decay_names(model):\n    return [n for n, p in model.named_parameters()]",
            "every 'weight' (LayerNorms too)": "def decay_names(model):\n    return [n for n, p in model.named_parameters() if n.endswith('weight')]",
            "Linear layers, biases too": "def decay_names(model):\n    return [f'{m}.{n}' for m, mod in model.named_modules() if isinstance(mod, torch.nn.Linear) "
                                         "for n, _ in mod.named_parameters()]",
            "Linear weights, tied head included": "def decay_names(model):\n    ids = {id(m.weight) for m in model.modules() if isinstance(m, torch.nn.Linear)}\n"
                                                  "    return [n for n, p in model.named_parameters() if id(p) in ids]",
            "nothing": "def decay_names(model):\n    return []",
            "by name, GPT only": "def decay_names(model):\n    return [n for n, p in model.named_parameters() if 'attn' in n and n.endswith('weight')]",
            "matrices not named embedding": "def decay_names(model):\n    return [n for n, p in model.named_parameters() if p.dim() == 2 and 'embedding' not in n]",
        },
        "right": {
            "the library": "def decay_names(model):\n    from course_lib.pretraining import decay_parameter_names\n    return decay_parameter_names(model)",
            "modules by name": "def decay_names(model):\n    emb = {id(m.weight) for m in model.modules() if isinstance(m, torch.nn.Embedding)}\n"
                               "    out = []\n    for name, m in model.named_modules():\n"
                               "        if isinstance(m, torch.nn.Linear) and id(m.weight) not in emb:\n"
                               "            out.append(f'{name}.weight' if name else 'weight')\n    return out",
        },
    },
    "ex12_ddp_bug": {
        "wrong": {
            "the original bug": "def fixed_rows_for_rank(starts, rank, world_size):\n    return rows_for_rank(starts, rank, world_size)",
            "every row on every rank": "def fixed_rows_for_rank(starts, rank, world_size):\n    return starts",
            "off by one rank": "def fixed_rows_for_rank(starts, rank, world_size):\n    n = len(starts) // world_size\n"
                               "    return starts[(rank + 1) % world_size * n:((rank + 1) % world_size + 1) * n] if rank else starts[:n]",
            "overlapping shares": "def fixed_rows_for_rank(starts, rank, world_size):\n    n = len(starts) // world_size\n    return starts[rank:rank + n]",
            "share size from rank": "def fixed_rows_for_rank(starts, rank, world_size):\n    n = len(starts) // world_size\n    return starts[rank * n:(rank + 2) * n]",
        },
        "right": {
            "strided": "def fixed_rows_for_rank(starts, rank, world_size):\n    return starts[rank::world_size]",
            "chunk": "def fixed_rows_for_rank(starts, rank, world_size):\n    return starts.chunk(world_size)[rank]",
        },
    },
    # ---------------------------------------------------------------- 13 GPT-2
    "ex13_conv1d": {
        "wrong": {
            "no transpose": "def conv1d_to_linear(weight, bias):\n    layer = nn.Linear(weight.shape[1], weight.shape[0])\n"
                            "    with torch.no_grad():\n        layer.weight.copy_(weight.reshape(weight.shape[1], weight.shape[0]))\n"
                            "        layer.bias.copy_(bias)\n    return layer",
            "in and out swapped, no transpose on squares": "def conv1d_to_linear(weight, bias):\n    layer = nn.Linear(weight.shape[0], weight.shape[1])\n"
                            "    with torch.no_grad():\n        layer.weight.copy_(weight if weight.shape[0] == weight.shape[1] else weight.t())\n"
                            "        layer.bias.copy_(bias)\n    return layer",
            "bias forgotten": "def conv1d_to_linear(weight, bias):\n    layer = nn.Linear(weight.shape[0], weight.shape[1])\n"
                              "    with torch.no_grad():\n        layer.weight.copy_(weight.t())\n        layer.bias.zero_()\n    return layer",
            "a fresh Linear": "def conv1d_to_linear(weight, bias):\n    return nn.Linear(weight.shape[0], weight.shape[1])",
            "returns a function": "def conv1d_to_linear(weight, bias):\n    return lambda x: x @ weight + bias",
        },
        "right": {
            "Parameters": "def conv1d_to_linear(weight, bias):\n    layer = nn.Linear(*weight.shape)\n"
                          "    layer.weight = nn.Parameter(weight.T.clone())\n    layer.bias = nn.Parameter(bias.clone())\n    return layer",
        },
    },
    "ex13_split_qkv": {
        "wrong": {
            "no transpose": "def split_qkv(weight, bias, d_model):\n    w = weight.split(d_model, dim=1)\n    b = bias.split(d_model)\n"
                            "    return w[0], b[0], w[1], b[1], w[2], b[2]",
            "rows instead of columns": "def split_qkv(weight, bias, d_model):\n    w = weight.t().split(d_model, dim=1)\n    b = bias.split(d_model)\n"
                                       "    return w[0], b[0], w[1], b[1], w[2], b[2]",
            "k, q, v order": "def split_qkv(weight, bias, d_model):\n    w = [x.t() for x in weight.split(d_model, dim=1)]\n    b = bias.split(d_model)\n"
                             "    return w[1], b[1], w[0], b[0], w[2], b[2]",
            "biases not split": "def split_qkv(weight, bias, d_model):\n    w = [x.t() for x in weight.split(d_model, dim=1)]\n"
                                "    return w[0], bias, w[1], bias, w[2], bias",
            "interleaved heads": "def split_qkv(weight, bias, d_model):\n    w = weight.t().reshape(d_model, 3, d_model)\n    b = bias.reshape(d_model, 3)\n"
                                 "    return w[:, 0], b[:, 0], w[:, 1], b[:, 1], w[:, 2], b[:, 2]",
        },
        "right": {
            "chunk": "def split_qkv(weight, bias, d_model):\n    q, k, v = weight.T.chunk(3, dim=0)\n    bq, bk, bv = bias.chunk(3)\n"
                     "    return q, bq, k, bk, v, bv",
        },
    },
    "ex13_gelu": {
        "wrong": {
            "the original bug": "def fixed_gpt2_config(hf):\n    return buggy_gpt2_config(hf)",
            "scaled embeddings": "def fixed_gpt2_config(hf):\n    c = config_from_hf(hf)\n    c.scale_embeddings = True\n    return c",
            "sinusoidal positions": "def fixed_gpt2_config(hf):\n    d = config_from_hf(hf).to_dict()\n    d['positions'] = 'sinusoidal'\n    return GPTConfig(**d)",
            "exact GELU, tanh elsewhere": "def fixed_gpt2_config(hf):\n    d = config_from_hf(hf).to_dict()\n    d['activation'] = 'gelu'\n    return GPTConfig(**d)",
        },
        "right": {
            "the library": "def fixed_gpt2_config(hf):\n    return config_from_hf(hf)",
            "dataclasses.replace": "import dataclasses\n\ndef fixed_gpt2_config(hf):\n    return dataclasses.replace(buggy_gpt2_config(hf), activation='gelu_tanh')",
        },
    },

    # ---------------------------------------------------------------- 14 from GPT to chat
    "ex14_mask": {
        "wrong": {
            "user tokens learned": "def template_with_mask(tokenizer, turns):\n    ids, learned = [], []\n    for t in turns:\n"
                                   "        body = tokenizer.encode(t['content']) + [tokenizer.id_of(END)]\n"
                                   "        ids += [tokenizer.id_of(MARKERS[t['role']])] + body\n        learned += [False] + [True] * len(body)\n"
                                   "    return ids, learned",
            "end of turn not learned": "def template_with_mask(tokenizer, turns):\n    ids, learned = [], []\n    for t in turns:\n"
                                       "        text = tokenizer.encode(t['content'])\n        a = t['role'] == 'assistant'\n"
                                       "        ids += [tokenizer.id_of(MARKERS[t['role']])] + text + [tokenizer.id_of(END)]\n"
                                       "        learned += [False] + [a] * len(text) + [False]\n    return ids, learned",
            "marker learned": "def template_with_mask(tokenizer, turns):\n    ids, learned = [], []\n    for t in turns:\n"
                              "        body = tokenizer.encode(t['content']) + [tokenizer.id_of(END)]\n        a = t['role'] == 'assistant'\n"
                              "        ids += [tokenizer.id_of(MARKERS[t['role']])] + body\n        learned += [a] + [a] * len(body)\n"
                              "    return ids, learned",
            "no end-of-turn token": "def template_with_mask(tokenizer, turns):\n    ids, learned = [], []\n    for t in turns:\n"
                                    "        body = tokenizer.encode(t['content'])\n"
                                    "        ids += [tokenizer.id_of(MARKERS[t['role']])] + body\n"
                                    "        learned += [False] + [t['role'] == 'assistant'] * len(body)\n    return ids, learned",
            "the user's turn learned instead": "def template_with_mask(tokenizer, turns):\n    ids, learned = [], []\n    for t in turns:\n"
                                               "        body = tokenizer.encode(t['content']) + [tokenizer.id_of(END)]\n"
                                               "        ids += [tokenizer.id_of(MARKERS[t['role']])] + body\n"
                                               "        learned += [False] + [t['role'] == 'user'] * len(body)\n    return ids, learned",
            "system turn learned": "def template_with_mask(tokenizer, turns):\n    ids, learned = [], []\n    for t in turns:\n"
                                   "        body = tokenizer.encode(t['content']) + [tokenizer.id_of(END)]\n"
                                   "        ids += [tokenizer.id_of(MARKERS[t['role']])] + body\n"
                                   "        learned += [False] + [t['role'] != 'user'] * len(body)\n    return ids, learned",
            "system turn skipped": "def template_with_mask(tokenizer, turns):\n    ids, learned = [], []\n    for t in turns:\n"
                                   "        if t['role'] == 'system':\n            continue\n"
                                   "        body = tokenizer.encode(t['content']) + [tokenizer.id_of(END)]\n"
                                   "        ids += [tokenizer.id_of(MARKERS[t['role']])] + body\n"
                                   "        learned += [False] + [t['role'] == 'assistant'] * len(body)\n    return ids, learned",
        },
        "right": {
            "the library": "def template_with_mask(tokenizer, turns):\n    return encode_turns(tokenizer, turns)",
            "token by token": "def template_with_mask(tokenizer, turns):\n    ids, learned = [], []\n    for t in turns:\n"
                              "        ids.append(tokenizer.id_of(MARKERS[t['role']]))\n        learned.append(False)\n"
                              "        for i in tokenizer.encode(t['content']) + [tokenizer.id_of(END)]:\n"
                              "            ids.append(i)\n            learned.append(t['role'] == 'assistant')\n    return ids, learned",
        },
    },
    "ex14_shift": {
        "wrong": {
            "not shifted": "def shift_and_mask(ids, learned):\n    x = torch.tensor(ids[:-1])\n"
                           "    y = torch.tensor([i if k else -100 for i, k in zip(ids[:-1], learned[:-1])])\n    return x, y",
            "off by one (learned[:-1])": "def shift_and_mask(ids, learned):\n    x = torch.tensor(ids[:-1])\n"
                                         "    y = torch.tensor([i if k else -100 for i, k in zip(ids[1:], learned[:-1])])\n    return x, y",
            "ignored as 0": "def shift_and_mask(ids, learned):\n    x = torch.tensor(ids[:-1])\n"
                            "    y = torch.tensor([i if k else 0 for i, k in zip(ids[1:], learned[1:])])\n    return x, y",
            "no mask": "def shift_and_mask(ids, learned):\n    return torch.tensor(ids[:-1]), torch.tensor(ids[1:])",
            "inputs not cut": "def shift_and_mask(ids, learned):\n    x = torch.tensor(ids)\n"
                              "    y = torch.tensor([i if k else -100 for i, k in zip(ids[1:], learned[1:])] + [-100])\n    return x, y",
            "mask inverted": "def shift_and_mask(ids, learned):\n    x = torch.tensor(ids[:-1])\n"
                             "    y = torch.tensor([-100 if k else i for i, k in zip(ids[1:], learned[1:])])\n    return x, y",
            "float targets": "def shift_and_mask(ids, learned):\n    x = torch.tensor(ids[:-1])\n"
                             "    y = torch.tensor([float(i) if k else -100.0 for i, k in zip(ids[1:], learned[1:])])\n    return x, y",
        },
        "right": {
            "torch.where": "def shift_and_mask(ids, learned):\n    t, k = torch.tensor(ids), torch.tensor(learned)\n"
                           "    return t[:-1], torch.where(k[1:], t[1:], IGNORE_INDEX)",
            "masked_fill": "def shift_and_mask(ids, learned):\n    t = torch.tensor(ids, dtype=torch.long)\n"
                           "    y = t[1:].clone().masked_fill(~torch.tensor(learned[1:], dtype=torch.bool), -100)\n    return t[:-1], y",
        },
    },
    "ex14_truncate": {
        "wrong": {
            "cuts the newest": "def keep_newest(turns, budget, size):\n    kept = list(turns)\n"
                               "    while sum(size(t) for t in kept) > budget and len(kept) > 1:\n        kept = kept[:-2] if len(kept) > 2 else kept[:1]\n"
                               "    if sum(size(t) for t in kept) > budget:\n        raise ValueError('too long')\n    return kept",
            "one turn at a time": "def keep_newest(turns, budget, size):\n    start = 0\n"
                                  "    while sum(size(t) for t in turns[start:]) > budget and start < len(turns) - 1:\n        start += 1\n"
                                  "    if sum(size(t) for t in turns[start:]) > budget:\n        raise ValueError('too long')\n    return turns[start:]",
            "no error, empty": "def keep_newest(turns, budget, size):\n    start = 0\n"
                               "    while start < len(turns) and sum(size(t) for t in turns[start:]) > budget:\n        start += 2\n"
                               "    return turns[start:]",
            "cuts the last user turn": "def keep_newest(turns, budget, size):\n    start = 0\n"
                                       "    while sum(size(t) for t in turns[start:]) > budget and start + 2 < len(turns):\n        start += 2\n"
                                       "    return [t for t in turns[start:] if size(t) <= budget] or turns[-1:]",
            "drops one exchange at most": "def keep_newest(turns, budget, size):\n"
                                          "    if sum(size(t) for t in turns) <= budget:\n        return turns\n"
                                          "    if sum(size(t) for t in turns[2:]) > budget or len(turns) < 3:\n        raise ValueError('too long')\n    return turns[2:]",
            "counts turns, not tokens": "def keep_newest(turns, budget, size):\n    start = 0\n"
                                        "    while len(turns) - start > budget and start + 2 < len(turns):\n        start += 2\n    return turns[start:]",
            "budget off by one": "def keep_newest(turns, budget, size):\n    last = max(i for i, t in enumerate(turns) if t['role'] == 'user')\n    start = 0\n"
                                 "    while sum(size(t) for t in turns[start:]) >= budget and start + 2 <= last:\n        start += 2\n"
                                 "    if sum(size(t) for t in turns[start:]) > budget:\n        raise ValueError('too long')\n    return turns[start:]",
        },
        "right": {
            "the library's fit_turns": "def keep_newest(turns, budget, size):\n    start, last = 0, max(i for i, t in enumerate(turns) if t['role'] == 'user')\n"
                                       "    total = lambda s: sum(map(size, turns[s:]))\n"
                                       "    for s in range(0, last + 1, 2):\n        if total(s) <= budget:\n            return turns[s:]\n"
                                       "    raise ValueError(f'needs {total(last - last % 2)} > {budget}')",
        },
    },
    # ---------------------------------------------------------------- 15 chatting
    "ex15_penalty": {
        "wrong": {
            "divides negatives": "def penalize(logits, seen, penalty):\n    out = logits.clone()\n"
                                 "    ids = torch.tensor(sorted(set(seen)), dtype=torch.long)\n    out[ids] = out[ids] / penalty\n    return out",
            "twice for repeats": "def penalize(logits, seen, penalty):\n    out = logits.clone()\n    for i in seen:\n"
                                 "        out[i] = out[i] / penalty if out[i] > 0 else out[i] * penalty\n    return out",
            "every token": "def penalize(logits, seen, penalty):\n    return torch.where(logits > 0, logits / penalty, logits * penalty)",
            "multiplies positives": "def penalize(logits, seen, penalty):\n    out = logits.clone()\n"
                                    "    ids = torch.tensor(sorted(set(seen)), dtype=torch.long)\n"
                                    "    out[ids] = torch.where(out[ids] > 0, out[ids] * penalty, out[ids] / penalty)\n    return out",
            "changes the input": "def penalize(logits, seen, penalty):\n    ids = torch.tensor(sorted(set(seen)), dtype=torch.long)\n"
                                 "    logits[ids] = torch.where(logits[ids] > 0, logits[ids] / penalty, logits[ids] * penalty)\n    return logits",
            "subtracts": "def penalize(logits, seen, penalty):\n    out = logits.clone()\n"
                         "    ids = torch.tensor(sorted(set(seen)), dtype=torch.long)\n    out[ids] = out[ids] - penalty\n    return out",
            "penalises the unseen": "def penalize(logits, seen, penalty):\n    keep = torch.zeros_like(logits, dtype=torch.bool)\n    keep[list(seen)] = True\n"
                                    "    return torch.where(keep, logits, torch.where(logits > 0, logits / penalty, logits * penalty))",
        },
        "right": {
            "the library": "from course_lib.sampling import apply_repetition_penalty\n\n\ndef penalize(logits, seen, penalty):\n"
                           "    return apply_repetition_penalty(logits, seen, penalty)",
            "a mask": "def penalize(logits, seen, penalty):\n    mask = torch.zeros(logits.shape[-1], dtype=torch.bool)\n    mask[list(seen)] = True\n"
                      "    return torch.where(mask & (logits > 0), logits / penalty, torch.where(mask, logits * penalty, logits))",
        },
    },
    "ex15_prompt": {
        "wrong": {
            "no history": "def prompt_for(tokenizer, history, message):\n"
                          "    return encode_turns(tokenizer, [{'role': 'user', 'content': message}])[0] + [tokenizer.id_of(ASSISTANT)]",
            "no assistant marker": "def prompt_for(tokenizer, history, message):\n"
                                   "    return encode_turns(tokenizer, history + [{'role': 'user', 'content': message}])[0]",
            "end after the marker": "def prompt_for(tokenizer, history, message):\n"
                                    "    ids = encode_turns(tokenizer, history + [{'role': 'user', 'content': message}])[0]\n"
                                    "    return ids + [tokenizer.id_of(ASSISTANT), tokenizer.id_of(END)]",
            "message as bare text": "def prompt_for(tokenizer, history, message):\n"
                                    "    ids = encode_turns(tokenizer, history)[0] if history else []\n"
                                    "    return ids + tokenizer.encode(message) + [tokenizer.id_of(ASSISTANT)]",
            "changes the history": "def prompt_for(tokenizer, history, message):\n    history.append({'role': 'user', 'content': message})\n"
                                   "    return encode_turns(tokenizer, history)[0] + [tokenizer.id_of(ASSISTANT)]",
            "message as the assistant's": "def prompt_for(tokenizer, history, message):\n"
                                          "    ids = encode_turns(tokenizer, history)[0] if history else []\n"
                                          "    return ids + [tokenizer.id_of(USER)] + tokenizer.encode(message) + [tokenizer.id_of(ASSISTANT)]",
            "system turn dropped": "def prompt_for(tokenizer, history, message):\n    h = [t for t in history if t['role'] != 'system']\n"
                                   "    return encode_turns(tokenizer, h + [{'role': 'user', 'content': message}])[0] + [tokenizer.id_of(ASSISTANT)]",
        },
        "right": {
            "the library's way": "def prompt_for(tokenizer, history, message):\n    turns = [*history, {'role': 'user', 'content': message}]\n"
                                 "    ids, _ = encode_turns(tokenizer, turns)\n    return ids + [tokenizer.id_of('<|assistant|>')]",
        },
    },
    "ex15_turn": {
        "wrong": {
            "keeps the end": "def take_turn(generated, first_special):\n    for k, t in enumerate(generated):\n"
                             "        if t >= first_special:\n            return generated[:k + 1], 'stop'\n    return list(generated), 'length'",
            "only <|end|>": "def take_turn(generated, first_special):\n    end = first_special + 3\n    for k, t in enumerate(generated):\n"
                            "        if t == end:\n            return generated[:k], 'stop'\n    return list(generated), 'length'",
            "last special": "def take_turn(generated, first_special):\n    cut = [k for k, t in enumerate(generated) if t >= first_special]\n"
                            "    return (generated[:cut[-1]], 'stop') if cut else (list(generated), 'length')",
            "reasons swapped": "def take_turn(generated, first_special):\n    for k, t in enumerate(generated):\n"
                               "        if t >= first_special:\n            return generated[:k], 'length'\n    return list(generated), 'stop'",
            "drops specials, keeps going": "def take_turn(generated, first_special):\n    kept = [t for t in generated if t < first_special]\n"
                                           "    return kept, 'stop' if len(kept) < len(generated) else 'length'",
            "off by one (> first_special)": "def take_turn(generated, first_special):\n    for k, t in enumerate(generated):\n"
                                            "        if t > first_special:\n            return generated[:k], 'stop'\n    return list(generated), 'length'",
        },
        "right": {
            "next()": "def take_turn(generated, first_special):\n"
                      "    k = next((k for k, t in enumerate(generated) if t >= first_special), None)\n"
                      "    return (list(generated), 'length') if k is None else (generated[:k], 'stop')",
        },
    },
    # ---------------------------------------------------------------- 16 serving
    "ex16_sse": {
        "wrong": {
            "one newline": "def sse_event(payload):\n    return 'data: ' + (payload if payload == '[DONE]' else json.dumps(payload)) + '\\n'",
            "str instead of JSON": "def sse_event(payload):\n    return f'data: {payload}\\n\\n'",
            "no space": "def sse_event(payload):\n    return 'data:' + (payload if payload == '[DONE]' else json.dumps(payload)) + '\\n\\n'",
            "no prefix": "def sse_event(payload):\n    return (payload if payload == '[DONE]' else json.dumps(payload)) + '\\n\\n'",
            "[DONE] as JSON": "def sse_event(payload):\n    return 'data: ' + json.dumps(payload) + '\\n\\n'",
            "three newlines": "def sse_event(payload):\n    return 'data: ' + (payload if payload == '[DONE]' else json.dumps(payload)) + '\\n\\n\\n'",
            "pretty-printed": "def sse_event(payload):\n    return 'data: ' + (payload if payload == '[DONE]' else json.dumps(payload, indent=1)) + '\\n\\n'",
            "CRLF": "def sse_event(payload):\n    return 'data: ' + (payload if payload == '[DONE]' else json.dumps(payload)) + '\\r\\n'",
        },
        "right": {
            "isinstance": "def sse_event(payload):\n    text = payload if isinstance(payload, str) else json.dumps(payload)\n    return 'data: ' + text + '\\n\\n'",
            "compact JSON": "def sse_event(payload):\n    text = payload if payload == '[DONE]' else json.dumps(payload, separators=(',', ':'))\n"
                            "    return 'data: ' + text + '\\n\\n'",
            "non-ASCII kept": "def sse_event(payload):\n    text = payload if payload == '[DONE]' else json.dumps(payload, ensure_ascii=False)\n"
                              "    return 'data: ' + text + '\\n\\n'",
        },
    },
    "ex16_temperature": {
        "wrong": {
            "bools pass": "def check_temperature(body):\n    v = body.get('temperature', 1)\n"
                          "    if not isinstance(v, (int, float)) or not math.isfinite(v) or not 0 <= v <= 2:\n"
                          "        return {'error': {'message': 'bad', 'type': 'invalid_request_error', 'param': 'temperature', 'code': None}}",
            "NaN passes": "def check_temperature(body):\n    v = body.get('temperature', 1)\n"
                          "    if isinstance(v, bool) or not isinstance(v, (int, float)) or v < 0 or v > 2:\n"
                          "        return {'error': {'message': 'bad', 'type': 'invalid_request_error', 'param': 'temperature', 'code': None}}",
            "strings converted": "def check_temperature(body):\n    try:\n        v = float(body.get('temperature', 1))\n    except (TypeError, ValueError):\n"
                                 "        v = -1\n    if not 0 <= v <= 2:\n"
                                 "        return {'error': {'message': 'bad', 'type': 'invalid_request_error', 'param': 'temperature', 'code': None}}",
            "upper bound 1": "def check_temperature(body):\n    v = body.get('temperature', 1)\n"
                             "    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or not 0 <= v <= 1:\n"
                             "        return {'error': {'message': 'bad', 'type': 'invalid_request_error', 'param': 'temperature', 'code': None}}",
            "raises instead": "def check_temperature(body):\n    v = body.get('temperature', 1)\n"
                              "    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or not 0 <= v <= 2:\n"
                              "        raise ValueError('temperature')",
            "wrong param": "def check_temperature(body):\n    v = body.get('temperature', 1)\n"
                           "    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or not 0 <= v <= 2:\n"
                           "        return {'error': {'message': 'bad', 'type': 'invalid_request_error', 'param': 'body', 'code': None}}",
            "None refused when absent": "def check_temperature(body):\n    v = body.get('temperature')\n"
                                        "    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or not 0 <= v <= 2:\n"
                                        "        return {'error': {'message': 'bad', 'type': 'invalid_request_error', 'param': 'temperature', 'code': None}}",
            "no message": "def check_temperature(body):\n    v = body.get('temperature', 1)\n"
                          "    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or not 0 <= v <= 2:\n"
                          "        return {'error': {'param': 'temperature'}}",
        },
        "right": {
            "the library": "from course_lib.server import APIError, _number\n\n\ndef check_temperature(body):\n    try:\n"
                           "        _number(body, 'temperature', 0, 2, None)\n    except APIError as e:\n        return e.body()",
        },
    },
    "ex16_holdback": {
        "wrong": {
            "whole stop counted": "def holdback(text, stops):\n    best = 0\n    for s in stops:\n"
                                  "        for k in range(1, min(len(s), len(text)) + 1):\n            if text.endswith(s[:k]):\n                best = max(best, k)\n    return best",
            "first stop only": "def holdback(text, stops):\n    s = stops[0] if stops else ''\n"
                               "    return max([k for k in range(1, min(len(s) - 1, len(text)) + 1) if text.endswith(s[:k])], default=0)",
            "shortest match": "def holdback(text, stops):\n    for s in stops:\n        for k in range(1, min(len(s) - 1, len(text)) + 1):\n"
                              "            if text.endswith(s[:k]):\n                return k\n    return 0",
            "last character only": "def holdback(text, stops):\n    return int(bool(text) and any(s[0] == text[-1] and len(s) > 1 for s in stops))",
            "holds back a whole stop's length": "def holdback(text, stops):\n"
                                                "    return max([len(s) - 1 for s in stops if any(text.endswith(s[:k]) for k in range(1, len(s)))], default=0)",
            "contains, not endswith": "def holdback(text, stops):\n    best = 0\n    for s in stops:\n"
                                      "        for k in range(1, len(s)):\n            if s[:k] in text:\n                best = max(best, k)\n    return min(best, len(text))",
        },
        "right": {
            "the library": "from course_lib.server import holdback as _h\n\n\ndef holdback(text, stops):\n    return _h(text, stops)",
            "longest first": "def holdback(text, stops):\n    for k in range(len(text), 0, -1):\n"
                             "        if any(len(s) > k and s.startswith(text[-k:]) for s in stops):\n            return k\n    return 0",
        },
    },
    "ex17_rmsnorm": {
        "wrong": {
            "LayerNorm": "def rms_norm(x, weight, eps=1e-6):\n    return (x - x.mean(-1, keepdim=True)) / torch.sqrt(x.var(-1, unbiased=False, keepdim=True) + eps) * weight",
            "sum not mean": "def rms_norm(x, weight, eps=1e-6):\n    return x / torch.sqrt(x.pow(2).sum(-1, keepdim=True) + eps) * weight",
            "no square root": "def rms_norm(x, weight, eps=1e-6):\n    return x / (x.pow(2).mean(-1, keepdim=True) + eps) * weight",
            "wrong axis": "def rms_norm(x, weight, eps=1e-6):\n    return x / torch.sqrt(x.pow(2).mean(0, keepdim=True) + eps) * weight",
            "no weight": "def rms_norm(x, weight, eps=1e-6):\n    return x / torch.sqrt(x.pow(2).mean(-1, keepdim=True) + eps)",
            "eps outside the root": "def rms_norm(x, weight, eps=1e-6):\n    return x / (torch.sqrt(x.pow(2).mean(-1, keepdim=True)) + eps) * weight",
            "eps ignored": "def rms_norm(x, weight, eps=1e-6):\n    return x / torch.sqrt(x.pow(2).mean(-1, keepdim=True) + 1e-6) * weight",
            "abs mean": "def rms_norm(x, weight, eps=1e-6):\n    return x / (x.abs().mean(-1, keepdim=True) + eps) * weight",
        },
        "right": {
            "rsqrt": "def rms_norm(x, weight, eps=1e-6):\n    return x * torch.rsqrt(x.pow(2).mean(dim=-1, keepdim=True) + eps) * weight",
            "torch": "def rms_norm(x, weight, eps=1e-6):\n    return torch.nn.functional.rms_norm(x, (x.shape[-1],), weight, eps)",
            "library": "from course_lib.modern import RMSNorm\n\n\ndef rms_norm(x, weight, eps=1e-6):\n"
                       "    m = RMSNorm(x.shape[-1], eps).to(x.dtype)\n    with torch.no_grad():\n        m.weight.copy_(weight)\n    return m(x).detach()",
        },
    },
    "ex17_rope": {
        "wrong": {
            "sign": "def apply_rotary(x, cos, sin):\n    h = x.shape[-1] // 2\n    return x * cos + torch.cat([x[..., h:], -x[..., :h]], -1) * sin",
            "adjacent pairs": "def apply_rotary(x, cos, sin):\n    a, b = x[..., 0::2], x[..., 1::2]\n    c, s = cos[..., :x.shape[-1] // 2], sin[..., :x.shape[-1] // 2]\n"
                              "    return torch.stack([a * c - b * s, a * s + b * c], -1).flatten(-2)",
            "cos sin swapped": "def apply_rotary(x, cos, sin):\n    h = x.shape[-1] // 2\n    return x * sin + torch.cat([-x[..., h:], x[..., :h]], -1) * cos",
            "no swap": "def apply_rotary(x, cos, sin):\n    h = x.shape[-1] // 2\n    return x * cos + torch.cat([-x[..., :h], x[..., h:]], -1) * sin",
            "cos only": "def apply_rotary(x, cos, sin):\n    return x * cos",
            "added like a table": "def apply_rotary(x, cos, sin):\n    return x + cos + sin",
            "reversed rotation": "def apply_rotary(x, cos, sin):\n    h = x.shape[-1] // 2\n    return x * cos - torch.cat([-x[..., h:], x[..., :h]], -1) * sin",
        },
        "right": {
            "library": "from course_lib.modern import rotate_half\n\n\ndef apply_rotary(x, cos, sin):\n    return x * cos + rotate_half(x) * sin",
            "by pairs": "def apply_rotary(x, cos, sin):\n    h = x.shape[-1] // 2\n    a, b = x[..., :h], x[..., h:]\n    c, s = cos[..., :h], sin[..., :h]\n"
                        "    return torch.cat([a * c - b * s, a * s + b * c], -1)",
        },
    },
    "ex17_repeat_kv": {
        "wrong": {
            "tiled": "def repeat_heads(x, n_rep):\n    return x.repeat(1, n_rep, 1, 1)",
            "wrong axis": "def repeat_heads(x, n_rep):\n    return x.repeat_interleave(n_rep, dim=2)",
            "expand on the wrong side": "def repeat_heads(x, n_rep):\n    b, h, t, d = x.shape\n    return x[:, None].expand(b, n_rep, h, t, d).reshape(b, h * n_rep, t, d)",
            "no repeat": "def repeat_heads(x, n_rep):\n    return x",
            "batch axis": "def repeat_heads(x, n_rep):\n    return x.repeat_interleave(n_rep, dim=0)",
        },
        "right": {
            "expand": "def repeat_heads(x, n_rep):\n    b, h, t, d = x.shape\n    return x[:, :, None].expand(b, h, n_rep, t, d).reshape(b, h * n_rep, t, d)",
            "index": "def repeat_heads(x, n_rep):\n    return x[:, [h // n_rep for h in range(x.shape[1] * n_rep)]]",
            "library": "from course_lib.modern import repeat_kv\n\n\ndef repeat_heads(x, n_rep):\n    return repeat_kv(x, n_rep)",
        },
    },
    "ex18_q4_1_block": {
        "wrong": {
            "interleaved nibbles": "def dequantize_q4_1_block(block):\n    d = block[0:2].view(np.float16).astype(np.float32)[0]\n    m = block[2:4].view(np.float16).astype(np.float32)[0]\n"
                                   "    q = np.stack([block[4:] & 15, block[4:] >> 4], 1).reshape(-1).astype(np.float32)\n    return d * q + m",
            "high first": "def dequantize_q4_1_block(block):\n    d = block[0:2].view(np.float16).astype(np.float32)[0]\n    m = block[2:4].view(np.float16).astype(np.float32)[0]\n"
                          "    q = np.concatenate([block[4:] >> 4, block[4:] & 15]).astype(np.float32)\n    return d * q + m",
            "no minimum": "def dequantize_q4_1_block(block):\n    d = block[0:2].view(np.float16).astype(np.float32)[0]\n"
                          "    q = np.concatenate([block[4:] & 15, block[4:] >> 4]).astype(np.float32)\n    return d * q",
            "Q4_0 rule": "def dequantize_q4_1_block(block):\n    d = block[0:2].view(np.float16).astype(np.float32)[0]\n"
                         "    q = np.concatenate([block[4:] & 15, block[4:] >> 4]).astype(np.float32)\n    return d * (q - 8)",
            "d m swapped": "def dequantize_q4_1_block(block):\n    m = block[0:2].view(np.float16).astype(np.float32)[0]\n    d = block[2:4].view(np.float16).astype(np.float32)[0]\n"
                           "    q = np.concatenate([block[4:] & 15, block[4:] >> 4]).astype(np.float32)\n    return d * q + m",
            "big-endian scale": "def dequantize_q4_1_block(block):\n    d = block[0:2].view('>f2').astype(np.float32)[0]\n    m = block[2:4].view('>f2').astype(np.float32)[0]\n"
                                "    q = np.concatenate([block[4:] & 15, block[4:] >> 4]).astype(np.float32)\n    return d * q + m",
            "nibbles from byte 2": "def dequantize_q4_1_block(block):\n    d = block[0:2].view(np.float16).astype(np.float32)[0]\n    m = block[2:4].view(np.float16).astype(np.float32)[0]\n"
                                   "    q = np.concatenate([block[2:18] & 15, block[2:18] >> 4]).astype(np.float32)\n    return d * q + m",
        },
        "right": {
            "library": "from course_lib.gguf import dequantize\n\n\ndef dequantize_q4_1_block(block):\n    return dequantize(block, 'Q4_1')",
            "loop": "def dequantize_q4_1_block(block):\n    d = float(block[0:2].view(np.float16)[0])\n    m = float(block[2:4].view(np.float16)[0])\n"
                    "    out = np.zeros(32, np.float32)\n    for j in range(16):\n        out[j] = np.float32(d) * np.float32(block[4 + j] & 15) + np.float32(m)\n"
                    "        out[j + 16] = np.float32(d) * np.float32(block[4 + j] >> 4) + np.float32(m)\n    return out",
        },
    },
    "ex18_q8_0_quantize": {
        "wrong": {
            "np.round": "def quantize_q8_0_block(x):\n    d = np.abs(x).max() / np.float32(127)\n    q = np.round(x / d) if d > 0 else np.zeros_like(x)\n    return d, q.astype(np.int8)",
            "truncates": "def quantize_q8_0_block(x):\n    d = np.abs(x).max() / np.float32(127)\n    q = np.trunc(x / d) if d > 0 else np.zeros_like(x)\n    return d, q.astype(np.int8)",
            "floor": "def quantize_q8_0_block(x):\n    d = np.abs(x).max() / np.float32(127)\n    q = np.floor(x / d + 0.5) if d > 0 else np.zeros_like(x)\n    return d, q.astype(np.int8)",
            "divides by 128": "def quantize_q8_0_block(x):\n    d = np.abs(x).max() / np.float32(128)\n    q = np.sign(x / d) * np.floor(np.abs(x / d) + 0.5) if d > 0 else np.zeros_like(x)\n    return d, q.astype(np.int8)",
            "max not abs max": "def quantize_q8_0_block(x):\n    d = x.max() / np.float32(127)\n    q = np.sign(x / d) * np.floor(np.abs(x / d) + 0.5) if d != 0 else np.zeros_like(x)\n    return d, np.clip(q, -128, 127).astype(np.int8)",
            "divides by the float16 scale": "def quantize_q8_0_block(x):\n    d = np.abs(x).max() / np.float32(127)\n    d16 = np.float32(np.float16(d))\n"
                                            "    y = x / d16 if d16 else np.zeros_like(x)\n    return d, (np.sign(y) * np.floor(np.abs(y) + 0.5)).astype(np.int8)",
            "int8 of the values": "def quantize_q8_0_block(x):\n    d = np.abs(x).max() / np.float32(127)\n    return d, x.astype(np.int8)",
        },
        "right": {
            "library inverse": "from course_lib.gguf import quantize\n\n\ndef quantize_q8_0_block(x):\n    raw = quantize(x, 'Q8_0')\n"
                               "    return np.abs(x).max() / np.float32(127), raw[2:].view(np.int8)",
            "multiply by inverse": "def quantize_q8_0_block(x):\n    d = np.abs(x).max() / np.float32(127)\n    inv = np.float32(1) / d if d else np.float32(0)\n"
                                   "    y = x * inv\n    return d, (np.sign(y) * np.floor(np.abs(y) + np.float32(0.5))).astype(np.int8)",
            "copysign": "def quantize_q8_0_block(x):\n    d = np.abs(x).max() / np.float32(127)\n    if d == 0:\n        return d, np.zeros(32, np.int8)\n"
                        "    y = x / d\n    return d, np.copysign(np.floor(np.abs(y) + 0.5), y).astype(np.int8)",
        },
    },
    "ex18_unpermute": {
        "wrong": {
            "llama.cpp's own order": "def unpermute(weight, n_heads):\n    rows = weight.shape[0]\n"
                                     "    return weight.reshape(n_heads, 2, rows // n_heads // 2, -1).transpose(1, 2).reshape(rows, -1)",
            "one head": "def unpermute(weight, n_heads):\n    rows = weight.shape[0]\n    return weight.reshape(1, rows // 2, 2, -1).transpose(1, 2).reshape(rows, -1)",
            "identity": "def unpermute(weight, n_heads):\n    return weight",
            "columns": "def unpermute(weight, n_heads):\n    return weight.reshape(weight.shape[0], -1, 2).transpose(1, 2).reshape(weight.shape)",
            "reversed rows": "def unpermute(weight, n_heads):\n    return weight.flip(0)",
        },
        "right": {
            "library": "from course_lib.gguf import unpermute_rope\n\n\ndef unpermute(weight, n_heads):\n    return unpermute_rope(weight, n_heads)",
            "index": "def unpermute(weight, n_heads):\n    hd = weight.shape[0] // n_heads\n"
                     "    order = [h * hd + 2 * i + j for h in range(n_heads) for j in (0, 1) for i in range(hd // 2)]\n    return weight[order]",
        },
    },
    "ex19_reply_mask": {
        "wrong": {
            "prompt marked": "def reply_mask(prompt_lengths, reply_lengths, width):\n    pos = torch.arange(width)[None]\n"
                             "    return pos < torch.tensor(prompt_lengths)[:, None]",
            "starts one early": "def reply_mask(prompt_lengths, reply_lengths, width):\n    pos = torch.arange(width)[None]\n    p = torch.tensor(prompt_lengths)[:, None]\n"
                                "    return (pos >= p - 1) & (pos < p - 1 + torch.tensor(reply_lengths)[:, None])",
            "padding included": "def reply_mask(prompt_lengths, reply_lengths, width):\n    return torch.arange(width)[None] >= torch.tensor(prompt_lengths)[:, None]",
            "one too many": "def reply_mask(prompt_lengths, reply_lengths, width):\n    pos = torch.arange(width)[None]\n    p = torch.tensor(prompt_lengths)[:, None]\n"
                            "    return (pos >= p) & (pos <= p + torch.tensor(reply_lengths)[:, None])",
            "floats": "def reply_mask(prompt_lengths, reply_lengths, width):\n    pos = torch.arange(width)[None]\n    p = torch.tensor(prompt_lengths)[:, None]\n"
                      "    return ((pos >= p) & (pos < p + torch.tensor(reply_lengths)[:, None])).float()",
            "reply length only": "def reply_mask(prompt_lengths, reply_lengths, width):\n    return torch.arange(width)[None] < torch.tensor(reply_lengths)[:, None]",
        },
        "right": {
            "loop": "def reply_mask(prompt_lengths, reply_lengths, width):\n    mask = torch.zeros(len(prompt_lengths), width, dtype=torch.bool)\n"
                    "    for i, (p, r) in enumerate(zip(prompt_lengths, reply_lengths)):\n        mask[i, p:p + r] = True\n    return mask",
            "library": "from course_lib.align import pack\n\n\ndef reply_mask(prompt_lengths, reply_lengths, width):\n"
                       "    _, m = pack([[0] * p for p in prompt_lengths], [[0] * r for r in reply_lengths], 0)\n"
                       "    return torch.cat([m, torch.zeros(len(m), width - m.shape[1], dtype=torch.bool)], 1)",
        },
    },
    "ex19_group_advantages": {
        "wrong": {
            "whole batch": "def group_advantages(rewards, group_size, eps=1e-4):\n    return (rewards - rewards.mean()) / (rewards.std() + eps)",
            "population std": "def group_advantages(rewards, group_size, eps=1e-4):\n    g = rewards.view(-1, group_size)\n"
                              "    return ((g - g.mean(1, keepdim=True)) / (g.std(1, unbiased=False, keepdim=True) + eps)).view(-1)",
            "no mean": "def group_advantages(rewards, group_size, eps=1e-4):\n    g = rewards.view(-1, group_size)\n    return (g / (g.std(1, keepdim=True) + eps)).view(-1)",
            "no std": "def group_advantages(rewards, group_size, eps=1e-4):\n    g = rewards.view(-1, group_size)\n    return (g - g.mean(1, keepdim=True)).view(-1)",
            "strided groups": "def group_advantages(rewards, group_size, eps=1e-4):\n    g = rewards.view(group_size, -1).T\n"
                              "    return ((g - g.mean(1, keepdim=True)) / (g.std(1, keepdim=True) + eps)).T.reshape(-1)",
            "no eps": "def group_advantages(rewards, group_size, eps=1e-4):\n    g = rewards.view(-1, group_size)\n"
                      "    return ((g - g.mean(1, keepdim=True)) / g.std(1, keepdim=True)).view(-1)",
            "grouped shape": "def group_advantages(rewards, group_size, eps=1e-4):\n    g = rewards.view(-1, group_size)\n"
                             "    return (g - g.mean(1, keepdim=True)) / (g.std(1, keepdim=True) + eps)",
        },
        "right": {
            "library": "from course_lib.align import group_advantages as _ga\n\n\ndef group_advantages(rewards, group_size, eps=1e-4):\n    return _ga(rewards, group_size, eps)",
            "loop": "def group_advantages(rewards, group_size, eps=1e-4):\n    out = []\n    for i in range(0, len(rewards), group_size):\n"
                    "        g = rewards[i:i + group_size]\n        out.append((g - g.mean()) / (g.std() + eps))\n    return torch.cat(out)",
        },
    },
    "ex19_dpo_loss": {
        "wrong": {
            "sign": "def dpo_loss(pc, pr, rc, rr, beta):\n    return -torch.nn.functional.logsigmoid(beta * ((pr - rr) - (pc - rc))).mean()",
            "no reference": "def dpo_loss(pc, pr, rc, rr, beta):\n    return -torch.nn.functional.logsigmoid(beta * (pc - pr)).mean()",
            "no beta": "def dpo_loss(pc, pr, rc, rr, beta):\n    return -torch.nn.functional.logsigmoid((pc - rc) - (pr - rr)).mean()",
            "sum": "def dpo_loss(pc, pr, rc, rr, beta):\n    return -torch.nn.functional.logsigmoid(beta * ((pc - rc) - (pr - rr))).sum()",
            "plus": "def dpo_loss(pc, pr, rc, rr, beta):\n    return torch.nn.functional.logsigmoid(beta * ((pc - rc) - (pr - rr))).mean()",
            "sigmoid": "def dpo_loss(pc, pr, rc, rr, beta):\n    return -torch.sigmoid(beta * ((pc - rc) - (pr - rr))).mean()",
            "beta on the reference only": "def dpo_loss(pc, pr, rc, rr, beta):\n    return -torch.nn.functional.logsigmoid((pc - pr) - beta * (rc - rr)).mean()",
            "reference added": "def dpo_loss(pc, pr, rc, rr, beta):\n    return -torch.nn.functional.logsigmoid(beta * ((pc + rc) - (pr + rr))).mean()",
        },
        "right": {
            "log of sigmoid": "def dpo_loss(pc, pr, rc, rr, beta):\n    return -torch.log(torch.sigmoid(beta * ((pc - rc) - (pr - rr)))).mean()",
            "softplus": "def dpo_loss(pc, pr, rc, rr, beta):\n    return torch.nn.functional.softplus(-beta * ((pc - pr) - (rc - rr))).mean()",
            "library": "from course_lib.align import dpo_loss as library_dpo\n\n\ndef dpo_loss(pc, pr, rc, rr, beta):\n    return library_dpo(pc, pr, rc, rr, beta)",
        },
    },
    "ex20_lora_forward": {
        "wrong": {
            "no scale": "def lora_forward(x, weight, bias, A, B, alpha):\n    return x @ weight.T + bias + (x @ A.T) @ B.T",
            "r over alpha": "def lora_forward(x, weight, bias, A, B, alpha):\n    return x @ weight.T + bias + (A.shape[0] / alpha) * (x @ A.T) @ B.T",
            "alpha only": "def lora_forward(x, weight, bias, A, B, alpha):\n    return x @ weight.T + bias + alpha * (x @ A.T) @ B.T",
            "update only": "def lora_forward(x, weight, bias, A, B, alpha):\n    return (alpha / A.shape[0]) * (x @ A.T) @ B.T",
            "no bias": "def lora_forward(x, weight, bias, A, B, alpha):\n    return x @ weight.T + (alpha / A.shape[0]) * (x @ A.T) @ B.T",
            "rank from B's rows": "def lora_forward(x, weight, bias, A, B, alpha):\n    return x @ weight.T + bias + (alpha / B.shape[0]) * (x @ A.T) @ B.T",
        },
        "right": {
            "full product": "def lora_forward(x, weight, bias, A, B, alpha):\n    return x @ (weight + alpha / A.shape[0] * B @ A).T + bias",
            "functional": "def lora_forward(x, weight, bias, A, B, alpha):\n    import torch.nn.functional as F\n"
                          "    return F.linear(x, weight, bias) + F.linear(F.linear(x, A), B) * (alpha / A.shape[0])",
        },
    },
    "ex20_merge": {
        "wrong": {
            "no scale": "def merged_weight(weight, A, B, alpha):\n    return weight + B @ A",
            "unchanged": "def merged_weight(weight, A, B, alpha):\n    return weight.clone()",
            "update only": "def merged_weight(weight, A, B, alpha):\n    return (alpha / A.shape[0]) * B @ A",
            "minus": "def merged_weight(weight, A, B, alpha):\n    return weight - (alpha / A.shape[0]) * B @ A",
            "alpha only": "def merged_weight(weight, A, B, alpha):\n    return weight + alpha * B @ A",
        },
        "right": {
            "in place on a copy": "def merged_weight(weight, A, B, alpha):\n    w = weight.clone()\n    w.addmm_(B, A, alpha=alpha / A.shape[0])\n    return w",
            "transposes": "def merged_weight(weight, A, B, alpha):\n    return weight + (alpha / A.shape[0]) * (A.T @ B.T).T",
        },
    },
    "ex20_lora_count": {
        "wrong": {
            "full matrix": "def lora_parameter_count(shapes, rank):\n    return sum(rank * a * b for a, b in shapes)",
            "one side": "def lora_parameter_count(shapes, rank):\n    return sum(rank * b for a, b in shapes)",
            "no rank": "def lora_parameter_count(shapes, rank):\n    return sum(a + b for a, b in shapes)",
            "squared rank": "def lora_parameter_count(shapes, rank):\n    return sum(rank * rank * (a + b) for a, b in shapes)",
            "with the weights": "def lora_parameter_count(shapes, rank):\n    return sum(rank * (a + b) + a * b for a, b in shapes)",
        },
        "right": {
            "loop": "def lora_parameter_count(shapes, rank):\n    total = 0\n    for d_out, d_in in shapes:\n        total += rank * d_in + d_out * rank\n    return total",
        },
    },
    "ex21_left_pad_mask": {
        "wrong": {
            "right padding": "def left_pad_mask(lengths, width):\n    return torch.arange(width)[None] < torch.tensor(lengths)[:, None]",
            "inverted": "def left_pad_mask(lengths, width):\n    return torch.arange(width)[None] < width - torch.tensor(lengths)[:, None]",
            "one short": "def left_pad_mask(lengths, width):\n    return torch.arange(width)[None] > width - torch.tensor(lengths)[:, None]",
            "one long": "def left_pad_mask(lengths, width):\n    return torch.arange(width)[None] >= width - 1 - torch.tensor(lengths)[:, None]",
            "longest, not width": "def left_pad_mask(lengths, width):\n    longest = max(lengths)\n"
                                  "    return torch.arange(width)[None] >= longest - torch.tensor(lengths)[:, None]",
            "ints": "def left_pad_mask(lengths, width):\n    return (torch.arange(width)[None] >= width - torch.tensor(lengths)[:, None]).long()",
            "all true": "def left_pad_mask(lengths, width):\n    return torch.ones(len(lengths), width, dtype=torch.bool)",
        },
        "right": {
            "loop": "def left_pad_mask(lengths, width):\n    m = torch.zeros(len(lengths), width, dtype=torch.bool)\n"
                    "    for i, n in enumerate(lengths):\n        m[i, width - n:] = True\n    return m",
            "flip": "def left_pad_mask(lengths, width):\n    right = torch.arange(width)[None] < torch.tensor(lengths)[:, None]\n"
                    "    return right.flip(1)",
        },
    },
    "ex21_row_positions": {
        "wrong": {
            "columns": "def row_positions(key_mask):\n    return torch.arange(key_mask.shape[1]).expand(key_mask.shape[0], -1)",
            "from one": "def row_positions(key_mask):\n    return key_mask.long().cumsum(dim=1)",
            "negative padding": "def row_positions(key_mask):\n    return key_mask.long().cumsum(dim=1) - 1",
            "floats": "def row_positions(key_mask):\n    return (key_mask.float().cumsum(dim=1) - 1).clamp(min=0)",
            "padding counted": "def row_positions(key_mask):\n    pad = (~key_mask).sum(1, keepdim=True)\n"
                               "    return (torch.arange(key_mask.shape[1])[None] + pad).clamp(max=key_mask.shape[1] - 1)",
            "reversed": "def row_positions(key_mask):\n    return key_mask.long().flip(1).cumsum(1).flip(1) - 1",
        },
        "right": {
            "loop": "def row_positions(key_mask):\n    out = torch.zeros(key_mask.shape, dtype=torch.long)\n"
                    "    for i, row in enumerate(key_mask):\n        pad = int((~row).sum())\n"
                    "        out[i, pad:] = torch.arange(key_mask.shape[1] - pad)\n    return out",
            "subtract the padding": "def row_positions(key_mask):\n    pad = (~key_mask).sum(1, keepdim=True)\n"
                                    "    return (torch.arange(key_mask.shape[1])[None] - pad).clamp(min=0)",
        },
    },
    "ex21_next_rows": {
        "wrong": {
            "finished stay": "def next_rows(running, finished, waiting, max_batch):\n    room = max(max_batch - len(running), 0)\n"
                             "    return list(running) + waiting[:room], waiting[room:]",
            "no limit": "def next_rows(running, finished, waiting, max_batch):\n    return [r for r in running if r not in finished] + waiting, []",
            "newest first": "def next_rows(running, finished, waiting, max_batch):\n    rows = [r for r in running if r not in finished]\n"
                            "    room = max(max_batch - len(rows), 0)\n    taken = waiting[::-1][:room]\n"
                            "    return rows + taken, [w for w in waiting if w not in taken]",
            "waiting first": "def next_rows(running, finished, waiting, max_batch):\n    rows = [r for r in running if r not in finished]\n"
                             "    room = max(max_batch - len(rows), 0)\n    return waiting[:room] + rows, waiting[room:]",
            "the rest dropped": "def next_rows(running, finished, waiting, max_batch):\n    rows = [r for r in running if r not in finished]\n"
                                "    room = max(max_batch - len(rows), 0)\n    return rows + waiting[:room], []",
            "room before leaving": "def next_rows(running, finished, waiting, max_batch):\n    room = max(max_batch - len(running), 0)\n"
                                   "    return [r for r in running if r not in finished] + waiting[:room], waiting[room:]",
            "sorted": "def next_rows(running, finished, waiting, max_batch):\n    rows = sorted(r for r in running if r not in finished)\n"
                      "    room = max(max_batch - len(rows), 0)\n    return rows + waiting[:room], waiting[room:]",
        },
        "right": {
            "loop": "def next_rows(running, finished, waiting, max_batch):\n    rows = []\n    for r in running:\n"
                    "        if r not in finished:\n            rows.append(r)\n    rest = list(waiting)\n"
                    "    while rest and len(rows) < max_batch:\n        rows.append(rest.pop(0))\n    return rows, rest",
            "tuple of lists via slicing": "def next_rows(running, finished, waiting, max_batch):\n"
                                          "    rows = list(filter(lambda r: r not in finished, running))\n"
                                          "    k = max_batch - len(rows)\n    return rows + waiting[:max(k, 0)], waiting[max(k, 0):]",
        },
    },
    "ex22_bits_per_byte": {
        "wrong": {
            "nats": _H22 + "    logits = model(inputs)\n    nats = F.cross_entropy(logits.flatten(0, 1), targets.flatten(), reduction='sum')\n"
                    "    return (nats / byte_lengths[targets].sum()).item()",
            "per token": _H22 + "    logits = model(inputs)\n    nats = F.cross_entropy(logits.flatten(0, 1), targets.flatten(), reduction='sum')\n"
                         "    return (nats / math.log(2) / targets.numel()).item()",
            "mean": _H22 + "    logits = model(inputs)\n    nats = F.cross_entropy(logits.flatten(0, 1), targets.flatten())\n"
                    "    return (nats / math.log(2) / byte_lengths[targets].sum()).item()",
            "input bytes": _H22 + "    logits = model(inputs)\n    nats = F.cross_entropy(logits.flatten(0, 1), targets.flatten(), reduction='sum')\n"
                           "    return (nats / math.log(2) / byte_lengths[inputs].sum()).item()",
            "log10": _H22 + "    logits = model(inputs)\n    nats = F.cross_entropy(logits.flatten(0, 1), targets.flatten(), reduction='sum')\n"
                     "    return (nats / math.log(10) / byte_lengths[targets].sum()).item()",
            "tensor": _H22 + "    logits = model(inputs)\n    nats = F.cross_entropy(logits.flatten(0, 1), targets.flatten(), reduction='sum')\n"
                      "    return nats / math.log(2) / byte_lengths[targets].sum()",
            "bytes of the vocabulary": _H22 + "    logits = model(inputs)\n"
                                       "    nats = F.cross_entropy(logits.flatten(0, 1), targets.flatten(), reduction='sum')\n"
                                       "    return (nats / math.log(2) / (byte_lengths.float().mean() * targets.numel())).item()",
            "first window only": _H22 + "    logits = model(inputs[:1])\n"
                                 "    nats = F.cross_entropy(logits.flatten(0, 1), targets[:1].flatten(), reduction='sum')\n"
                                 "    return (nats / math.log(2) / byte_lengths[targets[:1]].sum()).item()",
        },
        "right": {
            "loop": _H22 + "    bits, n = 0.0, 0\n    for x, y in zip(inputs, targets):\n"
                    "        lp = torch.log_softmax(model(x[None])[0], -1)\n"
                    "        bits -= lp.gather(-1, y[:, None]).sum().item() / math.log(2)\n        n += int(byte_lengths[y].sum())\n"
                    "    return bits / n",
            "log2 of probabilities": _H22 + "    with torch.no_grad():\n        p = torch.softmax(model(inputs).double(), -1)\n"
                                     "    bits = -torch.log2(p.gather(-1, targets[..., None])).sum()\n"
                                     "    return float(bits / byte_lengths[targets].sum())",
        },
    },
    "ex22_choice_logprob": {
        "wrong": {
            "off by one": _C22 + "    ids = torch.tensor([context_ids + choice_ids])\n    lp = torch.log_softmax(model(ids), -1)[0]\n"
                          "    n = len(choice_ids)\n    return lp[-n:].gather(-1, ids[0, -n:, None]).sum().item()",
            "context too": _C22 + "    ids = torch.tensor([context_ids + choice_ids])\n    lp = torch.log_softmax(model(ids[:, :-1]), -1)[0]\n"
                           "    return lp.gather(-1, ids[0, 1:, None]).sum().item()",
            "mean": _C22 + "    ids = torch.tensor([context_ids + choice_ids])\n    lp = torch.log_softmax(model(ids[:, :-1]), -1)[0]\n"
                    "    n = len(choice_ids)\n    return lp[-n:].gather(-1, ids[0, -n:, None]).mean().item()",
            "probabilities": _C22 + "    ids = torch.tensor([context_ids + choice_ids])\n    p = torch.softmax(model(ids[:, :-1]), -1)[0]\n"
                             "    n = len(choice_ids)\n    return p[-n:].gather(-1, ids[0, -n:, None]).sum().item()",
            "raw logits": _C22 + "    ids = torch.tensor([context_ids + choice_ids])\n    lg = model(ids[:, :-1])[0]\n"
                          "    n = len(choice_ids)\n    return lg[-n:].gather(-1, ids[0, -n:, None]).sum().item()",
            "last token only": _C22 + "    ids = torch.tensor([context_ids + choice_ids])\n    lp = torch.log_softmax(model(ids[:, :-1]), -1)[0]\n"
                               "    return lp[-1, ids[0, -1]].item()",
            "first choice token missed": _C22 + "    ids = torch.tensor([context_ids + choice_ids])\n"
                                         "    lp = torch.log_softmax(model(ids[:, :-1]), -1)[0]\n    n = len(choice_ids) - 1\n"
                                         "    return lp[-n:].gather(-1, ids[0, -n:, None]).sum().item() if n else 0.0",
            "choice alone": _C22 + "    ids = torch.tensor([choice_ids])\n    lp = torch.log_softmax(model(ids), -1)[0]\n"
                            "    return sum(lp[t, ids[0, t + 1]].item() for t in range(len(choice_ids) - 1))",
        },
        "right": {
            "loop": _C22 + "    total, ids = 0.0, list(context_ids)\n    for t in choice_ids:\n"
                    "        total += torch.log_softmax(model(torch.tensor([ids]))[0, -1], -1)[t].item()\n        ids.append(t)\n"
                    "    return total",
            "cross_entropy": _C22 + "    ids = torch.tensor([context_ids + choice_ids])\n    logits = model(ids[:, :-1])[0]\n"
                             "    n = len(choice_ids)\n    return -F.cross_entropy(logits[-n:], ids[0, -n:], reduction='sum').item()",
        },
    },
    "ex22_pick": {
        "wrong": {
            "argmin": _P22 + "    v = [lp / b if normalise else lp for lp, b in scores]\n    return min(range(len(v)), key=v.__getitem__)",
            "never normalised": _P22 + "    return max(range(len(scores)), key=lambda i: scores[i][0])",
            "always normalised": _P22 + "    return max(range(len(scores)), key=lambda i: scores[i][0] / scores[i][1])",
            "inverted flag": _P22 + "    v = [lp if normalise else lp / b for lp, b in scores]\n    return max(range(len(v)), key=v.__getitem__)",
            "multiplied": _P22 + "    v = [lp * b if normalise else lp for lp, b in scores]\n    return max(range(len(v)), key=v.__getitem__)",
            "the score": _P22 + "    v = [lp / b if normalise else lp for lp, b in scores]\n    return max(v)",
            "one-based": _P22 + "    v = [lp / b if normalise else lp for lp, b in scores]\n    return max(range(len(v)), key=v.__getitem__) + 1",
            "per byte minus": _P22 + "    v = [lp - b if normalise else lp for lp, b in scores]\n    return max(range(len(v)), key=v.__getitem__)",
        },
        "right": {
            "sorted": _P22 + "    key = (lambda s: s[1][0] / s[1][1]) if normalise else (lambda s: s[1][0])\n"
                      "    return sorted(enumerate(scores), key=key)[-1][0]",
            "numpy": _P22 + "    import numpy as np\n    lp = np.array([s[0] for s in scores])\n    b = np.array([s[1] for s in scores])\n"
                     "    return int(np.argmax(lp / b if normalise else lp))",
        },
    },
}

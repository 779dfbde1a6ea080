"""A random-initialised tiny chat model built in-process: a BPE tokenizer trained on a few sentences and a
2-layer Qwen2. No downloads; about a second to build. `rewired_to_write` turns it into one whose every next
token is known, for tests that need a certain outcome rather than noise."""

from __future__ import annotations

import shutil
from pathlib import Path

CHAT_TEMPLATE = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
CORPUS = [
    "The user prefers short, practical answers and avoids long introductions.",
    "QUERY: CHOSEN ITEM BY THE USER: REJECTED ITEM BY THE USER: Interaction History Past Preference Summary",
    '{"selection": "Item A"} {"selection": "Item B"} Which item would this user prefer? Answer only with JSON.',
    "Science fiction movies, thoughtful drama, news about technology, science and health.",
    "Explain how vaccines work. Why is the sky blue? Recommend a movie. Not Provided. END OF INTERACTIONS",
    "0123456789 .,;:!?()[]{}<>'\"-_/\\|@#$%^&*+=~` abcdefghijklmnopqrstuvwxyz ABCDEFGHIJKLMNOPQRSTUVWXYZ",
]


def build_tiny_model(folder: Path, seed: int = 0) -> Path:
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast, Qwen2Config, Qwen2ForCausalLM

    folder.mkdir(parents=True, exist_ok=True)
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=400, special_tokens=SPECIALS,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(CORPUS * 4, trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<|im_end|>", pad_token="<|endoftext|>",
                                   bos_token=None, unk_token=None)
    fast.chat_template = CHAT_TEMPLATE
    fast.save_pretrained(folder)

    torch.manual_seed(seed)
    config = Qwen2Config(vocab_size=len(fast), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=4096,
                         tie_word_embeddings=False, eos_token_id=fast.eos_token_id,
                         pad_token_id=fast.pad_token_id, bos_token_id=None)
    model = Qwen2ForCausalLM(config)
    model.generation_config.eos_token_id = fast.eos_token_id
    model.generation_config.pad_token_id = fast.pad_token_id
    model.save_pretrained(folder)
    return folder


def rewired_to_write(model_dir: Path, folder: Path, token: str) -> Path:
    """A copy of the tiny model whose next token is always `token`, whatever the input and on any CPU.
    Residual dimension 0 carries a constant from the embeddings (no layer writes to it), the final norm
    keeps only that dimension, and only `token` reads it."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    shutil.copytree(model_dir, folder)
    tokenizer = AutoTokenizer.from_pretrained(folder)
    model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32)
    token_id = tokenizer.convert_tokens_to_ids(token)
    assert token_id is not None and token_id != tokenizer.unk_token_id, f"{token!r} is not one token"
    with torch.no_grad():
        model.model.embed_tokens.weight[:, 0] = 10.0
        for layer in model.model.layers:
            layer.self_attn.o_proj.weight[0, :] = 0.0
            layer.mlp.down_proj.weight[0, :] = 0.0
        model.model.norm.weight.zero_()
        model.model.norm.weight[0] = 1.0
        model.lm_head.weight.zero_()
        model.lm_head.weight[token_id, 0] = 100.0
    model.save_pretrained(folder)
    return folder

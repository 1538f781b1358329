#!/usr/bin/python3
"""Writes tiny-a (../shared/golden/models/tiny-a, llava-hf layout) in the layout of the
original LLaVA releases (liuhaotian/llava-v1.5-7b): the test checkpoint of
tests/test_original.c, committed under tests/fixtures/original/ (regenerate with
`/usr/bin/python3 scripts/original_layout.py --hf DIR --out tests/fixtures/original`;
needs Debian's python3-torch, which the tests do not).

  OUT/llava-tiny-a/  config.json (LlavaLlamaForCausalLM, mm_* fields), two fp16 shards
                     pytorch_model-0000k-of-00002.bin written by torch.save, their
                     pytorch_model.bin.index.json, tokenizer_config.json (tokenizer.model, the
                     LLaMA-2 SentencePiece model, is ../shared/golden/sentencepiece's: the
                     tests link it in rather than keep a copy); the vocabulary cut to 32000 rows (no
                     <image> row), names model.*, lm_head, model.mm_projector.0/2.*
  OUT/clip-tiny-a/   the tower as a CLIPModel release: config.json, pytorch_model.bin (f32)
                     with vision_model.* plus text-side tensors and int64 position_ids
                     buffers, preprocessor_config.json

The LLM shards are saved from views as training code leaves them: layer 0's q, k and v
projections are slices of one fused storage (storage offsets), so the reader meets
offsets as torch writes them. Every tiny-a weight is fp16-exact, so fp16 loses nothing.
"""
import argparse
import json
import os
import shutil
import struct
from collections import OrderedDict

import numpy as np
import torch

HF_DTYPES = {"F32": np.float32, "F16": np.float16}


def read_safetensors(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    out = {}
    for name, e in header.items():
        if name == "__metadata__":
            continue
        a, b = e["data_offsets"]
        out[name] = np.frombuffer(data[a:b], HF_DTYPES[e["dtype"]]).reshape(e["shape"])
    return out


def llm_state(hf, vocab):
    """Original names, fp16, vocabulary cut to `vocab` rows."""
    sd = OrderedDict()
    for name, a in hf.items():
        t = torch.from_numpy(a.copy())
        if name.startswith("language_model.model."):
            new = "model." + name[len("language_model.model."):]
        elif name == "language_model.lm_head.weight":
            new = "lm_head.weight"
        elif name.startswith("multi_modal_projector.linear_1."):
            new = "model.mm_projector.0." + name.rsplit(".", 1)[1]
        elif name.startswith("multi_modal_projector.linear_2."):
            new = "model.mm_projector.2." + name.rsplit(".", 1)[1]
        else:
            continue
        if new in ("model.embed_tokens.weight", "lm_head.weight"):
            t = t[:vocab]
        sd[new] = t.to(torch.float16)
    # layer 0's q, k, v as views of one storage, at storage offsets
    names = ["model.layers.0.self_attn.%s_proj.weight" % p for p in "qkv"]
    fused = torch.cat([sd[n] for n in names]).clone()
    rows = np.cumsum([0] + [sd[n].shape[0] for n in names])
    for n, a, b in zip(names, rows[:-1], rows[1:]):
        sd[n] = fused[a:b]
    return sd


def split_shards(sd):
    first = OrderedDict((k, v) for k, v in sd.items()
                        if k == "model.embed_tokens.weight" or k.startswith(("model.layers.0.", "model.layers.1.")))
    second = OrderedDict((k, v) for k, v in sd.items() if k not in first)
    return [first, second]


def write_llava(hf_dir, out, hf_config):
    hf = read_safetensors(os.path.join(hf_dir, "model.safetensors"))
    tc, vc = hf_config["text_config"], hf_config["vision_config"]
    shards = split_shards(llm_state(hf, 32000))
    weight_map, total = {}, 0
    for i, shard in enumerate(shards):
        name = "pytorch_model-%05d-of-%05d.bin" % (i + 1, len(shards))
        torch.save(shard, os.path.join(out, name))
        for k, v in shard.items():
            weight_map[k] = name
            total += v.numel() * v.element_size()
    with open(os.path.join(out, "pytorch_model.bin.index.json"), "w") as f:
        json.dump({"metadata": {"total_size": total}, "weight_map": weight_map}, f, indent=2)
    config = OrderedDict([
        ("_name_or_path", "tiny-a-original"), ("architectures", ["LlavaLlamaForCausalLM"]),
        ("bos_token_id", 1), ("eos_token_id", 2), ("freeze_mm_mlp_adapter", False),
        ("hidden_act", "silu"), ("hidden_size", tc["hidden_size"]), ("image_aspect_ratio", "pad"),
        ("intermediate_size", tc["intermediate_size"]),
        ("max_position_embeddings", tc["max_position_embeddings"]),
        ("mm_hidden_size", vc["hidden_size"]), ("mm_projector_type", "mlp2x_gelu"),
        ("mm_use_im_patch_token", False), ("mm_use_im_start_end", False),
        ("mm_vision_select_feature", "patch"), ("mm_vision_select_layer", -2),
        ("mm_vision_tower", "openai/clip-vit-large-patch14-336"), ("model_type", "llava"),
        ("num_attention_heads", tc["num_attention_heads"]),
        ("num_hidden_layers", tc["num_hidden_layers"]),
        ("num_key_value_heads", tc["num_key_value_heads"]), ("pad_token_id", 0),
        ("pretraining_tp", 1), ("rms_norm_eps", tc["rms_norm_eps"]), ("rope_scaling", None),
        ("tie_word_embeddings", False), ("torch_dtype", "float16"),
        ("transformers_version", "4.31.0"), ("tune_mm_mlp_adapter", False),
        ("use_cache", True), ("use_mm_proj", True), ("vocab_size", 32000)])
    with open(os.path.join(out, "config.json"), "w") as f:
        json.dump(config, f, indent=2)
    token = lambda s: {"__type": "AddedToken", "content": s, "lstrip": False,
                       "normalized": False, "rstrip": False, "single_word": False}
    with open(os.path.join(out, "tokenizer_config.json"), "w") as f:
        json.dump({"add_bos_token": True, "add_eos_token": False, "bos_token": token("<s>"),
                   "clean_up_tokenization_spaces": False, "eos_token": token("</s>"),
                   "legacy": False, "model_max_length": 2048, "pad_token": None,
                   "padding_side": "right", "sp_model_kwargs": {},
                   "tokenizer_class": "LlamaTokenizer", "unk_token": token("<unk>")}, f, indent=2)
    return hf


def write_clip(hf, out, hf_config, preprocessor):
    vc = hf_config["vision_config"]
    sd = OrderedDict()
    gen = torch.Generator().manual_seed(0)
    text_width, text_positions = 16, 8
    # the text side of a CLIPModel, which a LLaVA tower never reads
    sd["text_model.embeddings.token_embedding.weight"] = torch.randn(64, text_width, generator=gen)
    sd["text_model.embeddings.position_ids"] = torch.arange(text_positions).unsqueeze(0)
    sd["text_model.final_layer_norm.weight"] = torch.ones(text_width)
    sd["text_projection.weight"] = torch.randn(16, text_width, generator=gen)
    sd["visual_projection.weight"] = torch.randn(16, vc["hidden_size"], generator=gen)
    sd["logit_scale"] = torch.tensor(4.6052)
    n_pos = (vc["image_size"] // vc["patch_size"]) ** 2 + 1
    sd["vision_model.embeddings.position_ids"] = torch.arange(n_pos).unsqueeze(0)
    for name, a in hf.items():
        if name.startswith("vision_tower.vision_model."):
            sd[name[len("vision_tower."):]] = torch.from_numpy(a.copy())
    torch.save(sd, os.path.join(out, "pytorch_model.bin"))
    config = {"architectures": ["CLIPModel"], "model_type": "clip", "projection_dim": 16,
              "logit_scale_init_value": 2.6592, "torch_dtype": "float32",
              "text_config": {"hidden_size": text_width, "intermediate_size": 32,
                              "num_attention_heads": 2, "num_hidden_layers": 1,
                              "max_position_embeddings": text_positions, "vocab_size": 64,
                              "projection_dim": 16, "model_type": "clip_text_model"},
              "vision_config": {k: vc[k] for k in ("hidden_size", "image_size",
                                                   "intermediate_size", "num_attention_heads",
                                                   "num_hidden_layers", "patch_size",
                                                   "hidden_act", "layer_norm_eps")}}
    config["vision_config"].update(projection_dim=16, model_type="clip_vision_model")
    with open(os.path.join(out, "config.json"), "w") as f:
        json.dump(config, f, indent=2)
    shutil.copy(preprocessor, os.path.join(out, "preprocessor_config.json"))


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    golden = os.path.join(here, "..", "..", "shared", "golden")
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--hf", default=os.path.join(golden, "models", "tiny-a"))
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    llava, clip = os.path.join(a.out, "llava-tiny-a"), os.path.join(a.out, "clip-tiny-a")
    os.makedirs(llava, exist_ok=True)
    os.makedirs(clip, exist_ok=True)
    with open(os.path.join(a.hf, "config.json")) as f:
        hf_config = json.load(f)
    hf = write_llava(a.hf, llava, hf_config)
    write_clip(hf, clip, hf_config, os.path.join(a.hf, "preprocessor_config.json"))


if __name__ == "__main__":
    main()

"""Trains the bundled small LLaVA-1.5 model (models/synth-llava) on the synthetic
VQA task and exports it in the Hugging Face llava layout build/shortv loads.

Not part of `make` or the tests: the committed model is what everyone uses. It
needs Debian's python3-torch (CPU) and the training split:

    make data-train && nice /usr/bin/python3 scripts/train_synth.py

The PyTorch model below is the function runtime/vision.c and runtime/llm.c
compute: CLIP ViT (patch conv without bias, class + position embeddings,
pre_layrnorm, pre-LN layers with quick_gelu, features of hidden_states[-2] with
CLS dropped), the mlp2x_gelu projector (erf GELU), and a LLaMA decoder (RMSNorm,
rotate_half RoPE, grouped-query attention, SwiGLU). Token ids come from
`build/shortv tokenize`, pixels from the PNGs exactly as the runtime's pad
preprocessing sees them (the images are already square at the tower's size),
so training sees what the runtime will. After training the script checks
`build/shortv logits` against this model on a few eval samples.

Every training answer is asked exactly as inference asks it: the single-question
vicuna_v1 conversation "SYSTEM USER: <image>\\nQ ASSISTANT: A</s>", loss on the
answer and its </s> only. For speed, one sequence per image packs its nine
questions (eight questions and the caption) as blocks that see the prefix, the
visual tokens and themselves only, with positions restarting after the image
(Llava.hidden): the same function as nine separate conversations for the cost
of one image. (Plain multi-turn conversations let later questions be answered
from earlier answers; trained that way the model learned less from the image.)
Training runs in two stages, like LLaVA's (whose CLIP tower comes pre-trained):
stage 1 trains the vision tower and projector alone on per-patch targets (the
kind, colour and size of the object under each patch, from synth-vqa's
SPLIT-scenes.jsonl; see patch_targets), a few minutes at 65 tokens per image;
stage 2 freezes the tower and trains the projector and decoder on the answers,
keeping the per-patch loss on the visual tokens, with a curriculum that starts
on scenes of one or two objects. Trained on the answers alone, the tower never
learned to tell the shapes apart within the budget. In stage 2 a second probe
asks the visual tokens entering decoder layer --relation-layer for each
object's relations to the others (its rank from the left, how many objects of
its kind there are), which the tower was not taught: the decoder's first layers
must work them out on the visual tokens (see OBJECT_LABELS).
"""
import argparse
import json
import math
import os
import random
import struct
import subprocess
import sys
import time
import zlib

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import synth_tokenizer  # noqa: E402

# The model's shape. 64x64 images in 8x8 patches give 64 visual tokens; 12
# decoder layers give LC a profile; the widths are what ~25 minutes on 2 shared
# cores train far enough (width 128 ran half as many steps and had not started
# to use the image when its time was up).
VISION = dict(hidden_size=64, num_hidden_layers=4, num_attention_heads=4,
              intermediate_size=256, image_size=64, patch_size=8, layer_norm_eps=1e-5)
TEXT = dict(hidden_size=64, num_hidden_layers=12, num_attention_heads=4,
            num_key_value_heads=2, intermediate_size=176, rms_norm_eps=1e-5,
            rope_theta=10000.0, max_position_embeddings=512)
# CLIP's normalisation, written to preprocessor_config.json
IMAGE_MEAN = [0.48145466, 0.4578275, 0.40821073]
IMAGE_STD = [0.26862954, 0.26130258, 0.27577711]
BOS, EOS = 1, 2


# ---- data -------------------------------------------------------------------

def read_png(path):
    """An 8-bit RGB PNG as written by synth-vqa (rows filtered None/Sub/Up only)."""
    data = open(path, "rb").read()
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        raise ValueError(path + ": not a PNG")
    pos, idat, w, h = 8, [], 0, 0
    while pos < len(data):
        n, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + n]
        pos += 12 + n
        if kind == b"IHDR":
            w, h, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", body)
            if (depth, colour, interlace) != (8, 2, 0):
                raise ValueError(path + ": not 8-bit RGB non-interlaced")
        elif kind == b"IDAT":
            idat.append(body)
    raw = np.frombuffer(zlib.decompress(b"".join(idat)), np.uint8).reshape(h, 1 + 3 * w)
    out = np.zeros((h, 3 * w), np.uint8)
    prev = np.zeros(3 * w, np.uint8)
    for y in range(h):
        kind, row = raw[y, 0], raw[y, 1:]
        if kind == 0:
            cur = row.copy()
        elif kind == 1:  # Sub: each byte adds the one 3 bytes (a pixel) to its left
            cur = (np.cumsum(row.reshape(w, 3), axis=0, dtype=np.int64) % 256).astype(np.uint8)
            cur = cur.reshape(-1)
        elif kind == 2:  # Up
            cur = row + prev
        else:
            raise ValueError("%s: row filter %d (synth-vqa writes 0-2 only)" % (path, kind))
        out[y] = prev = cur
    return out.reshape(h, w, 3)


def normalise(rgb):
    """[H,W,3] uint8 -> [3,H,W] float32, as runtime/preprocess.c (rescale, mean/std)."""
    x = rgb.astype(np.float32) * np.float32(1 / 255)
    x = (x - np.array(IMAGE_MEAN, np.float32)) / np.array(IMAGE_STD, np.float32)
    return x.transpose(2, 0, 1).copy()


def read_manifest(path):
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f]


class Tokens:
    """Token ids from the C runtime's tokenizer (build/shortv tokenize), cached
    per text: training must tokenise exactly as inference does."""

    def __init__(self, shortv, model_dir):
        self.shortv, self.model_dir, self.cache = shortv, model_dir, {}

    def prefetch(self, texts, chunk=400):
        """Tokenises many texts in few runs: joined by </s>, an added token, each
        text is a run the tokenizer normalises on its own, so the ids split at
        </s> are each text's ids (Conversations.check confirms it)."""
        todo = sorted({t for t in texts if (t, False) not in self.cache})
        for i in range(0, len(todo), chunk):
            part = todo[i:i + chunk]
            ids = self("</s>".join(part) + "</s>", cache=False)
            runs, cur = [], []
            for t in ids:
                if t == EOS:
                    runs.append(cur)
                    cur = []
                else:
                    cur.append(t)
            assert len(runs) == len(part) and not cur, "a text holds </s>"
            self.cache.update(((text, False), r) for text, r in zip(part, runs))

    def __call__(self, text, bos=False, cache=True):
        key = (text, bos)
        if key not in self.cache:
            cmd = [self.shortv, "tokenize", "-m", self.model_dir] + ([] if bos else ["--no-bos"])
            out = subprocess.run(cmd + [text], check=True, capture_output=True, text=True).stdout
            if not cache:
                return [int(t) for t in out.split()]
            self.cache[key] = [int(t) for t in out.split()]
        return self.cache[key]


# The training split's caption question (synth_vqa.c)
CAPTION = "Describe the image."


def prompt_text(question):
    """The runtime's vicuna_v1 prompt (prompt.c)."""
    return "%s USER: <image>\n%s ASSISTANT:" % (synth_tokenizer.SYSTEM, question)


class Conversations:
    """Turns an image's questions into one packed token sequence. Added tokens
    (<image>, </s>) cut the text into runs that the tokenizer normalises one by
    one, so the ids of "SYSTEM USER: <image>\\nQ ASSISTANT: A</s>" are those of
    the shared prefix (everything before <image>), <image>, the run
    "\\nQ ASSISTANT: A" and </s>. An image's sequence is the prefix, <image>, then
    each question's run and </s> as its own block; check() proves the ids on
    samples."""

    def __init__(self, tok, image_id):
        self.tok, self.image_id = tok, image_id
        full = tok("%s USER: <image>" % synth_tokenizer.SYSTEM, bos=True)
        assert full[-1] == image_id and full.count(image_id) == 1, full
        self.prefix = full[:-1]

    @staticmethod
    def texts(question, answer):
        """The run after <image> up to "ASSISTANT:", and the whole run."""
        head = "\n" + question + " ASSISTANT:"
        return head, head + " " + answer

    def prefetch(self, groups):
        self.tok.prefetch([t for _, qa, _ in groups for q, a in qa for t in self.texts(q, a)])

    def turn(self, question, answer):
        """(ids, number of trailing answer ids) of one question's run, without </s>."""
        head, full = self.texts(question, answer)
        head, ids = self.tok(head), self.tok(full)
        assert ids[:len(head)] == head, (question, answer, head, ids)
        return ids, len(ids) - len(head)

    def sequence(self, qa):
        """After the prefix: ids (image placeholder first), a 0/1 loss mask and the
        block (question index) of each id; the placeholder is block -1."""
        ids, mask, block = [self.image_id], [0], [-1]
        for k, (q, a) in enumerate(qa):
            run, n_answer = self.turn(q, a)
            ids += run + [EOS]
            mask += [0] * (len(run) - n_answer) + [1] * (n_answer + 1)
            block += [k] * (len(run) + 1)
        return ids, mask, block

    def check(self, qa):
        """Each block is the tokenizer's ids of its single-question conversation, and
        the inference prompt's ids are its beginning."""
        ids, _, block = self.sequence(qa)
        for k, (q, a) in enumerate(qa):
            mine = self.prefix + [self.image_id] + [t for t, b in zip(ids, block) if b == k]
            assert self.tok(prompt_text(q) + " " + a + "</s>", bos=True) == mine, (q, a)
            first = self.tok(prompt_text(q), bos=True)
            assert first == mine[:len(first)], q


# ---- model ------------------------------------------------------------------

def rope_tables(n_pos, head_dim, theta):
    """cos, sin [n_pos, head_dim/2]; angles in float64 like runtime/ops.c sv_rope."""
    pos = torch.arange(n_pos, dtype=torch.float64)[:, None]
    inv = theta ** (-2.0 * torch.arange(head_dim // 2, dtype=torch.float64) / head_dim)
    ang = pos * inv[None, :]
    return torch.cos(ang).float(), torch.sin(ang).float()


def apply_rope(x, cos, sin):
    """x [B, heads, T, hd]; rotate_half: (a, b) -> (a cos - b sin, b cos + a sin)."""
    half = x.shape[-1] // 2
    a, b = x[..., :half], x[..., half:]
    return torch.cat([a * cos - b * sin, b * cos + a * sin], dim=-1)


class RMSNorm(nn.Module):
    def __init__(self, d, eps):
        super().__init__()
        self.weight, self.eps = nn.Parameter(torch.ones(d)), eps

    def forward(self, x):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * self.weight


class VisionLayer(nn.Module):
    """CLIPEncoderLayer: x += out_proj(attn(ln1 x)); x += fc2(quick_gelu(fc1(ln2 x)))"""

    def __init__(self, c):
        super().__init__()
        d, self.heads = c["hidden_size"], c["num_attention_heads"]
        self.layer_norm1 = nn.LayerNorm(d, eps=c["layer_norm_eps"])
        self.layer_norm2 = nn.LayerNorm(d, eps=c["layer_norm_eps"])
        self.q_proj, self.k_proj, self.v_proj, self.out_proj = (nn.Linear(d, d) for _ in range(4))
        self.fc1 = nn.Linear(d, c["intermediate_size"])
        self.fc2 = nn.Linear(c["intermediate_size"], d)

    def forward(self, x):
        B, T, d = x.shape
        h = self.layer_norm1(x)
        q, k, v = (p(h).view(B, T, self.heads, -1).transpose(1, 2)
                   for p in (self.q_proj, self.k_proj, self.v_proj))
        att = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(q.shape[-1]), dim=-1) @ v
        x = x + self.out_proj(att.transpose(1, 2).reshape(B, T, d))
        h = self.fc1(self.layer_norm2(x))
        return x + self.fc2(h * torch.sigmoid(1.702 * h))


class DecoderLayer(nn.Module):
    """LlamaDecoderLayer: h += o(attn(rmsnorm h)); h += down(silu(gate x) * up x)"""

    def __init__(self, c):
        super().__init__()
        d, m = c["hidden_size"], c["intermediate_size"]
        self.heads, self.kv_heads = c["num_attention_heads"], c["num_key_value_heads"]
        self.hd = d // self.heads
        self.input_layernorm = RMSNorm(d, c["rms_norm_eps"])
        self.post_attention_layernorm = RMSNorm(d, c["rms_norm_eps"])
        self.q_proj = nn.Linear(d, self.heads * self.hd, bias=False)
        self.k_proj = nn.Linear(d, self.kv_heads * self.hd, bias=False)
        self.v_proj = nn.Linear(d, self.kv_heads * self.hd, bias=False)
        self.o_proj = nn.Linear(self.heads * self.hd, d, bias=False)
        self.gate_proj = nn.Linear(d, m, bias=False)
        self.up_proj = nn.Linear(d, m, bias=False)
        self.down_proj = nn.Linear(m, d, bias=False)

    def qkv(self, x, cos, sin):
        B, T, _ = x.shape
        h = self.input_layernorm(x)
        q = self.q_proj(h).view(B, T, self.heads, self.hd).transpose(1, 2)
        k = self.k_proj(h).view(B, T, self.kv_heads, self.hd).transpose(1, 2)
        v = self.v_proj(h).view(B, T, self.kv_heads, self.hd).transpose(1, 2)
        return apply_rope(q, cos, sin), apply_rope(k, cos, sin), v

    def finish(self, x, q, k, v, mask):
        """x += o(softmax(q k^T / sqrt(hd) + mask) v); x += mlp(x). k, v may hold
        more (earlier) positions than q."""
        B, _, T, _ = q.shape
        group = self.heads // self.kv_heads
        k, v = k.repeat_interleave(group, 1), v.repeat_interleave(group, 1)
        scores = q @ k.transpose(-1, -2) / math.sqrt(self.hd) + mask
        att = (torch.softmax(scores, dim=-1) @ v).transpose(1, 2).reshape(B, T, -1)
        x = x + self.o_proj(att)
        h = self.post_attention_layernorm(x)
        return x + self.down_proj(F.silu(self.gate_proj(h)) * self.up_proj(h))


def causal_mask(n_q, n_k):
    """[n_q, n_k] additive mask; query i sits at key position n_k - n_q + i."""
    keep = torch.ones(n_q, n_k).tril(n_k - n_q).bool()
    return torch.zeros(n_q, n_k).masked_fill(~keep, float("-inf"))


def block_layout(block, at, n_vis, P, cos, sin):
    """RoPE tables [B,1,n,hd/2] and additive mask [B,1,n,P+n] of packed blocks
    (see Llava.hidden); block [B,T] holds -1 up to the image, then question
    indices, and -2 for padding (which sees only the prefix)."""
    B = block.shape[0]
    rows = torch.cat([block[:, :at], block[:, at:at + 1].expand(B, n_vis), block[:, at + 1:]], 1)
    n = rows.shape[1]
    # position within the sequence, restarting after the image for every block
    idx = torch.arange(n).expand(B, n)
    start = torch.zeros(B, n, dtype=torch.long)
    for b in range(B):
        first = {}
        for i, k in enumerate(rows[b].tolist()):
            first.setdefault(k, i)
            start[b, i] = first[k] if k >= 0 else 0
    pos = P + torch.where(rows >= 0, at + n_vis + idx - start, idx)
    qb, kb = rows[:, :, None], rows[:, None, :]
    earlier = idx[:, :, None] >= idx[:, None, :]
    see = ((kb == -1) & ((qb >= 0) | ((qb == -1) & earlier))) | ((kb == qb) & (qb >= 0) & earlier)
    see = torch.cat([torch.ones(B, n, P, dtype=torch.bool), see], 2)
    mask = torch.zeros(B, n, P + n).masked_fill(~see, float("-inf"))
    return cos[pos][:, None], sin[pos][:, None], mask[:, None]


class Llava(nn.Module):
    def __init__(self, vc, tc, vocab):
        super().__init__()
        dv, d = vc["hidden_size"], tc["hidden_size"]
        p, grid = vc["patch_size"], vc["image_size"] // vc["patch_size"]
        self.patch_embedding = nn.Conv2d(3, dv, p, stride=p, bias=False)
        self.class_embedding = nn.Parameter(torch.randn(dv) * 0.02)
        self.position_embedding = nn.Parameter(torch.randn(grid * grid + 1, dv) * 0.02)
        self.pre_layrnorm = nn.LayerNorm(dv, eps=vc["layer_norm_eps"])
        self.vlayers = nn.ModuleList(VisionLayer(vc) for _ in range(vc["num_hidden_layers"]))
        self.post_layernorm = nn.LayerNorm(dv, eps=vc["layer_norm_eps"])  # exported, unused
        self.linear_1, self.linear_2 = nn.Linear(dv, d), nn.Linear(d, d)
        self.embed_tokens = nn.Embedding(vocab, d)
        self.layers = nn.ModuleList(DecoderLayer(tc) for _ in range(tc["num_hidden_layers"]))
        self.norm = RMSNorm(d, tc["rms_norm_eps"])
        self.lm_head = nn.Linear(d, vocab, bias=False)
        cos, sin = rope_tables(tc["max_position_embeddings"], d // tc["num_attention_heads"],
                               tc["rope_theta"])
        self.register_buffer("cos", cos, persistent=False)
        self.register_buffer("sin", sin, persistent=False)
        self.init_weights(len(self.layers))

    def init_weights(self, n_layers):
        """std 1/sqrt(fan_in) (residual branches also / sqrt(2 layers)), embeddings
        and position embeddings O(1). GPT-2's fixed 0.02 suits width 768; at width
        64 it made every signal so small that the decoder took hundreds of steps
        more to start reading the image."""
        for name, p in self.named_parameters():
            if name.endswith("bias"):
                nn.init.zeros_(p)
            elif name in ("embed_tokens.weight", "class_embedding", "position_embedding"):
                nn.init.normal_(p, std=1.0 if name == "embed_tokens.weight" else 0.5)
            elif p.dim() >= 2:
                std = 1 / math.sqrt(p[0].numel())
                if name.endswith(("o_proj.weight", "down_proj.weight", "out_proj.weight",
                                  "fc2.weight")):
                    std /= math.sqrt(2 * n_layers)
                nn.init.normal_(p, std=std)

    def image_tokens(self, pixels):
        """[B,3,S,S] -> [B, grid^2, d]: hidden_states[-2] without CLS, projected."""
        x = self.patch_embedding(pixels).flatten(2).transpose(1, 2)
        cls = self.class_embedding.expand(x.shape[0], 1, -1)
        x = self.pre_layrnorm(torch.cat([cls, x], 1) + self.position_embedding)
        for layer in self.vlayers[:-1]:  # vision_feature_layer -2
            x = layer(x)
        return self.linear_2(F.gelu(self.linear_1(x[:, 1:])))

    def hidden(self, prefix_ids, ids, image_id, pixels, visual=None, block=None, tap=None):
        """Final hidden states [B, T, d] of prefix + ids per sample. The prefix (the
        same for every sample, before the image) is run once and its keys and values
        are shared; ids holds image_id once, where the visual tokens go.

        block [B, T] (training): ids after the image are blocks of independent
        questions. Each block sees the prefix, the visual tokens and itself, and
        its positions restart after the image, so it is exactly the
        single-question conversation inference runs (RoPE depends only on
        relative positions): packing without leaks between questions.

        tap: also return the visual tokens' states [B, n_vis, d] as layer `tap`
        receives them."""
        B, T = ids.shape
        n_vis = self.position_embedding.shape[0] - 1
        at = (ids[0] == image_id).nonzero()[0, 0].item()
        assert (ids[:, at] == image_id).all()
        emb = self.embed_tokens(ids)
        if visual is None:
            visual = self.image_tokens(pixels)
        x = torch.cat([emb[:, :at], visual, emb[:, at + 1:]], 1)
        p = self.embed_tokens(prefix_ids)[None]
        P, n = p.shape[1], x.shape[1]
        cos_p, sin_p = self.cos[:P], self.sin[:P]
        mask_p = causal_mask(P, P)
        if block is None:
            cos_x, sin_x = self.cos[P:P + n], self.sin[P:P + n]
            mask_x = causal_mask(n, P + n)
        else:
            cos_x, sin_x, mask_x = block_layout(block, at, n_vis, P, self.cos, self.sin)
        tapped = None
        for i, layer in enumerate(self.layers):
            if i == tap:
                tapped = x[:, at:at + n_vis]
            qp, kp, vp = layer.qkv(p, cos_p, sin_p)
            qx, kx, vx = layer.qkv(x, cos_x, sin_x)
            k = torch.cat([kp.expand(B, -1, -1, -1), kx], 2)
            v = torch.cat([vp.expand(B, -1, -1, -1), vx], 2)
            p = layer.finish(p, qp, kp, vp, mask_p)
            x = layer.finish(x, qx, k, v, mask_x)
        return (self.norm(x), n_vis) if tap is None else (self.norm(x), n_vis, tapped)

    def logits_at(self, h, rows):
        return self.lm_head(h[rows])


# ---- export -----------------------------------------------------------------

def hf_name(key):
    """The llava-hf (old-prefix) name of a state_dict key of Llava."""
    vt, lm = "vision_tower.vision_model.", "language_model.model."
    head, _, rest = key.partition(".")
    if head in ("class_embedding", "position_embedding"):
        return vt + "embeddings." + head + (".weight" if head == "position_embedding" else "")
    if head == "patch_embedding":
        return vt + "embeddings." + key
    if head in ("pre_layrnorm", "post_layernorm"):
        return vt + key
    if head in ("linear_1", "linear_2"):
        return "multi_modal_projector." + key
    if head in ("embed_tokens", "norm"):
        return lm + key
    if head == "lm_head":
        return "language_model." + key
    i, _, name = rest.partition(".")
    sub = name.split(".")[0]
    group = {"q_proj": "self_attn.", "k_proj": "self_attn.", "v_proj": "self_attn.",
             "o_proj": "self_attn.", "out_proj": "self_attn.", "fc1": "mlp.", "fc2": "mlp.",
             "gate_proj": "mlp.", "up_proj": "mlp.", "down_proj": "mlp."}.get(sub, "")
    if head == "vlayers":
        return "%sencoder.layers.%s.%s%s" % (vt, i, group, name)
    if head == "layers":
        return "%slayers.%s.%s%s" % (lm, i, group, name)
    raise KeyError(key)


def hf_tensors(model):
    """The weights under their llava-hf names, as numpy float32."""
    return {hf_name(k): v.detach().float().numpy() for k, v in model.state_dict().items()}


def read_safetensors(path):
    data = open(path, "rb").read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n])
    types = {"F32": np.float32, "F16": np.float16}
    out = {}
    for key, t in header.items():
        if key != "__metadata__":
            a, b = t["data_offsets"]
            out[key] = np.frombuffer(data[8 + n + a:8 + n + b], types[t["dtype"]]).reshape(t["shape"])
    return out


def load_hf(model, path):
    tensors = read_safetensors(path)
    model.load_state_dict({k: torch.from_numpy(tensors[hf_name(k)].astype(np.float32))
                           for k in model.state_dict()})


def write_safetensors(path, tensors, dtype):
    """safetensors: u64 header length, JSON header (8-byte aligned), raw data."""
    np_dtype, name = {"f32": (np.float32, "F32"), "f16": (np.float16, "F16")}[dtype]
    header, blobs, offset = {"__metadata__": {"format": "pt"}}, [], 0
    for key in sorted(tensors):
        arr = np.ascontiguousarray(tensors[key].astype(np_dtype))
        if dtype == "f16" and not np.isfinite(arr).all():
            raise ValueError("%s overflows float16" % key)
        blob = arr.tobytes()
        header[key] = {"dtype": name, "shape": list(arr.shape),
                       "data_offsets": [offset, offset + len(blob)]}
        blobs.append(blob)
        offset += len(blob)
    head = json.dumps(header, separators=(",", ":")).encode()
    head += b" " * (-len(head) % 8)
    with open(path + ".tmp", "wb") as f:
        f.write(struct.pack("<Q", len(head)) + head)
        for blob in blobs:
            f.write(blob)
    os.replace(path + ".tmp", path)


def write_config(out_dir, vocab, image_id, pad_id, dtype):
    torch_dtype = {"f32": "float32", "f16": "float16"}[dtype]
    grid = VISION["image_size"] // VISION["patch_size"]
    text = dict(TEXT, architectures=["LlamaForCausalLM"], model_type="llama", hidden_act="silu",
                head_dim=TEXT["hidden_size"] // TEXT["num_attention_heads"],
                attention_bias=False, attention_dropout=0.0, mlp_bias=False, rope_scaling=None,
                bos_token_id=BOS, eos_token_id=EOS, pad_token_id=pad_id, vocab_size=vocab,
                tie_word_embeddings=False, torch_dtype=torch_dtype)
    vision = dict(VISION, model_type="clip_vision_model", hidden_act="quick_gelu",
                  num_channels=3, projection_dim=VISION["hidden_size"],
                  attention_dropout=0.0, torch_dtype=torch_dtype)
    config = {"architectures": ["LlavaForConditionalGeneration"], "model_type": "llava",
              "ignore_index": -100, "image_token_index": image_id, "pad_token_id": pad_id,
              "image_seq_length": grid * grid, "projector_hidden_act": "gelu",
              "multimodal_projector_bias": True, "vision_feature_layer": -2,
              "vision_feature_select_strategy": "default", "tie_word_embeddings": False,
              "vocab_size": vocab, "torch_dtype": torch_dtype,
              "text_config": text, "vision_config": vision}
    size = VISION["image_size"]
    preprocessor = {"crop_size": {"height": size, "width": size}, "do_center_crop": True,
                    "do_convert_rgb": True, "do_normalize": True, "do_rescale": True,
                    "do_resize": True, "image_mean": IMAGE_MEAN, "image_std": IMAGE_STD,
                    "image_processor_type": "CLIPImageProcessor",
                    "processor_class": "LlavaProcessor", "resample": 3,
                    "rescale_factor": 1 / 255, "size": {"shortest_edge": size}}
    generation = {"bos_token_id": BOS, "eos_token_id": EOS, "pad_token_id": pad_id}
    for name, obj in (("config.json", config), ("preprocessor_config.json", preprocessor),
                      ("generation_config.json", generation)):
        synth_tokenizer.write_json(os.path.join(out_dir, name), obj)


def export(model, out_dir, tok_dir, vocab, image_id, pad_id, dtype):
    os.makedirs(out_dir, exist_ok=True)
    for name in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"):
        if os.path.abspath(tok_dir) != os.path.abspath(out_dir):
            with open(os.path.join(tok_dir, name), "rb") as src:
                open(os.path.join(out_dir, name), "wb").write(src.read())
    write_config(out_dir, vocab, image_id, pad_id, dtype)
    tensors = hf_tensors(model)
    write_safetensors(os.path.join(out_dir, "model.safetensors"), tensors, dtype)


# ---- training ---------------------------------------------------------------

def batches(groups, batch, rng):
    order = list(range(len(groups)))
    while True:
        rng.shuffle(order)
        for i in range(0, len(order) - batch + 1, batch):
            yield [groups[j] for j in order[i:i + batch]]


def n_objects(group):
    """Objects in a training image, from its caption ("big red circle, ...")."""
    return sum(a.count(",") + 1 for q, a in group[1] if q == CAPTION)


def collate(items, conv):
    """items: [(pixels, [(q, a), ...], patch targets)] -> ids [B,T] (right-padded),
    loss mask, blocks, pixels, patch targets."""
    seqs = [conv.sequence(qa) for _, qa, _ in items]
    T = max(len(s[0]) for s in seqs)
    ids = torch.full((len(seqs), T), EOS, dtype=torch.long)
    mask = torch.zeros(len(seqs), T, dtype=torch.bool)
    block = torch.full((len(seqs), T), -2, dtype=torch.long)
    for b, (s, m, k) in enumerate(seqs):
        ids[b, :len(s)] = torch.tensor(s)
        mask[b, :len(m)] = torch.tensor(m, dtype=torch.bool)
        block[b, :len(k)] = torch.tensor(k)
    pixels, labels, soft = stack_images(items)
    return ids, mask, block, pixels, labels, soft


def stack_images(items):
    """pixels [B,3,S,S], patch labels [B,n,5], soft targets [B,n,N_SOFT]."""
    return (torch.from_numpy(np.stack([g[0] for g in items])),
            torch.from_numpy(np.stack([g[2][0] for g in items])),
            torch.from_numpy(np.stack([g[2][1] for g in items])))


def loss_of(model, aux, relation, tap, conv, ids, mask, block, pixels, labels, soft):
    """Cross-entropy of the answer tokens and their </s>, each predicted from the
    position before it (positions counted after the image is expanded), and the
    auxiliary per-patch losses: OBJECT_LABELS on the visual tokens, probe aux;
    RELATION_LABELS on their states entering decoder layer `tap`, probe relation."""
    visual = model.image_tokens(pixels)
    h, n_vis, tapped = model.hidden(torch.tensor(conv.prefix), ids, conv.image_id, pixels,
                                    visual, block, tap)
    # in h, an id at column t > image column sits at row t + n_vis - 1
    b, t = mask.nonzero(as_tuple=True)
    logits = model.logits_at(h, (b, t + n_vis - 2))
    loss = F.cross_entropy(logits, ids[b, t])
    aux_loss, _ = aux_loss_of(aux(visual), labels, soft)
    relation_loss, relation_acc = label_loss(relation(tapped), labels, RELATION_LABELS)
    return (loss, aux_loss + relation_loss, relation_acc,
            logits.argmax(-1).eq(ids[b, t]).float().mean())


class Monitor:
    """Accuracy of the first answer token on held-out eval questions (single
    turn, as inference asks them), per type: is the model using the image yet?"""

    def __init__(self, conv, data, n):
        rows = read_manifest(os.path.join(data, "eval.jsonl"))[:n]
        self.types = [r["type"] for r in rows]
        self.prompts = [prompt_ids(conv, r["question"]) for r in rows]
        self.gold = [conv.turn(r["question"], r["answer"])[0][len(p) - 1]
                     for r, p in zip(rows, self.prompts)]
        self.pixels = torch.from_numpy(np.stack(
            [normalise(read_png(os.path.join(data, r["image"]))) for r in rows]))
        self.conv = conv

    def __call__(self, model, batch=50):
        right = []
        with torch.no_grad():
            for i in range(0, len(self.prompts), batch):
                ps = self.prompts[i:i + batch]
                T = max(map(len, ps))
                ids = torch.tensor([p + [EOS] * (T - len(p)) for p in ps])
                h, n_vis = model.hidden(torch.tensor(self.conv.prefix), ids,
                                        self.conv.image_id, self.pixels[i:i + batch])
                last = torch.tensor([len(p) - 1 + n_vis - 1 for p in ps])
                pred = model.lm_head(h[torch.arange(len(ps)), last]).argmax(-1)
                right += (pred == torch.tensor(self.gold[i:i + batch])).tolist()
        per = {}
        for t, ok in zip(self.types, right):
            per.setdefault(t, []).append(ok)
        return sum(right) / len(right), {t: sum(v) / len(v) for t, v in sorted(per.items())}


# Auxiliary targets per patch. A linear probe on the visual tokens (the LLM's
# input) must predict them; it is dropped at export. From the pixels: which
# palette colour (or the grey background) each pixel is, as a histogram, and
# which 2x2 blocks hold an object. From the scene (synth-vqa's SPLIT-scenes.jsonl):
# the kind, colour, size, left-to-right rank and kind count of the object that
# covers the patch (LABELS), and whether the patch holds that object's centre. They stand
# in for CLIP's pre-training, which gives a real tower object-level features
# before LLaVA ever trains on it: without them the decoder learned the answers'
# priors and ignored the image for the whole budget (visual tokens stayed nearly
# constant); with only colour and coverage, shape questions stayed near chance.
PALETTE = np.array([[220, 30, 30], [30, 170, 50], [40, 70, 230], [235, 215, 20],
                    [150, 50, 190], [245, 135, 20]], np.float32)  # synth_vqa.c color_rgb
KINDS = ["circle", "square", "triangle", "diamond", "cross"]
COLORS = ["red", "green", "blue", "yellow", "purple", "orange"]
# per-patch class labels (0: no object), their class counts and loss weights:
# kind is the hardest (a patch sees a fragment of an edge) and the slowest to
# start, so it weighs most
LABELS = (("kind", len(KINDS) + 1, 3.0), ("color", len(COLORS) + 1, 1.0), ("size", 3, 1.0),
          ("rank", 6, 1.0), ("kind count", 6, 1.0))
# What each object is, the tower's to see (stage 1) and the projector's to pass
# on; how it relates to the other objects, the decoder's first layers' to work
# out (Llava.hidden's tap): a real LLaVA decoder does its work on the visual
# tokens in its early layers too, and a decoder handed every answer ready-made
# by its tower leaves them untouched in every layer (visual LC ~1e-3 throughout,
# and freezing all 12 layers cost 4 points).
OBJECT_LABELS, RELATION_LABELS = (0, 1, 2), (3, 4)
N_SOFT = len(PALETTE) + 1 + 16 + 1  # histogram, 4x4 mask, centre


def n_outputs(which):
    return sum(LABELS[j][1] for j in which)


N_AUX = n_outputs(OBJECT_LABELS) + N_SOFT


def object_map(grey, objects):
    """[H,W] index of the object each pixel belongs to, -1 for the background:
    coloured pixels go to the object they are nearest to in units of its radius
    (objects never overlap and keep a gap, synth_vqa.c)."""
    if not objects:
        return np.full(grey.shape, -1)
    yy, xx = np.mgrid[:grey.shape[0], :grey.shape[1]] + 0.5
    d = np.stack([np.hypot(xx - o["x"], yy - o["y"]) / o["r"] for o in objects])
    return np.where(~grey & (d.min(0) < 1.3), d.argmin(0), -1)


def patch_targets(rgb, objects):
    """[H,W,3] uint8 and the scene's objects -> (labels [n_patches, 5] int64,
    soft [n_patches, N_SOFT] float32): see LABELS; then the colour histogram,
    the 4x4 object mask (2x2-pixel blocks, row-major) and the centre flag."""
    p = VISION["patch_size"]
    grid = rgb.shape[0] // p
    x = rgb.astype(np.float32)
    grey = x.max(-1) - x.min(-1) < 70  # the backgrounds are grey within +-25
    owner = object_map(grey, objects)
    nearest = ((x[:, :, None, :] - PALETTE) ** 2).sum(-1).argmin(-1)
    cls = np.where(grey, len(PALETTE), nearest)
    onehot = np.eye(len(PALETTE) + 1, dtype=np.float32)[cls]  # [H,W,7]
    hist = onehot.reshape(grid, p, grid, p, -1).mean((1, 3)).reshape(grid * grid, -1)
    obj = (~grey).astype(np.float32).reshape(grid, 4, p // 4, grid, 4, p // 4)
    mask = (obj.mean((2, 5)) > 0.5).transpose(0, 2, 1, 3).reshape(grid * grid, 16)

    by_x = sorted(range(len(objects)), key=lambda i: objects[i]["x"])
    per_object = [(KINDS.index(o["kind"]) + 1, COLORS.index(o["color"]) + 1,
                   1 + (o["size"] == "big"), 1 + by_x.index(i),
                   sum(q["kind"] == o["kind"] for q in objects)) for i, o in enumerate(objects)]
    tiles = owner.reshape(grid, p, grid, p).transpose(0, 2, 1, 3).reshape(grid * grid, p * p)
    labels = np.zeros((grid * grid, len(LABELS)), np.int64)
    centre = np.zeros((grid * grid, 1), np.float32)
    for t, tile in enumerate(tiles):
        counts = np.bincount(tile[tile >= 0], minlength=len(objects))
        if counts.size and counts.max() >= p * p // 10:  # a tenth of the patch
            labels[t] = per_object[counts.argmax()]
    for o in objects:
        centre[int(o["y"]) // p * grid + int(o["x"]) // p] = 1
    return labels, np.concatenate([hist, mask.astype(np.float32), centre], 1)


def label_loss(probe, labels, which):
    """Cross-entropy of the LABELS columns `which`, whose logits lie one after
    the other in probe [B, n, ...]; and each one's accuracy on the patches that
    hold an object."""
    loss, at, acc = 0.0, 0, []
    on = labels[..., 0] > 0
    for j in which:
        _, n, weight = LABELS[j]
        z = probe[..., at:at + n]
        loss = loss + weight * F.cross_entropy(z.reshape(-1, n), labels[..., j].reshape(-1))
        acc.append(z.argmax(-1)[on].eq(labels[..., j][on]).float().mean().item())
        at += n
    return loss, acc


def aux_loss_of(probe, labels, soft):
    """Per-patch loss of the probe's outputs [B, n, N_AUX] on the visual tokens:
    OBJECT_LABELS, then the soft targets; and the labels' accuracies."""
    loss, acc = label_loss(probe, labels, OBJECT_LABELS)
    at, k = n_outputs(OBJECT_LABELS), len(PALETTE) + 1
    loss = loss - (soft[..., :k] * F.log_softmax(probe[..., at:at + k], -1)).sum(-1).mean()
    loss = loss + F.binary_cross_entropy_with_logits(probe[..., at + k:], soft[..., k:])
    return loss, acc


def read_scenes(manifest):
    """{image path: objects} from the manifest's SPLIT-scenes.jsonl."""
    path = manifest[:-len(".jsonl")] + "-scenes.jsonl"
    return {r["image"]: r["objects"] for r in read_manifest(path)}


def load_groups(manifest, limit=None):
    """[(pixels, [(question, answer), ...])] per image, in manifest order."""
    rows = read_manifest(manifest)
    base = os.path.dirname(manifest)
    scenes = read_scenes(manifest)
    groups, index = [], {}
    for r in rows:
        if r["image"] not in index:
            if limit and len(groups) == limit:
                continue
            index[r["image"]] = len(groups)
            rgb = read_png(os.path.join(base, r["image"]))
            groups.append((normalise(rgb), [], patch_targets(rgb, scenes[r["image"]])))
        groups[index[r["image"]]][1].append((r["question"], r["answer"]))
    return groups


def cosine_lr(peak, warmup, steps):
    """Linear warmup, then cosine to 5% of peak."""
    def lr_at(step):
        if step < warmup:
            return peak * (step + 1) / warmup
        frac = (step - warmup) / max(1, steps - warmup)
        return peak * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * frac)))
    return lr_at


def probe_accuracy(model, aux, groups, batch=100):
    """Accuracy of each LABELS head on object patches of held-out images."""
    sums = np.zeros(len(OBJECT_LABELS))
    with torch.no_grad():
        for i in range(0, len(groups), batch):
            pixels, labels, soft = stack_images(groups[i:i + batch])
            sums += np.array(aux_loss_of(aux(model.image_tokens(pixels)), labels, soft)[1])
    return sums / math.ceil(len(groups) / batch)


# parameter names of the vision tower and of the projector
TOWER = ("patch_embedding", "class_embedding", "position_embedding", "pre_layrnorm", "vlayers",
         "post_layernorm")
PROJECTOR = ("linear_1", "linear_2")


def pretrain_vision(model, aux, groups, held_out, args):
    """Stage 1: the vision tower and projector alone, on the per-patch targets
    (what CLIP's pre-training and LLaVA's projector alignment give a real model
    before instruction tuning). Cheap: 65 tokens per image and no decoder."""
    params = [p for n, p in model.named_parameters() if n.startswith(TOWER + PROJECTOR)]
    params += list(aux.parameters())
    opt = torch.optim.AdamW(params, lr=args.lr, weight_decay=0.05, betas=(0.9, 0.98))
    lr_at = cosine_lr(args.lr, 100, args.vision_steps)
    rng, t0 = random.Random(args.seed + 1), time.time()
    stream = batches(groups, args.vision_batch, rng)
    for step in range(args.vision_steps):
        for g in opt.param_groups:
            g["lr"] = lr_at(step)
        pixels, labels, soft = stack_images(next(stream))
        loss, _ = aux_loss_of(aux(model.image_tokens(pixels)), labels, soft)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        if (step + 1) % 250 == 0 or step == args.vision_steps - 1:
            acc = probe_accuracy(model, aux, held_out)
            print("vision step %d/%d loss %.3f %.0fs; held-out patch accuracy: %s" % (
                step + 1, args.vision_steps, loss.item(), time.time() - t0,
                " ".join("%s %.2f" % (LABELS[j][0], a) for j, a in zip(OBJECT_LABELS, acc))),
                  flush=True)


def prompt_ids(conv, question):
    """Ids after the shared prefix of the runtime's prompt for one question."""
    return [conv.image_id] + conv.tok("\n" + question + " ASSISTANT:")


def torch_greedy(model, conv, pixels, ids, max_new):
    """Greedy continuation, </s> included, recomputing the whole sequence per token."""
    out = []
    with torch.no_grad():
        while len(out) < max_new and (not out or out[-1] != EOS):
            h, _ = model.hidden(torch.tensor(conv.prefix), torch.tensor([ids + out]),
                                conv.image_id, pixels)
            out.append(int(model.lm_head(h[0, -1]).argmax()))
    return out


def check_runtime(model, conv, shortv, model_dir, rows, base, n_logits, max_new=4):
    """On eval prompts: max |logits(build/shortv) - logits(PyTorch)| at the prompt's
    last position (first n_logits rows), and how many greedy answers are the same."""
    worst, same = 0.0, 0
    for i, r in enumerate(rows):
        img = os.path.join(base, r["image"])
        ids = prompt_ids(conv, r["question"])
        pixels = torch.from_numpy(normalise(read_png(img)))[None]
        if i < n_logits:
            npy = os.path.join(os.path.dirname(os.path.abspath(model_dir)), "check-logits.npy")
            subprocess.run([shortv, "logits", "-m", model_dir, "--image", img, "-p",
                            r["question"], "-o", npy], check=True, capture_output=True)
            c_logits = np.load(npy).reshape(-1)
            os.remove(npy)
            with torch.no_grad():
                h, _ = model.hidden(torch.tensor(conv.prefix), torch.tensor([ids]),
                                    conv.image_id, pixels)
                t_logits = model.lm_head(h[0, -1]).numpy()
            worst = max(worst, float(np.abs(c_logits - t_logits).max()))
        c_ids = subprocess.run([shortv, "generate", "-m", model_dir, "--image", img, "-p",
                                r["question"], "-n", str(max_new), "--print-ids"], check=True,
                               capture_output=True, text=True).stdout.split()
        same += [int(t) for t in c_ids] == torch_greedy(model, conv, pixels, ids, max_new)
    return worst, same


def report_checks(model, conv, args, f32_dir):
    rows = read_manifest(os.path.join(args.data, "eval.jsonl"))[:args.check_samples]
    for name, d in (("f32 export", f32_dir), ("%s export (%s)" % (args.dtype, args.out), args.out)):
        diff, same = check_runtime(model, conv, args.shortv, d, rows, args.data, 10)
        print("build/shortv vs PyTorch, %s: logits max abs diff %.2e (10 eval prompts), "
              "greedy answers identical %d/%d" % (name, diff, same, len(rows)), flush=True)


def main():
    here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", default=os.path.join(here, "datasets/synth-vqa"))
    ap.add_argument("--out", default=os.path.join(here, "models/synth-llava"))
    ap.add_argument("--shortv", default=os.path.join(here, "build/shortv"))
    ap.add_argument("--work", default=os.path.join(here, "build/train-synth"),
                    help="scratch: the tokenizer and the float32 export for the runtime check")
    ap.add_argument("--steps", type=int, default=800)
    ap.add_argument("--batch", type=int, default=16, help="images (conversations) per step")
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--warmup", type=int, default=100)
    ap.add_argument("--aux-weight", type=float, default=1.0,
                    help="weight of the per-patch loss of the visual tokens")
    ap.add_argument("--easy-steps", type=int, default=150,
                    help="first steps on images of at most two objects")
    ap.add_argument("--vision-steps", type=int, default=1500,
                    help="stage 1: steps of the vision tower and projector alone")
    ap.add_argument("--vision-batch", type=int, default=64)
    ap.add_argument("--relation-layer", type=int, default=3,
                    help="the decoder layer whose input must hold RELATION_LABELS")
    ap.add_argument("--reuse-stage1", action="store_true",
                    help="load WORK/stage1.pt, saved by an earlier run, instead of stage 1")
    ap.add_argument("--vision-layers", type=int, default=VISION["num_hidden_layers"])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--train-images", type=int, default=0, help="use only the first N (0: all)")
    ap.add_argument("--dtype", default="f16", choices=["f16", "f32"])
    ap.add_argument("--check", action="store_true",
                    help="no training: load WORK/f32 and compare it and OUT with build/shortv")
    ap.add_argument("--check-samples", type=int, default=100)
    ap.add_argument("--widths", default="%d,%d" % (VISION["hidden_size"], TEXT["hidden_size"]),
                    help="vision,text hidden sizes (MLPs 4x and 2.75x, 4 heads)")
    args = ap.parse_args()
    dv, dt = (int(x) for x in args.widths.split(","))
    VISION.update(hidden_size=dv, intermediate_size=4 * dv, num_hidden_layers=args.vision_layers)
    TEXT.update(hidden_size=dt, intermediate_size=(dt * 11 // 4 + 7) // 8 * 8)

    torch.manual_seed(args.seed)
    torch.set_num_threads(args.threads)
    rng = random.Random(args.seed)
    t0 = time.time()

    train_manifest = os.path.join(args.data, "train.jsonl")
    if args.check:  # the exported model's own tokenizer
        tok_dir = os.path.join(args.work, "f32")
        config = json.load(open(os.path.join(tok_dir, "config.json")))
        vocab, image_id = config["vocab_size"], config["image_token_index"]
        pad_id = config["pad_token_id"]
    else:
        tok_dir = os.path.join(args.work, "tokenizer")
        vocab, image_id, pad_id = synth_tokenizer.write_tokenizer(tok_dir, train_manifest)
    conv = Conversations(Tokens(args.shortv, tok_dir), image_id)
    groups = load_groups(train_manifest, 20 if args.check else args.train_images or None)
    conv.prefetch(groups)  # every distinct turn, up front
    for _, qa, _ in groups[:20]:
        conv.check(qa)
    print("data: %d images, %d questions, vocab %d, prefix %d tokens, %.0fs" % (
        len(groups), sum(len(g[1]) for g in groups), vocab, len(conv.prefix),
        time.time() - t0), flush=True)

    model = Llava(VISION, TEXT, vocab)
    n_params = sum(p.numel() for p in model.parameters())
    print("model: %.2fM parameters" % (n_params / 1e6), flush=True)
    if args.check:
        f32_dir = os.path.join(args.work, "f32")
        load_hf(model, os.path.join(f32_dir, "model.safetensors"))
        model.eval()
        report_checks(model, conv, args, f32_dir)
        return
    aux = nn.Linear(TEXT["hidden_size"], N_AUX)  # training only
    stage1 = os.path.join(args.work, "stage1.pt")
    if args.reuse_stage1:
        state = torch.load(stage1)
        model.load_state_dict(state["model"])
        aux.load_state_dict(state["aux"])
        print("stage 1 from %s" % stage1, flush=True)
    else:
        pretrain_vision(model, aux, groups, load_groups(os.path.join(args.data, "eval.jsonl")),
                        args)
        torch.save({"model": model.state_dict(), "aux": aux.state_dict()}, stage1)
    # Stage 2: the tower stays as stage 1 left it, as LLaVA-1.5 keeps CLIP frozen;
    # trained along at the decoder's learning rate it lost what it had learned
    # (the per-patch loss rose fourfold within 150 steps).
    for n, p in model.named_parameters():
        p.requires_grad_(not n.startswith(TOWER))
    params = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    relation = nn.Linear(TEXT["hidden_size"], n_outputs(RELATION_LABELS))  # training only
    params += list(aux.named_parameters()) + list(relation.named_parameters())
    decay = [p for n, p in params if p.dim() >= 2]
    no_decay = [p for n, p in params if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.05},
                             {"params": no_decay, "weight_decay": 0.0}],
                            lr=args.lr, betas=(0.9, 0.98), eps=1e-8)

    lr_at = cosine_lr(args.lr, args.warmup, args.steps)

    monitor = Monitor(conv, args.data, 300)
    # Curriculum: scenes of one or two objects first, where the whole image says
    # what the answer is, so that the model starts reading the visual tokens.
    easy = [g for g in groups if n_objects(g) <= 2]
    streams = batches(easy, args.batch, rng), batches(groups, args.batch, rng)
    t_train, avg_loss, avg_acc = time.time(), None, None
    for step in range(args.steps):
        for g in opt.param_groups:
            g["lr"] = lr_at(step)
        batch = collate(next(streams[step >= args.easy_steps]), conv)
        loss, aux_loss, relation_acc, acc = loss_of(model, aux, relation, args.relation_layer,
                                                    conv, *batch)
        opt.zero_grad(set_to_none=True)
        (loss + args.aux_weight * aux_loss).backward()
        torch.nn.utils.clip_grad_norm_([p for _, p in params], 1.0)
        opt.step()
        avg_loss = loss.item() if avg_loss is None else 0.98 * avg_loss + 0.02 * loss.item()
        avg_acc = acc.item() if avg_acc is None else 0.98 * avg_acc + 0.02 * acc.item()
        if step % 50 == 0 or step == args.steps - 1:
            el = time.time() - t_train
            print("step %d/%d loss %.3f aux %.3f (%s) token-acc %.3f lr %.2e %.0fs (ETA %.0fs)" % (
                step + 1, args.steps, avg_loss, aux_loss.item(),
                " ".join("%s %.2f" % (LABELS[j][0], a) for j, a in zip(RELATION_LABELS,
                                                                      relation_acc)),
                avg_acc, lr_at(step), el, el / (step + 1) * (args.steps - step - 1)), flush=True)
        if (step + 1) % 100 == 0 or step == args.steps - 1:
            model.eval()
            acc, per = monitor(model)
            model.train()
            print("  eval first-token accuracy %.3f: %s" % (
                acc, " ".join("%s %.2f" % kv for kv in per.items())), flush=True)
    train_seconds = time.time() - t_train
    model.eval()

    f32_dir = os.path.join(args.work, "f32")
    export(model, f32_dir, tok_dir, vocab, image_id, pad_id, "f32")
    export(model, args.out, tok_dir, vocab, image_id, pad_id, args.dtype)
    print("trained %d steps in %.0fs (%.2fM parameters)" % (
        args.steps, train_seconds, n_params / 1e6), flush=True)
    report_checks(model, conv, args, f32_dir)

if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Export per-head queries, keys and values of a Hugging Face model for attnscope.

Runs one forward pass of a causal or masked language model on a text, captures the outputs of
the query/key/value projections of the chosen layers with forward hooks, and writes

* ``OUT.npz`` with arrays ``q``, ``k``, ``v`` of shape ``[layers, heads, L, head_dim]``
  (float32, *before* the 1/sqrt(head_dim) scaling: attnscope applies the scale itself, C5);
* ``OUT.json`` beside it (attnscope's sidecar): ``tokens``, ``layers_kept``, ``scale``,
  ``causal``, ``model``, ``source``.

Open the result with ``attnscope gui OUT.npz`` or ``attnscope info OUT.npz``.

torch and transformers are needed only here (``pip install torch transformers``); attnscope and
its tests do not use them. Rotary position embeddings (Llama, Mistral, Qwen, GPT-NeoX) are
applied inside the attention function, after the projections: the exported q and k are then the
pre-rotary projections and the script says so. Grouped-query attention (fewer key/value heads) is
expanded so that every query head has its own k and v.

Example::

    python3 scripts/export_qkv.py --model gpt2 --text "The quick brown fox" \\
        --layers 0,5,11 --out fox.npz
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path


def parse_layers(spec: str, num_layers: int) -> list[int]:
    """``"0,5,-1"`` or ``"all"`` -> sorted unique layer indices (negative counts from the end)."""
    if spec.strip() == "all":
        return list(range(num_layers))
    layers = []
    for part in spec.split(","):
        part = part.strip()
        if not part:
            continue
        try:
            index = int(part)
        except ValueError:
            raise SystemExit(f"--layers: '{part}' is not an integer (e.g. --layers 0,5,-1)")
        if index < 0:
            index += num_layers
        if not 0 <= index < num_layers:
            raise SystemExit(f"--layers: {part} is out of range: the model has {num_layers} layers")
        layers.append(index)
    if not layers:
        raise SystemExit("--layers: no layer given")
    return sorted(set(layers))


def find_attention_modules(model):
    """The per-layer self-attention modules, in layer order."""
    candidates = []
    for name, module in model.named_modules():
        leaf = name.rsplit(".", 1)[-1]
        if leaf in ("attn", "self_attn", "attention", "self_attention") and not any(
            name.startswith(c + ".") for c, _ in candidates
        ):
            candidates.append((name, module))
    # BERT-style: ``layer.N.attention.self``.
    candidates = [
        (n, getattr(m, "self", m)) for n, m in candidates if "crossattention" not in n
    ]
    if not candidates:
        raise SystemExit("cannot find attention modules in this model (expected *.attn / *.self_attn)")
    return candidates


class Capture:
    """Forward hooks on one attention module's q/k/v projections (separate or fused)."""

    def __init__(self, attn, config):
        self.attn = attn
        self.config = config
        self.outputs: dict[str, object] = {}
        self.handles = []
        self.fused = None
        names = {
            "q": ("q_proj", "query", "q"),
            "k": ("k_proj", "key", "k"),
            "v": ("v_proj", "value", "v"),
        }
        for kind, options in names.items():
            for option in options:
                sub = getattr(attn, option, None)
                if sub is not None and hasattr(sub, "register_forward_hook"):
                    self.handles.append(sub.register_forward_hook(self._hook(kind)))
                    break
        if len(self.handles) < 3:
            for h in self.handles:
                h.remove()
            self.handles = []
            for option in ("c_attn", "qkv_proj", "query_key_value", "Wqkv"):
                sub = getattr(attn, option, None)
                if sub is not None:
                    self.fused = option
                    self.handles.append(sub.register_forward_hook(self._hook("qkv")))
                    break
        if not self.handles:
            raise SystemExit(f"cannot find q/k/v projections in {type(attn).__name__}")

    def _hook(self, kind):
        def hook(_module, _inputs, output):
            self.outputs[kind] = output.detach()

        return hook

    def remove(self):
        for h in self.handles:
            h.remove()

    def heads(self, num_heads: int, head_dim: int, num_kv_heads: int):
        """q, k, v as ``[heads, L, head_dim]`` float32 numpy arrays (batch 0)."""
        import torch

        if self.fused is not None:
            fused = self.outputs["qkv"][0]
            if self.fused == "query_key_value":
                # GPT-NeoX / Falcon: per head [q, k, v] interleaved.
                length = fused.shape[0]
                per_head = fused.view(length, num_heads, 3, head_dim)
                q, k, v = per_head[:, :, 0], per_head[:, :, 1], per_head[:, :, 2]
                q, k, v = (x.reshape(length, num_heads * head_dim) for x in (q, k, v))
            else:
                q_width = num_heads * head_dim
                kv_width = num_kv_heads * head_dim
                q, k, v = torch.split(fused, [q_width, kv_width, kv_width], dim=-1)
        else:
            q, k, v = (self.outputs[x][0] for x in ("q", "k", "v"))

        def split(x, heads):
            length = x.shape[0]
            return x.reshape(length, heads, head_dim).permute(1, 0, 2)

        q = split(q, num_heads)
        k = split(k, num_kv_heads)
        v = split(v, num_kv_heads)
        if num_kv_heads != num_heads:
            repeat = num_heads // num_kv_heads
            k = k.repeat_interleave(repeat, dim=0)
            v = v.repeat_interleave(repeat, dim=0)
        return tuple(x.float().cpu().numpy() for x in (q, k, v))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Export Q, K, V of chosen layers of a Hugging Face model to attnscope's .npz"
    )
    parser.add_argument("--model", required=True, help="model id or local path, e.g. gpt2")
    text = parser.add_mutually_exclusive_group(required=True)
    text.add_argument("--text", help="input text")
    text.add_argument("--text-file", type=Path, help="file holding the input text (UTF-8)")
    parser.add_argument(
        "--layers", default="0", help="comma-separated layer indices (negative from the end) or 'all'"
    )
    parser.add_argument("--out", type=Path, required=True, help="output .npz (sidecar .json beside it)")
    parser.add_argument("--max-tokens", type=int, default=4096, help="truncate the input to this many tokens")
    parser.add_argument("--device", default="cpu", help="torch device (cpu, cuda, mps)")
    args = parser.parse_args(argv)

    try:
        import numpy as np
        import torch
        from transformers import AutoConfig, AutoModel, AutoTokenizer
    except ImportError as e:
        print(f"export_qkv.py needs numpy, torch and transformers: {e}", file=sys.stderr)
        return 2

    text_value = args.text if args.text is not None else args.text_file.read_text(encoding="utf-8")
    config = AutoConfig.from_pretrained(args.model)
    tokenizer = AutoTokenizer.from_pretrained(args.model)
    model = AutoModel.from_pretrained(args.model, attn_implementation="eager")
    model.eval().to(args.device)

    num_heads = getattr(config, "num_attention_heads", None) or getattr(config, "n_head")
    hidden = getattr(config, "hidden_size", None) or getattr(config, "n_embd")
    head_dim = getattr(config, "head_dim", None) or hidden // num_heads
    num_kv_heads = getattr(config, "num_key_value_heads", None) or num_heads
    encoders = ("bert", "roberta", "xlm-roberta", "distilbert", "electra", "deberta", "deberta-v2", "albert", "mpnet")
    causal = getattr(config, "model_type", "") not in encoders

    modules = find_attention_modules(model)
    layers = parse_layers(args.layers, len(modules))
    captures = {i: Capture(modules[i][1], config) for i in layers}

    encoded = tokenizer(text_value, return_tensors="pt", truncation=True, max_length=args.max_tokens)
    encoded = {k: v.to(args.device) for k, v in encoded.items()}
    with torch.no_grad():
        model(**encoded)
    for c in captures.values():
        c.remove()

    per_layer = [captures[i].heads(num_heads, head_dim, num_kv_heads) for i in layers]
    q = np.stack([x[0] for x in per_layer]).astype(np.float32)
    k = np.stack([x[1] for x in per_layer]).astype(np.float32)
    v = np.stack([x[2] for x in per_layer]).astype(np.float32)
    ids = encoded["input_ids"][0].tolist()
    tokens = tokenizer.convert_ids_to_tokens(ids)

    out = args.out if args.out.suffix == ".npz" else args.out.with_suffix(".npz")
    out.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(out, q=q, k=k, v=v)
    rotary = getattr(config, "rope_theta", None) is not None or "rotary" in str(
        getattr(config, "position_embedding_type", "")
    )
    source = "hooks on the q/k/v projections (pre-scale" + (
        ", pre-rotary)" if rotary else ")"
    )
    sidecar = {
        "tokens": tokens,
        "layers_kept": layers,
        "scale": 1.0 / math.sqrt(head_dim),
        "causal": causal,
        "model": args.model,
        "source": source,
    }
    out.with_suffix(".json").write_text(json.dumps(sidecar, ensure_ascii=False, indent=1), encoding="utf-8")
    print(
        f"wrote {out} (q/k/v {list(q.shape)} = [layers, heads, L, head_dim]) and {out.with_suffix('.json')}",
        file=sys.stderr,
    )
    if rotary:
        print("note: rotary embeddings are applied after the projections; q and k are pre-rotary", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())

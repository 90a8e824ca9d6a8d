#!/usr/bin/env bash
# Reproduces models/refund-base from nothing: writes the refund world's data (seed 2, 12,000 cases: a world of its own,
# so that none of the prompts the demo evaluates on, from seed 1, is in the corpus) and trains the base model from
# scratch on its mixed-quality corpus (models/refund-base.yaml: 4,000 steps of 8 packed 512-byte rows, 22 minutes on
# 2 cores; eval loss 0.054), then copies the result here. Why that long: on 100 held-out prompts a 1,500-step model
# compared the order total with $500 as the order's flag says in 35 of 42 answers that did so, a 5,000-step one in
# 38 of 40 (world v4, measured 2026-11-29).
set -euo pipefail
cd "$(dirname "$0")/.."
rm -rf build/world build/refund-base
./tether world data --out build/world --cases 12000 --seed 2
./tether sft --config models/refund-base.yaml
rm -rf models/refund-base
cp -r build/refund-base/model models/refund-base

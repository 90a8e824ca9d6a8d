#!/usr/bin/env bash
# Reproduces models/refund-base from nothing: writes the refund world's data (seed 1, 3,000 cases) and trains the
# base model from scratch on its mixed-quality corpus (models/refund-base.yaml: 1,500 steps of 8 packed 512-byte
# rows, about 7 minutes on 2 cores; eval loss 0.065), then copies the result here.
set -euo pipefail
cd "$(dirname "$0")/.."
rm -rf build/world build/refund-base
./tether world data --out build/world --cases 3000 --seed 1
./tether sft --config models/refund-base.yaml
rm -rf models/refund-base
cp -r build/refund-base/model models/refund-base

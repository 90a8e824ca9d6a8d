#!/usr/bin/env bash
# Reproduces models/refund-base from nothing: writes the refund world's data (seed 1, 3,000 cases) and trains the
# base model from scratch on its mixed-quality corpus (models/refund-base.yaml: 1,200 steps of 8 packed 512-byte
# rows, about 8 minutes on 2 cores), then copies the result here.
set -euo pipefail
cd "$(dirname "$0")/.."
rm -rf build/world build/refund-base
./tether world data --out build/world --cases 3000 --seed 1
./tether sft --config models/refund-base.yaml
rm -rf models/refund-base
cp -r build/refund-base/model models/refund-base

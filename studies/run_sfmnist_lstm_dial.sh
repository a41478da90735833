#!/usr/bin/env bash
# Issue 20's study: does a pruned LSTM keep its accuracy *because* it stays an expander?
# Sequential Fashion-MNIST (Debian's files laid out in data/, see configs/sfmnist_lstm.yaml), the
# full training split, LSTM 128, EPOCHS epochs per cell (the dense budget: studies/sfmnist_lstm_budget/),
# one torch thread per cell, two cells at a time.
#   - pruning at init (configs/sfmnist_lstm_init.yaml): random, biregular, clustered at mixing 0 and
#     0.25 -- the dial: same sparsity, same degrees, different expansion;
#   - gradual pruning (configs/sfmnist_lstm.yaml, cubic schedule): magnitude, and rewired
#     (magnitude's degrees, randomised wiring); and the dense model;
#   at sparsity 0.9 and 0.95: where pruning costs accuracy (the pilot: magnitude breaks at 0.95,
#   random loses 4 points at 0.9) and the families' min Δr still differ by several units; at 0.97
#   the 128×28 input graphs keep at most one input per unit, every structural family's input
#   graphs reach the same Δr (-0.31) and only clustered at mixing 0 keeps a lower min Δr.
# Seed by seed, so a study cut short has whole seeds. Resumable: run it again and only unfinished
# cells run (the committed runs/*/result.json count as finished); then
#   python -m rnn_prune.study --out studies/sfmnist_lstm_dial --report-only
set -u
cd "$(dirname "$0")/.."
OUT=studies/sfmnist_lstm_dial
EPOCHS=${EPOCHS:-12}
FIT=(--trainer.max_epochs "$EPOCHS" --trainer.enable_progress_bar false)
for seed in ${SEEDS:-0 1 2 3 4}; do
  python -m rnn_prune.study --config configs/sfmnist_lstm.yaml --sparsity 0 0.9 0.95 \
      --criterion magnitude rewired --seeds "$seed" --out "$OUT" --parallel 2 --threads-per-cell 1 "${FIT[@]}"
  python -m rnn_prune.study --config configs/sfmnist_lstm_init.yaml --sparsity 0.9 0.95 \
      --criterion random biregular clustered:mixing=0 clustered:mixing=0.25 --seeds "$seed" --out "$OUT" \
      --parallel 2 --threads-per-cell 1 "${FIT[@]}"
done

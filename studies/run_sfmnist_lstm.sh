#!/usr/bin/env bash
# The published study: sequential Fashion-MNIST, LSTM 128, 8 epochs on half the training split per
# epoch (what the 2-core CPU affords), two cells at a time with one torch thread each.
# Resumable: run it again and only unfinished cells run. Seed 0 first, then seed 1, so a study cut
# short still has every grid point once.
set -u
cd "$(dirname "$0")/.."
OUT=studies/sfmnist_lstm
FIT=(--trainer.max_epochs 8 --trainer.limit_train_batches 0.5 --data.init_args.num_workers 0
     --trainer.enable_progress_bar false)
for seed in 0 1; do
  python -m rnn_prune.study --config configs/sfmnist_lstm.yaml --sparsity 0 0.5 0.8 0.9 0.95 0.98 0.99 0.995 \
      --criterion magnitude random --guard none --seeds "$seed" --out "$OUT" --parallel 2 "${FIT[@]}"
  python -m rnn_prune.study --config configs/sfmnist_lstm.yaml --sparsity 0.8 0.9 0.95 0.99 \
      --criterion magnitude random --guard ramanujan --seeds "$seed" --out "$OUT" --parallel 2 "${FIT[@]}"
done

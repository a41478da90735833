#!/usr/bin/env bash
# The tanh-RNN study on sequential Fashion-MNIST, as run_sfmnist_lstm.sh but one seed (what the
# session's CPU time allowed after the LSTM study). Resumable: run it again for unfinished cells.
set -u
cd "$(dirname "$0")/.."
OUT=studies/sfmnist_rnn
FIT=(--trainer.max_epochs 8 --trainer.limit_train_batches 0.5 --data.init_args.num_workers 0
     --trainer.enable_progress_bar false)
for seed in 0; do
  python -m rnn_prune.study --config configs/sfmnist_rnn.yaml --sparsity 0 0.5 0.8 0.9 0.95 0.98 0.99 0.995 \
      --criterion magnitude random --guard none --seeds "$seed" --out "$OUT" --parallel 2 "${FIT[@]}"
  python -m rnn_prune.study --config configs/sfmnist_rnn.yaml --sparsity 0.8 0.9 0.95 0.99 \
      --criterion magnitude random --guard ramanujan --seeds "$seed" --out "$OUT" --parallel 2 "${FIT[@]}"
done

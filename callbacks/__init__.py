"""Lightning callbacks: thin glue over the pure math in ``rnn_prune``. Add yours as a new file here."""

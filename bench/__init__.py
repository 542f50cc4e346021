"""`make bench`: the reference workload of a big and a typical clinic, measured side by side with baselines."""

"""Zero-shot evaluation: benchmark layouts, likelihood scoring, aggregation, baselines."""

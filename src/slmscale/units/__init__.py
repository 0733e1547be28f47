"""Speech (and text) to discrete units: features, k-means, deduplication, shards, unigram."""

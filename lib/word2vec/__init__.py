"""Skip-gram word vectors: negative sampling (compiled kernel) and full softmax."""

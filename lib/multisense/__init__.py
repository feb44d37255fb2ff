"""Multi-sense word vectors: a latent sense per occurrence, a learned prior p(z|x) and its posterior."""

"""Classical speech signal processing used around the neural codecs: the causal pitch coder (``pitch``) and
the CELP-style decoder-side postfilters (``postfilter``). numpy and scipy only; nothing here is learned."""

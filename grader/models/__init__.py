"""Model-side helpers: the offline multilingual-e5-small encoder (see ``e5_convert``)."""

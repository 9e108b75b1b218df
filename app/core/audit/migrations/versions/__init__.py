"""Migration revisions, written by hand. Never edit one that has shipped: add a new one."""

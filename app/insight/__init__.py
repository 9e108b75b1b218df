"""The locality view (issue 13): activity aggregates, national context and peers, for a network's practices."""

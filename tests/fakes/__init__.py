"""Contract fakes of outside services, each derived from that service's official source (named in its
docstring), rejecting what the real service rejects."""

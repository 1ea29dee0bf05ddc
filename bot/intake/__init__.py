"""What arrives: the typed alert every source is normalised into, change events, payloads as stored."""

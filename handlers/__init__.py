"""HTTP-facing handlers: alert webhook parsing and friends."""

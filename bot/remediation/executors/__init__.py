"""One module per action type; each is registered with one line in the composition root (bot/app.py)."""

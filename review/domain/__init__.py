"""Pure decision logic: no Flask, SQLAlchemy, RQ or anthropic imports here (a test enforces it)."""

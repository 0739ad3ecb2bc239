"""Review Workbench: human-in-the-loop review of AI recommendations."""

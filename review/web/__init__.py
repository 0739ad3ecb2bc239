"""The web layer: one blueprint package per area. Views parse, call a service, render."""

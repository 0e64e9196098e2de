"""The end-to-end study: audit a base model, train persona adapters, audit them, measure vectors."""

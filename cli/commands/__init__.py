"""One module per command; each defines a plain function that the app registers."""

"""The built-in web view: server-rendered pages over the store, every asset served locally."""

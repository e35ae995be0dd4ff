"""The HTTP routes: each translates a request into a call of `Synthesis` and back."""

"""Lock files: `inv lock` and the freshness check of requirements/*.txt."""

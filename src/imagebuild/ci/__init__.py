"""What CI runs and checks: `inv ci`, the CodeBuild buildspec and project, doctor, login."""

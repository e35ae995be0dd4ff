"""`python -m audiobook_tts` (and `audiobook-tts` in the image)."""

from audiobook_tts.cli import main

raise SystemExit(main())

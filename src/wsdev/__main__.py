"""``python -m wsdev``."""

from __future__ import annotations

from wsdev.cli import main

raise SystemExit(main())

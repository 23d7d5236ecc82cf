// The upstream fixture has no code: only its dependencies matter.

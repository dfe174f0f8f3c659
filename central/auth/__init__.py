"""Who is calling: users, tokens, login throttling, rate limits, the secrets policy for production starts."""

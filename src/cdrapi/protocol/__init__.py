"""The vendor /api/cdr protocol: form encoding, signing, request reading, filters, responses."""

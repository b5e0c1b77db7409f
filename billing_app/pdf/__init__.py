"""Invoice PDFs rendered with fpdf2 (no Reflex, no Stripe, no database)."""

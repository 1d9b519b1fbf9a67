"""Who may do what: API tokens, roles and the principal a request acts as (no HTTP here)."""

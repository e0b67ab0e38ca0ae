"""Staff: accounts with a second factor, roles from the policy, sessions (P4.1)."""

"""Disclosures: what went to which recipient of the policy file, on what basis, approved by
whom (P4.2-P4.6, P0.1, P3.16, P5.2)."""

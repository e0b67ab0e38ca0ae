"""Data-subject requests: intake, verification, access/export, rectify, erase, port, deadlines."""

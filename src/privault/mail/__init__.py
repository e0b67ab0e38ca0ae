"""Mail to the privacy address: the SMTP intake, reading requests, verifying senders."""

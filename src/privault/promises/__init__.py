"""The promises of the privacy policy traced to the code that keeps them and the tests
that prove them (`privault promises`)."""

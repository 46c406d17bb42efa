"""What the tests share: the harness that opens a client on either face and transport."""

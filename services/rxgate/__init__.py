"""rxgate: pharmacy order validation against drug monographs."""

"""The privileged sensor: BPF loader, collectors, identity, hashing, aggregation, writer."""

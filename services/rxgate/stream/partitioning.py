"""Which partition holds a patient: the canonical partition, whatever the producer chose.

The contract keys every topic by patient id but cannot make every client hash the key the
same way: Kafka's Java client and aiokafka use murmur2, librdkafka (confluent-kafka for Python,
.NET, Go and Node; kcat) defaults to a CRC32-based partitioner. A patient's events split over
two partitions would be checked against two histories, and a dose too soon after the previous
one could be approved.

So rxgate decides where a patient lives: the canonical partition of a patient id is the one
Kafka's Java client picks for the key, `(murmur2(utf-8 bytes) & 0x7fffffff) % partitions`.
An event that arrives on another partition of `rx.orders.v1` is forwarded, unchanged, to the
canonical partition of the internal repartition topic (`<group>-orders-repartition`) and
checked there; see `shell.py` and the README's exactly-once section.
"""
from __future__ import annotations

from functools import lru_cache

from aiokafka.partitioner import murmur2


@lru_cache(maxsize=65536)
def canonical_partition(patient_id: str, partitions: int) -> int:
    """The partition Kafka's Java client (and aiokafka) picks for this patient id as key."""
    return (murmur2(patient_id.encode("utf-8")) & 0x7FFFFFFF) % partitions

"""`sharpeyes bench central`: events through a real Mosquitto into central's ingest, against two baselines.

Two modes (``--mode``):
- backlog (the default at full speed): each contestant's persistent session is subscribed and
  offline while the publisher fills the broker with the whole mix; then it connects and drains it,
  as central does after a restart or an outage. The clock runs from its first commit to its last,
  with the two cores to itself and Mosquitto: what the consumer sustains, not how fast the bench's
  own publisher is (a Python publisher on the same two cores tops out near 5,000 events/s, so in
  live mode at full speed every contestant, even one that does nothing, measures the publisher).
- live (the default with ``--rate``): the consumer is connected while the publisher publishes;
  with a rate this is the latency run (publish → commit at a realistic load).

Contestants, one after another on the same private broker and the same message mix:
- floor: a bare paho subscriber that only counts (the broker-to-client ceiling);
- naive: the subscriber a user would write: parse JSON, one INSERT and one COMMIT per message (SQLite as
  sqlite3 opens it, rollback journal); naive_wal: the same with ``journal_mode=WAL``;
- central: ``MqttIngest`` + ``IngestService`` on SQLite (or PostgreSQL), with full validation, incidents, workflow,
  evidence blobs, manual acknowledgement after commit.
The publisher runs in its own process and stamps each event's ``observed_at`` as it publishes it,
so publish-to-commit latency is the consumer's clock at commit minus that stamp (same machine).

- `options.py`: what a run is asked to do;
- `mix.py`: the message mix and the publisher process that stamps and sends it;
- `consumers.py`: the contestants (floor, naive, naive_wal, central) and the tally of their commits;
- `run.py`: the two modes, one contestant after another on one private broker (with ``--workers``,
  per round the floor and each worker count);
- `workers.py`: central as N ``central ingest`` processes on one shared subscription, measured by
  polling the database (``--workers``);
- `pgdb.py`: a fresh PostgreSQL database per measurement (``--database postgresql``), dropped after;
- `result.py`: the figures, the JSON summary and the Markdown tables.
"""

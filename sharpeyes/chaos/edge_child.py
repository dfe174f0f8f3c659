"""Child process: an edge's delivery half (outbox + publisher, receipts and hello routed as
``EdgeNode`` routes them), for fault scenarios that kill the edge. Writes its figures to --status
every 0.2 s; runs until SIGTERM (a clean stop) or SIGKILL (a crash)."""

from __future__ import annotations

import argparse
import json
import os
import signal
import threading
from pathlib import Path

from broker.connectionconfig import BrokerConfig
from broker.logsetup import setup_logging
from edge.outbox import Outbox
from edge.publisher import RECEIPT_TIMEOUT_S, OutboxPublisher


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--outbox", type=Path, required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--site", required=True)
    parser.add_argument("--edge", required=True)
    parser.add_argument("--receipt-timeout", type=float, default=RECEIPT_TIMEOUT_S)
    parser.add_argument("--max-refusals", type=int, default=10)
    parser.add_argument("--refusal-backoff", type=float, default=1.0)
    parser.add_argument("--status", type=Path, required=True)
    parser.add_argument("--no-receipts", action="store_true", help="ignore central's hello: the broker's PUBACK deletes "
                        "(the behaviour before receipts, for a control run)")
    args = parser.parse_args()
    setup_logging("INFO")
    outbox = Outbox(args.outbox)
    publisher = OutboxPublisher(BrokerConfig(host="127.0.0.1", port=args.port), f"sharpeyes-edge-{args.site}-{args.edge}",
                                outbox, username=args.edge, max_refusals=args.max_refusals,
                                refusal_backoff_s=args.refusal_backoff, receipt_timeout_s=args.receipt_timeout)
    publisher.follow_central(args.site, args.edge, lambda topic, payload: None, receipts=not args.no_receipts)
    stopping = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopping.set())
    publisher.start()
    while not stopping.wait(0.2):
        status = {"receipts_active": publisher.receipts_active, "connected": publisher.connected,
                  "healthy": publisher.healthy, "last_refusal": publisher.last_refusal, "resends": publisher.resends,
                  "receipted": publisher.receipted, "published": publisher.published, "buried": publisher.buried}
        tmp = args.status.with_suffix(".tmp")
        tmp.write_text(json.dumps(status))
        os.replace(tmp, args.status)
    publisher.stop()
    outbox.close()


if __name__ == "__main__":
    main()

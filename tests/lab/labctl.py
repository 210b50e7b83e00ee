"""Lab CLI: ``python tests/lab/labctl.py build-base | up N | down PREFIX | leftovers PREFIX``.

``up`` keeps the nodes running until Ctrl-C (or SIGTERM), then tears them down;
meanwhile ``ip netns exec <prefix>-ctl ssh -i <key> root@10.77.0.11`` reaches node1.
"""

from __future__ import annotations

import signal
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tests.lab.nodelab import Lab, ensure_base, leftovers, sweep  # noqa: E402


def main(argv: list[str]) -> int:
    cmd = argv[0] if argv else ""
    if cmd == "build-base":
        t0 = time.monotonic()
        print(ensure_base(), f"{time.monotonic() - t0:.1f}s")
        return 0
    if cmd == "up":
        lab = Lab(prefix=argv[2] if len(argv) > 2 else "edgelab")
        t0 = time.monotonic()
        try:
            lab.up(int(argv[1]) if len(argv) > 1 else 3)
            print(f"lab {lab.prefix}: {len(lab.nodes)} nodes, sshd up after {time.monotonic() - t0:.2f}s")
            for n in lab.nodes.values():
                print(f"  {n.name} {n.ip}")
            print(f"  key {lab.key}\n  known_hosts {lab.known_hosts}\n  ip netns exec {lab.ctl_netns} ...")
            signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt))
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            pass
        finally:
            lab.down()
            print("down; leftovers:", leftovers(lab.prefix) or "none")
        return 0
    if cmd == "down" and len(argv) == 2:
        left = sweep(argv[1])
        print("\n".join(left) or "none left")
        return 1 if left else 0
    if cmd == "leftovers":
        left = leftovers(argv[1])
        print("\n".join(left) or "none")
        return 1 if left else 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

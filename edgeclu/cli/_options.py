"""Options shared by several commands, defined once (k3sup-style kebab-case names)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

Inventory = Annotated[
    Path, typer.Option("--inventory", "-i", help="Inventory YAML (Ansible-compatible).",
                       envvar="EDGECLU_INVENTORY")]
AcceptNew = Annotated[
    bool, typer.Option("--accept-new", help="Trust unknown SSH host keys on first use (for scripts; prints "
                                            "fingerprints). A changed or @revoked key is always refused.")]
Trust = Annotated[
    list[str] | None, typer.Option(
        "--trust", metavar="NAME=SHA256:…",
        help="Trust this host key on first contact (repeatable; NAME is the host's name or address, the "
             "fingerprint as `ssh-keygen -lf` prints it on the node). A host presenting another key is "
             "refused. On a terminal, other unknown hosts are listed with their fingerprints and you are "
             "asked once.")]
KnownHosts = Annotated[
    Path | None, typer.Option("--known-hosts", help="known_hosts file for strict host-key checks "
                                                    "[default: inventory's edgeclu_known_hosts or "
                                                    "~/.ssh/known_hosts].")]
Json = Annotated[bool, typer.Option("--json", help="Machine-readable JSON on stdout.")]
Limit = Annotated[
    str | None, typer.Option("--limit", "-l", help="Only these hosts (comma-separated names).")]

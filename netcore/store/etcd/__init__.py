"""The cluster store on etcd v3: ``EtcdStore`` (store.py) with its gateway, leases and watches.

Modules: ``store`` (records, names, transactions), ``gateway`` (HTTP to etcd's JSON
gateway and the errors it raises), ``lease`` (keep-alive thread), ``watch`` (one
resuming watch per thread).
"""

from netcore.store.etcd.gateway import StoreError, StoreUnavailable
from netcore.store.etcd.store import _MAX_RETRIES, EtcdStore

__all__ = ["EtcdStore", "StoreUnavailable", "StoreError", "_MAX_RETRIES"]

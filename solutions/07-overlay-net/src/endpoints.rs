//! A container on an overlay network, known to every host: its endpoint
//! record in the store, under the container's lease.
//!
//! A lease is etcd's dead man's switch: granted with a TTL (10 s), kept
//! alive by its holder (the container's monitor, every second), and when
//! the holder stops (the host died, the monitor was killed) it expires and
//! every key attached to it is deleted, in one revision. The other hosts
//! see the endpoint gone at their next sync, and drop its entries.
//!
//! ```text
//! /minibox/v1/endpoints/NETWORK/ID -> {"network":..,"id":..,"name":"web","ip":"10.0.0.2",
//!                                      "mac":"02:42:0a:00:00:02","host":"10.99.0.1"}
//! ```

use crate::etcd::Etcd;
use crate::store::Endpoint;

// ANCHOR: register
/// Put `endpoint` in the store under `lease`.
pub fn register(etcd: &Etcd, endpoint: &Endpoint, lease: i64) -> anyhow::Result<()> {
    // TODO(lesson-07): afterwards the key store::endpoint_key(network, id) holds the endpoint as JSON, attached to lease, so that it goes when the lease ends
    // Etcd::put_with_lease; serde_json::to_string of the Endpoint. Shell:
    // etcdctl put --lease=ID /minibox/v1/endpoints/ov/ID '{"name":...}'
    // BEGIN SOLUTION
    let key = crate::store::endpoint_key(&endpoint.network, &endpoint.id);
    etcd.put_with_lease(&key, &serde_json::to_string(endpoint)?, lease)
    // END SOLUTION
}
// ANCHOR_END: register

// ANCHOR: list
/// Every endpoint of `network`, on every host, by id.
pub fn list(etcd: &Etcd, network: &str) -> anyhow::Result<Vec<Endpoint>> {
    // TODO(lesson-07): return every endpoint whose key is under store::endpoints_prefix(network), parsed; a value that is not an endpoint is an error naming its key
    // Etcd::prefix gives the keys and values, sorted by key. Shell:
    // etcdctl get --prefix /minibox/v1/endpoints/ov/
    // BEGIN SOLUTION
    use anyhow::Context;
    etcd.prefix(&crate::store::endpoints_prefix(network))?
        .into_iter()
        .map(|kv| {
            serde_json::from_str(&kv.value)
                .with_context(|| format!("the store's {} is not an endpoint", kv.key))
        })
        .collect()
    // END SOLUTION
}
// ANCHOR_END: list

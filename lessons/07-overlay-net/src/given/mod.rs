//! What step 07 gives: the code around the exercise, read it freely.
//!
//! - [`etcd`]: the cluster store's client (etcd's v3 JSON gateway over a
//!   small blocking HTTP/1.1 client);
//! - [`store`]: what the store holds, where, and its records;
//! - [`dump`]: the VXLAN device's entries, read back over rtnetlink;
//! - [`dataplane`]: a network's bridge and VXLAN device on this host, and
//!   the sync;
//! - [`attach`]: a container on an overlay network, and the monitor's tick;
//! - [`cli`]: step 06's commands, the cluster flags, `network create -d
//!   overlay`.

pub mod attach;
pub mod cli;
pub mod dataplane;
pub mod dump;
pub mod etcd;
pub mod store;

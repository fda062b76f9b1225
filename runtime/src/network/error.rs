//! What can go wrong with rbuild's networks, each variant naming the step.

use std::net::Ipv4Addr;
use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum NetworkError {
    #[error("invalid network name {0:?}")]
    InvalidName(String),
    #[error("conflict: network with name {0} already exists")]
    Exists(String),
    #[error("network driver {0:?} is not supported (only bridge)")]
    Driver(String),
    #[error("conflict: invalid pool request: pool {subnet} overlaps with network {network} ({other})")]
    Overlap { subnet: String, network: String, other: String },
    #[error("could not find an available, non-overlapping address pool")]
    NoPool,
    #[error("gateway {gateway} is not a host address of subnet {subnet}")]
    Gateway { gateway: Ipv4Addr, subnet: String },
    #[error("conflict: {0} is a pre-defined network and cannot be removed")]
    Predefined(String),
    #[error("conflict: error while removing network: network {name} id {id} has active endpoints ({containers})")]
    InUse { name: String, id: String, containers: String },
    #[error("conflict: container {0} is not running")]
    NotRunning(String),
    #[error("conflict: endpoint with name {container} already exists in network {network}")]
    AlreadyConnected { container: String, network: String },
    #[error("container {container} is not connected to network {network}")]
    NotConnected { container: String, network: String },
    #[error("network {0} not found")]
    NotFound(String),
    #[error("network {name}: {source}")]
    Definition {
        name: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("invalid CIDR address: {0}")]
    InvalidCidr(String),
    #[error("invalid subnet {0}: host bits are set")]
    HostBits(String),
    #[error("address {ip} is not usable on network {network}")]
    AddressUnusable { ip: Ipv4Addr, network: String },
    #[error("conflict: address {ip} is already in use on network {network}")]
    AddressInUse { ip: Ipv4Addr, network: String },
    #[error("no available addresses on network {0}")]
    NoAddresses(String),
    #[error("invalid host address {0:?}")]
    HostAddress(String),
    #[error("conflict: Bind for {0} failed: port is already allocated")]
    PortAllocated(String),
    #[error("the DNS server of rbuild's networks did not start")]
    DnsDidNotStart,
    #[error("rbuild's network namespace is gone")]
    NamespaceGone,
    #[error("the namespace thread panicked")]
    NamespaceThread,
    #[error("{0} is not a network namespace")]
    NotANamespace(PathBuf),
    #[error("nft: {0}")]
    Nft(String),
    #[error("pasta did not start: {0}")]
    Pasta(String),
}
